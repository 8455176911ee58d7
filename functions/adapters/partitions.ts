/**
 * Partitions in pg_catalog and the DDL that retires one (the ledger rows that record it are in
 * ledger/partition-units.ts). Identifiers come from the catalog and are quoted here; nothing from config
 * reaches SQL unquoted.
 */

import { quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';
import type { PartitionInfo } from '../core/partitions.ts';
import { pgBool } from './catalog.ts';
import { type Queryable, withLocalTimeout } from './transactions.ts';

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
