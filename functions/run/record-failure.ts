/**
 * RecordFailure step: any terminal error lands here (Catch → `$.error`). The run is marked failed with
 * the error, its orphans are removed and its lease released, so the next scheduled run can start (a parallel
 * run whose worker failed keeps it one more TTL: see workerFailure).
 * Rows are safe whatever failed: every chunk either committed with its objects listed, or rolled back.
 */
import { leaseTtlSeconds } from '../../lib/contracts/lease.ts';
import { FailureInputSchema, WORKER_FAILED_ERROR } from '../../lib/contracts/payloads.ts';
import { moduleNamed } from '../actions/registry.ts';
import { Ledger, listRanges } from '../adapters/ledger/index.ts';
import { applyMigrations } from '../adapters/migrations.ts';
import { LeaseLostError } from '../core/errors.ts';
import { describeError } from '../core/redact-database-error.ts';
import { timeoutsOfInput } from '../core/session-timeouts.ts';
import type { StepDependencies } from './dependencies.ts';
import { removeOrphans } from './orphans.ts';

export interface FailureRecord {
  readonly runId: string | undefined;
  readonly policy: string;
  readonly error: string;
  readonly cause: string;
}

/** Step Functions' Cause for a Lambda error is JSON ({errorType, errorMessage, ...}); keep the message. */
function readableCause(cause: string | undefined): string {
  if (!cause) return '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    return parsed.errorMessage ?? cause;
  } catch {
    return cause;
  }
}

/**
 * A worker's first step fails with its map item as input (`{run, range}`, see WorkerInputSchema): the run's
 * state is under `run`.
 */
function flattenWorkerInput(input: unknown): unknown {
  if (typeof input !== 'object' || input === null || 'policy' in input) return input;
  const { run, range, error } = input as { run?: unknown; range?: unknown; error?: unknown };
  if (typeof run !== 'object' || run === null || range === undefined) return input;
  return { ...run, range, error };
}

/**
 * A worker's own failure (its state has a range), or the map's after one (the worker's Fail state locally; the
 * Distributed Map's threshold error in AWS): the other workers may still be in a chunk. Any other failure
 * (Start, the gather, Finish, a local run interrupted after its chunks ended) leaves no worker running.
 */
function workerFailure(input: unknown): boolean {
  const { range, error } = input as { range?: unknown; error?: { Error?: string } };
  return (
    range !== undefined ||
    error?.Error === WORKER_FAILED_ERROR ||
    error?.Error === 'States.ExceedToleratedFailureThreshold'
  );
}

export async function recordFailure(deps: StepDependencies, given: unknown): Promise<FailureRecord> {
  const input = flattenWorkerInput(given);
  const failure = FailureInputSchema.parse(input);
  const record: FailureRecord = {
    runId: failure.runId,
    policy: failure.policy.name,
    error: failure.error.Error,
    cause: readableCause(failure.error.Cause),
  };
  deps.log.error('run failed', { ...record });
  // Without a runId the start step failed before opening the run: there is nothing to close.
  if (!failure.runId || failure.dryRun) return record;
  const db = await deps.connect(timeoutsOfInput(input));
  try {
    const ledger = new Ledger(db);
    // The run may have been started by the previous release: migrate before the ledger's new columns are read.
    await applyMigrations(db);
    await ledger.failRun(failure.runId, record.error, record.cause);
    if (deps.store) {
      try {
        await removeOrphans(db, deps.store, record.policy, failure.runId, deps.log);
      } catch (error) {
        // The next run's finish step retries orphan removal; the failure record matters more.
        deps.log.warn('orphan removal failed', { runId: failure.runId, error: describeError(error) });
      }
    }
    await moduleNamed(failure.policy.action, deps.actions)?.afterFailure?.({
      deps,
      db,
      runId: failure.runId,
      policy: failure.policy,
    });
    // A parallel run's other workers may still be in a chunk (their Lambdas run on after the map stopped
    // them, until their commit fails at the fence): the lease is kept until the longest step could have ended,
    // so that no new run meets their row locks, skips those rows and reports them done.
    if (workerFailure(input) && (await listRanges(db, failure.runId)).length > 0) {
      await ledger.renewLease(record.policy, failure.runId, leaseTtlSeconds()).catch((error: unknown) => {
        // Taken over meanwhile (it had expired): nothing of this run's to keep.
        if (!(error instanceof LeaseLostError)) throw error;
      });
    } else {
      await ledger.releaseLease(record.policy, failure.runId);
    }
  } finally {
    await db.end().catch(() => undefined);
  }
  return record;
}
