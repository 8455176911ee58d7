/**
 * Step dependencies for local runs (CLI, demo, tests): DATABASE_URL or PG* variables, a bucket on
 * whatever S3 the standard AWS environment points at (AWS_ENDPOINT_URL_S3 for a local server).
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import type { ActionRegistry } from '../actions/registry.ts';
import { type ObjectStore, S3ObjectStore } from '../adapters/archive-store.ts';
import type { MetricDataClient } from '../adapters/cloudwatch-replica-lag.ts';
import { AWS_CLIENT_TIMEOUTS } from '../commons/aws-clients.ts';
import { connect, resolveClientConfig } from '../commons/database.ts';
import { createS3Client } from '../commons/s3.ts';
import type { ChunkFaultHooks, StepDependencies, StepLogger } from '../run/dependencies.ts';
import { silentLogger } from '../run/dependencies.ts';

export interface LocalDependencyOptions {
  /** Connection string; libpq PG* variables are used when absent. */
  readonly databaseUrl?: string | undefined;
  readonly ssl?: 'disable' | 'require' | 'verify-full' | undefined;
  readonly bucket?: string | undefined;
  readonly s3?: S3Client | undefined;
  /** Replaces the S3 store (fault injection). */
  readonly store?: ObjectStore | undefined;
  readonly log?: StepLogger | undefined;
  readonly hooks?: ChunkFaultHooks | undefined;
  readonly now?: (() => Date) | undefined;
  /** Replaces the replica-lag reading of the throttle (tests). */
  readonly replicaLagSeconds?: (() => Promise<number>) | undefined;
  /**
   * CloudWatch for `throttle.cloudWatch` (tests hand in their own).
   * @default a CloudWatchClient from the standard AWS environment (region, credentials)
   */
  readonly cloudWatch?: MetricDataClient | undefined;
  /** Digests of "deployed" policies, as the stack sets them for the Start function. */
  readonly deployedPolicies?: Readonly<Record<string, string>> | undefined;
  /**
   * The anonymize hash key.
   * @default PG_LIFECYCLE_HASH_KEY from the environment
   */
  readonly hashKey?: string | undefined;
  /** Replaces the action modules (the contract tests run the generic steps with a fake action). */
  readonly actions?: ActionRegistry | undefined;
}

export function localDependencies(options: LocalDependencyOptions): (context: Context) => StepDependencies {
  const s3 = options.bucket && !options.store ? (options.s3 ?? createS3Client()) : undefined;
  const store = options.store ?? (s3 && options.bucket ? new S3ObjectStore(s3, options.bucket) : undefined);
  return (context) => ({
    // The policy's timeouts, not capped by the step's budget: that is the chunk loop's soft limit, and a local
    // step that overruns its Task timeout (States.Timeout) is not retried beside a still-waiting backend.
    connect: async (timeouts) =>
      connect(
        await resolveClientConfig({ DATABASE_URL: options.databaseUrl, DB_SSL: options.ssl }, timeouts),
      ),
    store,
    deployedPolicies: options.deployedPolicies,
    now: options.now ?? (() => new Date()),
    remainingMs: () => context.getRemainingTimeInMillis(),
    log: options.log ?? silentLogger,
    hooks: options.hooks,
    replicaLagSeconds: options.replicaLagSeconds,
    hashKey: async () => options.hashKey ?? (process.env.PG_LIFECYCLE_HASH_KEY || undefined),
    cloudWatch: options.cloudWatch ?? defaultCloudWatch(),
    actions: options.actions,
  });
}

let sharedCloudWatch: CloudWatchClient | undefined;

/** One client for every step of the process, made on first use (a local run against AWS replicas). */
function defaultCloudWatch(): MetricDataClient {
  return {
    send: (command) => {
      sharedCloudWatch ??= new CloudWatchClient({ ...AWS_CLIENT_TIMEOUTS });
      return sharedCloudWatch.send(command);
    },
  };
}

/** One JSON line per event on stderr, so stdout stays clean for `--json` output. */
export const stderrLogger: StepLogger = {
  info: (message, fields) =>
    process.stderr.write(`${JSON.stringify({ level: 'INFO', message, ...fields })}\n`),
  warn: (message, fields) =>
    process.stderr.write(`${JSON.stringify({ level: 'WARN', message, ...fields })}\n`),
  error: (message, fields) =>
    process.stderr.write(`${JSON.stringify({ level: 'ERROR', message, ...fields })}\n`),
};
