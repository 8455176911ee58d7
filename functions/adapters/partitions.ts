/**
 * Partitions in pg_catalog and the DDL that retires one (the ledger rows that record it are in
 * ledger/partition-units.ts). Identifiers come from the catalog and are quoted here; nothing from config
 * reaches SQL unquoted.
 */

import pg from 'pg';
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

/** A table's rows: counted, or estimated without reading them. */
export interface RowCount {
  readonly rows: number;
  /** Not counted: the planner's estimate (see PartitionOperations.estimateRows). */
  readonly estimated: boolean;
}

/** Rows changed since the last ANALYZE, as a share of the rows it saw, above which its density is stale. */
const STALE_STATISTICS_SHARE = 0.1;

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
   * count(*) within `timeoutMs` (in a savepoint, inside the open transaction); past it, `estimateRows`,
   * flagged. The transaction's statement_timeout is `restoreTimeoutMs` again afterwards.
   */
  async countRowsWithin(
    p: { schema: string; name: string },
    timeColumn: string,
    timeoutMs: number,
    restoreTimeoutMs: number,
  ): Promise<RowCount> {
    const counted = await withLocalTimeout(
      this.db,
      'count_rows',
      { setting: 'statement_timeout', ms: timeoutMs, restoreMs: restoreTimeoutMs },
      () => this.countRows(p),
    );
    if (counted.done) return { rows: counted.value, estimated: false };
    return this.estimateRows(p, timeColumn);
  }

  /**
   * The table's rows without reading them, as the planner estimates a relation's size: the density of the
   * last VACUUM / ANALYZE (pg_class.reltuples ÷ relpages) times the heap's pages now, so a partition that
   * grew since it was last analyzed is scaled up rather than under-counted. A heap without pages holds no
   * row (exact). One never analyzed (reltuples -1), analyzed while empty but no longer empty, or changed by
   * more than a tenth of its rows since its last ANALYZE (pg_stat_get_mod_since_analyze: refilled in the
   * pages a VACUUM left, or emptied by the chunk loop — the density would be stale while the pages stay), is
   * first analyzed on a small sample (statistics target 1: about 300 pages read unless the column has its
   * own target; its time column only: a dropped table needs no statistics, and a kept one — keepDetached —
   * has that coarse one until its next ANALYZE). Inside a transaction (ANALYZE may run in one). A role that
   * does not own the table gets a warning, not an ANALYZE: then the statistics system's live-row count
   * (pg_stat_get_live_tuples, no page read either).
   */
  async estimateRows(p: { schema: string; name: string }, timeColumn: string): Promise<RowCount> {
    let size = await this.relationSize(p);
    if (size.pages === 0) return { rows: 0, estimated: false };
    const stale =
      size.reltuples < 0 ||
      size.relpages === 0 ||
      size.modifiedSinceAnalyze > STALE_STATISTICS_SHARE * Math.max(size.reltuples, 0);
    if (stale) {
      await this.db.query(
        `SET LOCAL default_statistics_target = 1; ANALYZE ${this.name(p)} (${quoteIdent(timeColumn)}); SET LOCAL default_statistics_target TO DEFAULT`,
      );
      size = await this.relationSize(p);
    }
    if (size.reltuples < 0) return { rows: Math.max(size.liveTuples, 0), estimated: true };
    const density = size.relpages > 0 ? Math.max(size.reltuples, 0) / size.relpages : 0;
    return { rows: Math.round(density * size.pages), estimated: true };
  }

  private async relationSize(p: { schema: string; name: string }): Promise<{
    reltuples: number;
    relpages: number;
    pages: number;
    modifiedSinceAnalyze: number;
    liveTuples: number;
  }> {
    // pg_relation_size stats the heap's files and the pg_stat_get_* read the statistics system: no page is read.
    const { rows } = await this.db.query<{
      reltuples: string;
      relpages: string;
      pages: string;
      modified: string;
      live: string;
    }>(
      `SELECT c.reltuples::text AS reltuples, c.relpages::text AS relpages,
              (pg_relation_size(c.oid) / current_setting('block_size')::int)::text AS pages,
              pg_stat_get_mod_since_analyze(c.oid)::text AS modified,
              pg_stat_get_live_tuples(c.oid)::text AS live
         FROM pg_class c WHERE c.oid = $1::regclass`,
      [this.name(p)],
    );
    const row = rows[0];
    return {
      reltuples: Number(row?.reltuples ?? -1),
      relpages: Number(row?.relpages ?? 0),
      pages: Number(row?.pages ?? 0),
      modifiedSinceAnalyze: Number(row?.modified ?? 0),
      liveTuples: Number(row?.live ?? 0),
    };
  }

  /**
   * Whether the table holds a row the policy would not take. `eligible(cutoff)` is the cutoff predicate over
   * the table's time column `column`, given the cutoff's SQL text. Planned with constraint_exclusion = on,
   * so that PostgreSQL answers it without reading a row when the table's own constraints rule such rows
   * out: an attached partition's bound, and the CHECK constraint DETACH … CONCURRENTLY adds to the detached
   * table (validated constraints only: a NOT VALID one proves nothing). Otherwise an index leading with the
   * column answers it; without one it reads the table. The answer is PostgreSQL's either way: the setting
   * only lets it skip a scan it can prove empty. One round trip: the setting is SET LOCAL in the same query
   * string (its implicit transaction outside a transaction block), back to the default right after.
   */
  async holdsIneligibleRows(
    p: { schema: string; name: string },
    column: string,
    eligible: (cutoff: string) => string,
    cutoff: string,
  ): Promise<boolean> {
    // The cutoff is inlined (a multi-statement string takes no parameters); a constant the planner folds.
    const results = (await this.db.query(
      `SET LOCAL constraint_exclusion = on;
       SELECT EXISTS (SELECT 1 FROM ${this.name(p)}
                       WHERE NOT (${eligible(pg.escapeLiteral(cutoff))}) OR ${quoteIdent(column)} IS NULL) AS found;
       SET LOCAL constraint_exclusion TO DEFAULT`,
    )) as unknown as Array<pg.QueryResult<{ found?: string }>> | pg.QueryResult<{ found?: string }>;
    // Fails closed: a result without the answer never reads as "no such row".
    const found = (Array.isArray(results) ? results : [results])
      .map((result) => result.rows?.[0]?.found)
      .find((value) => value !== undefined && value !== null);
    if (found === undefined)
      throw new Error(`the check for rows at or after the cutoff in ${this.name(p)} returned no answer`);
    return pgBool(found);
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
