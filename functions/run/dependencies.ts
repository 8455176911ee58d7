/**
 * What the run steps need from the outside world. Handlers wire the real things (pg, S3, Powertools);
 * tests and the local runner may wrap them (fault injection, time budgets).
 */
import type pg from 'pg';
import type { ActionRegistry } from '../actions/registry.ts';
import type { ObjectStore } from '../adapters/archive-store.ts';
import type { MetricDataClient } from '../adapters/cloudwatch-replica-lag.ts';
import type { TableCatalog } from '../adapters/glue-catalog.ts';
import type { LeaseHolderBackend } from '../adapters/ledger/leases.ts';
import type { SessionTimeouts } from '../core/session-timeouts.ts';

/** Structured log sink: one line per event, never row contents. */
export interface StepLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** One committed chunk, as the chunk loop measures it. */
export interface ChunkSample {
  readonly rows: number;
  readonly bytes: number;
  readonly objects: number;
  readonly durationMs: number;
}

/** What the chunk loop records (run-chunks.ts). */
export interface ChunkMetrics {
  recordChunk(sample: ChunkSample): void;
}

/** A run that succeeded, as Finish summarizes it (the ledger's totals). */
export interface RunOutcome {
  readonly durationMs: number;
  readonly rows: number;
  readonly chunks: number;
  readonly bytes: number;
}

/**
 * The run's figures as metrics (names: lib/contracts/run-metrics.ts). The handlers record the run-level ones
 * from their step's result, so the steps themselves only ever call `recordChunk`.
 */
export interface RunMetrics extends ChunkMetrics {
  /** A Chunk step ended: `waitedForReplicaLag` when it stopped before a chunk because a replica lagged. */
  recordChunkStep(step: { readonly waitedForReplicaLag: boolean }): void;
  recordRunSucceeded(run: RunOutcome): void;
  recordRunFailed(): void;
}

/** The policy a step works for: the dimensions `policy` and `action` of everything recorded for it. */
export interface MetricsPolicy {
  readonly name: string;
  readonly action: string;
}

/**
 * Where the steps' metrics go. A Lambda container serves one invocation after another (the local runner, many
 * policies in one process), so the policy is never the container's: a handler binds the metrics to the policy
 * of its input for one invocation (`forPolicy`), hands the bound metrics to its step, and publishes them when
 * the step ends, error or not (functions/commons/observability.ts withPolicyMetrics). Unbound, each record goes
 * out at once, without policy dimensions.
 */
export interface StepMetrics extends RunMetrics {
  forPolicy(policy: MetricsPolicy): BoundStepMetrics;
}

/** Whether the dependencies' metrics can be bound to a policy (else they only receive chunks). */
export function isStepMetrics(metrics: ChunkMetrics | undefined): metrics is StepMetrics {
  return typeof (metrics as Partial<StepMetrics> | undefined)?.forPolicy === 'function';
}

/** Metrics bound to one policy for one invocation. */
export interface BoundStepMetrics extends StepMetrics {
  /** Emits what was recorded (nothing when nothing was) and forgets it. */
  publish(): void;
}

/** Fault-injection points of the chunk loop (each may throw). */
export interface ChunkFaultHooks {
  /** After the action's work (uploads verified), before the ledger rows are written. */
  beforeLedger?(): Promise<void> | void;
  /** After the ledger rows, immediately before COMMIT. */
  beforeCommit?(): Promise<void> | void;
  /** After COMMIT, before the step returns (a crash here loses only the step's return value). */
  afterCommit?(): Promise<void> | void;
  /** After an object upload, before its verification. */
  afterUpload?(key: string): Promise<void> | void;
  /** Subject erasure: an archive object's rewrite is written and verified, its ledger row not yet swapped. */
  beforeRewriteSwap?(oldKey: string): Promise<void> | void;
  /** Subject erasure: the ledger lists the rewritten object, the old key's versions are not deleted yet. */
  afterRewriteSwap?(oldKey: string): Promise<void> | void;
  /** Partition retention: after an archive unit's COMMIT, before its DETACH / DROP (quoted partition name). */
  afterPartitionArchived?(partition: string): Promise<void> | void;
}

export interface StepDependencies {
  /**
   * Opens a new database client; the step ends every client it opens. Every statement on it runs under
   * `timeouts` (the policy's chunking.lockTimeoutMs / statementTimeoutMs).
   * @default DEFAULT_SESSION_TIMEOUTS (core/session-timeouts.ts)
   */
  connect(timeouts?: SessionTimeouts): Promise<pg.Client>;
  /** Archive destination (required by archive policies; checked before anything is deleted). */
  store?: ObjectStore | undefined;
  /** Glue catalog for Athena tables over archive prefixes (AWS only; absent locally). */
  tableCatalog?: TableCatalog | undefined;
  /**
   * Digests of the deployed policies (see lib/contracts/policy-digest.ts). When set, Start refuses any
   * other policy. Unset for local runs, which execute the operator's own config.
   */
  deployedPolicies?: Readonly<Record<string, string>> | undefined;
  now(): Date;
  /** Milliseconds left before the step must return (Lambda timeout minus a safety margin). */
  remainingMs(): number;
  log: StepLogger;
  /**
   * Where the chunk loop records each chunk. A {@link StepMetrics} (CloudWatch EMF in a Lambda) is bound to the
   * run's policy per invocation by the handlers, which then record the run-level figures too; a plain
   * ChunkMetrics (the CLI's progress line) receives the chunks as they are. @default - nothing is recorded
   */
  metrics?: ChunkMetrics | StepMetrics | undefined;
  hooks?: ChunkFaultHooks | undefined;
  /**
   * Reads the replica lag the throttle compares with `maxReplicaLagSeconds` (seconds).
   * @default the largest replay lag in pg_stat_replication, on the step's own connection
   */
  replicaLagSeconds?: (() => Promise<number>) | undefined;
  /**
   * The anonymize hash key (HMAC key of pseudonyms): Secrets Manager in AWS, PG_LIFECYCLE_HASH_KEY locally
   * (functions/commons/hash-key-secret.ts); undefined when none is configured.
   */
  hashKey?: (() => Promise<string | undefined>) | undefined;
  /** CloudWatch, for a throttle that reads replica lag there (`throttle.cloudWatch`). */
  cloudWatch?: MetricDataClient | undefined;
  /**
   * Local runs: the backend of a connection the runner keeps open for the whole run (opened on first call,
   * when Start is about to take the lease), recorded in the lease so that `pg-lifecycle unlock` can prove
   * the run gone once that backend is. Unset in Step Functions, where the holder is the run's execution.
   */
  leaseHolder?: (() => Promise<LeaseHolderBackend>) | undefined;
  /**
   * Backoff between the chunk loop's local retries of a chunk that hit a lock or statement timeout: retry n
   * (from 1) waits n times this (ms). The local runner's `chunkRetryBackoffMs` option sets it (a test passes 0 so
   * as not to sleep). @default 250
   */
  chunkRetryBackoffMs?: number | undefined;
  /**
   * How long (ms) an overlapping chunk loop waits for the next chunk's main statement to be sent before it
   * completes the current chunk (see `ChunkInput.sent`); a test raises it so that the order it checks does not
   * depend on the machine's load. @default 50
   */
  chunkSentWaitMs?: number | undefined;
  /**
   * The action modules the steps run policies with.
   * @default actionModules (functions/actions/registry.ts); the contract tests register a fake action
   */
  actions?: ActionRegistry | undefined;
}

export const silentLogger: StepLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
