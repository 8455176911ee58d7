/**
 * The restore-drill state machine of a backup policy with `backup.drill` (`<stack>-<policy>-drill`): state names
 * (the local runner binds them), what its schedule sends and what the drill function returns.
 */
import { z } from 'zod';
import { TriggerSchema } from './payloads.ts';

export const DrillStateNames = {
  /** Task: the drill function (restore the latest backup into a scratch schema, compare, record, drop). */
  drill: 'Drill',
  passed: 'DrillPassed',
  succeeded: 'DrillSucceeded',
  /** Fail: a drill that ran and did not pass fails the execution, so the policy's drill alarm fires. */
  failed: 'DrillFailed',
} as const;

/** Environment variable naming the drilled policy (set by the stack on the drill function). */
export const DRILL_POLICY_ENV = 'LIFECYCLE_DRILL_POLICY';

/** Error of the DrillFailed state. */
export const DRILL_FAILED_ERROR = 'RestoreDrillFailed';

/**
 * What a schedule (or `aws stepfunctions start-execution`) sends: only what started it. The policy, bucket and
 * database come from the function's environment, as deployed.
 */
export const DrillInputSchema = z
  .object({ trigger: TriggerSchema.default('manual') })
  .strict()
  .prefault({});

/** A table of the drill that did not match the manifest. */
export const DrillTableProblemSchema = z.object({
  table: z.string(),
  expectedRows: z.int().min(0),
  /** Rows the restored copy held, null when it was not reached. */
  foundRows: z.int().min(0).nullable(),
});

/** What the drill function returns (the per-table detail is in lifecycle.restore_drills). */
export const DrillOutputSchema = z.object({
  drillId: z.uuid(),
  policy: z.string(),
  backupId: z.string(),
  status: z.enum(['passed', 'failed']),
  /** Measured recovery time of the backup (restore + checks). */
  durationMs: z.int().min(0),
  tables: z.int().min(0),
  /** Tables that differ or were not reached (at most 20 named). */
  failedTables: z.array(DrillTableProblemSchema),
  scratchDropped: z.boolean(),
  /** Why it failed, one line (no row values); the DrillFailed state's cause. */
  cause: z.string().optional(),
});

export type DrillInput = z.output<typeof DrillInputSchema>;
export type DrillOutput = z.output<typeof DrillOutputSchema>;
