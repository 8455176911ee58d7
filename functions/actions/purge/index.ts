/**
 * Purge: rows older than the retention are deleted in short transactions (time windows, keyset chunks
 * where one time value holds more rows than a chunk); partitions wholly before the cutoff are dropped as
 * units; Finish vacuums a table the run emptied by a large fraction.
 */
import type { PurgePolicy } from '../../../lib/contracts/policy.ts';
import { readLiveRows } from '../../adapters/table-stats.ts';
import { buildPurgeWindowStatements } from '../../core/chunk-sql.ts';
import { describeBlockingReferences } from '../../core/foreign-keys.ts';
import { missingTablePrivileges } from '../../core/privileges.ts';
import { timeCutoffSource } from '../../sources/time-cutoff.ts';
import { timeCutoffStart } from '../../sources/time-cutoff-start.ts';
import type { TableWorkSource } from '../../sources/work-source.ts';
import type { TimeCutoffModule } from '../action-module.ts';
import { PurgeAction } from './chunk.ts';
import { checkForeignKeys } from './foreign-keys.ts';
import { purgePartitions } from './partition-unit.ts';
import { preparePurgeTarget } from './soft-delete.ts';
import { maintainAfterPurge } from './vacuum.ts';

export const purgeModule: TimeCutoffModule<PurgePolicy> = {
  action: 'purge',
  ...timeCutoffStart(),
  // The time-cutoff source; a soft delete adds its due test (the column still NULL).
  source: { ...timeCutoffSource, prepare: preparePurgeTarget } as TableWorkSource<PurgePolicy>,
  missingTablePrivileges: (facts) => missingTablePrivileges(facts, 'purge'),
  vacuumsAfterRun: (policy) => policy.vacuum.enabled,
  // The window probe finds each window's end; the window DELETE follows the same index.
  explainStatement: (target) => buildPurgeWindowStatements(target, 'first').probe,
  foreignKeys: {
    planRefusal: (prepared, decision) =>
      decision.blocking.length > 0
        ? describeBlockingReferences(prepared.qualifiedName, prepared.table.oid, decision.blocking)
        : undefined,
    // Uncovered references are refusals already; covered ones fail chunks until the child policy has run.
    warnsOfReferencedRows: (foreignKey) => foreignKey.childPolicy !== undefined,
  },

  async checkStart({ db, deps, input, policy, prepared }) {
    // A soft delete removes no row: references to the table stay valid.
    if (!input.dryRun && !policy.softDelete)
      await checkForeignKeys(db, prepared, input.children ?? [], deps.log);
  },

  initialBatchRows: async ({ input }) => input.chunking.initialRows,

  // The VACUUM threshold compares the run's deleted rows with the table's rows now.
  beforeLease: async ({ db, prepared }) => ({ tableRowsBefore: await readLiveRows(db, prepared.table.oid) }),

  chunkAction: () => new PurgeAction(),
  // A purge chunk is done at its COMMIT: nothing to overlap with the next one.
  overlapsChunks: false,

  partitions: purgePartitions,

  // The VACUUM sends no heartbeat: the lease must outlast it (its timeout is bounded by the step's time
  // left in Lambda, but not in a local run).
  finishLeaseSeconds: (policy, remainingMs) =>
    Math.ceil(Math.min(policy.vacuum.timeoutMs, remainingMs) / 1000),

  async finish({ deps, db, state }) {
    const maintenance = await maintainAfterPurge(deps, db, state);
    return maintenance ? { maintenance } : {};
  },
};
