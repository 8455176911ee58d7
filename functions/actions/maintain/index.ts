/**
 * Maintain: scheduled ANALYZE, VACUUM (ANALYZE) and REINDEX INDEX CONCURRENTLY of the tables a policy names,
 * each only when due (decide.ts), every statement recorded with its figures before and after in
 * `lifecycle.maintenance_actions`. Start selects the tables and fixes their order (nothing written); each
 * Chunk step works down that list, one statement per chunk (chunk.ts); Finish has nothing to add.
 */

import { listNotOwned } from '../../adapters/privileges.ts';
import { InsufficientPrivilegeError } from '../../core/errors.ts';
import { wholeTableSource } from '../../sources/whole-table.ts';
import type { ActionModule } from '../action-module.ts';
import { MaintainChunkAction } from './chunk.ts';
import type { MaintainPolicy } from './contract.ts';
import { maintainPlan } from './plan.ts';
import { selectMaintainedTables } from './tables.ts';

export const maintainModule: ActionModule<MaintainPolicy> = {
  action: 'maintain',
  source: wholeTableSource<MaintainPolicy>(),

  async prepareStart({ db, deps, input, policy }) {
    const tables = await selectMaintainedTables(db, policy.maintain);
    // Tables the role does not own are skipped and reported by the run (a schema.* often holds a few an
    // extension or another application owns); a policy none of whose tables it may maintain is a mistake.
    const notOwned = await listNotOwned(
      db,
      tables.map((t) => t.oid),
    );
    const { rows } = await db.query<{ role: string }>('SELECT current_user::text AS role');
    const refusal =
      notOwned.length === tables.length
        ? new InsufficientPrivilegeError(
            rows[0]?.role ?? 'current_user',
            tables.map((t) => ({
              privilege: 'ownership',
              object: t.table,
              reason: 'VACUUM, ANALYZE and REINDEX need the table’s owner or a superuser',
            })),
          )
        : undefined;
    if (refusal && !input.dryRun) throw refusal;
    const cutoff = this.source.bound(deps.now(), policy);
    return {
      record: { tableName: policy.maintain.tables.join(', ') },
      cutoff,
      plan: () =>
        maintainPlan(db, tables, policy.maintain, {
          cutoff,
          timeoutMs: input.chunking.statementTimeoutMs,
          refusals: refusal ? [{ error: refusal.name, message: refusal.message }] : [],
        }),
      initialBatchRows: async () => input.chunking.initialRows,
      beforeLease: async () => ({}),
      detail: { tables, startedAt: deps.now().toISOString() },
    };
  },

  // A stale invocation (frozen mid-REINDEX, thawed later) would record its statement twice and move the cursor
  // back: only the step that owns the run commits.
  fencesStaleSteps: true,

  // Each unit of work reads its table again by oid and checks its name: nothing to recheck.
  recheckContinuation: async () => undefined,

  chunkAction: ({ deps, policy, run, chunking }) => new MaintainChunkAction(deps, policy, run, chunking),
};
