/**
 * `lifecycle.partition_units` (sql/003, renamed from dropped_partitions in sql/009): one row per whole-partition unit, from its start (archived,
 * detaching, or left to the chunk loop) to its end (dropped or kept). An unfinished unit is finished by the
 * next step or run.
 */
import type { PolicyAction } from '../../../lib/contracts/policy.ts';
import type { Queryable } from '../transactions.ts';

export type UnitState = 'archived' | 'detaching' | 'dropped' | 'kept' | 'chunked';

export interface PartitionUnit {
  readonly runId: string;
  readonly partitionOid: string;
  readonly partitionName: string;
  readonly boundFrom: string;
  readonly boundTo: string;
  readonly action: PolicyAction;
  readonly state: UnitState;
  readonly rows: number | undefined;
}

/** A dropped or kept partition, as the run summary and the demo report it. */
export interface RetiredPartition {
  readonly partition: string;
  readonly boundFrom: string;
  readonly boundTo: string;
  readonly state: 'dropped' | 'kept';
  readonly rows: number;
  readonly objects: number;
  readonly keptAs: string | undefined;
}

/** `lifecycle.partition_units` and the run totals a unit adds to. */
export class PartitionLedger {
  constructor(private readonly db: Queryable) {}

  async insertUnit(unit: {
    runId: string;
    policy: string;
    partitionOid: string;
    partitionName: string;
    parentName: string;
    boundFrom: string;
    boundTo: string;
    action: PolicyAction;
    state: UnitState;
    rows?: number;
    objects?: number;
    bytes?: number;
    chunkSeq?: number | undefined;
  }): Promise<void> {
    await this.db.query(
      `INSERT INTO lifecycle.partition_units
         (run_id, policy, partition_oid, partition_name, parent_name, bound_from, bound_to, action, state, rows, objects, bytes, chunk_seq)
       VALUES ($1, $2, $3::oid, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        unit.runId,
        unit.policy,
        unit.partitionOid,
        unit.partitionName,
        unit.parentName,
        unit.boundFrom,
        unit.boundTo,
        unit.action,
        unit.state,
        unit.rows ?? null,
        unit.objects ?? 0,
        unit.bytes ?? 0,
        unit.chunkSeq ?? null,
      ],
    );
  }

  /** Units of the policy that were started and not finished (by any run): the next step finishes them. */
  async openUnits(policy: string): Promise<PartitionUnit[]> {
    const { rows } = await this.db.query<Record<string, string | null>>(
      `SELECT run_id::text, partition_oid::text, partition_name, bound_from, bound_to, action, state, rows::text
         FROM lifecycle.partition_units
        WHERE policy = $1 AND state IN ('archived', 'detaching')
        ORDER BY started_at`,
      [policy],
    );
    return rows.map(toUnit);
  }

  /** Partitions this run left to the chunk loop. */
  async chunkedPartitions(runId: string): Promise<Set<string>> {
    const { rows } = await this.db.query<{ oid: string }>(
      `SELECT partition_oid::text AS oid FROM lifecycle.partition_units WHERE run_id = $1 AND state = 'chunked'`,
      [runId],
    );
    return new Set(rows.map((r) => r.oid));
  }

  async finishUnit(
    unit: Pick<PartitionUnit, 'runId' | 'partitionOid'>,
    outcome: {
      state: 'dropped' | 'kept';
      finishedBy: string;
      detachMode: 'concurrently' | 'locked' | undefined;
      keptAs: string | undefined;
      rows?: number;
      /** The rows are the planner's estimate (the partition was too large to count in time). */
      rowsEstimated?: boolean;
      chunkSeq?: number | undefined;
    },
  ): Promise<void> {
    await this.db.query(
      `UPDATE lifecycle.partition_units
          SET state = $3, finished_by = $4, finished_at = clock_timestamp(), detach_mode = coalesce($5, detach_mode),
              kept_as = $6, rows = coalesce($7, rows), chunk_seq = coalesce($8, chunk_seq),
              rows_estimated = $9
        WHERE run_id = $1 AND partition_oid = $2::oid`,
      [
        unit.runId,
        unit.partitionOid,
        outcome.state,
        outcome.finishedBy,
        outcome.detachMode ?? null,
        outcome.keptAs ?? null,
        outcome.rows ?? null,
        outcome.chunkSeq ?? null,
        outcome.rowsEstimated ?? false,
      ],
    );
  }

  async setDetachMode(
    unit: Pick<PartitionUnit, 'runId' | 'partitionOid'>,
    mode: 'concurrently' | 'locked',
  ): Promise<void> {
    await this.db.query(
      `UPDATE lifecycle.partition_units SET detach_mode = $3 WHERE run_id = $1 AND partition_oid = $2::oid`,
      [unit.runId, unit.partitionOid, mode],
    );
  }

  /** Partitions a run finished (dropped or kept), oldest bound first. */
  async retiredBy(runId: string): Promise<RetiredPartition[]> {
    const { rows } = await this.db.query<Record<string, string | null>>(
      `SELECT partition_name, bound_from, bound_to, state, rows::text, objects::text, kept_as
         FROM lifecycle.partition_units
        WHERE finished_by = $1 AND state IN ('dropped', 'kept')
        ORDER BY started_at, partition_name`,
      [runId],
    );
    return rows.map((r) => ({
      partition: r.partition_name as string,
      boundFrom: r.bound_from as string,
      boundTo: r.bound_to as string,
      state: r.state as 'dropped' | 'kept',
      rows: Number(r.rows ?? 0),
      objects: Number(r.objects ?? 0),
      keptAs: r.kept_as ?? undefined,
    }));
  }
}

function toUnit(r: Record<string, string | null>): PartitionUnit {
  return {
    runId: r.run_id as string,
    partitionOid: r.partition_oid as string,
    partitionName: r.partition_name as string,
    boundFrom: r.bound_from as string,
    boundTo: r.bound_to as string,
    action: r.action as PolicyAction,
    state: r.state as UnitState,
    rows: r.rows === null || r.rows === undefined ? undefined : Number(r.rows),
  };
}
