/**
 * The command line as commander 14 declares it: every command with its own options, help (`run --help`,
 * `help run`) and examples; `backups list` and `subject request|status|process|retry` as nested commands.
 * `--config` is the program's option, so it is accepted before or after any command. Actions put their exit
 * code in `outcome`; parse errors are thrown as CommandLineError (see main.ts), never process.exit.
 */
import { Command, type CommanderError, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { loadConfigFile } from '../../lib/config-file.ts';
import { backupsCommand, drillCommand, restoreCommand, verifyBackupCommand } from './backup-commands.ts';
import { UsageError } from './errors.ts';
import {
  migrateCommand,
  planCommand,
  print,
  runCli,
  schemaCommand,
  startCli,
  statusCommand,
  unlockCli,
  validateCommand,
  verifyArchiveCommand,
} from './handlers.ts';
import { importReportCommand } from './import-commands.ts';
import { reportCommand } from './report-command.ts';
import { restoreArchiveCommand } from './restore-archive-command.ts';
import { subjectCommand } from './subject-commands.ts';
import { ENVIRONMENT_HELP, EXIT_CODES_HELP, examples } from './usage.ts';

/** What the action that ran decided: its exit code, and its command for messages (`pg-lifecycle run`). */
export interface Outcome {
  code: number;
  command: string;
}

/** A usage error commander found (unknown option or command, missing value…), with the command it is about. */
export class CommandLineError extends Error {
  override readonly name = 'CommandLineError';
  constructor(
    readonly command: string,
    readonly error: CommanderError,
  ) {
    super(error.message, { cause: error });
  }
}

/** `pg-lifecycle subject request`: the command and its parents. */
export function commandPath(command: CommandUnknownOpts): string {
  const names: string[] = [];
  for (let c: CommandUnknownOpts | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

const POLICY = 'policy name from the config';
const REQUIRED_POLICY = `${POLICY} (required)`;
const BUCKET = 'S3 bucket (default: $PG_LIFECYCLE_BUCKET)';
const JSON_OUTPUT = 'print the result as JSON on stdout';
const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export function buildProgram(outcome: Outcome): Command<[], { config: string }> {
  const program = new Command('pg-lifecycle')
    .description('Data-lifecycle management for PostgreSQL: archive, purge, anonymize, back up and restore')
    .option('--config <file>', 'config file', 'lifecycle.config.json')
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', `\n${ENVIRONMENT_HELP}\n\n${EXIT_CODES_HELP}`);
  const done = (code: number) => {
    outcome.code = code;
  };

  program
    .command('validate')
    .description('Check the config file; print every problem with its location')
    .addHelpText('after', examples('pg-lifecycle validate --config lifecycle.config.json'))
    .action(async (_options, command) => done(validateCommand(command.optsWithGlobals())));

  program
    .command('schema')
    .description('Write the config JSON Schema')
    .option('--out <file>', 'where to write it', 'lifecycle.schema.json')
    .addHelpText('after', examples('pg-lifecycle schema --out lifecycle.schema.json'))
    .action(async (options) => done(schemaCommand(options)));

  program
    .command('run')
    .summary('Run a policy locally through the synthesized state machine')
    .description(
      'Run a policy locally: the state machine `cdk synth` produces, with the real handlers, against ' +
        'DATABASE_URL/PG* and S3. On a terminal, a live line on stderr counts rows, chunks and bytes. ' +
        'Ctrl-C stops after the open chunk rolls back and records the run as Interrupted (exit 130).',
    )
    .option('--policy <name>', REQUIRED_POLICY)
    .option('--bucket <name>', BUCKET)
    .option('--dry-run', 'plan only: cutoff, eligible rows, chunk query plan; nothing changed')
    .option(
      '--force',
      'run although the chunk query scans the whole table (no btree index leads with timeColumn)',
    )
    .option('--json', `${JSON_OUTPUT}: {policy, action, status, rows, objects, bytes, runId, …}`)
    .option('--verbose', 'one JSON log line per chunk on stderr (instead of the progress line)')
    .addHelpText(
      'after',
      examples(
        'pg-lifecycle run --policy orders-archive --bucket my-archive-bucket',
        'pg-lifecycle run --policy orders-purge --dry-run --json',
      ),
    )
    .action(async (_options, command) => done(await runCli(command.optsWithGlobals())));

  program
    .command('plan')
    .summary('Dry run of every policy (or one): what a run would do, changing nothing')
    .description(
      'Dry run: cutoff, eligible rows, estimated bytes, oldest row, referencing tables, partitions to retire, ' +
        'chunk query plan and warnings (read only). Exit 1 when a real run would fail or refuse.',
    )
    .option('--policy <name>', `${POLICY} (default: every policy)`)
    .option('--force', 'plan as a run with --force would (a whole-table scan allowed)')
    .option('--json', `${JSON_OUTPUT}: one report per policy`)
    .option('--verbose', 'one JSON log line per step on stderr')
    .addHelpText('after', examples('pg-lifecycle plan', 'pg-lifecycle plan --policy orders-archive --json'))
    .action(async (_options, command) => done(await planCommand(command.optsWithGlobals())));

  program
    .command('start')
    .summary('Start a run in AWS (Step Functions StartExecution)')
    .description('Start a run in AWS: StartExecution of the policy’s state machine with the schedule’s input')
    .option('--policy <name>', REQUIRED_POLICY)
    .option(
      '--state-machine-arn <arn>',
      'the policy’s state machine (default: $PG_LIFECYCLE_STATE_MACHINE_PREFIX + policy)',
    )
    .option('--dry-run', 'start a dry run')
    .option('--force', 'allow a chunk query that scans the whole table')
    .option('--json', JSON_OUTPUT)
    .addHelpText('after', examples('pg-lifecycle start --policy orders-archive'))
    .action(async (_options, command) => done(await startCli(command.optsWithGlobals())));

  program
    .command('status')
    .summary('Recent executions (AWS) and runs (ledger)')
    .description('Recent executions (AWS) and runs (ledger, when a database is configured)')
    .option('--policy <name>', `${POLICY} (default: every enabled policy)`)
    .option('--state-machine-arn <arn>', 'one state machine instead of $PG_LIFECYCLE_STATE_MACHINE_PREFIX')
    .option('--limit <n>', 'how many, 1 to 100', '10')
    .option('--json', JSON_OUTPUT)
    .addHelpText('after', examples('pg-lifecycle status --policy orders-archive --limit 5'))
    .action(async (_options, command) => done(await statusCommand(command.optsWithGlobals())));

  program
    .command('verify')
    .summary('Check an archive policy’s objects, or a backup, in S3')
    .description(
      'Check every ledger-listed object of an archive policy (or of --run ID) in S3: length, SHA-256 and ' +
        'Parquet row count, and that no unlisted object lies under its prefix. With --backup: every part of the ' +
        'backup, its schema files and (with a database) the ledger’s record of it. Exit 1 on any problem.',
    )
    .option('--policy <name>', REQUIRED_POLICY)
    .option('--bucket <name>', BUCKET)
    .option('--run <id>', 'only this run’s objects (a UUID)')
    .option('--backup <id>', 'verify this backup instead (an id, or latest)')
    .option('--json', JSON_OUTPUT)
    .addHelpText(
      'after',
      examples(
        'pg-lifecycle verify --policy orders-archive --bucket my-archive-bucket',
        'pg-lifecycle verify --backup latest --policy nightly-backup --bucket my-backup-bucket',
      ),
    )
    .action(async (options) =>
      done(
        await (options.backup !== undefined ? verifyBackupCommand(options) : verifyArchiveCommand(options)),
      ),
    );

  const imports = program.command('import').description('Legacy imports (report)');
  imports
    .command('report')
    .description(
      'Validation report of import policies from the ledger: each recent run (examined, imported, already ' +
        'there, refused) and the source rows the target still refuses, by reason with a few source keys. ' +
        'Exit 1 while refused rows remain',
    )
    .option('--policy <name>', `${POLICY} (default: every import policy)`)
    .option('--samples <n>', 'source keys shown per reason', '5')
    .option('--json', JSON_OUTPUT)
    .addHelpText('after', examples('pg-lifecycle import report --policy legacy-exceptions'))
    .action(async (_options, command) => {
      const options = command.optsWithGlobals();
      const samples = Number(options.samples);
      if (!Number.isInteger(samples) || samples < 0 || samples > 1000)
        throw new UsageError(`--samples must be a whole number from 0 to 1000, not ${options.samples}`);
      const { code, output } = await importReportCommand(loadConfigFile(options.config), {
        policy: options.policy,
        json: options.json ?? false,
        samples,
      });
      print(output);
      done(code);
    });

  const backups = program.command('backups').description('Backups in the bucket (list)');
  backups
    .command('list')
    .description(
      'Backups with time, tables, rows, bytes, consistency, expiry; incomplete ones (no or unreadable ' +
        'manifest.json) marked as such and never restorable',
    )
    .option('--policy <name>', `${POLICY} (default: every backup policy)`)
    .option('--bucket <name>', BUCKET)
    .option('--json', JSON_OUTPUT)
    .addHelpText('after', examples('pg-lifecycle backups list --bucket my-backup-bucket --json'))
    .action(async (options) => done(await backupsCommand(options)));

  program
    .command('restore')
    .summary('Restore a backup into DATABASE_URL')
    .description(
      'Restore a backup into DATABASE_URL: every part verified before anything is loaded, one transaction per ' +
        'table, rows and content checksum checked against the manifest. full: schema, data, then ' +
        'constraints/indexes/sequences. --table: data-only only. A non-empty target table is refused unless ' +
        '--if-exists truncate|append (data-only).',
    )
    .option('--backup <id>', 'backup id, or latest (required)')
    .option('--policy <name>', REQUIRED_POLICY)
    .option('--bucket <name>', BUCKET)
    .option('--mode <mode>', 'full, data-only or schema-only (default: full)')
    .option('--table <table>', 'only this table (repeatable; data-only)', collect)
    .option('--into-schema <schema>', 'restore next to the original, into this schema')
    .option('--if-exists <what>', 'a non-empty target table: fail, truncate or append (default: fail)')
    .option('--json', JSON_OUTPUT)
    .addHelpText(
      'after',
      examples(
        'pg-lifecycle restore --backup latest --policy nightly-backup --bucket my-backup-bucket',
        'pg-lifecycle restore --backup latest --policy nightly-backup --bucket B --mode data-only \\\n' +
          '    --table public.orders --into-schema restored',
      ),
    )
    .action(async (options) => done(await restoreCommand(options)));

  program
    .command('drill')
    .summary('Restore the latest backup into a scratch schema and compare it')
    .description(
      'Restore the latest backup into a scratch schema, compare every table with the manifest, record it in ' +
        'lifecycle.restore_drills, drop the schema; exit 1 if it failed',
    )
    .option('--policy <name>', REQUIRED_POLICY)
    .option('--bucket <name>', BUCKET)
    .option('--json', JSON_OUTPUT)
    .addHelpText('after', examples('pg-lifecycle drill --policy nightly-backup --bucket my-backup-bucket'))
    .action(async (options) => done(await drillCommand(options)));

  program
    .command('restore-archive')
    .summary('Archived rows back into their table (or another)')
    .description(
      'Archived rows back from the policy’s Parquet objects whose time range overlaps [from, to): each ' +
        'object checked, staged, counted, then INSERT … ON CONFLICT DO NOTHING, one transaction per object, ' +
        'recorded in lifecycle.restored_objects (a rerun restores nothing twice). Objects in Glacier Flexible ' +
        'Retrieval / Deep Archive: their restore is requested and the command exits 3; run it again later.',
    )
    .option('--policy <name>', REQUIRED_POLICY)
    .option('--bucket <name>', BUCKET)
    .option('--from <time>', 'start of the time range (required)')
    .option('--to <time>', 'end of the time range, exclusive (required)')
    .option('--where <sql>', 'keep rows by a predicate, checked like a policy filter')
    .option('--into <table>', 'restore into this table instead of the policy’s')
    .option('--allow-no-key', 'allow a target table without a primary key')
    .option('--tier <tier>', 'Glacier retrieval tier: Standard, Bulk or Expedited (default: Standard)')
    .option('--json', JSON_OUTPUT)
    .addHelpText(
      'after',
      examples(
        'pg-lifecycle restore-archive --policy orders-archive --bucket my-archive-bucket \\\n' +
          '    --from 2023-01-01 --to 2023-02-01 --where "customer_id = 42" --into orders_restored',
      ),
    )
    .action(async (options) => done(await restoreArchiveCommand(options)));

  const subject = program
    .command('subject')
    .summary('GDPR subject requests: request, status, process, retry')
    .description('GDPR subject requests of the subjects policy: request, status, process, retry');
  const subjectConfig = (command: CommandUnknownOpts) =>
    loadConfigFile((command.optsWithGlobals() as { config: string }).config);
  subject
    .command('request')
    .description(
      'Record an erasure or export request (asked twice: the same pending one); needs the hash key ' +
        '(PG_LIFECYCLE_HASH_KEY): the ledger keeps the key’s HMAC, never the key',
    )
    .option('--erase <key>', 'erase the subject with this key')
    .option('--export <key>', 'export the subject with this key')
    .option('--policy <name>', `subjects ${POLICY} (default: the only one)`)
    .option('--json', JSON_OUTPUT)
    .addHelpText('after', examples('pg-lifecycle subject request --erase 42'))
    .action(async (options, command) =>
      done(await subjectCommand(subjectConfig(command), options, ['request'])),
    );
  subject
    .command('status')
    .description(
      'Every request: state, due date, OVERDUE, rows per table, export key, an erasure’s archive walk; ' +
        'exit 1 if any is overdue',
    )
    .option('--policy <name>', `subjects ${POLICY} (default: every one)`)
    .option('--presign <seconds>', 'a presigned GET URL of each export, valid that long (at most 7 days)')
    .option('--json', JSON_OUTPUT)
    .addHelpText('after', examples('pg-lifecycle subject status --presign 3600'))
    .action(async (options, command) =>
      done(await subjectCommand(subjectConfig(command), options, ['status'])),
    );
  subject
    .command('process')
    .description(
      'Run the subjects policy locally (like run): each pending request erased (children first) or ' +
        'exported to s3://B/subjects/<policy>/<request>/export.json',
    )
    .option('--policy <name>', `subjects ${POLICY} (default: the only one)`)
    .option('--bucket <name>', BUCKET)
    .option('--json', JSON_OUTPUT)
    .option('--verbose', 'one JSON log line per chunk on stderr (instead of the progress line)')
    .addHelpText('after', examples('pg-lifecycle subject process --bucket my-export-bucket'))
    .action(async (options, command) =>
      done(await subjectCommand(subjectConfig(command), options, ['process'])),
    );
  subject
    .command('retry')
    .description('A failed request back to pending, once its cause is fixed')
    .argument('<request-id>', 'the request (a UUID, as status prints it)')
    .addHelpText('after', examples('pg-lifecycle subject retry 0b5c…-…'))
    .action(async (requestId, _options, command) =>
      done(await subjectCommand(subjectConfig(command), {}, ['retry', requestId])),
    );

  program
    .command('report')
    .summary('Compliance report of the enabled policies')
    .description(
      'Compliance report of the enabled policies: schedule, last successful run, OVERDUE when no run ' +
        'succeeded within two schedule periods, rows past retention still present, subject requests. Exit 1 ' +
        'if anything is overdue or a request failed.',
    )
    .option('--policy <name>', `${POLICY} (default: every enabled policy)`)
    .option('--json', JSON_OUTPUT)
    .addHelpText('after', examples('pg-lifecycle report --json'))
    .action(async (_options, command) => {
      const options = command.optsWithGlobals();
      const { code, output } = await reportCommand(loadConfigFile(options.config), {
        policy: options.policy,
        json: options.json ?? false,
      });
      print(output);
      done(code);
    });

  program
    .command('unlock')
    .summary('Release a policy’s lease whose holder is provably gone')
    .description(
      'Release the policy’s lease when its holder is provably gone (a local run’s backend no longer exists; ' +
        'an AWS run’s execution is not running); refuse a live or unprovable holder (exit 1) unless --force. ' +
        'Recorded in lifecycle.lease_releases; the run is marked failed.',
    )
    .option('--policy <name>', REQUIRED_POLICY)
    .option('--force', 'release even though the holder looks alive (it stops at its next ledger write)')
    .option('--reason <text>', 'why, for the ledger (one line)')
    .option('--json', JSON_OUTPUT)
    .addHelpText('after', examples('pg-lifecycle unlock --policy orders-archive --reason "runner host lost"'))
    .action(async (options) => done(await unlockCli(options)));

  program
    .command('migrate')
    .description('Create or update the ledger schema (lifecycle.*)')
    .addHelpText('after', examples('DATABASE_URL=postgres://admin@db/app pg-lifecycle migrate'))
    .action(async () => done(await migrateCommand()));

  program.hook('preAction', (_program, action) => {
    outcome.command = commandPath(action);
  });
  configureTree(program);
  return program;
}

/**
 * Output through process.stdout/stderr at the time of writing (tests replace them); errors are not printed
 * by commander but thrown, with their command, for main to print and turn into exit code 2.
 */
function configureTree(command: CommandUnknownOpts): void {
  const path = commandPath(command);
  command
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => process.stderr.write(text),
      // Wrapped for a terminal's width, else to 100 columns like the Environment and Exit codes sections.
      getOutHelpWidth: () => (process.stdout.isTTY ? process.stdout.columns : 100),
      getErrHelpWidth: () => (process.stderr.isTTY ? process.stderr.columns : 100),
      outputError: () => undefined,
    })
    .exitOverride((error) => {
      throw new CommandLineError(path, error);
    });
  for (const sub of command.commands) configureTree(sub);
}
