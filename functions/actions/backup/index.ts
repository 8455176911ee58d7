/**
 * Backup: every row of the tables the policy names, as psql-restorable parts in S3 with their DDL and a
 * manifest (see docs/architecture.md "Backups"). Start selects and plans the tables (nothing written);
 * each Chunk step reads a batch of parts under one exported snapshot (chunk.ts); Finish writes post-data
 * and the manifest (finish.ts); a failed backup's objects are removed.
 */

import { type BackupRunSummary, BackupRunSummarySchema } from '../../../lib/contracts/payloads.ts';
import type { ObjectStore } from '../../adapters/archive-store.ts';
import { Ledger } from '../../adapters/ledger/index.ts';
import { StorageConfigurationError } from '../../core/errors.ts';
import { describeError } from '../../core/redact-database-error.ts';
import { wholeTableSource } from '../../sources/whole-table.ts';
import type { ActionModule } from '../action-module.ts';
import { BackupChunkAction } from './chunk.ts';
import { type BackupPolicy, backupPrefix } from './contract.ts';
import { failedBackupsLeft, markExpiredBackups, removeBackupObjects, writeBackupManifest } from './finish.ts';
import { checkCompression } from './part-compression.ts';
import { backupPlan } from './plan.ts';
import { newBackupId, planBackupTables, readBackupDetail } from './table-plan.ts';
import { selectBackupTables } from './table-selection.ts';

const NEEDS_BUCKET = 'backup policies need a bucket (--bucket, or the stack’s bucket)';
const MIB = 1024 * 1024;

function s3Of(store: ObjectStore | undefined) {
  if (!store) throw new StorageConfigurationError(NEEDS_BUCKET);
  if (!store.s3Client)
    throw new StorageConfigurationError('backups stream parts to S3: this object store is not S3');
  return { store, s3: store.s3Client };
}

export const backupModule: ActionModule<BackupPolicy> = {
  action: 'backup',
  source: wholeTableSource<BackupPolicy>(),

  async prepareStart({ db, deps, input, policy }) {
    const { compression, level } = policy.backup;
    // A runtime without zstd refuses now, not after the first part.
    checkCompression({ codec: compression, level });
    const tables = await selectBackupTables(db, policy.backup);
    const plans = await planBackupTables(db, tables, policy.backup.partMiB * MIB);
    if (!input.dryRun) s3Of(deps.store);
    if (deps.store) await deps.store.checkBucket({ prefix: backupPrefix(policy.name) });
    const now = deps.now();
    const cutoff = this.source.bound(now, policy);
    return {
      record: { tableName: policy.backup.tables.join(', ') },
      cutoff,
      plan: () => backupPlan(db, plans, cutoff),
      initialBatchRows: async () => input.chunking.initialRows,
      beforeLease: async () => ({}),
      detail: {
        backupId: newBackupId(now),
        startedAt: now.toISOString(),
        tables: plans,
        // For the ledger's readers (a GDPR proof lists when each backup holding a subject expires).
        retentionDays: policy.backup.retentionDays,
      },
    };
  },

  // A stale invocation's batch would list parts the newer step wrote again: only the step that owns the run commits.
  fencesStaleSteps: true,

  // Every Chunk step checks the run's tables under its snapshot (checkTablesUnchanged): nothing to add.
  recheckContinuation: async () => undefined,

  chunkAction({ deps, policy, sideLedger, run, chunking }) {
    const { store, s3 } = s3Of(deps.store);
    return new BackupChunkAction({
      deps,
      policy,
      sideLedger,
      run,
      store,
      s3,
      chunking,
    });
  },

  // Finish reads the definition again and writes two small files: a minute beyond the usual lease.
  finishLeaseSeconds: () => 60,

  async finish({ deps, db, state }) {
    const { store, s3 } = s3Of(deps.store);
    const run = await new Ledger(db).getRunOrThrow(state.runId);
    const detail = readBackupDetail(run.runId, run.detail);
    // A retried Finish after the manifest was written: it stands (rewriting it could only go wrong — a DDL
    // change since would fail the drift check and have RecordFailure delete a complete backup).
    const written = readWrittenSummary(run.detail);
    if (written) return { backup: written };
    const client = await deps.connect(state.chunking);
    try {
      const backup = await writeBackupManifest({
        client,
        s3,
        bucket: store.bucket,
        policy: state.policy,
        runId: state.runId,
        detail,
        now: deps.now(),
      });
      deps.log.info('backup written', { runId: state.runId, policy: state.policy.name, ...backup });
      // Housekeeping of older backups: its failure must not fail (and so delete) the backup just written.
      try {
        const expired = await markExpiredBackups(db, state.policy);
        for (const failed of await failedBackupsLeft(db, state.policy.name)) {
          await removeBackupObjects(db, s3, store.bucket, state.policy.name, failed.runId, failed.backupId);
        }
        if (expired > 0) deps.log.info('backups expired', { policy: state.policy.name, expired });
      } catch (error) {
        deps.log.warn('older backups not tidied (the next backup tries again)', {
          policy: state.policy.name,
          error: describeError(error),
        });
      }
      return { backup };
    } finally {
      await client.end().catch(() => undefined);
    }
  },

  async afterFailure({ deps, db, runId, policy }) {
    const store = deps.store;
    if (!store?.s3Client) return;
    try {
      const run = await new Ledger(db).getRun(runId);
      const backupId = run?.detail?.backupId;
      // Only a backup that failed: a run that succeeded (a step failing after its Finish closed it) keeps
      // its backup, whatever happened after.
      if (run?.status !== 'failed' || typeof backupId !== 'string') return;
      const name = (policy as { name: string }).name;
      await removeBackupObjects(db, store.s3Client, store.bucket, name, runId, backupId);
    } catch (error) {
      // The next backup's Finish removes what is left; the failure record matters more.
      deps.log.warn('failed backup not removed', { runId, error: describeError(error) });
    }
  },
};

/** The summary a Finish already wrote into the run's detail (writeBackupManifest), if any. */
function readWrittenSummary(
  detail: Readonly<Record<string, unknown>> | undefined,
): BackupRunSummary | undefined {
  const parsed = BackupRunSummarySchema.safeParse(detail?.summary);
  return parsed.success ? parsed.data : undefined;
}
