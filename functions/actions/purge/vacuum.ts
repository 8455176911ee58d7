/**
 * Purge's Finish: VACUUM (ANALYZE) the table when the run deleted at least `vacuum.afterFraction`
 * of the rows it had at the start, on the finish step's connection, outside any transaction, bounded by a
 * statement timeout. The outcome is recorded in the ledger (`lifecycle.runs.maintenance`) and never fails
 * the run: a timed-out or failed VACUUM is recorded as such (autovacuum will get to the table anyway).
 */
import type { Maintenance, RunState } from '../../../lib/contracts/payloads.ts';
import { MaintenanceSchema } from '../../../lib/contracts/payloads.ts';
import type { PurgePolicy } from '../../../lib/contracts/policy.ts';
import { Ledger } from '../../adapters/ledger/index.ts';
import { describeYield } from '../../adapters/lock-yield.ts';
import { readTablePrivileges } from '../../adapters/privileges.ts';
import { readTableStats, vacuumAnalyze } from '../../adapters/table-stats.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { describePace, type VacuumCost } from '../../adapters/vacuum-cost.ts';
import { decideVacuum, vacuumTimeoutMs } from '../../core/maintenance.ts';
import type { StepDependencies } from '../../run/dependencies.ts';
import { timeCutoffSource } from '../../sources/time-cutoff.ts';

/** Below this the VACUUM would only be cancelled; PostgreSQL reads statement_timeout 0 as "no limit". */
const MIN_VACUUM_TIMEOUT_MS = 1_000;

/** statement_timeout and lock_timeout of the connection that watches the VACUUM for lock waiters. */
const WATCHER_TIMEOUT_MS = 5_000;

export async function maintainAfterPurge(
  deps: StepDependencies,
  db: Queryable,
  state: RunState & { readonly policy: PurgePolicy },
): Promise<Maintenance | undefined> {
  const { policy } = state;
  const ledger = new Ledger(db);
  const recorded = await ledger.getMaintenance(state.runId);
  // A retried Finish after the VACUUM: report what was done, do not vacuum again.
  if (recorded?.maintenance !== undefined) return MaintenanceSchema.parse(recorded.maintenance);

  const run = await ledger.getRun(state.runId);
  const rowsDeleted = run?.rows ?? 0;
  const rowsBefore = recorded?.tableRowsBefore ?? 0;
  const prepared = await timeCutoffSource.prepare(db, policy);
  const before = await readTableStats(db, prepared.table.oid);
  const decision = decideVacuum(policy.vacuum, rowsDeleted, rowsBefore);
  const timeoutMs = vacuumTimeoutMs(policy.vacuum, deps.remainingMs());
  let reason: Maintenance['reason'] = decision.vacuum ? 'done' : decision.reason;
  let error: string | undefined;
  let durationMs = 0;
  let cost: VacuumCost | undefined;
  // PostgreSQL skips a VACUUM the role may not run with only a WARNING: without this it would read as done.
  const privileges = decision.vacuum ? await readTablePrivileges(db, prepared.table.oid) : undefined;
  if (decision.vacuum) {
    if (privileges && !privileges.vacuum) {
      reason = 'failed';
      error = `skipped: role ${privileges.role} cannot VACUUM ${privileges.table} (not its owner)`;
    } else if (timeoutMs < MIN_VACUUM_TIMEOUT_MS) {
      reason = 'timed-out';
      error = 'no time left in the finish step';
    } else {
      const started = performance.now();
      try {
        const result = await vacuumAnalyze(
          db,
          { qualifiedName: prepared.qualifiedName, oid: prepared.table.oid },
          {
            timeoutMs,
            costDelay: policy.vacuum.costDelay,
            // Its own session: the watcher's polls must not wait behind anything on the finish connection.
            openWatcher: () =>
              deps.connect({ lockTimeoutMs: WATCHER_TIMEOUT_MS, statementTimeoutMs: WATCHER_TIMEOUT_MS }),
          },
        );
        cost = result.cost;
        if (result.unwatched)
          deps.log.warn('VACUUM ran without giving way to lock waiters', {
            runId: state.runId,
            policy: policy.name,
            reason: result.unwatched,
          });
        if (result.outcome === 'timed-out') {
          reason = 'timed-out';
          error = `VACUUM exceeded ${timeoutMs} ms${describePace(result.cost)}; vacuum.costDelay sets the pace`;
        } else if (result.yielded) {
          reason = 'yielded';
          error = describeYield('VACUUM', result.yielded);
        }
      } catch (caught) {
        reason = 'failed';
        error = caught instanceof Error ? caught.message : String(caught);
      }
      durationMs = Math.round(performance.now() - started);
    }
  }
  const after = decision.vacuum ? await readTableStats(db, prepared.table.oid) : before;
  const maintenance: Maintenance = {
    vacuumed: reason === 'done',
    reason,
    rowsDeleted,
    rowsBefore,
    afterFraction: policy.vacuum.afterFraction,
    timeoutMs: decision.vacuum ? timeoutMs : 0,
    durationMs,
    deadTuplesBefore: before.deadTuples,
    deadTuplesAfter: after.deadTuples,
    heapBytesBefore: before.heapBytes,
    heapBytesAfter: after.heapBytes,
    ...(before.estimatedBloatBytes !== undefined
      ? { estimatedBloatBytesBefore: before.estimatedBloatBytes }
      : {}),
    ...(after.estimatedBloatBytes !== undefined
      ? { estimatedBloatBytesAfter: after.estimatedBloatBytes }
      : {}),
    ...(cost ? { costDelayMs: cost.delayMs, costLimit: cost.limit } : {}),
    ...(error ? { error } : {}),
  };
  await ledger.recordMaintenance(state.runId, maintenance);
  const fields = { runId: state.runId, policy: policy.name, table: prepared.qualifiedName, ...maintenance };
  if (reason === 'timed-out' || reason === 'failed' || reason === 'yielded')
    deps.log.warn('table maintenance incomplete', fields);
  else deps.log.info('table maintenance', fields);
  return maintenance;
}
