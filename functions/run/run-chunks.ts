/**
 * Chunk step: the generic loop. Each chunk is one short transaction (lock_timeout, statement_timeout,
 * size adapted to the target transaction time); the action does the work inside it and the ledger
 * records it in the same transaction. The step returns before the Lambda's time runs out, with the
 * cursor; between steps no transaction or connection is held (the state machine waits).
 */
import type pg from 'pg';
import { type RunState, RunStateSchema } from '../../lib/contracts/payloads.ts';
import type { ChunkAction, ChunkOutcome } from '../actions/action.ts';
import { ArchiveAction } from '../actions/archive.ts';
import { Ledger } from '../adapters/ledger.ts';
import { nextBatchRows, shrinkAfterTimeout } from '../core/batch-size.ts';
import {
  classifyDatabaseError,
  InvalidPayloadError,
  LeaseLostError,
  StorageConfigurationError,
} from '../core/errors.ts';
import type { StepDependencies } from './dependencies.ts';
import { prepareTarget } from './prepare-target.ts';
import { leaseTtlSeconds } from './start-run.ts';

/** Local retries of a chunk that hit a lock or statement timeout before the step gives up (and Step Functions retries). */
const MAX_LOCAL_RETRIES = 3;

export function parseRunState(input: unknown): RunState {
  const parsed = RunStateSchema.safeParse(input);
  if (!parsed.success) {
    throw new InvalidPayloadError(
      `invalid run state: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

export async function runChunks(deps: StepDependencies, input: unknown): Promise<RunState> {
  const state = parseRunState(input);
  if (state.done) return state;
  const { policy, chunking } = state;
  const db = await deps.connect();
  let side: pg.Client | undefined;
  try {
    const ledger = new Ledger(db);
    const run = await ledger.getRun(state.runId);
    if (run?.status !== 'running')
      throw new LeaseLostError(`run ${state.runId} is not running (${run?.status ?? 'missing'})`);
    const prepared = await prepareTarget(db, policy);

    let action: ChunkAction;
    if (policy.action === 'archive') {
      const store = deps.store;
      if (!store)
        throw new StorageConfigurationError('archive policies need a bucket (ARCHIVE_BUCKET or --bucket)');
      // Pending announcements must commit even when the chunk rolls back: a second connection.
      side = await deps.connect();
      action = new ArchiveAction(store, new Ledger(side), { afterUpload: deps.hooks?.afterUpload });
    } else {
      throw new InvalidPayloadError(`action ${policy.action} is not implemented yet`);
    }

    // The ledger's cursor is authoritative: a retried step (crash after COMMIT) resumes after the last commit.
    let cursor = run.cursor;
    let batchRows = state.batchRows;
    let lastChunkMs = 0;
    let done = false;
    let localRetries = 0;
    const totals = { ...state.totals };

    let chunksThisStep = 0;
    while (!done) {
      // At least one chunk per step, so a run always progresses; then stop while two more would still fit.
      if (chunksThisStep > 0 && deps.remainingMs() < 2 * lastChunkMs + 1000) break;
      chunksThisStep++;
      await ledger.renewLease(policy.name, state.runId, leaseTtlSeconds(chunking));
      const started = performance.now();
      let outcome: ChunkOutcome;
      try {
        await db.query('BEGIN');
        await db.query(
          `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`,
          [`${chunking.lockTimeoutMs}ms`, `${chunking.statementTimeoutMs}ms`],
        );
        outcome = await action.runChunk(db, {
          runId: state.runId,
          policy,
          table: prepared.table,
          target: prepared.target,
          cutoff: state.cutoff,
          cursor,
          limit: batchRows,
        });
        if (outcome.rows > 0) {
          await deps.hooks?.beforeLedger?.();
          const seq = await ledger.recordChunk({
            runId: state.runId,
            rows: outcome.rows,
            bytes: outcome.bytes,
            objects: outcome.objects.length,
            minTime: outcome.minTime,
            maxTime: outcome.maxTime,
            minKey: outcome.minKey,
            maxKey: outcome.maxKey,
            durationMs: Math.round(performance.now() - started),
            cursor: outcome.cursor ?? [],
          });
          await ledger.insertArchivedObjects(state.runId, seq, outcome.objects);
        }
        await deps.hooks?.beforeCommit?.();
        await db.query('COMMIT');
      } catch (error) {
        await db.query('ROLLBACK').catch(() => undefined);
        const code = (error as { code?: string }).code;
        if ((code === '57014' || code === '55P03') && localRetries < MAX_LOCAL_RETRIES) {
          // Statement timeout: the chunk was too big for the server right now. Lock timeout: a DDL lock; wait a bit.
          localRetries++;
          if (code === '57014') batchRows = shrinkAfterTimeout(batchRows, chunking);
          deps.log.warn('chunk rolled back, retrying', {
            runId: state.runId,
            sqlstate: code,
            batchRows,
            localRetries,
          });
          await new Promise((resolve) => setTimeout(resolve, 250 * localRetries));
          continue;
        }
        throw classifyDatabaseError(error);
      }
      await deps.hooks?.afterCommit?.();
      localRetries = 0;

      const durationMs = Math.round(performance.now() - started);
      lastChunkMs = durationMs;
      if (outcome.rows > 0) {
        cursor = outcome.cursor ? [...outcome.cursor] : cursor;
        totals.rows += outcome.rows;
        totals.bytes += outcome.bytes;
        totals.objects += outcome.objects.length;
        totals.chunks += 1;
        deps.metrics?.recordChunk({
          rows: outcome.rows,
          bytes: outcome.bytes,
          objects: outcome.objects.length,
          durationMs,
        });
        deps.log.info('chunk committed', {
          runId: state.runId,
          policy: policy.name,
          rows: outcome.rows,
          bytes: outcome.bytes,
          objects: outcome.objects.length,
          durationMs,
          batchRows,
          minTime: outcome.minTime,
          maxTime: outcome.maxTime,
        });
      }
      // Only an empty chunk proves the end: a chunk can delete fewer rows than it locked (a row updated by
      // another session after the statement's snapshot is locked but not visible to the DELETE).
      done = outcome.rows === 0;
      batchRows = nextBatchRows(batchRows, durationMs, outcome.rows, chunking);
    }
    return { ...state, cursor, batchRows, done, iterations: state.iterations + 1, totals };
  } catch (error) {
    throw classifyDatabaseError(error);
  } finally {
    await db.end().catch(() => undefined);
    await side?.end().catch(() => undefined);
  }
}
