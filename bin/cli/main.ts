/** Command dispatch for `pg-lifecycle`. Returns the exit code; writes results to stdout, problems to stderr. */
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { SFNClient } from '@aws-sdk/client-sfn';
import { Ledger } from '../../functions/adapters/ledger/index.ts';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { resolveClientConfig, withClient } from '../../functions/commons/database.ts';
import { describeError } from '../../functions/core/redact-database-error.ts';
import {
  ConfigError,
  deploymentIssues,
  loadConfigFile,
  writeConfigJsonSchema,
} from '../../lib/config-file.ts';
import { BucketNameSchema, type LifecycleConfig, PolicyNameSchema } from '../../lib/contracts/config.ts';
import { UnknownPolicyError } from '../../lib/execution-input.ts';
import { visibleText } from '../../lib/json-source.ts';
import {
  checkStateMachineArn,
  type ExecutionStatus,
  listExecutions,
  policyOfStateMachine,
  startCommand,
  stateMachineArnFor,
  stateMachinesConfigured,
} from './aws-commands.ts';
import { backupsCommand, drillCommand, restoreCommand, verifyBackupCommand } from './backup-commands.ts';
import { UsageError } from './errors.ts';
import { checkVerifyTarget, ledgerPresence, noLedgerMessage } from './ledger-checks.ts';
import { reportCommand } from './report-command.ts';
import { restoreArchiveCommand } from './restore-archive-command.ts';
import { formatReport, type RunReport, runCommand, wouldRefuse } from './run-command.ts';
import { subjectCommand } from './subject-commands.ts';
import { unlockCommand } from './unlock-command.ts';
import { USAGE } from './usage.ts';

const OPTIONS = {
  config: { type: 'string', default: 'lifecycle.config.json' },
  policy: { type: 'string' },
  bucket: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  force: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
  out: { type: 'string', default: 'lifecycle.schema.json' },
  'state-machine-arn': { type: 'string' },
  limit: { type: 'string', default: '10' },
  run: { type: 'string' },
  reason: { type: 'string' },
  backup: { type: 'string' },
  table: { type: 'string', multiple: true },
  mode: { type: 'string' },
  'into-schema': { type: 'string' },
  'if-exists': { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  where: { type: 'string' },
  into: { type: 'string' },
  'allow-no-key': { type: 'boolean', default: false },
  tier: { type: 'string' },
  erase: { type: 'string' },
  export: { type: 'string' },
  presign: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const print = (text: string) => process.stdout.write(`${text}\n`);
const printError = (text: string) => process.stderr.write(`${text}\n`);

export async function main(argv: string[]): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    printError(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const command = positionals[0];
  if (values.help || !command) {
    print(USAGE);
    return command || values.help ? 0 : 2;
  }
  try {
    return await dispatch(command, values, positionals.slice(1));
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError || error instanceof UnknownPolicyError) {
      printError(error.message);
      return 2;
    }
    const name = (error as Error).name ?? 'Error';
    // describeError: a server error's text without the row values PostgreSQL may quote in it.
    printError(`${name}: ${describeError(error)}`);
    return 1;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** --bucket or PG_LIFECYCLE_BUCKET, checked like the config's bucketName before any S3 call. */
function bucketOption(values: Values): string | undefined {
  const bucket = values.bucket ?? process.env.PG_LIFECYCLE_BUCKET;
  if (bucket !== undefined && !BucketNameSchema.safeParse(bucket).success) {
    throw new UsageError(`bucket ${JSON.stringify(bucket)} is not a valid S3 bucket name`);
  }
  return bucket;
}

function requirePolicy(values: Values): string {
  if (!values.policy) throw new UsageError('--policy NAME is required');
  return values.policy;
}

async function dispatch(command: string, values: Values, args: readonly string[]): Promise<number> {
  switch (command) {
    case 'validate': {
      const config = loadConfigFile(values.config);
      print(
        `${values.config}: OK (${config.policies.length} ${config.policies.length === 1 ? 'policy' : 'policies'})`,
      );
      // A warning, not an error: the same file drives local runs, which need no database in it.
      for (const issue of deploymentIssues(config)) printError(`${values.config}: warning: ${issue}`);
      return 0;
    }
    case 'schema':
      writeConfigJsonSchema(values.out);
      print(`wrote ${values.out}`);
      return 0;
    case 'run': {
      const config = loadConfigFile(values.config);
      // Ctrl-C: stop the run cleanly (the open chunk rolls back, the run is recorded, the lease released).
      const interrupt = new AbortController();
      const onSigint = () => {
        if (interrupt.signal.aborted) process.exit(130);
        printError('interrupted: stopping the run (Ctrl-C again to quit at once)…');
        interrupt.abort();
      };
      process.on('SIGINT', onSigint);
      try {
        const report = await runCommand({
          config,
          policy: requirePolicy(values),
          bucket: bucketOption(values),
          dryRun: values['dry-run'],
          force: values.force,
          verbose: values.verbose,
          signal: interrupt.signal,
        });
        print(values.json ? JSON.stringify(report) : formatReport(report));
        if (interrupt.signal.aborted) return 130;
        return report.status === 'failed' || wouldRefuse(report) ? 1 : 0;
      } finally {
        process.off('SIGINT', onSigint);
      }
    }
    case 'plan':
      return planCommand(loadConfigFile(values.config), values);
    case 'start': {
      const config = loadConfigFile(values.config);
      const policy = requirePolicy(values);
      const stateMachineArn = stateMachineArnFor(policy, values['state-machine-arn']);
      const started = await startCommand(new SFNClient({}), {
        config,
        policy,
        stateMachineArn,
        dryRun: values['dry-run'],
        force: values.force,
        now: new Date(),
      });
      print(values.json ? JSON.stringify(started) : `started ${started.name}: ${started.executionArn}`);
      return 0;
    }
    case 'status':
      return statusCommand(values);
    case 'verify': {
      if (values.backup !== undefined) return verifyBackupCommand(values);
      const bucket = bucketOption(values);
      if (!bucket) throw new UsageError('verify needs the archive bucket: --bucket B or PG_LIFECYCLE_BUCKET');
      if (values.run !== undefined && !UUID.test(values.run))
        throw new UsageError(`--run ${values.run} is not a run id (a UUID)`);
      const policy = requirePolicy(values);
      const { verifyArchiveRun } = await import('../local/verify-archive.ts');
      const { createS3Client } = await import('../../functions/commons/s3.ts');
      const s3 = createS3Client();
      try {
        const result = await withClient(
          await resolveClientConfig({ DATABASE_URL: process.env.DATABASE_URL }),
          async (client) => {
            // Verifying nothing must not read as "0 objects … OK": unknown policy or run, or no ledger, is exit 2.
            await checkVerifyTarget(client, { policy, runId: values.run });
            return verifyArchiveRun(client, s3, bucket, { policy, runId: values.run });
          },
        );
        if (values.json) print(JSON.stringify({ policy, ...result }));
        else {
          print(
            `${policy}: ${result.objectsChecked} objects, ${result.rowsInObjects + result.rowsInColdObjects} rows: ${result.ok ? 'OK' : 'PROBLEMS'}`,
          );
          for (const problem of result.problems) print(`  - ${problem}`);
          // Cold objects were not read (a restore takes hours): say which were checked how.
          for (const cold of result.checkedByAttributes)
            print(
              `  ${cold.key}: ${cold.storageClass}, checked without reading (GetObjectAttributes: ${cold.compared === 'sha256' ? 'size and SHA-256' : 'size only, S3 keeps no full-object SHA-256 for it'}; rows from the ledger)`,
            );
        }
        return result.ok ? 0 : 1;
      } finally {
        s3.destroy();
      }
    }
    case 'unlock':
      return unlockCli(values);
    case 'backups':
      return backupsCommand(args, values);
    case 'restore':
      return restoreCommand(values);
    case 'drill':
      return drillCommand(values);
    case 'subject':
      return subjectCommand(loadConfigFile(values.config), values, args);
    case 'restore-archive':
      return restoreArchiveCommand(values);
    case 'report': {
      if (args.length > 0) throw new UsageError(`report takes no arguments\n\n${USAGE}`);
      const { code, output } = await reportCommand(loadConfigFile(values.config), {
        policy: values.policy,
        json: values.json,
      });
      print(output);
      return code;
    }
    case 'migrate': {
      const applied = await withClient(
        await resolveClientConfig({ DATABASE_URL: process.env.DATABASE_URL }),
        applyMigrations,
      );
      print(applied.length > 0 ? `applied ${applied.join(', ')}` : 'ledger is up to date');
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

async function planCommand(config: LifecycleConfig, values: Values): Promise<number> {
  const names = values.policy ? [values.policy] : config.policies.map((p) => p.name);
  const reports: RunReport[] = [];
  for (const policy of names) {
    reports.push(
      await runCommand({
        config,
        policy,
        bucket: undefined,
        dryRun: true,
        force: values.force,
        verbose: values.verbose,
      }),
    );
  }
  if (values.json) print(JSON.stringify(reports));
  else for (const report of reports) print(formatReport(report));
  // 1 when a real run would fail or refuse: usable as a gate before enabling a schedule.
  return reports.some((r) => r.status === 'failed' || wouldRefuse(r)) ? 1 : 0;
}

/**
 * Executions of one state machine (`--state-machine-arn`), or of each policy's (the prefix with `--policy`
 * or every enabled policy of the config: a disabled one has no machine), newest first.
 */
export async function recentExecutions(
  sfn: SFNClient,
  values: Pick<Values, 'state-machine-arn' | 'policy' | 'config'>,
  limit: number,
): Promise<ExecutionStatus[]> {
  const explicit = values['state-machine-arn'];
  if (explicit !== undefined) {
    const stateMachineArn = values.policy
      ? stateMachineArnFor(values.policy, explicit)
      : checkStateMachineArn(explicit);
    const policy = values.policy ?? policyOfStateMachine(stateMachineArn);
    return listExecutions(sfn, { stateMachineArn, policy, limit });
  }
  const policies = values.policy
    ? [values.policy]
    : loadConfigFile(values.config)
        .policies.filter((p) => p.enabled)
        .map((p) => p.name);
  const all: ExecutionStatus[] = [];
  for (const policy of policies) {
    all.push(
      ...(await listExecutions(sfn, {
        stateMachineArn: stateMachineArnFor(policy, undefined),
        policy,
        limit,
      })),
    );
  }
  return all.sort((a, b) => (b.startDate ?? '').localeCompare(a.startDate ?? '')).slice(0, limit);
}

async function statusCommand(values: Values): Promise<number> {
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100)
    throw new UsageError('--limit must be a whole number from 1 to 100');
  const executions = stateMachinesConfigured(values['state-machine-arn'])
    ? await recentExecutions(new SFNClient({}), values, limit)
    : undefined;
  const hasDatabase = Boolean(process.env.DATABASE_URL || process.env.PGHOST || process.env.PGDATABASE);
  const ledger = hasDatabase
    ? await withClient(
        await resolveClientConfig({ DATABASE_URL: process.env.DATABASE_URL }),
        async (client) => {
          const { database, present } = await ledgerPresence(client);
          if (!present) return { noLedger: noLedgerMessage(database), runs: undefined };
          return {
            noLedger: undefined,
            runs: await new Ledger(client).listRuns({ policy: values.policy, limit }),
          };
        },
      )
    : undefined;
  const runs = ledger?.runs;
  // A database without a ledger is said plainly; it is an error only when there is nothing else to show.
  if (ledger?.noLedger && !executions) throw new UsageError(ledger.noLedger);
  if (!executions && !runs)
    throw new UsageError(
      'nothing to show: set PG_LIFECYCLE_STATE_MACHINE_PREFIX or --state-machine-arn (AWS) and/or DATABASE_URL (ledger)',
    );
  if (values.json) {
    print(JSON.stringify({ executions, runs, ...(ledger?.noLedger ? { ledger: ledger.noLedger } : {}) }));
    return 0;
  }
  if (ledger?.noLedger) print(ledger.noLedger);
  if (executions) {
    print('Executions');
    for (const e of executions)
      print(`  ${e.startDate ?? ''}  ${e.status.padEnd(10)} ${e.policy ?? '?'}  ${e.name}`);
  }
  if (runs) {
    print('Runs (ledger)');
    for (const r of runs) {
      const error = r.errorName ? `  ${r.errorName}: ${r.errorCause ?? ''}` : '';
      print(
        `  ${r.startedAt}  ${r.status.padEnd(10)} ${r.policy}  ${r.rows} rows, ${r.objects} objects, ${r.bytes} bytes${error}`,
      );
    }
  }
  return 0;
}

/** `unlock`: exit 0 when released (or nothing was held), 1 when refused (holder alive or unprovable). */
async function unlockCli(values: Values): Promise<number> {
  const policy = requirePolicy(values);
  if (!PolicyNameSchema.safeParse(policy).success)
    throw new UsageError(`--policy ${JSON.stringify(policy)} is not a policy name`);
  const reason = values.reason;
  // The reason lands in the ledger and in the run's error: one readable line, every character visible (no
  // controls, line separators, bidirectional overrides or zero-width characters).
  if (reason !== undefined && (reason.trim() === '' || reason.length > 500 || visibleText(reason) !== reason))
    throw new UsageError('--reason must be one line of 1 to 500 printable characters');
  const result = await withClient(
    await resolveClientConfig({ DATABASE_URL: process.env.DATABASE_URL }),
    (client) =>
      unlockCommand(client, {
        policy,
        force: values.force,
        reason,
        osUser: operatorName(),
        sfnFor: (region) => new SFNClient(region ? { region } : {}),
      }),
  );
  const ok = result.outcome === 'released' || result.outcome === 'no-lease';
  if (values.json) print(JSON.stringify(result));
  else if (ok) print(result.message);
  else printError(result.message);
  return ok ? 0 : 1;
}

/** The operator's OS user for the audit trail (userInfo throws for a uid without a passwd entry). */
function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? `uid ${process.getuid?.() ?? '?'}`;
  }
}
