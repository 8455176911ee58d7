/**
 * `run` and `plan`: execute policies locally through the synthesized state machine against DATABASE_URL
 * (or PG*) and S3 from the standard AWS environment.
 */

import type { Context } from 'aws-lambda';
import { localDependencies, stderrLogger } from '../../functions/local-runner/local-dependencies.ts';
import { type LocalRunResult, runPolicyLocally } from '../../functions/local-runner/local-runner.ts';
import { type ChunkMetrics, type StepDependencies, silentLogger } from '../../functions/run/dependencies.ts';
import { contractOf, type LifecycleConfig } from '../../lib/contracts/config.ts';
import type { RunPlan } from '../../lib/contracts/payloads.ts';
import { UsageError } from './errors.ts';
import { formatBytes } from './format.ts';

export interface RunCommandOptions {
  readonly config: LifecycleConfig;
  readonly policy: string;
  readonly bucket: string | undefined;
  readonly dryRun: boolean;
  /** Run although the chunk query scans the whole table. @default false */
  readonly force?: boolean | undefined;
  readonly verbose: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Called after each chunk commits (the steps' ChunkMetrics port): the CLI's progress line. */
  readonly onChunk?: ChunkMetrics['recordChunk'] | undefined;
}

/** One JSON object per run: the contract of `run --json`. */
export interface RunReport {
  readonly policy: string;
  readonly action: string;
  readonly status: string;
  readonly runId: string | undefined;
  readonly cutoff: string | undefined;
  readonly rows: number;
  readonly objects: number;
  readonly bytes: number;
  readonly chunks: number;
  readonly orphansRemoved: number;
  readonly durationMs: number;
  readonly eligibleRows?: number | undefined;
  /** Dry runs: what a real run would do. */
  readonly plan?: RunPlan | undefined;
  readonly executions: number;
  readonly error?: string | undefined;
  readonly cause?: string | undefined;
  /**
   * Failed and interrupted runs: where rows/objects/bytes/chunks come from. `ledger`: the run's row, i.e.
   * everything its committed chunks archived or purged (those stay done); `unknown`: the ledger could not
   * be read (the numbers are then 0 and `totalsError` says why).
   */
  readonly totalsFrom?: 'ledger' | 'unknown' | undefined;
  readonly totalsError?: string | undefined;
  /** Backups: the backup written (`backups list`, `restore --backup` take this id). */
  readonly backupId?: string | undefined;
  /** Backups: tables and parts written, and how consistent they are with each other. */
  readonly tables?: number | undefined;
  readonly parts?: number | undefined;
  readonly consistency?: 'snapshot' | 'per-part' | undefined;
  readonly manifestKey?: string | undefined;
}

/** The policy to run, or a UsageError (exit 2) for an unknown policy or a missing bucket: before any I/O. */
export function checkRunOptions(
  options: Pick<RunCommandOptions, 'config' | 'policy' | 'bucket' | 'dryRun'>,
): LifecycleConfig['policies'][number] {
  const policy = options.config.policies.find((p) => p.name === options.policy);
  if (!policy) {
    throw new UsageError(
      `no policy named "${options.policy}" (known: ${options.config.policies.map((p) => p.name).join(', ')})`,
    );
  }
  if (contractOf(policy).storage(policy) && !options.bucket && !options.dryRun) {
    throw new UsageError(`${policy.action} policies need a bucket: --bucket B or PG_LIFECYCLE_BUCKET`);
  }
  return policy;
}

export async function runCommand(options: RunCommandOptions): Promise<RunReport> {
  const policy = checkRunOptions(options);
  const result = await runPolicyLocally({
    config: options.config,
    policyName: options.policy,
    dryRun: options.dryRun,
    force: options.force ?? false,
    signal: options.signal,
    dependencies: withChunkMetrics(
      localDependencies({
        databaseUrl: process.env.DATABASE_URL,
        bucket: options.bucket,
        log: options.verbose ? stderrLogger : silentLogger,
      }),
      options.onChunk,
    ),
  });
  return toReport(result, policy.action);
}

/** The steps' dependencies with `recordChunk` as their metrics port (the same samples a Lambda publishes). */
function withChunkMetrics(
  dependencies: (context: Context) => StepDependencies,
  recordChunk: ChunkMetrics['recordChunk'] | undefined,
): (context: Context) => StepDependencies {
  if (!recordChunk) return dependencies;
  return (context) => ({ ...dependencies(context), metrics: { recordChunk } });
}

export function toReport(result: LocalRunResult, action: string): RunReport {
  const summary = result.summary;
  // A failed run has no summary: what its committed chunks did is in the ledger, and stays done.
  const totals = summary ?? result.ledgerRun;
  const failedRun = result.status === 'failed' && result.failure?.runId !== undefined;
  return {
    policy: result.input.policy.name,
    action,
    status: result.status,
    runId: totals?.runId ?? result.failure?.runId,
    cutoff: totals?.cutoff,
    rows: totals?.rows ?? 0,
    objects: totals?.objects ?? 0,
    bytes: totals?.bytes ?? 0,
    chunks: totals?.chunks ?? 0,
    orphansRemoved: totals?.orphansRemoved ?? 0,
    durationMs: totals?.durationMs ?? 0,
    eligibleRows: summary?.eligibleRows,
    plan: summary?.plan,
    executions: result.executions,
    error: result.failure?.error,
    cause: result.failure?.cause,
    ...(summary?.backup
      ? {
          backupId: summary.backup.backupId,
          tables: summary.backup.tables,
          parts: summary.backup.parts,
          consistency: summary.backup.consistency,
          manifestKey: summary.backup.manifestKey,
        }
      : {}),
    ...(failedRun
      ? result.ledgerRun
        ? { totalsFrom: 'ledger' as const }
        : { totalsFrom: 'unknown' as const, totalsError: result.ledgerError }
      : {}),
  };
}

export function formatReport(report: RunReport): string {
  if (report.status === 'failed') {
    const headline = `${report.policy}: FAILED ${report.error}: ${report.cause}${report.runId ? ` (run ${report.runId})` : ''}`;
    if (report.totalsFrom === 'unknown')
      return `${headline}\n  committed before the failure: unknown (${report.totalsError ?? 'ledger not readable'})`;
    if (report.totalsFrom !== 'ledger') return headline;
    return (
      `${headline}\n  committed before the failure (kept): ${report.rows} rows in ${report.objects} objects ` +
      `(${report.bytes} bytes, ${report.chunks} chunks)`
    );
  }
  if (report.status === 'dry_run') {
    const headline = report.plan?.tables
      ? `${report.policy}: dry run, backup of ${report.plan.tables.length} tables (nothing written)`
      : report.plan?.import
        ? `${report.policy}: dry run, import of ${report.plan.import.sourceRows} source rows (rolled back: nothing written)`
        : report.plan?.maintenance
          ? `${report.policy}: dry run, maintenance: ${report.plan.eligibleRows} statements due (nothing changed)`
          : `${report.policy}: dry run, cutoff ${report.cutoff}, ${report.eligibleRows ?? 0} rows eligible (nothing changed)`;
    return report.plan ? `${headline}\n${formatPlan(report.plan)}` : headline;
  }
  if (report.backupId !== undefined) {
    return (
      `${report.policy}: backup ${report.backupId} ${report.status}, ${report.tables} tables, ${report.rows} rows in ` +
      `${report.parts} parts (${formatBytes(report.bytes)}, ${report.consistency}, ${report.durationMs} ms), run ${report.runId}`
    );
  }
  return (
    `${report.policy}: ${report.action} ${report.status}, ${report.rows} rows in ${report.objects} objects ` +
    `(${report.bytes} bytes, ${report.chunks} chunks, ${report.durationMs} ms), cutoff ${report.cutoff}, run ${report.runId}`
  );
}

/** A dry run whose plan lists a refusal: the real run would stop before changing anything. */
export function wouldRefuse(report: RunReport): boolean {
  return (report.plan?.refusals.length ?? 0) > 0;
}

const EXPLAIN_LINES_SHOWN = 12;

/** The plan under a dry run's headline, indented, one fact per line. */
export function formatPlan(plan: RunPlan): string {
  if (plan.tables) return formatBackupPlan(plan, plan.tables);
  if (plan.import) return formatImportPlan(plan, plan.import);
  if (plan.maintenance) return formatMaintainPlan(plan, plan.maintenance);
  const lines = [
    `  eligible      ${plan.eligibleRows} rows, about ${formatBytes(plan.estimatedBytes)}, oldest ${plan.oldest ?? '-'}`,
  ];
  if (plan.foreignKeys.length === 0) lines.push('  referenced by none');
  for (const fk of plan.foreignKeys) {
    const rows =
      fk.referencingRows === undefined ? 'rows not counted (timeout)' : `${fk.referencingRows} rows`;
    const child = fk.childPolicy ? `, purged first by ${fk.childPolicy}` : '';
    lines.push(
      `  referenced by ${fk.table} (${fk.constraint}, ON DELETE ${fk.onDelete.toUpperCase()}): ${rows}${child}`,
    );
  }
  if (plan.partitions.length > 0) {
    const first = plan.partitions[0];
    const last = plan.partitions[plan.partitions.length - 1];
    lines.push(
      `  partitions    ${plan.partitions.length} retired as units (${first?.name} … ${last?.name}, ${first?.from} → ${last?.to})`,
    );
  }
  if (plan.ranges && plan.ranges.length > 0) {
    const bounds = plan.ranges.map((range) => range.from ?? 'the oldest row');
    lines.push(
      `  workers       ${plan.ranges.length} ranges, from ${bounds.join(', ')} (each to the next; the last to the cutoff)`,
    );
  }
  for (const mask of plan.masks ?? []) {
    const preview = mask.examples.map((e) => `${e.before ?? 'NULL'} → ${e.after ?? 'NULL'}`).join('; ');
    lines.push(
      `  masks         ${mask.column} (${mask.type}${mask.indexed ? ', indexed' : ''}): ${mask.strategy}, e.g. ${preview}`,
    );
  }
  if (plan.estimatedWalBytes !== undefined)
    lines.push(`  WAL           up to about ${formatBytes(plan.estimatedWalBytes)} (rough upper bound)`);
  lines.push(`  chunk query plan${plan.fullTableScan ? ' (scans the whole table)' : ''}`);
  // A partitioned table's plan lists every partition: show the top of it; --json has all of it.
  const shown =
    plan.explain.length > EXPLAIN_LINES_SHOWN ? plan.explain.slice(0, EXPLAIN_LINES_SHOWN) : plan.explain;
  for (const line of shown) lines.push(`    ${line}`);
  if (shown.length < plan.explain.length) {
    lines.push(`    … ${plan.explain.length - shown.length} more lines (--json prints the whole plan)`);
  }
  for (const warning of plan.warnings) lines.push(`  WARNING ${warning}`);
  for (const refusal of plan.refusals)
    lines.push(`  A RUN WOULD REFUSE: ${refusal.error}: ${refusal.message}`);
  return lines.join('\n');
}

/** A backup's dry run: each table with its estimates and parts, then what the backup would not hold. */
function formatBackupPlan(plan: RunPlan, tables: NonNullable<RunPlan['tables']>): string {
  const lines = [
    `  tables        ${tables.length}, about ${plan.eligibleRows} rows, ${formatBytes(plan.estimatedBytes)} on disk (statistics, not counted)`,
  ];
  for (const t of tables) {
    const split =
      t.method === 'key' ? 'key ranges' : t.method === 'blocks' ? 'heap block ranges' : 'one part';
    lines.push(
      `    ${t.table}: about ${t.estimatedRows} rows, ${formatBytes(t.estimatedBytes)}, ~${t.estimatedParts} parts by ${split}`,
    );
  }
  for (const item of plan.notIncluded ?? []) lines.push(`  not included  ${item}`);
  for (const warning of plan.warnings) lines.push(`  WARNING ${warning}`);
  for (const refusal of plan.refusals)
    lines.push(`  A RUN WOULD REFUSE: ${refusal.error}: ${refusal.message}`);
  return lines.join('\n');
}

/** An import's dry run: what the validated rows would become, each refusal reason with a few source keys. */
function formatImportPlan(plan: RunPlan, found: NonNullable<RunPlan['import']>): string {
  const lines = [
    `  source        ${found.source}: ${found.sourceRows} rows, ${found.validatedRows} validated`,
    `  target        ${found.target}`,
    `  would import  ${found.valid} rows; already there ${found.alreadyImported}; refused ${found.invalid}`,
  ];
  for (const reason of found.reasons) {
    const keys = reason.sampleKeys.map((key) => `(${key.join(', ')})`).join(' ');
    lines.push(`  refused       ${reason.rows} × ${reason.reason}; e.g. source keys ${keys}`);
  }
  for (const warning of plan.warnings) lines.push(`  WARNING ${warning}`);
  for (const refusal of plan.refusals)
    lines.push(`  A RUN WOULD REFUSE: ${refusal.error}: ${refusal.message}`);
  return lines.join('\n');
}

/** A maintain dry run: each table and index with its figures, what a run would do now and why. */
function formatMaintainPlan(plan: RunPlan, items: NonNullable<RunPlan['maintenance']>): string {
  const lines = [
    `  statements    ${plan.eligibleRows} due, about ${formatBytes(plan.estimatedBytes)} of bloat to reclaim`,
  ];
  for (const item of items) {
    const what = item.statement === 'none' ? 'nothing' : item.statement.toUpperCase();
    const bloat =
      item.bloatPercent === undefined
        ? ''
        : `, ${item.bloatPercent.toFixed(1)} % bloat (${item.method ?? 'estimate'})`;
    lines.push(
      `  ${what.padEnd(13)} ${item.table}${item.index ? ` index ${item.index}` : ''}: ${formatBytes(item.sizeBytes)}${bloat}: ${item.reason}`,
    );
  }
  for (const warning of plan.warnings) lines.push(`  WARNING ${warning}`);
  for (const refusal of plan.refusals)
    lines.push(`  A RUN WOULD REFUSE: ${refusal.error}: ${refusal.message}`);
  return lines.join('\n');
}
