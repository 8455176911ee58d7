/**
 * Archive: rows older than the retention go to Parquet objects in the bucket (verified, listed in the
 * ledger) and are deleted in the same transaction; partitions wholly before the cutoff are archived and
 * dropped as units; objects are locked (objectLock) once listed.
 */
import type { ArchivePolicy } from '../../../lib/contracts/policy.ts';
import { capByBytes } from '../../core/batch-size.ts';
import { buildSelectChunkStatement } from '../../core/chunk-sql.ts';
import { StorageConfigurationError } from '../../core/errors.ts';
import { describeArchiveChangedChildren } from '../../core/foreign-keys.ts';
import { buildGlueTableInput } from '../../core/glue-table.ts';
import { policyPrefix, tablePrefix } from '../../core/object-keys.ts';
import { planParquetColumns } from '../../core/parquet/column-plan.ts';
import { describeParquetSchema } from '../../core/parquet/encode.ts';
import { missingTablePrivileges } from '../../core/privileges.ts';
import { describeError } from '../../core/redact-database-error.ts';
import { sampleRowTextBytes } from '../../sources/time-cutoff.ts';
import { timeCutoffStart } from '../../sources/time-cutoff-start.ts';
import type { TimeCutoffModule } from '../action-module.ts';
import { ArchiveAction } from './chunk.ts';
import { ArchivePolicySchema } from './contract.ts';
import { checkForeignKeys } from './foreign-keys.ts';
import { lockListedObjects } from './object-lock.ts';
import { archivePartitions } from './partition-unit.ts';

/** Time Finish keeps for closing the run after locking objects; the next run's Finish locks the rest. */
const LOCK_TIME_RESERVE_MS = 10_000;

const NEEDS_BUCKET = 'archive policies need a bucket (ARCHIVE_BUCKET or --bucket)';

export const archiveModule: TimeCutoffModule<ArchivePolicy> = {
  action: 'archive',
  ...timeCutoffStart(),
  missingTablePrivileges: (facts) => missingTablePrivileges(facts, 'archive'),
  // What each chunk's DELETE locks: the ordered selection of eligible rows.
  explainStatement: (target) => buildSelectChunkStatement(target, false),
  foreignKeys: {
    planRefusal: (prepared, decision) =>
      decision.changedByDatabase.length > 0
        ? describeArchiveChangedChildren(prepared.qualifiedName, decision.changedByDatabase)
        : undefined,
    // Any restricting reference to an eligible row fails the chunk that reaches it.
    warnsOfReferencedRows: () => true,
  },

  async checkStart({ db, deps, input, policy, prepared }) {
    if (!input.dryRun) {
      await checkForeignKeys(db, prepared);
      if (!deps.store) throw new StorageConfigurationError(NEEDS_BUCKET);
    }
    // Checked before anything is written; a dry run with a bucket checks it too, as a preflight.
    if (deps.store) {
      // Listing the policy's own prefix: the grant is bounded to it. A lock the bucket cannot keep is a
      // configuration error now, not after the first chunk deleted rows.
      const objectLock = policy.archive.objectLock !== undefined;
      await deps.store.checkBucket({ prefix: policyPrefix(policy.name), objectLock });
      if (objectLock && !deps.store.retain)
        throw new StorageConfigurationError('objectLock is set but this object store cannot lock objects');
    }
  },

  // Archive chunks hold their rows in memory: rows with large values start with fewer per chunk. Read before
  // anything is written: it is the first statement that evaluates the filter on real rows.
  initialBatchRows: async ({ db, input, prepared, cutoff }) =>
    capByBytes(input.chunking.initialRows, await sampleRowTextBytes(db, prepared, cutoff), input.chunking),

  async beforeLease({ deps, policy, prepared }) {
    if (deps.tableCatalog && deps.store) {
      await deps.tableCatalog.upsertTable(
        buildGlueTableInput({
          policyName: policy.name,
          bucket: deps.store.bucket,
          tablePrefix: tablePrefix(policy.name, prepared.table.schema, prepared.table.table),
          granularity: policy.archive.partitionBy,
          columns: describeParquetSchema(planParquetColumns(prepared.table.columns)),
        }),
      );
    }
    return {};
  },

  chunkAction({ deps, side, sideLedger }) {
    if (!deps.store) throw new StorageConfigurationError(NEEDS_BUCKET);
    return new ArchiveAction(
      deps.store,
      sideLedger,
      { afterUpload: deps.hooks?.afterUpload },
      { db: side, now: deps.now, remainingMs: () => deps.remainingMs(), log: deps.log },
    );
  },

  partitions: archivePartitions,

  // Lock the policy's listed objects still unlocked, this run's and earlier ones' (a crash between a chunk's
  // COMMIT and its lock, a partition unit, objects listed before objectLock was set). Before the run closes,
  // so that an object S3 holds other bytes for fails the run that finds it (recorded in lock_error: later
  // sweeps skip it).
  async finish({ deps, db, state }) {
    if (deps.store) {
      await lockListedObjects(db, deps.store, state.policy, {
        now: deps.now,
        timeLeft: () => deps.remainingMs() > LOCK_TIME_RESERVE_MS,
        log: deps.log,
      });
    }
    return {};
  },

  // The failed run's committed objects are archives like any other: lock them (objectLock).
  async afterFailure({ deps, db, runId, policy }) {
    const archive = ArchivePolicySchema.safeParse(policy);
    if (!deps.store || !archive.success) return;
    await lockListedObjects(db, deps.store, archive.data, {
      scope: { runId },
      now: deps.now,
      log: deps.log,
    }).catch((error: unknown) => {
      // The next run's Finish locks what is left; the failure record matters more.
      deps.log.warn('object lock failed', { runId, error: describeError(error) });
    });
  },
};
