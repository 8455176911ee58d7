/**
 * What an action plugs into whole-partition retention (`driver.ts`): how a unit starts on the attached
 * partition (archive copies it out and fences it; purge checks it holds nothing at or after the cutoff),
 * what must still hold before the DETACH and the DROP, and what the drop records. The driver owns the rest:
 * eligibility, the order of units, time, DETACH (CONCURRENTLY or locked), keep or drop, and finishing units
 * an interrupted step left open.
 */
import type pg from 'pg';
import type { RunState } from '../../../lib/contracts/payloads.ts';
import type { Policy } from '../../../lib/contracts/policy.ts';
import type { PartitionOptions } from '../../../lib/contracts/policy-base.ts';
import type { PartitionLedger, PartitionUnit } from '../../adapters/ledger/index.ts';
import type { PartitionOperations } from '../../adapters/partitions.ts';
import { LifecycleError } from '../../core/errors.ts';
import type { PartitionInfo } from '../../core/partitions.ts';
import type { StepDependencies } from '../dependencies.ts';
import type { PreparedTarget } from '../prepare-target.ts';

/** A partition was not retired because something it must hold did not (nothing was dropped). */
export class PartitionRetentionError extends LifecycleError {
  override readonly name = 'PartitionRetentionError';
}

/** What a unit added to the run (the step's totals). */
export interface UnitOutcome {
  readonly rows: number;
  readonly objects: number;
  readonly bytes: number;
  readonly chunks: number;
  /** The unit ran out of the step's time and was rolled back: its partition goes to the chunk loop. */
  readonly outOfTime?: boolean;
}

export const NOTHING: UnitOutcome = { rows: 0, objects: 0, bytes: 0, chunks: 0 };

/** The partition's bounds as text (the ledger's bound_from / bound_to). */
export interface UnitBounds {
  readonly from: string;
  readonly to: string;
}

/** The columns that name a unit in lifecycle.partition_units. */
export interface UnitIdentity {
  readonly runId: string;
  readonly policy: string;
  readonly partitionOid: string;
  readonly partitionName: string;
  readonly parentName: string;
  readonly boundFrom: string;
  readonly boundTo: string;
}

/** What the driver lends a strategy for one unit. */
export interface UnitContext {
  readonly deps: StepDependencies;
  readonly state: RunState;
  readonly prepared: PreparedTarget;
  /** Autocommit connection: records that must survive a rollback (pending announcements, unit rows). */
  readonly side: pg.Client;
  /** The unit's transactions. */
  readonly tx: pg.Client;
  /** lifecycle.partition_units on the side connection. */
  readonly units: PartitionLedger;
  /** Runs `work` in one bounded transaction on `tx` (the policy's timeouts), COMMIT or ROLLBACK. */
  inTransaction<T>(work: () => Promise<T>): Promise<T>;
  identity(partition: PartitionInfo, bounds: UnitBounds): UnitIdentity;
}

/** How a unit's first phase ended: a unit to detach and drop, or nothing to do now. */
export type UnitStart =
  | { readonly detach: PartitionUnit; readonly outcome: UnitOutcome }
  | { readonly stop: UnitOutcome };

/** What the drop records, checked under ACCESS EXCLUSIVE on the detached table. */
export interface DropCheck {
  readonly rows: number;
  /** The rows are the planner's estimate (the partition was too large to count in time). */
  readonly estimated: boolean;
  /** What lifecycle.partition_units records at the drop (purge: the rows and their chunk). */
  readonly recorded: { readonly rows?: number; readonly rowsEstimated?: boolean; readonly chunkSeq?: number };
  readonly outcome: UnitOutcome;
}

export interface PartitionStrategy {
  /** The policy's partition options (every action with a strategy has them). */
  optionsOf(policy: Policy): PartitionOptions;
  /** The unit's first phase, on the attached partition. */
  start(ctx: UnitContext, partition: PartitionInfo, bounds: UnitBounds): Promise<UnitStart>;
  /** Checked before the DETACH and again under the drop's lock: why the partition must not be dropped. */
  refuseDrop?(
    ops: PartitionOperations,
    unit: PartitionUnit,
    table: { schema: string; name: string },
  ): Promise<PartitionRetentionError | undefined>;
  /** Under ACCESS EXCLUSIVE on the detached table, before it is dropped or kept: count and check. */
  checkBeforeDrop(
    ctx: UnitContext,
    ops: PartitionOperations,
    unit: PartitionUnit,
    table: { schema: string; name: string },
    startedAt: number,
  ): Promise<DropCheck>;
  /** Before a detached table is kept instead of dropped (archive removes its write fence). */
  beforeKeep?(ops: PartitionOperations, table: { schema: string; name: string }): Promise<void>;
}
