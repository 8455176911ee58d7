/** Chunk sizing, transaction bounds and the replica-lag throttle: schemas, defaults and their merge. */
import { z } from 'zod';
import type { LifecycleConfig, Policy } from './config.ts';

const chunkingFields = {
  /** Rows in the first chunk; later chunks adapt towards `targetTransactionMs`. */
  initialRows: z.int().min(1).max(1_000_000),
  minRows: z.int().min(1).max(1_000_000),
  maxRows: z.int().min(1).max(1_000_000),
  /** Target duration of one chunk transaction (lock held from DELETE to COMMIT). */
  targetTransactionMs: z.int().min(50).max(60_000),
  lockTimeoutMs: z.int().min(10).max(60_000),
  statementTimeoutMs: z.int().min(100).max(600_000),
  /** Pause between chunk batches (a Wait state: no transaction or connection is held). */
  pauseSeconds: z.int().min(0).max(3600),
  /**
   * Pacing, as pt-archiver's `--sleep-coef`: after each chunk the step rests this many times the chunk's own
   * time (its preparation, transaction and upload) before the next, with no transaction open, so each worker
   * keeps the database busy at most 1 ÷ (1 + coefficient) of its wall time. 0 (the default) runs chunks back to
   * back (an archive overlaps each chunk's upload with the next one's DELETE); above 0 chunks run one after
   * another; partition units rest between them too. Rests of 10 s or more, and those the step has no time left
   * for, are the Pause state’s wait.
   */
  sleepCoefficient: z
    .number()
    .min(0)
    .max(10)
    .refine((c) => c <= 0 || c >= 0.1, {
      message:
        'must be 0 (no pacing) or from 0.1 to 10: a smaller rest is a few ms and only ends the overlap',
    }),
  /**
   * Upper bound of one chunk's row data held in memory (the archive: the bytes COPY binary sends for its rows;
   * the first chunk is sized from a sample of the rows' text): rows with large values (jsonb, bytea, long
   * text) get fewer rows per chunk, whatever the row counts say.
   */
  maxChunkBytes: z
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024),
};

/** An RDS DB instance identifier: 1-63 letters, digits and hyphens, starting with a letter. */
const DbInstanceIdentifierSchema = z
  .string()
  .regex(
    /^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$/,
    'must be an RDS DB instance identifier (letters, digits, single hyphens; starts with a letter)',
  );

/**
 * Where the lag comes from instead of `pg_stat_replication`: the CloudWatch metric of each listed replica
 * (the largest of their latest one-minute maxima). `ReplicaLag` (seconds) for RDS read replicas,
 * `AuroraReplicaLag` (milliseconds, converted) for Aurora replicas, which pg_stat_replication does not list.
 */
export const CloudWatchLagSchema = z
  .object({
    metric: z.enum(['ReplicaLag', 'AuroraReplicaLag']).default('ReplicaLag'),
    dbInstanceIdentifiers: z.array(DbInstanceIdentifierSchema).min(1).max(20),
  })
  .strict();

/**
 * Replica-lag guard: before each chunk the chunk step reads the largest replay lag in `pg_stat_replication`
 * (or, with `cloudWatch`, the replicas' CloudWatch lag metric); above the limit it starts no chunk and the
 * state machine waits `checkEverySeconds` before checking again. Reading other sessions' lag in
 * pg_stat_replication needs `pg_monitor` (or `pg_read_all_stats`): Start refuses a run without it (the lag
 * would read as 0).
 */
export const ThrottleSchema = z
  .object({
    /** Largest replica replay lag (seconds) at which chunks still run; omit to turn the guard off. */
    maxReplicaLagSeconds: z.number().positive().max(86_400).optional(),
    /** Wait between lag checks while a replica is behind. */
    checkEverySeconds: z.int().min(1).max(3600).optional(),
    /** Read the lag from CloudWatch (RDS ReplicaLag / AuroraReplicaLag) instead of pg_stat_replication. */
    cloudWatch: CloudWatchLagSchema.optional(),
    /**
     * `defaults.throttle` only (one cap per database; a policy's own is a config error): at most this many
     * Chunk steps of every run (all the workers of parallel runs included) work against the database at once; a
     * step that finds them all taken runs no chunk and the state machine waits `checkEverySeconds`. Counted with
     * session advisory locks (one per step), so it holds across policies, workers and deployments sharing the
     * database and the same value.
     */
    maxConcurrentSteps: z.int().min(1).max(1000).optional(),
  })
  .strict();

/** The database-wide cap on concurrent Chunk steps a run applies (from `defaults.throttle.maxConcurrentSteps`). */
export const StepSlotsSchema = z
  .object({ max: z.int().min(1).max(1000), checkEverySeconds: z.int().min(1).max(3600) })
  .strict();

/** The guard a run applies: present only when `maxReplicaLagSeconds` is set. */
export const ResolvedThrottleSchema = z
  .object({
    maxReplicaLagSeconds: z.number().positive(),
    checkEverySeconds: z.int().min(1).max(3600),
    cloudWatch: CloudWatchLagSchema.optional(),
  })
  .strict();

/** Per-policy or `defaults` overrides: every field optional, no defaults (they are merged in resolveChunking). */
export const ChunkingOverridesSchema = z.object(chunkingFields).partial().strict();

/** Resolved chunking and transaction bounds, with the built-in defaults. */
export const ChunkingSchema = z
  .object({
    initialRows: chunkingFields.initialRows.default(10_000),
    minRows: chunkingFields.minRows.default(500),
    maxRows: chunkingFields.maxRows.default(50_000),
    targetTransactionMs: chunkingFields.targetTransactionMs.default(2_000),
    lockTimeoutMs: chunkingFields.lockTimeoutMs.default(2_000),
    statementTimeoutMs: chunkingFields.statementTimeoutMs.default(60_000),
    pauseSeconds: chunkingFields.pauseSeconds.default(0),
    sleepCoefficient: chunkingFields.sleepCoefficient.default(0),
    maxChunkBytes: chunkingFields.maxChunkBytes.default(64 * 1024 * 1024),
    /** Resolved from `throttle` (policy over defaults); absent when no replica-lag limit is set. */
    throttle: ResolvedThrottleSchema.optional(),
    /** Resolved from `defaults.throttle.maxConcurrentSteps` (the policy's checkEverySeconds); absent when not set. */
    stepSlots: StepSlotsSchema.optional(),
  })
  .strict();

export type Chunking = z.output<typeof ChunkingSchema>;
export type Throttle = z.output<typeof ResolvedThrottleSchema>;
export type CloudWatchLag = z.output<typeof CloudWatchLagSchema>;

/**
 * Built-in chunking that differs by action. A purge transaction holds only row locks on old rows and ends
 * at COMMIT (nothing waits on S3), so it is kept short (≤ 250 ms) and its row count is bounded by that
 * target rather than by memory; an archive chunk holds its rows in memory while it uploads them.
 */
export const ACTION_CHUNKING_DEFAULTS: Readonly<Record<Policy['action'], Partial<Chunking>>> = {
  archive: {},
  purge: { targetTransactionMs: 250, maxRows: 500_000 },
  // A backup's chunk is a batch of parts read outside the chunk transaction: the row sizing does not apply.
  backup: {},
  // An anonymize chunk, like a purge's, holds row locks and nothing outside the database: short transactions.
  // Each row rewrites every index entry when a masked column is indexed, hence fewer rows than a purge.
  // The first chunk starts small (at ~30 µs a row, 10 000 rows pass 250 ms before sizing has a measure).
  anonymize: { targetTransactionMs: 250, maxRows: 100_000, initialRows: 2_000 },
  // One request per chunk: the row sizing does not apply.
  subjects: {},
  // Inserts into the target; the defaults' sizing (targetTransactionMs) bounds each transaction.
  import: {},
  // One maintenance statement per chunk, run before the chunk transaction: the row sizing does not apply.
  // REINDEX CONCURRENTLY waits (under lock_timeout) for every older transaction of the database to end, and
  // its table lock (SHARE UPDATE EXCLUSIVE) queues ahead of no reader or writer: 2 s would fail it on any
  // database with a longer transaction, where 30 s holds up only other DDL and maintenance meanwhile.
  maintain: { lockTimeoutMs: 30_000 },
};

type ChunkingField = 'initialRows' | 'minRows' | 'maxRows' | 'targetTransactionMs' | 'statementTimeoutMs';

/**
 * The one merge: built-in defaults (per action, then common), then `defaults.chunking`, then the policy's
 * own; undefined when the merged values break the schema (the overrides' own schema reports that).
 */
function mergeChunking(config: Pick<LifecycleConfig, 'defaults'>, policy: Policy): Chunking | undefined {
  const merged = ChunkingSchema.safeParse({
    ...ACTION_CHUNKING_DEFAULTS[policy.action],
    ...config.defaults.chunking,
    ...policy.chunking,
  });
  return merged.success ? merged.data : undefined;
}

/** What a run could not honour in merged chunking, each value named with where it came from. */
function mergedChunkingProblems(
  config: Pick<LifecycleConfig, 'defaults'>,
  policy: Policy,
  chunking: Chunking,
): string[] {
  const builtIn = `the built-in ${policy.action} default`;
  const source = (field: ChunkingField) =>
    policy.chunking?.[field] !== undefined
      ? 'this policy'
      : config.defaults.chunking?.[field] !== undefined
        ? 'defaults.chunking'
        : builtIn;
  const value = (field: ChunkingField) => `${field} ${chunking[field]} (${source(field)})`;
  const problems: string[] = [];
  if (chunking.minRows > chunking.maxRows) {
    problems.push(`${value('minRows')} is larger than ${value('maxRows')}`);
  } else if (
    source('initialRows') !== builtIn &&
    (chunking.initialRows < chunking.minRows || chunking.initialRows > chunking.maxRows)
  ) {
    // Runs would silently start at the nearest bound instead.
    problems.push(`${value('initialRows')} lies outside ${value('minRows')} to ${value('maxRows')}`);
  }
  if (chunking.targetTransactionMs >= chunking.statementTimeoutMs) {
    // Chunks sized for the target would be cancelled by the statement timeout, over and over.
    problems.push(`${value('targetTransactionMs')} must be below ${value('statementTimeoutMs')}`);
  }
  return problems;
}

/**
 * The chunking a policy runs with: built-in defaults (per action, then common), then `defaults.chunking`,
 * then the policy's own.
 *
 * @throws Error for chunking a validated config cannot have ({@link chunkingProblems})
 */
export function resolveChunking(config: Pick<LifecycleConfig, 'defaults'>, policy: Policy): Chunking {
  const merged = mergeChunking(config, policy);
  const problems = merged ? mergedChunkingProblems(config, policy, merged) : ['does not match its schema'];
  if (!merged || problems.length > 0)
    throw new Error(`policy ${policy.name}: chunking: ${problems.join('; ')}`);
  const throttle = resolveThrottle(config.defaults.throttle, policy.throttle);
  const maxSteps = config.defaults.throttle?.maxConcurrentSteps;
  const checkEverySeconds =
    policy.throttle?.checkEverySeconds ??
    config.defaults.throttle?.checkEverySeconds ??
    DEFAULT_THROTTLE_CHECK_EVERY_SECONDS;
  return {
    ...merged,
    initialRows: Math.min(Math.max(merged.initialRows, merged.minRows), merged.maxRows),
    ...(throttle ? { throttle } : {}),
    ...(maxSteps === undefined ? {} : { stepSlots: { max: maxSteps, checkEverySeconds } }),
  };
}

/**
 * Chunking a run could not honour, after merging built-in defaults, `defaults.chunking` and the policy's
 * own (each named in the message, since the contradiction may span two of them).
 */
export function chunkingProblems(config: Pick<LifecycleConfig, 'defaults'>, policy: Policy): string[] {
  const merged = mergeChunking(config, policy);
  return merged ? mergedChunkingProblems(config, policy, merged) : [];
}

/** Default seconds between replica-lag checks while a replica is behind. */
export const DEFAULT_THROTTLE_CHECK_EVERY_SECONDS = 30;

/** The policy's `throttle` over `defaults.throttle`, field by field; undefined when no lag limit is set. */
export function resolveThrottle(
  defaults: z.output<typeof ThrottleSchema> | undefined,
  policy: z.output<typeof ThrottleSchema> | undefined,
): Throttle | undefined {
  const maxReplicaLagSeconds = policy?.maxReplicaLagSeconds ?? defaults?.maxReplicaLagSeconds;
  if (maxReplicaLagSeconds === undefined) return undefined;
  const cloudWatch = policy?.cloudWatch ?? defaults?.cloudWatch;
  return {
    maxReplicaLagSeconds,
    checkEverySeconds:
      policy?.checkEverySeconds ?? defaults?.checkEverySeconds ?? DEFAULT_THROTTLE_CHECK_EVERY_SECONDS,
    ...(cloudWatch ? { cloudWatch } : {}),
  };
}
