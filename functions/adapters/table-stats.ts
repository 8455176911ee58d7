/**
 * Table statistics and VACUUM for post-purge maintenance. For a partitioned table the numbers are the
 * sums over its leaf partitions (the parent itself holds no rows).
 */
import type { VacuumCostDelay } from '../../lib/contracts/policy-base.ts';
import { type Watcher, type YieldedTo, yieldingToLockWaiters } from './lock-yield.ts';
import type { Queryable } from './transactions.ts';
import { type VacuumCost, withVacuumCostDelay } from './vacuum-cost.ts';

export interface TableStats {
  /** Estimated live rows: n_live_tup when the statistics have it, else pg_class.reltuples, else 0. */
  readonly liveRows: number;
  /** pg_stat_user_tables.n_dead_tup. */
  readonly deadTuples: number;
  /** Heap bytes on disk (pg_relation_size, main fork; TOAST and indexes excluded). */
  readonly heapBytes: number;
  /**
   * Heap bytes not holding live rows (dead tuples and free space): heap bytes minus live rows × their
   * estimated size (pg_stats.avg_width per column + 28 bytes of tuple header and line pointer). Undefined
   * without column statistics (never analyzed). VACUUM makes this space reusable but does not return it.
   */
  readonly estimatedBloatBytes: number | undefined;
}

/** Estimated live rows alone (the run's start records them; the VACUUM threshold compares with them). */
export async function readLiveRows(db: Queryable, tableOid: string): Promise<number> {
  const { rows } = await db.query<{ live: string | null }>(
    `SELECT sum(CASE WHEN coalesce(s.n_live_tup, 0) > 0 THEN s.n_live_tup
                     ELSE greatest(c.reltuples, 0) END)::bigint::text AS live
       FROM (SELECT relid FROM pg_partition_tree($1::oid::regclass) UNION SELECT $1::oid) t
       JOIN pg_class c ON c.oid = t.relid
       LEFT JOIN pg_stat_user_tables s ON s.relid = t.relid
      WHERE c.relkind = 'r'`,
    [tableOid],
  );
  return Number(rows[0]?.live ?? 0);
}

/** Tuple header (23, aligned to 24) plus its 4-byte line pointer. */
const TUPLE_OVERHEAD_BYTES = 28;

export async function readTableStats(db: Queryable, tableOid: string): Promise<TableStats> {
  const { rows } = await db.query<{
    live: string | null;
    dead: string | null;
    heap: string | null;
    width: string | null;
  }>(
    `WITH leaves AS (
       SELECT c.oid, c.relname, n.nspname,
              CASE WHEN coalesce(s.n_live_tup, 0) > 0 THEN s.n_live_tup ELSE greatest(c.reltuples, 0) END AS live,
              coalesce(s.n_dead_tup, 0) AS dead
         FROM (SELECT relid FROM pg_partition_tree($1::oid::regclass) UNION SELECT $1::oid) t
         JOIN pg_class c ON c.oid = t.relid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_stat_user_tables s ON s.relid = t.relid
        WHERE c.relkind = 'r'
     )
     SELECT sum(live)::bigint::text AS live, sum(dead)::bigint::text AS dead,
            sum(pg_relation_size(oid))::bigint::text AS heap,
            -- Row width per leaf from its own statistics, weighted by its live rows.
            (sum(live * w.width) / nullif(sum(live) FILTER (WHERE w.width IS NOT NULL), 0))::float8::text AS width
       FROM leaves
       LEFT JOIN LATERAL (
         SELECT sum(st.avg_width) AS width FROM pg_stats st
          WHERE st.schemaname = leaves.nspname AND st.tablename = leaves.relname AND NOT st.inherited
       ) w ON true`,
    [tableOid],
  );
  const row = rows[0];
  const liveRows = Number(row?.live ?? 0);
  const heapBytes = Number(row?.heap ?? 0);
  const width = row?.width === null || row?.width === undefined ? undefined : Number(row.width);
  return {
    liveRows,
    deadTuples: Number(row?.dead ?? 0),
    heapBytes,
    estimatedBloatBytes:
      width === undefined
        ? undefined
        : Math.max(0, Math.round(heapBytes - liveRows * (width + TUPLE_OVERHEAD_BYTES))),
  };
}

/**
 * `VACUUM (ANALYZE)` outside any transaction, paced by `costDelay`, bounded by a session statement_timeout that
 * is reset afterwards, giving way to lock waiters (lock-yield.ts). A timeout (57014) or a yield resolves with
 * its outcome; other errors throw.
 */
export async function vacuumAnalyze(
  db: Queryable,
  table: { readonly qualifiedName: string; readonly oid: string },
  options: {
    readonly timeoutMs: number;
    readonly costDelay: VacuumCostDelay;
    readonly openWatcher: () => Promise<Watcher>;
  },
): Promise<{
  outcome: 'done' | 'timed-out' | 'yielded';
  cost: VacuumCost;
  yielded?: YieldedTo;
  /** Why lock waiters were not watched (the watcher connection failed), when they were not. */
  unwatched?: string;
}> {
  return withVacuumCostDelay(db, options.costDelay, table.oid, async (cost) => {
    await db.query(`SELECT set_config('statement_timeout', $1, false)`, [`${options.timeoutMs}ms`]);
    try {
      // A simple-protocol, single statement: VACUUM refuses to run inside a transaction block.
      const result = await yieldingToLockWaiters(db, options.openWatcher, () =>
        db.query(`VACUUM (ANALYZE) ${table.qualifiedName}`),
      );
      if ('yielded' in result) return { outcome: 'yielded' as const, cost, yielded: result.yielded };
      return { outcome: 'done' as const, cost, ...(result.unwatched ? { unwatched: result.unwatched } : {}) };
    } catch (error) {
      if ((error as { code?: string }).code === '57014') return { outcome: 'timed-out' as const, cost };
      throw error;
    } finally {
      await db.query('RESET statement_timeout').catch(() => undefined);
    }
  });
}
