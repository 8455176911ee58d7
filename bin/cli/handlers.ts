/**
 * The actions of validate, schema, run, plan, start, status, verify (archive), unlock and migrate: options in
 * (as commander parsed them, see program.ts), exit code out; results on stdout, problems on stderr.
 */
import { userInfo } from 'node:os';
import { SFNClient } from '@aws-sdk/client-sfn';
import { Ledger, listRanges } from '../../functions/adapters/ledger/index.ts';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { deploymentIssues, loadConfigFile, writeConfigJsonSchema } from '../../lib/config-file.ts';
import { BucketNameSchema, type LifecycleConfig, PolicyNameSchema } from '../../lib/contracts/config.ts';
import { isTimeCutoffPolicy } from '../../lib/contracts/policy.ts';
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
import { checkDatabaseReachable, withDatabase } from './database-target.ts';
import { UsageError } from './errors.ts';
import { checkVerifyTarget, ledgerPresence, noLedgerMessage } from './ledger-checks.ts';
import { type ProgressStream, progressLine } from './progress.ts';
import { checkRunOptions, formatReport, type RunReport, runCommand, wouldRefuse } from './run-command.ts';
import { unlockCommand } from './unlock-command.ts';

export const print = (text: string) => process.stdout.write(`${text}\n`);
export const printError = (text: string) => process.stderr.write(`${text}\n`);

/** The options every command gets: `--config` is the program's, accepted before or after the command. */
export interface GlobalOptions {
  readonly config: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** --bucket or PG_LIFECYCLE_BUCKET, checked like the config's bucketName before any S3 call. */
function bucketOption(bucket: string | undefined): string | undefined {
  const chosen = bucket ?? process.env.PG_LIFECYCLE_BUCKET;
  if (chosen !== undefined && !BucketNameSchema.safeParse(chosen).success) {
    throw new UsageError(`bucket ${JSON.stringify(chosen)} is not a valid S3 bucket name`);
  }
  return chosen;
}

export function requirePolicy(policy: string | undefined): string {
  if (!policy) throw new UsageError('--policy NAME is required');
  return policy;
}

export function validateCommand(options: GlobalOptions): number {
  const config = loadConfigFile(options.config);
  const count = config.policies.length;
  print(`${options.config}: OK (${count} ${count === 1 ? 'policy' : 'policies'})`);
  // A warning, not an error: the same file drives local runs, which need no database in it.
  for (const issue of deploymentIssues(config)) printError(`${options.config}: warning: ${issue}`);
  return 0;
}

export function schemaCommand(options: { readonly out: string }): number {
  writeConfigJsonSchema(options.out);
  print(`wrote ${options.out}`);
  return 0;
}

export interface RunOptions extends GlobalOptions {
  readonly policy?: string | undefined;
  readonly bucket?: string | undefined;
  readonly dryRun?: boolean | undefined;
  readonly force?: boolean | undefined;
  readonly json?: boolean | undefined;
  readonly verbose?: boolean | undefined;
}

/**
 * `run`: one policy through the local state machine. On an interactive stderr (and without --json or
 * --verbose, whose lines would interleave) a live line counts committed chunks as they commit.
 */
export async function runCli(options: RunOptions): Promise<number> {
  return runLocally(loadConfigFile(options.config), options);
}

/**
 * A policy through the local state machine (`run`, `subject process`): its options checked, then the database
 * (once: unreachable is one message), then the run. On an interactive stderr, without --json or --verbose
 * (whose lines would interleave), a live line counts the chunks as they commit.
 */
export async function runLocally(
  config: LifecycleConfig,
  options: Omit<RunOptions, 'config'>,
  progress: ProgressStream = process.stderr,
): Promise<number> {
  const policy = requirePolicy(options.policy);
  const bucket = bucketOption(options.bucket);
  const dryRun = options.dryRun ?? false;
  checkRunOptions({ config, policy, bucket, dryRun });
  await checkDatabaseReachable();
  // Ctrl-C: stop the run cleanly (the open chunk rolls back, the run is recorded, the lease released).
  const interrupt = new AbortController();
  const onSigint = () => {
    if (interrupt.signal.aborted) process.exit(130);
    printError('interrupted: stopping the run (Ctrl-C again to quit at once)…');
    interrupt.abort();
  };
  const line = options.json || options.verbose ? undefined : progressLine(progress, policy);
  const done: { rows: number; chunks: number; bytes: number; eligible?: number } = {
    rows: 0,
    chunks: 0,
    bytes: 0,
  };
  process.on('SIGINT', onSigint);
  try {
    if (line && !dryRun) {
      const eligible = await eligibleRowsOf(config, policy, bucket, options.force ?? false, interrupt.signal);
      if (eligible !== undefined) {
        done.eligible = eligible;
        line.update(done);
      }
    }
    const report = await runCommand({
      config,
      policy,
      bucket,
      dryRun,
      force: options.force ?? false,
      verbose: options.verbose ?? false,
      signal: interrupt.signal,
      ...(line
        ? {
            onChunk: (sample: { rows: number; bytes: number }) => {
              done.rows += sample.rows;
              done.chunks += 1;
              done.bytes += sample.bytes;
              line.update(done);
            },
          }
        : {}),
    });
    line?.end();
    print(options.json ? JSON.stringify(report) : formatReport(report));
    if (interrupt.signal.aborted) return 130;
    return report.status === 'failed' || wouldRefuse(report) ? 1 : 0;
  } finally {
    line?.end();
    process.off('SIGINT', onSigint);
  }
}

/**
 * The plan's count of eligible rows, for the progress line's "done / eligible" and ETA: a dry run first (read
 * only), only on a terminal. Undefined when the action's plan does not count rows, or the dry run would refuse
 * (the real run then says why).
 */
async function eligibleRowsOf(
  config: LifecycleConfig,
  policy: string,
  bucket: string | undefined,
  force: boolean,
  signal: AbortSignal,
): Promise<number | undefined> {
  // Only the time-cutoff source's plan counts the rows a run takes (a backup's are statistics, an import's
  // count skips, a maintain plan counts statements).
  const found = config.policies.find((p) => p.name === policy);
  if (found === undefined || !isTimeCutoffPolicy(found)) return undefined;
  const planned = await runCommand({ config, policy, bucket, dryRun: true, force, verbose: false, signal });
  if (planned.status !== 'dry_run' || wouldRefuse(planned)) return undefined;
  return planned.eligibleRows;
}

export interface PlanOptions extends GlobalOptions {
  readonly policy?: string | undefined;
  readonly force?: boolean | undefined;
  readonly json?: boolean | undefined;
  readonly verbose?: boolean | undefined;
}

/** `plan`: a dry run of one policy or of every policy; exit 1 when a real run would fail or refuse. */
export async function planCommand(options: PlanOptions): Promise<number> {
  const config = loadConfigFile(options.config);
  const names = options.policy ? [options.policy] : config.policies.map((p) => p.name);
  if (names.every((name) => config.policies.some((p) => p.name === name))) await checkDatabaseReachable();
  const reports: RunReport[] = [];
  for (const policy of names) {
    reports.push(
      await runCommand({
        config,
        policy,
        bucket: undefined,
        dryRun: true,
        force: options.force ?? false,
        verbose: options.verbose ?? false,
      }),
    );
  }
  if (options.json) print(JSON.stringify(reports));
  else for (const report of reports) print(formatReport(report));
  // 1 when a real run would fail or refuse: usable as a gate before enabling a schedule.
  return reports.some((r) => r.status === 'failed' || wouldRefuse(r)) ? 1 : 0;
}

export interface StartOptions extends GlobalOptions {
  readonly policy?: string | undefined;
  readonly stateMachineArn?: string | undefined;
  readonly dryRun?: boolean | undefined;
  readonly force?: boolean | undefined;
  readonly json?: boolean | undefined;
}

export async function startCli(options: StartOptions): Promise<number> {
  const config = loadConfigFile(options.config);
  const policy = requirePolicy(options.policy);
  const stateMachineArn = stateMachineArnFor(policy, options.stateMachineArn);
  const started = await startCommand(new SFNClient({}), {
    config,
    policy,
    stateMachineArn,
    dryRun: options.dryRun ?? false,
    force: options.force ?? false,
    now: new Date(),
  });
  print(options.json ? JSON.stringify(started) : `started ${started.name}: ${started.executionArn}`);
  return 0;
}

/** Where `status` looks for executions (the kebab-case key is the option's name on the command line). */
export interface ExecutionsQuery {
  readonly config: string;
  readonly policy?: string | undefined;
  readonly 'state-machine-arn'?: string | undefined;
}

/**
 * Executions of one state machine (`--state-machine-arn`), or of each policy's (the prefix with `--policy`
 * or every enabled policy of the config: a disabled one has no machine), newest first.
 */
export async function recentExecutions(
  sfn: SFNClient,
  query: ExecutionsQuery,
  limit: number,
): Promise<ExecutionStatus[]> {
  const explicit = query['state-machine-arn'];
  if (explicit !== undefined) {
    const stateMachineArn = query.policy
      ? stateMachineArnFor(query.policy, explicit)
      : checkStateMachineArn(explicit);
    const policy = query.policy ?? policyOfStateMachine(stateMachineArn);
    return listExecutions(sfn, { stateMachineArn, policy, limit });
  }
  const policies = query.policy
    ? [query.policy]
    : loadConfigFile(query.config)
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

export interface StatusOptions extends GlobalOptions {
  readonly policy?: string | undefined;
  readonly stateMachineArn?: string | undefined;
  readonly limit: string;
  readonly json?: boolean | undefined;
}

export async function statusCommand(options: StatusOptions): Promise<number> {
  const limit = Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100)
    throw new UsageError('--limit must be a whole number from 1 to 100');
  const query = {
    config: options.config,
    policy: options.policy,
    'state-machine-arn': options.stateMachineArn,
  };
  const executions = stateMachinesConfigured(options.stateMachineArn)
    ? await recentExecutions(new SFNClient({}), query, limit)
    : undefined;
  const hasDatabase = Boolean(process.env.DATABASE_URL || process.env.PGHOST || process.env.PGDATABASE);
  const ledger = hasDatabase
    ? await withDatabase(async (client) => {
        const { database, present } = await ledgerPresence(client);
        if (!present) return { noLedger: noLedgerMessage(database), runs: undefined };
        const listed = await new Ledger(client).listRuns({ policy: options.policy, limit });
        // A parallel run: where each of its workers' ranges stands (a ledger older than sql/017 has none).
        const { rows } = await client.query<{ present: string }>(
          `SELECT (to_regclass('lifecycle.run_ranges') IS NOT NULL)::text AS present`,
        );
        const rangesKept = rows[0]?.present === 'true';
        const withRanges = [];
        for (const run of listed) {
          const ranges = rangesKept ? await listRanges(client, run.runId) : [];
          withRanges.push(ranges.length > 0 ? { ...run, ranges } : run);
        }
        return { noLedger: undefined, runs: withRanges };
      })
    : undefined;
  const runs = ledger?.runs;
  // A database without a ledger is said plainly; it is an error only when there is nothing else to show.
  if (ledger?.noLedger && !executions) throw new UsageError(ledger.noLedger);
  if (!executions && !runs)
    throw new UsageError(
      'nothing to show: set PG_LIFECYCLE_STATE_MACHINE_PREFIX or --state-machine-arn (AWS) and/or DATABASE_URL (ledger)',
    );
  if (options.json) {
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
      const ranges =
        'ranges' in r
          ? `, ranges ${r.ranges.filter((range) => range.done).length}/${r.ranges.length} done`
          : '';
      print(
        `  ${r.startedAt}  ${r.status.padEnd(10)} ${r.policy}  ${r.rows} rows, ${r.objects} objects, ${r.bytes} bytes${ranges}${error}`,
      );
    }
  }
  return 0;
}

export interface VerifyArchiveOptions {
  readonly policy?: string | undefined;
  readonly bucket?: string | undefined;
  readonly run?: string | undefined;
  readonly json?: boolean | undefined;
}

/** `verify --policy P --bucket B [--run ID]`: every ledger-listed object of an archive policy in S3. */
export async function verifyArchiveCommand(options: VerifyArchiveOptions): Promise<number> {
  const bucket = bucketOption(options.bucket);
  if (!bucket) throw new UsageError('verify needs the archive bucket: --bucket B or PG_LIFECYCLE_BUCKET');
  const runId = options.run;
  if (runId !== undefined && !UUID.test(runId))
    throw new UsageError(`--run ${runId} is not a run id (a UUID)`);
  const policy = requirePolicy(options.policy);
  const { verifyArchiveRun } = await import('../local/verify-archive.ts');
  const { createS3Client } = await import('../../functions/commons/s3.ts');
  const s3 = createS3Client();
  try {
    const result = await withDatabase(async (client) => {
      // Verifying nothing must not read as "0 objects … OK": unknown policy or run, or no ledger, is exit 2.
      await checkVerifyTarget(client, { policy, runId });
      return verifyArchiveRun(client, s3, bucket, { policy, runId });
    });
    if (options.json) print(JSON.stringify({ policy, ...result }));
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

export interface UnlockOptions {
  readonly policy?: string | undefined;
  readonly force?: boolean | undefined;
  readonly reason?: string | undefined;
  readonly json?: boolean | undefined;
}

/** `unlock`: exit 0 when released (or nothing was held), 1 when refused (holder alive or unprovable). */
export async function unlockCli(options: UnlockOptions): Promise<number> {
  const policy = requirePolicy(options.policy);
  if (!PolicyNameSchema.safeParse(policy).success)
    throw new UsageError(`--policy ${JSON.stringify(policy)} is not a policy name`);
  const reason = options.reason;
  // The reason lands in the ledger and in the run's error: one readable line, every character visible (no
  // controls, line separators, bidirectional overrides or zero-width characters).
  if (reason !== undefined && (reason.trim() === '' || reason.length > 500 || visibleText(reason) !== reason))
    throw new UsageError('--reason must be one line of 1 to 500 printable characters');
  const result = await withDatabase((client) =>
    unlockCommand(client, {
      policy,
      force: options.force ?? false,
      reason,
      osUser: operatorName(),
      sfnFor: (region) => new SFNClient(region ? { region } : {}),
    }),
  );
  const ok = result.outcome === 'released' || result.outcome === 'no-lease';
  if (options.json) print(JSON.stringify(result));
  else if (ok) print(result.message);
  else printError(result.message);
  return ok ? 0 : 1;
}

export async function migrateCommand(): Promise<number> {
  const applied = await withDatabase(applyMigrations);
  print(applied.length > 0 ? `applied ${applied.join(', ')}` : 'ledger is up to date');
  return 0;
}

/** The operator's OS user for the audit trail (userInfo throws for a uid without a passwd entry). */
function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? `uid ${process.getuid?.() ?? '?'}`;
  }
}
