/**
 * The RDS snapshot stage of a backup policy's state machine (after a successful Finish): state names (the local
 * runner binds them), what its tasks take and return (the CDK definition reads `waitSeconds` and the statuses
 * by these field names), and the bounds of its waits.
 */
import { z } from 'zod';

/** States of the snapshot stage, in the order a run passes them. */
export const RdsSnapshotStateNames = {
  /** Choice after Finish: only a run that succeeded (not a dry run) takes a snapshot. */
  wanted: 'RdsSnapshotWanted',
  /** Task: CreateDBSnapshot / CreateDBClusterSnapshot (or adopts the one a retried attempt created). */
  create: 'RdsSnapshotCreate',
  wait: 'RdsSnapshotWait',
  /** Task: describes the snapshot; fails the run when RDS says it failed. */
  check: 'RdsSnapshotCheck',
  available: 'RdsSnapshotAvailable',
  /** Task: CopyDBSnapshot / CopyDBClusterSnapshot into copyToRegion. */
  copy: 'RdsSnapshotCopy',
  copyWait: 'RdsSnapshotCopyWait',
  copyCheck: 'RdsSnapshotCopyCheck',
  copyAvailable: 'RdsSnapshotCopyAvailable',
  /** Task: deletes this policy's snapshots past retentionDays, in both regions. */
  prune: 'RdsSnapshotPrune',
  /** Succeed: a dry run or a run that did not succeed takes no snapshot. */
  skipped: 'RdsSnapshotSkipped',
  /** Pass: shapes a snapshot failure for RecordFailure (the backup run itself succeeded and stays so). */
  failed: 'RdsSnapshotFailed',
} as const;

/** The stage's Task states, each bound to the snapshot function. */
export const RDS_SNAPSHOT_TASK_STATES = [
  RdsSnapshotStateNames.create,
  RdsSnapshotStateNames.check,
  RdsSnapshotStateNames.copy,
  RdsSnapshotStateNames.copyCheck,
  RdsSnapshotStateNames.prune,
] as const;

/** The stage's Wait states. */
export const RDS_SNAPSHOT_WAIT_STATES = [RdsSnapshotStateNames.wait, RdsSnapshotStateNames.copyWait] as const;

/** The one RDS status that ends a wait; `failed`, `incompatible-*`, `deleted`… fail the run. */
export const RDS_SNAPSHOT_AVAILABLE = 'available';

/** First wait after a create or copy; doubled after each check up to the cap. */
export const RDS_SNAPSHOT_FIRST_WAIT_SECONDS = 30;
export const RDS_SNAPSHOT_MAX_WAIT_SECONDS = 300;

/**
 * Longest wait for one snapshot (and again for its copy) to become available before the run fails
 * (`RdsSnapshotTimeoutError`). A first snapshot of a large database, and a first cross-region copy (a full
 * copy; later ones are incremental), can take hours.
 */
export const RDS_SNAPSHOT_MAX_WAIT_HOURS = 16;

/**
 * Execution timeout of a machine with the snapshot stage: a run may reach Finish when its execution is 12 hours
 * old (MAX_EXECUTION_AGE_MS), then waits up to twice RDS_SNAPSHOT_MAX_WAIT_HOURS.
 */
export const RDS_SNAPSHOT_EXECUTION_TIMEOUT_HOURS = 48;

/**
 * Retry of the create and copy tasks while RDS cannot start one now (`RdsSourceBusyError`: the instance is
 * backing up or being modified, or a copy of the source is still running): every 5 minutes for an hour.
 */
export const RDS_SOURCE_BUSY_RETRY = { intervalSeconds: 300, maxAttempts: 12 } as const;

/** Name of the error the create and copy tasks retry with RDS_SOURCE_BUSY_RETRY. */
export const RDS_SOURCE_BUSY_ERROR = 'RdsSourceBusyError';

/** One snapshot as the stage tracks it. */
export const RdsSnapshotRefSchema = z.object({
  identifier: z.string(),
  arn: z.string(),
  region: z.string(),
  /** RDS's status at the last look (creating, available…). */
  status: z.string(),
  percentProgress: z.int().min(0).max(100).optional(),
  encrypted: z.boolean(),
});

/** A snapshot the prune step deleted (or could not). */
export const PrunedSnapshotSchema = z.object({
  identifier: z.string(),
  region: z.string(),
  /** When its name says it was taken. */
  takenAt: z.string(),
  /** Why it is still there (RDS refused the delete: being copied, say); absent when deleted. */
  skipped: z.string().optional(),
});

/** What the stage carries from task to task, under `$.rdsSnapshot` of the run's summary. */
export const RdsSnapshotProgressSchema = z
  .object({
    /** The backup run whose execution took it (tagged on the snapshot, so a retried create adopts it). */
    runId: z.uuid(),
    kind: z.enum(['instance', 'cluster']),
    /** The DB instance or Aurora cluster identifier. */
    source: z.string(),
    snapshot: RdsSnapshotRefSchema,
    copy: RdsSnapshotRefSchema.optional(),
    /** Seconds the next Wait state waits. */
    waitSeconds: z.int().min(0),
    /** Checks made in the current wait. */
    checks: z.int().min(0),
    /** When the current wait began (ISO): past RDS_SNAPSHOT_MAX_WAIT_HOURS the run fails. */
    waitingSince: z.string(),
    /** Set by the prune step. */
    pruned: z.array(PrunedSnapshotSchema).optional(),
  })
  .strict();

export const RdsSnapshotOperationSchema = z.enum(['create', 'check', 'copy', 'check-copy', 'prune']);

/** What each task of the stage sends the snapshot function. */
export const RdsSnapshotTaskInputSchema = z.discriminatedUnion('operation', [
  z.object({ operation: z.literal('create'), runId: z.uuid() }).strict(),
  z
    .object({
      operation: z.enum(['check', 'copy', 'check-copy', 'prune']),
      progress: RdsSnapshotProgressSchema,
    })
    .strict(),
]);

export type RdsSnapshotRef = z.output<typeof RdsSnapshotRefSchema>;
export type RdsSnapshotProgress = z.output<typeof RdsSnapshotProgressSchema>;
export type RdsSnapshotOperation = z.output<typeof RdsSnapshotOperationSchema>;
export type RdsSnapshotTaskInput = z.output<typeof RdsSnapshotTaskInputSchema>;
export type PrunedSnapshot = z.output<typeof PrunedSnapshotSchema>;
