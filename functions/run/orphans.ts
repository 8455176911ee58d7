/**
 * Orphans: objects announced in lifecycle.pending_objects before their upload whose chunk rolled back, so
 * the ledger never listed them. Finish and RecordFailure delete them once the run can no longer list any.
 * An orphan holds copies of rows that are still live, and a subject's erasure walks only the objects the ledger
 * lists: every version of it is deleted (in a versioned bucket a plain DeleteObject would leave its bytes in a
 * noncurrent version, out of the erasure's reach, until the noncurrent-version expiry).
 */
import type { ObjectStore } from '../adapters/archive-store.ts';
import { Ledger } from '../adapters/ledger/index.ts';
import type { Queryable } from '../adapters/transactions.ts';
import type { StepLogger } from './dependencies.ts';

/**
 * Deletes announced-but-unlisted objects of this policy (this run's, and those of runs that ended).
 * A key listed in archived_objects is never deleted, whatever the pending table says.
 */
export async function removeOrphans(
  db: Queryable,
  store: ObjectStore,
  policy: string,
  runId: string,
  log: StepLogger,
): Promise<number> {
  const ledger = new Ledger(db);
  let removed = 0;
  for (const orphan of await ledger.listOrphans(policy, runId)) {
    if (orphan.bucket !== store.bucket) continue;
    if (await ledger.isArchived(orphan.bucket, orphan.key)) {
      await ledger.forgetPending(orphan.bucket, orphan.key);
      continue;
    }
    // Marked first (committed: this connection autocommits): an uploader still running checks the mark
    // after its upload and deletes its own object, so an upload landing after this delete is not left over.
    await ledger.markRemoving(orphan.bucket, orphan.key);
    await store.deleteEveryVersion(orphan.key);
    await ledger.forgetPending(orphan.bucket, orphan.key);
    removed++;
  }
  if (removed > 0) log.warn('orphans removed', { runId, policy, removed });
  return removed;
}
