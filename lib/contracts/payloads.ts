/**
 * State-machine payloads: one zod schema per payload. The CDK definition uses the field names
 * (JSONPath), the Lambdas parse what comes in and what goes out, so a drift fails loudly.
 *
 * Lambda tasks are invoked with `payloadResponseOnly`, so no `Payload` wrapper ever appears here.
 */
import { z } from 'zod';
import { MaintenancePlanItemSchema } from '../../functions/actions/maintain/plan-schema.ts';
import { ChunkingSchema, PolicySchema } from './config.ts';
import { MAX_PARALLELISM } from './policy-base.ts';
import { RdsSnapshotProgressSchema } from './rds-snapshot-payloads.ts';
import { StoredWorkCursorSchema } from './work-cursor.ts';
import { WorkRangeSchema } from './work-range.ts';

export const TriggerSchema = z.enum(['schedule', 'manual', 'local']);

/** What a schedule, `pg-lifecycle start` and `pg-lifecycle run` send to StartExecution. */
export const ExecutionInputSchema = z
  .object({
    policy: PolicySchema,
    chunking: ChunkingSchema,
    trigger: TriggerSchema,
    dryRun: z.boolean().default(false),
    /**
     * Run although the chunk query would scan the whole table (`pg-lifecycle run --force`). Schedules never
     * set it; a continuation does not need it (the check happens once, when the run starts).
     */
    force: z.boolean().optional(),
    /**
     * Purge only: the policy's `children` resolved from the config to their tables, so the start step can
     * check that every referencing table is covered by a child policy (it never sees other policies).
     */
    children: z.array(z.object({ name: z.string(), table: z.string() }).strict()).optional(),
    /** Set when a run continues in a new execution (history bound); the lease is already held. */
    continuation: z
      .object({
        runId: z.uuid(),
        cutoff: z.string(),
        cursor: StoredWorkCursorSchema.nullable(),
        batchRows: z.int().positive(),
        generation: z.int().min(1),
      })
      .optional(),
  })
  .strict();

/** A table that references the planned one, and what deleting the eligible rows does to it. */
export const PlanForeignKeySchema = z.object({
  /** Quoted "schema"."table". */
  table: z.string(),
  constraint: z.string(),
  onDelete: z.enum(['no action', 'restrict', 'cascade', 'set null', 'set default']),
  /** Referencing rows whose parent is eligible now (absent when counting timed out). */
  referencingRows: z.int().min(0).optional(),
  /** NO ACTION / RESTRICT references: the child policy that purges that table first, if any. */
  childPolicy: z.string().optional(),
});

/** What a run would do now, read-only: `pg-lifecycle plan` and `run --dry-run`. */
export const RunPlanSchema = z.object({
  cutoff: z.string(),
  eligibleRows: z.int().min(0),
  /** eligibleRows × the average stored size of a sample of eligible rows (pg_column_size), heap only. */
  estimatedBytes: z.int().min(0),
  /** Time of the oldest eligible row (text, as the server prints it), null when none is eligible. */
  oldest: z.string().nullable(),
  foreignKeys: z.array(PlanForeignKeySchema),
  /** EXPLAIN of the chunk query, one line per element. */
  explain: z.array(z.string()),
  /** The chunk query reads the whole table: a Seq Scan and no index leading with the time column. */
  fullTableScan: z.boolean(),
  /** Partitions wholly before the cutoff that a run would retire as units (archive, then detach + drop). */
  partitions: z.array(z.object({ name: z.string(), from: z.string(), to: z.string() })).default([]),
  /** Things to look at before running; each one line. */
  warnings: z.array(z.string()),
  /**
   * A parallel policy: the time ranges a run started now would give its workers (from a sample of the
   * eligible rows; range 0 also retires the partitions listed above).
   */
  ranges: z.array(WorkRangeSchema).optional(),
  /** Backup: each table, with the statistics' row and byte estimates and how it splits into parts. */
  tables: z
    .array(
      z.object({
        table: z.string(),
        estimatedRows: z.int().min(0),
        estimatedBytes: z.int().min(0),
        method: z.enum(['key', 'blocks', 'whole']),
        estimatedParts: z.int().min(1),
      }),
    )
    .optional(),
  /**
   * Anonymize: per masked column its strategy and a before → after preview on synthetic values of the
   * column's type (never the table's rows).
   */
  masks: z
    .array(
      z.object({
        column: z.string(),
        type: z.string(),
        strategy: z.string(),
        indexed: z.boolean(),
        examples: z.array(z.object({ before: z.string().nullable(), after: z.string().nullable() })),
      }),
    )
    .optional(),
  /** Anonymize: a rough upper bound of the WAL the run would write (heap rows, index entries, page images). */
  estimatedWalBytes: z.int().min(0).optional(),
  /** Backup: what the backup would not hold (triggers, grants, large objects…), one line each. */
  notIncluded: z.array(z.string()).optional(),
  /** Named errors a real run started the same way would stop with, before changing anything. */
  refusals: z.array(z.object({ error: z.string(), message: z.string() })),
  /** Maintain: per table and index, its figures and what a run would do now (and why). */
  maintenance: z.array(MaintenancePlanItemSchema).optional(),
  /**
   * Import: source rows, and of those validated by inserting them in a rolled-back transaction, how many
   * would be imported, skipped (already in the target) and refused, by reason with a few source keys.
   */
  import: z
    .object({
      source: z.string(),
      target: z.string(),
      sourceRows: z.int().min(0),
      validatedRows: z.int().min(0),
      valid: z.int().min(0),
      alreadyImported: z.int().min(0),
      invalid: z.int().min(0),
      reasons: z.array(
        z.object({ reason: z.string(), rows: z.int().min(1), sampleKeys: z.array(z.array(z.string())) }),
      ),
    })
    .optional(),
});

export const TotalsSchema = z.object({
  rows: z.int().min(0),
  objects: z.int().min(0),
  bytes: z.int().min(0),
  chunks: z.int().min(0),
});

/** What a backup run wrote (`run --json`): its id, manifest, tables and parts. */
export const BackupRunSummarySchema = z.object({
  backupId: z.string(),
  manifestKey: z.string(),
  tables: z.int().min(0),
  parts: z.int().min(0),
  consistency: z.enum(['snapshot', 'per-part']),
});

/** Passed from step to step; small by design (no rows, no per-object lists). */
export const RunStateSchema = z
  .object({
    runId: z.uuid(),
    /** What started the run; a continuation keeps it. */
    trigger: TriggerSchema.default('schedule'),
    policy: PolicySchema,
    chunking: ChunkingSchema,
    dryRun: z.boolean(),
    /** Fixed at the start of the run: ISO-8601 UTC with microseconds. */
    cutoff: z.string(),
    /** Where the run stands in its work source after the last chunk (see work-cursor.ts). */
    cursor: StoredWorkCursorSchema.nullable(),
    /** Next chunk size; adapts towards `chunking.targetTransactionMs`. */
    batchRows: z.int().positive(),
    done: z.boolean(),
    /** Chunk-step invocations in this execution; past a bound the run continues as a new execution. */
    iterations: z.int().min(0),
    /** How many executions this run has spanned. */
    generation: z.int().min(1),
    /** Counts done by this execution's invocations so far (the ledger holds the authoritative run totals). */
    totals: TotalsSchema,
    /** When this execution's Start ran (ISO); the chunk step continues as new once it is old. */
    executionStartedAt: z.string().optional(),
    /** Set by the chunk step when this execution nears its time limit: MoreWork continues as new. */
    continueNow: z.boolean().default(false),
    /** Dry runs only: rows eligible now. */
    eligibleRows: z.int().min(0).optional(),
    /** Dry runs only: the plan. */
    plan: RunPlanSchema.optional(),
    /**
     * Seconds the Pause state waits before the next Chunk step (set by every Chunk step): the larger of
     * `pauseSeconds` and a pacing rest the step left to it (`sleepCoefficient`), or the throttle's
     * `checkEverySeconds` while a replica lags.
     */
    waitSeconds: z.int().min(0).optional(),
    /** Set by a Chunk step that ran no chunk because a replica lagged (seconds, at the last check). */
    replicaLagSeconds: z.number().min(0).optional(),
    /**
     * A parallel run (`parallelism` > 1): its work ranges, as Start fixed them in lifecycle.run_ranges; the
     * Workers map runs one chunk loop per range. Empty for a dry run: its map runs no worker (the plan lists the
     * ranges a real run would get).
     */
    ranges: z
      .array(WorkRangeSchema)
      .max(MAX_PARALLELISM + 1)
      .optional(),
    /** A worker of a parallel run: the range its chunk loop works through (cursor in lifecycle.run_ranges). */
    range: WorkRangeSchema.optional(),
    /** A parallel run: its workers' steps so far, at the last gather (a map that ran none is an error). */
    rangeSteps: z.int().min(0).optional(),
  })
  .strict();

/**
 * The Catch of any step adds the error under `$.error` to that step's input: a RunState after Start,
 * the ExecutionInput when Start itself failed (then there is no runId yet).
 */
export const FailureInputSchema = z.looseObject({
  runId: z.uuid().optional(),
  policy: z.looseObject({ name: z.string(), action: z.string() }),
  dryRun: z.boolean().optional(),
  error: z.object({ Error: z.string(), Cause: z.string().optional() }),
});

/** Post-purge VACUUM (ANALYZE), as recorded in `lifecycle.runs.maintenance`. */
export const MaintenanceSchema = z.object({
  vacuumed: z.boolean(),
  /**
   * Why it ran or not: below-threshold, disabled, no-rows, done, timed-out, failed, or yielded (cancelled for
   * a session that waited for a lock on the table, as autovacuum would be).
   */
  reason: z.enum(['below-threshold', 'disabled', 'no-rows', 'done', 'timed-out', 'failed', 'yielded']),
  rowsDeleted: z.int().min(0),
  /** Estimated live rows when the run started (n_live_tup, else reltuples). */
  rowsBefore: z.int().min(0),
  afterFraction: z.number(),
  timeoutMs: z.int().min(0),
  durationMs: z.int().min(0),
  deadTuplesBefore: z.int().min(0),
  deadTuplesAfter: z.int().min(0),
  /** Heap bytes on disk before and after (VACUUM returns only trailing empty pages to the OS). */
  heapBytesBefore: z.int().min(0).optional(),
  heapBytesAfter: z.int().min(0).optional(),
  /**
   * Estimated heap bytes not holding live rows (dead tuples and free space), from pg_stats row widths;
   * absent without statistics. After a VACUUM this space is reusable, not returned: pg_repack or
   * VACUUM FULL would shrink the table.
   */
  estimatedBloatBytesBefore: z.int().min(0).optional(),
  estimatedBloatBytesAfter: z.int().min(0).optional(),
  /** The VACUUM's vacuum_cost_delay (ms; 0 = unthrottled) and vacuum_cost_limit, as the server applied them. */
  costDelayMs: z.number().min(0).optional(),
  costLimit: z.int().min(0).optional(),
  error: z.string().optional(),
});

export const RunSummarySchema = z.object({
  runId: z.uuid(),
  policy: z.string(),
  action: z.string(),
  status: z.enum(['succeeded', 'failed', 'dry_run']),
  cutoff: z.string(),
  rows: z.int().min(0),
  objects: z.int().min(0),
  bytes: z.int().min(0),
  chunks: z.int().min(0),
  orphansRemoved: z.int().min(0),
  durationMs: z.int().min(0),
  /** Dry runs only: rows that would be affected. */
  eligibleRows: z.int().min(0).optional(),
  /** Dry runs only: the plan. */
  plan: RunPlanSchema.optional(),
  /** Purge only: the VACUUM decision and its outcome. */
  maintenance: MaintenanceSchema.optional(),
  /** Backup only: what it wrote. */
  backup: BackupRunSummarySchema.optional(),
  /** Backup with rdsSnapshot: the snapshot (and copy) taken after Finish, and what retention deleted. */
  rdsSnapshot: RdsSnapshotProgressSchema.optional(),
});

export type ExecutionInput = z.output<typeof ExecutionInputSchema>;
export type RunState = z.output<typeof RunStateSchema>;
export type Totals = z.output<typeof TotalsSchema>;
export type FailureInput = z.output<typeof FailureInputSchema>;
export type RunSummary = z.output<typeof RunSummarySchema>;
export type Maintenance = z.output<typeof MaintenanceSchema>;
export type RunPlan = z.output<typeof RunPlanSchema>;
export type BackupRunSummary = z.output<typeof BackupRunSummarySchema>;
export type PlanForeignKey = z.output<typeof PlanForeignKeySchema>;

/** Chunk-step invocations per execution before continuing as new (each costs ~6 history events). */
export const MAX_ITERATIONS_PER_EXECUTION = 1000;

/**
 * Age at which an execution continues as new whatever its step count: long pauses or replica-lag waits
 * must not run into the execution timeout (24 h by default).
 */
export const MAX_EXECUTION_AGE_MS = 12 * 60 * 60 * 1000;

/**
 * State names of the chunk-loop machine. The local runner binds handlers by these names, so the CDK
 * definition and the runner cannot drift apart silently.
 */
export const StateNames = {
  start: 'Start',
  chunk: 'Chunk',
  more: 'MoreWork',
  pause: 'Pause',
  continueAsNew: 'ContinueAsNew',
  continued: 'Continued',
  finish: 'Finish',
  recordFailure: 'RecordFailure',
  failed: 'RunFailed',
} as const;

/** The states a parallel run's machine adds: its Distributed Map and, inside it, each worker's own loop. */
export const WorkerStateNames = {
  workers: 'Workers',
  workerChunk: 'WorkerChunk',
  workerMore: 'WorkerMoreWork',
  workerPause: 'WorkerPause',
  workerDone: 'WorkerDone',
  workerRecordFailure: 'WorkerRecordFailure',
  workerFailed: 'WorkerFailed',
} as const;

/**
 * The error a worker's Fail state ends with, after WorkerRecordFailure has failed the run with the worker's own
 * error: the map's catch then records the run again, and keeps its lease (other workers may still be in a chunk).
 */
export const WORKER_FAILED_ERROR = 'WorkerFailed';

/**
 * Error names the state machine retries (with backoff and jitter). Anything else is terminal:
 * caught into RecordFailure, then Fail.
 */
export const RetryableErrorNames = [
  'TransientDatabaseError',
  'TransientStorageError',
  'TransientServiceError',
  // middy aborts a handler just before the Lambda timeout; the chunk's transaction never committed.
  'TimeoutError',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
] as const;
