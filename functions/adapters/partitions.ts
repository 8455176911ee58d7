/**
 * Partitions in pg_catalog, the DDL that retires one, and the ledger rows that record it
 * (`lifecycle.dropped_partitions`, sql/003_partitions.sql). Identifiers come from the catalog and are
 * quoted here; nothing from config reaches SQL unquoted.
 */

import { quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';
import type { PolicyAction } from '../../lib/contracts/policy.ts';
import type { PartitionInfo } from '../core/partitions.ts';
import { pgBool, type Queryable } from './catalog.ts';
import { withLocalTimeout } from './savepoint.ts';

/** How the parent is partitioned: the strategy and its single key column (undefined for expressions). */
export interface Partitioning {
  /** 'r' range, 'l' list, 'h' hash. */
  readonly strategy: string;
  readonly keyColumnCount: number;
  /** The key column when the key is exactly one plain column. */
  readonly keyColumn: string | undefined;
}

export async function readPartitioning(db: Queryable, tableOid: string): Promise<Partitioning | undefined> {
  const { rows } = await db.query<{ strategy: string; natts: string; column_name: string | null }>(
    `SELECT pt.partstrat::text AS strategy, pt.partnatts::text AS natts, a.attname AS column_name
       FROM pg_partitioned_table pt
       LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] AND pt.partnatts = 1
      WHERE pt.partrelid = $1::oid`,
    [tableOid],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    strategy: row.strategy,
    keyColumnCount: Number(row.natts),
    keyColumn: row.column_name ?? undefined,
  };
}

/** Direct partitions of `parentOid` with their bounds as PostgreSQL prints them (session TimeZone UTC). */
export async function listPartitions(db: Queryable, parentOid: string): Promise<PartitionInfo[]> {
  const { rows } = await db.query<{
    oid: string;
    nspname: string;
    relname: string;
    relkind: string;
    bound: string;
    pending: string;
  }>(
    `SELECT c.oid::text AS oid, n.nspname, c.relname, c.relkind::text AS relkind,
            pg_get_expr(c.relpartbound, c.oid) AS bound, i.inhdetachpending AS pending
       FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE i.inhparent = $1::oid
      ORDER BY c.oid`,
    [parentOid],
  );
  return rows.map((r) => ({
    oid: r.oid,
    schema: r.nspname,
    name: r.relname,
    relkind: r.relkind,
    boundText: r.bound,
    detachPending: pgBool(r.pending),
  }));
}

/** Where a relation is now: gone, attached to `parentOid` (maybe mid-detach), or a standalone table. */
export type RelationStatus =
  | { readonly state: 'gone' }
  | {
      readonly state: 'attached' | 'detached';
      readonly schema: string;
      readonly name: string;
      readonly detachPending: boolean;
    };

export async function relationStatus(db: Queryable, oid: string, parentOid: string): Promise<RelationStatus> {
  const { rows } = await db.query<{
    nspname: string;
    relname: string;
    parent: string | null;
    pending: string | null;
  }>(
    `SELECT n.nspname, c.relname, i.inhparent::text AS parent, i.inhdetachpending AS pending
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
      WHERE c.oid = $1::oid`,
    [oid],
  );
  const row = rows[0];
  if (!row) return { state: 'gone' };
  return {
    state: row.parent === parentOid ? 'attached' : 'detached',
    schema: row.nspname,
    name: row.relname,
    detachPending: pgBool(row.pending),
  };
}

/** The schema's exact name, matched like a table name part (quoted exact, else as written or lower-cased). */
export async function resolveSchemaName(
  db: Queryable,
  name: string,
  quoted: boolean,
): Promise<string | undefined> {
  const { rows } = await db.query<{ nspname: string }>(
    `SELECT nspname FROM pg_namespace WHERE nspname = $1 OR (NOT $2 AND nspname = lower($1))
      ORDER BY nspname = $1 DESC LIMIT 1`,
    [name, quoted],
  );
  return rows[0]?.nspname;
}

/** Name of the write fence added to an archived partition until it is dropped. */
export const FENCE_CONSTRAINT = 'pg_lifecycle_archived_fence';

/** DDL and checks on one partition, on the client given (a transaction's, unless said otherwise). */
export class PartitionOperations {
  constructor(
    private readonly db: Queryable,
    private readonly parent: { readonly schema: string; readonly table: string },
  ) {}

  private name(p: { schema: string; name: string }): string {
    return quoteQualified(p.schema, p.name);
  }

  async lock(p: { schema: string; name: string }, mode: 'SHARE' | 'ACCESS EXCLUSIVE'): Promise<void> {
    await this.db.query(`LOCK TABLE ${this.name(p)} IN ${mode} MODE`);
  }

  async countRows(p: { schema: string; name: string }): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${this.name(p)}`);
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * count(*) within `timeoutMs` (in a savepoint, inside the open transaction); past it, the planner's
   * estimate (pg_class.reltuples, 0 when never analyzed), flagged. The transaction's statement_timeout is
   * `restoreTimeoutMs` again afterwards.
   */
  async countRowsWithin(
    p: { schema: string; name: string },
    timeoutMs: number,
    restoreTimeoutMs: number,
  ): Promise<{ rows: number; estimated: boolean }> {
    const counted = await withLocalTimeout(
      this.db,
      'count_rows',
      { setting: 'statement_timeout', ms: timeoutMs, restoreMs: restoreTimeoutMs },
      () => this.countRows(p),
    );
    if (counted.done) return { rows: counted.value, estimated: false };
    const { rows } = await this.db.query<{ n: string }>(
      `SELECT greatest(reltuples, 0)::bigint::text AS n FROM pg_class WHERE oid = $1::regclass`,
      [this.name(p)],
    );
    return { rows: Number(rows[0]?.n ?? 0), estimated: true };
  }

  /**
   * Whether the table holds a row the policy would not take. `eligible` is the cutoff predicate over the
   * table's time column `column` ($1 = cutoff); written so that an index on the column answers it.
   */
  async holdsIneligibleRows(
    p: { schema: string; name: string },
    column: string,
    eligible: string,
    cutoff: string,
  ): Promise<boolean> {
    const { rows } = await this.db.query<{ found: string }>(
      `SELECT EXISTS (SELECT 1 FROM ${this.name(p)} WHERE NOT (${eligible}) OR ${quoteIdent(column)} IS NULL) AS found`,
      [cutoff],
    );
    return pgBool(rows[0]?.found);
  }

  /**
   * Makes every INSERT or UPDATE into the partition fail from now on (a NOT VALID constraint is not checked
   * against existing rows, and the planner ignores it). Idempotent.
   */
  async hasFence(p: { schema: string; name: string }): Promise<boolean> {
    const { rows } = await this.db.query(
      'SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2',
      [this.name(p), FENCE_CONSTRAINT],
    );
    return rows.length > 0;
  }

  async fenceWrites(p: { schema: string; name: string }): Promise<void> {
    if (await this.hasFence(p)) return;
    await this.db.query(
      `ALTER TABLE ${this.name(p)} ADD CONSTRAINT ${quoteIdent(FENCE_CONSTRAINT)} CHECK (false) NOT VALID`,
    );
  }

  async removeFence(p: { schema: string; name: string }): Promise<void> {
    await this.db.query(
      `ALTER TABLE ${this.name(p)} DROP CONSTRAINT IF EXISTS ${quoteIdent(FENCE_CONSTRAINT)}`,
    );
  }

  /**
   * Outside any transaction: DETACH … CONCURRENTLY (PostgreSQL 14+, only without a DEFAULT partition), or
   * FINALIZE when an earlier one was interrupted. Takes SHARE UPDATE EXCLUSIVE on the parent: readers and
   * writers of the parent go on.
   */
  async detachConcurrently(p: { schema: string; name: string }, finalize: boolean): Promise<void> {
    await this.db.query(
      `ALTER TABLE ${quoteQualified(this.parent.schema, this.parent.table)} DETACH PARTITION ${this.name(p)} ${finalize ? 'FINALIZE' : 'CONCURRENTLY'}`,
    );
  }

  /** Inside a transaction: plain DETACH (ACCESS EXCLUSIVE on the parent until COMMIT; bound it with lock_timeout). */
  async detachLocked(p: { schema: string; name: string }): Promise<void> {
    await this.db.query(
      `ALTER TABLE ${quoteQualified(this.parent.schema, this.parent.table)} DETACH PARTITION ${this.name(p)}`,
    );
  }

  async drop(p: { schema: string; name: string }): Promise<void> {
    await this.db.query(`DROP TABLE ${this.name(p)}`);
  }

  async moveToSchema(p: { schema: string; name: string }, schema: string): Promise<void> {
    await this.db.query(`ALTER TABLE ${this.name(p)} SET SCHEMA ${quoteIdent(schema)}`);
  }
}

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

/** `lifecycle.dropped_partitions` and the run totals a unit adds to. */
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
      `INSERT INTO lifecycle.dropped_partitions
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
         FROM lifecycle.dropped_partitions
        WHERE policy = $1 AND state IN ('archived', 'detaching')
        ORDER BY started_at`,
      [policy],
    );
    return rows.map(toUnit);
  }

  /** Partitions this run left to the chunk loop. */
  async chunkedPartitions(runId: string): Promise<Set<string>> {
    const { rows } = await this.db.query<{ oid: string }>(
      `SELECT partition_oid::text AS oid FROM lifecycle.dropped_partitions WHERE run_id = $1 AND state = 'chunked'`,
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
      `UPDATE lifecycle.dropped_partitions
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
      `UPDATE lifecycle.dropped_partitions SET detach_mode = $3 WHERE run_id = $1 AND partition_oid = $2::oid`,
      [unit.runId, unit.partitionOid, mode],
    );
  }

  /** Partitions a run finished (dropped or kept), oldest bound first. */
  async retiredBy(runId: string): Promise<RetiredPartition[]> {
    const { rows } = await this.db.query<Record<string, string | null>>(
      `SELECT partition_name, bound_from, bound_to, state, rows::text, objects::text, kept_as
         FROM lifecycle.dropped_partitions
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
