/**
 * Finish step: remove orphans (objects announced for chunks that rolled back), close the run with the
 * ledger's totals, release the lease.
 */
import { leaseTtlSeconds } from '../../lib/contracts/lease.ts';
import type { RunSummary } from '../../lib/contracts/payloads.ts';
import { moduleFor } from '../actions/registry.ts';
import { Ledger, listRanges } from '../adapters/ledger/index.ts';
import { applyMigrations } from '../adapters/migrations.ts';
import { InvalidPayloadError } from '../core/errors.ts';
import type { StepDependencies } from './dependencies.ts';
import { removeOrphans } from './orphans.ts';
import { parseRunState } from './payloads.ts';

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
    // A run the previous release started finishes on this code: migrate before reading the run row.
    await applyMigrations(db);
    const action = moduleFor(state.policy, deps.actions);
    // Heartbeat: the action's finish work runs under the lease (a retried Finish of a closed run has none to
    // renew), plus whatever that work needs beyond the usual TTL (it sends no heartbeat of its own).
    const extraSeconds = action.finishLeaseSeconds?.(state.policy, deps.remainingMs()) ?? 0;
    if ((await ledger.getRun(state.runId))?.status === 'running')
      await ledger.renewLease(state.policy.name, state.runId, leaseTtlSeconds() + extraSeconds);
    // A parallel run finishes once, after every worker: a range still open means work left undone.
    const open = (await listRanges(db, state.runId)).filter((range) => !range.done);
    if (open.length > 0) {
      throw new InvalidPayloadError(
        `run ${state.runId} has ranges not done (${open.map((range) => range.index).join(', ')}): it cannot finish`,
      );
    }
    // Before closing the run: the lease keeps another run of the policy off the table meanwhile.
    const { maintenance, backup } = (await action.finish?.({ deps, db, state })) ?? {};
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
      ...(backup ? { backup } : {}),
    };
  } finally {
    await db.end().catch(() => undefined);
  }
}
