/**
 * `lifecycle.maintenance_actions` (sql/015): one row per statement maintain ran, or per table or index it
 * would not touch (skip), with the figures before and after. Written in the chunk's transaction, with the
 * cursor that moves past the work: a committed row is work done, and work whose row did not commit is
 * looked at again by the next step (and redone only if it is still due). Never a row's values.
 */
import type { Queryable } from '../../adapters/transactions.ts';
import type { VacuumCost } from '../../adapters/vacuum-cost.ts';
import type { BloatMethod } from './plan-schema.ts';
import type { StatementOutcome } from './statements.ts';

export interface MaintenanceFigures {
  readonly sizeBytes: number;
  readonly bloatPercent?: number | undefined;
  readonly bloatBytes?: number | undefined;
  readonly deadTuples?: number | undefined;
}

export interface MaintenanceEntry {
  /** Quoted "schema"."table". */
  readonly table: string;
  /** Quoted index name, for REINDEX and index skips. */
  readonly index?: string | undefined;
  readonly statement: 'analyze' | 'vacuum' | 'reindex' | 'skip';
  readonly outcome: StatementOutcome | 'skipped';
  readonly reason: string;
  readonly method?: BloatMethod | undefined;
  readonly before: MaintenanceFigures;
  readonly after?: MaintenanceFigures | undefined;
  readonly durationMs: number;
  readonly error?: string | undefined;
  /** The pace of a VACUUM or ANALYZE (vacuum_cost_delay, vacuum_cost_limit), as the server applied it. */
  readonly cost?: VacuumCost | undefined;
}

export async function recordMaintenanceEntries(
  tx: Queryable,
  runId: string,
  policy: string,
  entries: readonly MaintenanceEntry[],
): Promise<void> {
  for (const entry of entries) {
    await tx.query(
      `INSERT INTO lifecycle.maintenance_actions
         (run_id, policy, table_name, index_name, statement, outcome, reason, estimate_method,
          size_bytes_before, size_bytes_after, bloat_percent_before, bloat_percent_after,
          bloat_bytes_before, bloat_bytes_after, dead_tuples_before, dead_tuples_after, duration_ms, error,
          cost_delay_ms, cost_limit)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
      [
        runId,
        policy,
        entry.table,
        entry.index ?? null,
        entry.statement,
        entry.outcome,
        entry.reason,
        entry.method ?? null,
        entry.before.sizeBytes,
        entry.after?.sizeBytes ?? null,
        entry.before.bloatPercent ?? null,
        entry.after?.bloatPercent ?? null,
        entry.before.bloatBytes ?? null,
        entry.after?.bloatBytes ?? null,
        entry.before.deadTuples ?? null,
        entry.after?.deadTuples ?? null,
        entry.durationMs,
        entry.error ?? null,
        entry.cost?.delayMs ?? null,
        entry.cost?.limit ?? null,
      ],
    );
  }
}

/** The marker of a statement cut short by the step's deadline (not by timeoutMs): it is retried once. */
export const RETRIED_MARK = 'retried in the next step';

/** Whether this run already recorded `statement` of the unit as cut short by a step's deadline. */
export async function cutShortBefore(
  db: Queryable,
  runId: string,
  unit: { readonly table: string; readonly index?: string | undefined; readonly statement: string },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `SELECT 1 FROM lifecycle.maintenance_actions
      WHERE run_id = $1 AND table_name = $2 AND index_name IS NOT DISTINCT FROM $3 AND statement = $4
        AND outcome = 'timed-out' AND strpos(error, $5) > 0`,
    [runId, unit.table, unit.index ?? null, unit.statement, RETRIED_MARK],
  );
  return (rowCount ?? 0) > 0;
}

/** Whether a REINDEX of the table earlier in this run could not drop the copy it left. */
export async function cleanupFailedBefore(db: Queryable, runId: string, table: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `SELECT 1 FROM lifecycle.maintenance_actions
      WHERE run_id = $1 AND table_name = $2 AND statement = 'reindex' AND strpos(error, ' not dropped') > 0`,
    [runId, table],
  );
  return (rowCount ?? 0) > 0;
}
