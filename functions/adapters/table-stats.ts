/**
 * Table statistics and VACUUM for post-purge maintenance. For a partitioned table the numbers are the
 * sums over its leaf partitions (the parent itself holds no rows).
 */
import type { Queryable } from './catalog.ts';

export interface TableStats {
  /** Estimated live rows: n_live_tup when the statistics have it, else pg_class.reltuples, else 0. */
  readonly liveRows: number;
  /** pg_stat_user_tables.n_dead_tup. */
  readonly deadTuples: number;
}

export async function readTableStats(db: Queryable, tableOid: string): Promise<TableStats> {
  const { rows } = await db.query<{ live: string | null; dead: string | null }>(
    `SELECT sum(CASE WHEN coalesce(s.n_live_tup, 0) > 0 THEN s.n_live_tup
                     ELSE greatest(c.reltuples, 0) END)::bigint::text AS live,
            sum(coalesce(s.n_dead_tup, 0))::bigint::text AS dead
       FROM (SELECT relid FROM pg_partition_tree($1::oid::regclass) UNION SELECT $1::oid) t
       JOIN pg_class c ON c.oid = t.relid
       LEFT JOIN pg_stat_user_tables s ON s.relid = t.relid
      WHERE c.relkind = 'r'`,
    [tableOid],
  );
  return { liveRows: Number(rows[0]?.live ?? 0), deadTuples: Number(rows[0]?.dead ?? 0) };
}

/**
 * `VACUUM (ANALYZE)` outside any transaction, bounded by a session statement_timeout that is reset
 * afterwards. Resolves with whether it completed; a timeout (57014) resolves `timedOut`, other errors throw.
 */
export async function vacuumAnalyze(
  db: Queryable,
  qualifiedName: string,
  timeoutMs: number,
): Promise<{ timedOut: boolean }> {
  await db.query(`SELECT set_config('statement_timeout', $1, false)`, [`${timeoutMs}ms`]);
  try {
    // A simple-protocol, single statement: VACUUM refuses to run inside a transaction block.
    await db.query(`VACUUM (ANALYZE) ${qualifiedName}`);
    return { timedOut: false };
  } catch (error) {
    if ((error as { code?: string }).code === '57014') return { timedOut: true };
    throw error;
  } finally {
    await db.query('RESET statement_timeout').catch(() => undefined);
  }
}
