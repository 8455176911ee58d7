/** What the maintain tests share: the ledger's rows of a run, and a change whose statistics are published now. */
import type pg from 'pg';

/** A row of lifecycle.maintenance_actions as the connection returns it (numbers as text). */
export interface MaintenanceLedgerRow {
  table_name: string;
  index_name: string | null;
  statement: string;
  outcome: string;
  reason: string;
  estimate_method: string | null;
  size_bytes_before: string;
  size_bytes_after: string | null;
  bloat_percent_before: string | null;
  bloat_percent_after: string | null;
  dead_tuples_before: string | null;
  dead_tuples_after: string | null;
  duration_ms: number;
  error: string | null;
}

/** Every ledger row of one maintain run, in the order recorded. */
export async function maintenanceLedgerOf(
  pool: pg.Pool,
  runId: string | undefined,
): Promise<MaintenanceLedgerRow[]> {
  const { rows } = await pool.query<MaintenanceLedgerRow>(
    'SELECT * FROM lifecycle.maintenance_actions WHERE run_id = $1 ORDER BY id',
    [runId],
  );
  return rows;
}

/**
 * Runs `sql` on one session and makes that session publish its statistics now (not up to 10 s later): the
 * decisions read pg_stat_user_tables.
 */
export async function changeAndPublish(pool: pg.Pool, sql: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query(sql);
    await client.query('SELECT pg_stat_force_next_flush()');
    await client.query('SELECT 1');
  } finally {
    client.release();
  }
}
