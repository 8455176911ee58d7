/**
 * Finish step: remove orphans (objects announced for chunks that rolled back), close the run with the
 * ledger's totals, release the lease.
 */
import { leaseTtlSeconds } from '../../lib/contracts/lease.ts';
import type { RunSummary } from '../../lib/contracts/payloads.ts';
import { lockListedObjects } from '../actions/archive/object-lock.ts';
import { maintainAfterPurge } from '../actions/purge/vacuum.ts';
import type { ObjectStore } from '../adapters/archive-store.ts';
import type { Queryable } from '../adapters/catalog.ts';
import { Ledger } from '../adapters/ledger.ts';
import type { StepDependencies, StepLogger } from './dependencies.ts';
import { parseRunState } from './run-chunks.ts';

/** Time Finish keeps for closing the run after locking objects; the next run's Finish locks the rest. */
const LOCK_TIME_RESERVE_MS = 10_000;

export async function finishRun(deps: StepDependencies, input: unknown): Promise<RunSummary> {
  const state = parseRunState(input);
  if (state.dryRun) {
    return {
      runId: state.runId,
      policy: state.policy.name,
      action: state.policy.action,
      status: 'dry_run',
      cutoff: state.cutoff,
      rows: 0,
      objects: 0,
      bytes: 0,
      chunks: 0,
      orphansRemoved: 0,
      durationMs: 0,
      eligibleRows: state.eligibleRows ?? 0,
      ...(state.plan ? { plan: state.plan } : {}),
    };
  }
  const db = await deps.connect(state.chunking);
  try {
    const ledger = new Ledger(db);
    // Heartbeat: maintenance below runs under the lease (a retried Finish of a closed run has none to renew).
    // The VACUUM below sends no heartbeat: the lease must outlast it (its timeout is bounded by the step's
    // time left in Lambda, but not in a local run).
    const vacuumSeconds =
      state.policy.action === 'purge'
        ? Math.ceil(Math.min(state.policy.vacuum.timeoutMs, deps.remainingMs()) / 1000)
        : 0;
    if ((await ledger.getRun(state.runId))?.status === 'running')
      await ledger.renewLease(state.policy.name, state.runId, leaseTtlSeconds() + vacuumSeconds);
    // Before closing the run: the lease keeps another run of the policy off the table meanwhile.
    const maintenance = await maintainAfterPurge(deps, db, state);
    // objectLock: lock the policy's listed objects still unlocked, this run's and earlier ones' (a crash
    // between a chunk's COMMIT and its lock, a partition unit, objects listed before objectLock was set).
    // Before the run closes, so that an object S3 holds other bytes for fails the run that finds it (recorded
    // in lock_error: later sweeps skip it).
    if (deps.store && state.policy.action === 'archive') {
      await lockListedObjects(db, deps.store, state.policy, {
        now: deps.now,
        timeLeft: () => deps.remainingMs() > LOCK_TIME_RESERVE_MS,
        log: deps.log,
      });
    }
    // Close the run before removing orphans: from here no chunk of it can commit (recordChunk requires
    // status 'running'), so an announced-but-unlisted key can no longer become a listed one, and deleting
    // it can never remove the only copy of rows (a stale invocation still uploading is locked out too).
    await ledger.finishRun(state.runId, 'succeeded');
    const orphansRemoved = deps.store
      ? await removeOrphans(db, deps.store, state.policy.name, state.runId, deps.log)
      : 0;
    const run =
      orphansRemoved > 0
        ? await ledger.addOrphansRemoved(state.runId, orphansRemoved)
        : await ledger.getRunOrThrow(state.runId);
    await ledger.releaseLease(state.policy.name, state.runId);
    deps.log.info('run finished', {
      runId: run.runId,
      policy: run.policy,
      rows: run.rows,
      objects: run.objects,
      bytes: run.bytes,
      orphansRemoved,
    });
    return {
      runId: run.runId,
      policy: run.policy,
      action: run.action,
      status: 'succeeded',
      cutoff: run.cutoff,
      rows: run.rows,
      objects: run.objects,
      bytes: run.bytes,
      chunks: run.chunks,
      orphansRemoved: run.orphansRemoved,
      durationMs: run.durationMs,
      ...(maintenance ? { maintenance } : {}),
    };
  } finally {
    await db.end().catch(() => undefined);
  }
}

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
    await store.delete(orphan.key);
    await ledger.forgetPending(orphan.bucket, orphan.key);
    removed++;
  }
  if (removed > 0) log.warn('orphans removed', { runId, policy, removed });
  return removed;
}
