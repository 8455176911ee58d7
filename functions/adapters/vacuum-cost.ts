/**
 * The cost-based delay a run's VACUUM or ANALYZE runs with: `vacuum_cost_delay` and `vacuum_cost_limit` set
 * for the session around that one statement, then reset (the connection goes on to ledger work). Resolved by
 * the server, so `autovacuum` is whatever autovacuum would use on this table: the table's own
 * `autovacuum_vacuum_cost_*` storage parameters, else the server's (an RDS parameter group included), where -1
 * means the next one down, as in PostgreSQL. Unlike autovacuum's workers, which share their cost limit, the
 * statement has the whole limit to itself.
 */
import type { VacuumCostDelay } from '../../lib/contracts/policy-base.ts';
import type { Queryable } from './transactions.ts';

/** What the statement ran with, read back from the server (for the ledger and the log). */
export interface VacuumCost {
  /** vacuum_cost_delay, milliseconds; 0 = unthrottled. */
  readonly delayMs: number;
  /** vacuum_cost_limit: cost units between two delays. */
  readonly limit: number;
}

export async function withVacuumCostDelay<T>(
  db: Queryable,
  setting: VacuumCostDelay,
  tableOid: string | undefined,
  work: (cost: VacuumCost) => Promise<T>,
): Promise<T> {
  const mode = typeof setting === 'string' ? setting : 'custom';
  const custom = typeof setting === 'string' ? undefined : setting;
  // -1 in an autovacuum_* setting means "use the plain one" (PostgreSQL's own rule for autovacuum workers).
  await db.query(
    `WITH own AS (
       SELECT nullif(max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_cost_delay'), '-1') AS delay,
              nullif(max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_cost_limit'), '-1') AS cost_limit
         FROM pg_class c, pg_options_to_table(c.reloptions)
        WHERE c.oid = $4::oid),
     wanted AS (
       SELECT CASE $1::text
                WHEN 'autovacuum' THEN coalesce(own.delay,
                                                nullif(current_setting('autovacuum_vacuum_cost_delay'), '-1'),
                                                current_setting('vacuum_cost_delay'))
                WHEN 'off' THEN '0'
                ELSE $2::text END AS delay,
              CASE $1::text
                WHEN 'autovacuum' THEN coalesce(own.cost_limit,
                                                nullif(current_setting('autovacuum_vacuum_cost_limit'), '-1'),
                                                current_setting('vacuum_cost_limit'))
                WHEN 'off' THEN current_setting('vacuum_cost_limit')
                ELSE $3::text END AS cost_limit
         FROM own)
     SELECT set_config('vacuum_cost_delay', delay, false), set_config('vacuum_cost_limit', cost_limit, false)
       FROM wanted`,
    [mode, String(custom?.delayMs ?? 0), String(custom?.limit ?? 200), tableOid ?? null],
  );
  try {
    const { rows } = await db.query<{ delay: number; cost_limit: number }>(
      `SELECT (SELECT setting::float8 FROM pg_settings WHERE name = 'vacuum_cost_delay') AS delay,
              (SELECT setting::int FROM pg_settings WHERE name = 'vacuum_cost_limit') AS cost_limit`,
    );
    return await work({ delayMs: Number(rows[0]?.delay ?? 0), limit: Number(rows[0]?.cost_limit ?? 0) });
  } finally {
    await db.query('RESET vacuum_cost_delay; RESET vacuum_cost_limit').catch(() => undefined);
  }
}

/**
 * What a timed-out VACUUM or ANALYZE adds to its error when it was throttled: the operator's first lever is the
 * pace, not the timeout alone. Empty when unthrottled.
 */
export function describePace(cost: VacuumCost): string {
  return cost.delayMs > 0
    ? ` (throttled: vacuum_cost_delay ${cost.delayMs} ms per ${cost.limit} cost units)`
    : '';
}
