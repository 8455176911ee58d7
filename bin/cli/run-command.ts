/**
 * `run` and `plan`: execute policies locally through the synthesized state machine against DATABASE_URL
 * (or PG*) and S3 from the standard AWS environment.
 */

import { localDependencies, stderrLogger } from '../../functions/local-runner/local-dependencies.ts';
import { type LocalRunResult, runPolicyLocally } from '../../functions/local-runner/local-runner.ts';
import { silentLogger } from '../../functions/run/dependencies.ts';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { UsageError } from './errors.ts';

export interface RunCommandOptions {
  readonly config: LifecycleConfig;
  readonly policy: string;
  readonly bucket: string | undefined;
  readonly dryRun: boolean;
  readonly verbose: boolean;
  readonly signal?: AbortSignal | undefined;
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
  readonly executions: number;
  readonly error?: string | undefined;
  readonly cause?: string | undefined;
}

export async function runCommand(options: RunCommandOptions): Promise<RunReport> {
  const policy = options.config.policies.find((p) => p.name === options.policy);
  if (!policy) {
    throw new UsageError(
      `no policy named "${options.policy}" (known: ${options.config.policies.map((p) => p.name).join(', ')})`,
    );
  }
  if (policy.action === 'archive' && !options.bucket && !options.dryRun) {
    throw new UsageError('archive policies need a bucket: --bucket B or PG_LIFECYCLE_BUCKET');
  }
  const result = await runPolicyLocally({
    config: options.config,
    policyName: options.policy,
    dryRun: options.dryRun,
    signal: options.signal,
    dependencies: localDependencies({
      databaseUrl: process.env.DATABASE_URL,
      bucket: options.bucket,
      log: options.verbose ? stderrLogger : silentLogger,
    }),
  });
  return toReport(result, policy.action);
}

export function toReport(result: LocalRunResult, action: string): RunReport {
  const summary = result.summary;
  return {
    policy: result.input.policy.name,
    action,
    status: result.status,
    runId: summary?.runId ?? result.failure?.runId,
    cutoff: summary?.cutoff,
    rows: summary?.rows ?? 0,
    objects: summary?.objects ?? 0,
    bytes: summary?.bytes ?? 0,
    chunks: summary?.chunks ?? 0,
    orphansRemoved: summary?.orphansRemoved ?? 0,
    durationMs: summary?.durationMs ?? 0,
    eligibleRows: summary?.eligibleRows,
    executions: result.executions,
    error: result.failure?.error,
    cause: result.failure?.cause,
  };
}

export function formatReport(report: RunReport): string {
  if (report.status === 'failed') {
    return `${report.policy}: FAILED ${report.error}: ${report.cause}${report.runId ? ` (run ${report.runId})` : ''}`;
  }
  if (report.status === 'dry_run') {
    return `${report.policy}: dry run, cutoff ${report.cutoff}, ${report.eligibleRows ?? 0} rows eligible (nothing changed)`;
  }
  return (
    `${report.policy}: ${report.action} ${report.status}, ${report.rows} rows in ${report.objects} objects ` +
    `(${report.bytes} bytes, ${report.chunks} chunks, ${report.durationMs} ms), cutoff ${report.cutoff}, run ${report.runId}`
  );
}
