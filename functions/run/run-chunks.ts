/**
 * Chunk step: the generic loop. Each chunk is one short transaction (lock_timeout, statement_timeout,
 * size adapted to the target transaction time); the action does the work inside it and the ledger
 * records it in the same transaction. The step returns before the Lambda's time runs out, with the
 * cursor; between steps no transaction or connection is held (the state machine waits).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { leaseTtlSeconds } from '../../lib/contracts/lease.ts';
import { MAX_EXECUTION_AGE_MS, type RunState } from '../../lib/contracts/payloads.ts';
import type { WorkCursor } from '../../lib/contracts/work-cursor.ts';
import type { ChunkAction, ChunkInput, TakenChunk } from '../actions/chunk-action.ts';
import { moduleFor, moduleNamed } from '../actions/registry.ts';
import { readCloudWatchReplicaLagSeconds } from '../adapters/cloudwatch-replica-lag.ts';
import {
  countRangeStep,
  finishRange,
  finishUnits,
  getRange,
  Ledger,
  listRanges,
  recordRangeChunk,
  unitsPending,
} from '../adapters/ledger/index.ts';
import { applyMigrations } from '../adapters/migrations.ts';
import { readReplicaLagSeconds } from '../adapters/replication.ts';
import { takeStepSlot } from '../adapters/step-slots.ts';
import { beginBoundedTransaction } from '../adapters/transactions.ts';
import { capByBytes, nextBatchRows, shrinkAfterTimeout } from '../core/batch-size.ts';
import {
  classifyDatabaseError,
  InvalidPayloadError,
  LeaseLostError,
  TransactionBudgetError,
} from '../core/errors.ts';
import type { StepDependencies } from './dependencies.ts';
import { restAfter, restSecondsForPause, restsInStep } from './pacing.ts';
import { addTotals, retirePartitions } from './partitions/driver.ts';
import { parseRunState } from './payloads.ts';

/** A worker waiting for range 0's partition units polls this often (ms), within its step. */
const UNITS_POLL_MS = 250;
/** …for at most this long (ms) before its step ends and the state machine waits UNITS_WAIT_SECONDS. */
const UNITS_WAIT_IN_STEP_MS = 30_000;
const UNITS_WAIT_SECONDS = 10;

/** True once range 0 has no partition left to retire; false if it still has after a while (the step ends). */
async function waitForUnits(side: pg.Client, runId: string, deps: StepDependencies): Promise<boolean> {
  const until = performance.now() + Math.min(UNITS_WAIT_IN_STEP_MS, deps.remainingMs() / 2);
  for (;;) {
    if (!(await unitsPending(side, runId))) return true;
    if (performance.now() + UNITS_POLL_MS > until) return false;
    await sleep(UNITS_POLL_MS);
  }
}

/** Longest wait (ms) for the next chunk's main statement to be sent before this chunk completes (deps may say). */
const SENT_WAIT_MS = 50;

function noop(): void {}

/** Resolves when the first of `promises` settles, or after `ms`. */
async function firstOf(promises: ReadonlyArray<Promise<unknown>>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([...promises, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Local retries of a chunk that hit a lock or statement timeout before the step gives up (Step Functions retries it). */
const MAX_LOCAL_RETRIES = 3;
/** Retry n of a chunk waits n times this (ms) unless the step's dependencies say otherwise. */
const DEFAULT_CHUNK_RETRY_BACKOFF_MS = 250;

/** A chunk whose `take` ran (or failed) inside an open transaction on `client`. */
interface InFlight {
  readonly client: pg.Client;
  readonly startedAt: number;
  /** Before the action's `prepare`: what the chunk took in all, for the step's time budget. */
  readonly preparedAt: number;
  readonly limit: number;
  readonly input: ChunkInput;
  readonly taken: TakenChunk | undefined;
  /** The action's `prepare` asked to wait this long before the chunk: no transaction was opened. */
  readonly waitSeconds?: number;
}

export async function runChunks(deps: StepDependencies, input: unknown): Promise<RunState> {
  const state = parseRunState(input);
  if (state.done) return state;
  // A parallel run's own Chunk state runs after its Workers map: it only reads whether every range is done.
  if (state.ranges && !state.range) return gatherRanges(deps, state);
  const { policy, chunking } = state;
  const range = state.range;
  // Three connections: two alternate chunk transactions (one takes the next chunk while the other
  // completes), the third autocommits what must survive a rollback (lease renewals, pending keys). An action
  // with nothing to complete outside the database runs its chunks one after another on one connection, and so
  // does a paced run (chunking.sleepCoefficient): an overlapped next chunk would hold its transaction, and the
  // locks on the rows it took, through the rest.
  const module = moduleFor(policy, deps.actions);
  const restCoefficient = chunking.sleepCoefficient;
  const overlapping = module.overlapsChunks !== false && restCoefficient === 0;
  const clients: pg.Client[] = [];
  let action: ChunkAction | undefined;
  const open = async () => {
    const client = await deps.connect(chunking);
    clients.push(client);
    return client;
  };
  // The chunk connections are opened while the side connection prepares the step (each costs a TCP, TLS and
  // SCRAM round trip); with a throttle, only once the lag allows a chunk.
  let chunkConnecting: [Promise<pg.Client>, ...Array<Promise<pg.Client>>] | undefined;
  const openChunkConnections = async (): Promise<readonly [pg.Client, ...pg.Client[]]> => {
    chunkConnecting ??= overlapping ? [open(), open()] : [open()];
    return Promise.all(chunkConnecting);
  };
  try {
    const side = await open();
    // With a guard that may end the step before any chunk, they are opened once it lets the step go on.
    if (!chunking.throttle && !chunking.stepSlots) void openChunkConnections().catch(() => undefined);
    const sideLedger = new Ledger(side);
    // A run the previous release started continues on this code: its ledger may lack what this step reads
    // (the run row's columns included), so migrate first (a no-op once current, under an advisory lock).
    await applyMigrations(side);
    // An action that fences stale steps claims the run for this step before reading its cursor: an older
    // invocation that outlived its step commits nothing after this (recordChunk checks the token), and one
    // committing now is waited for.
    const stepToken = module.fencesStaleSteps ? randomUUID() : undefined;
    if (stepToken) await sideLedger.claimStep(state.runId, stepToken);
    const run = await sideLedger.getRun(state.runId);
    if (run?.status !== 'running') {
      throw new LeaseLostError(`run ${state.runId} is not running (${run?.status ?? 'missing'})`);
    }
    // A worker's cursor is its range's (the run's stays NULL); a range found done ends the worker at once.
    const rangeRow = range ? await getRange(side, state.runId, range.index) : undefined;
    if (range && (rangeRow?.from !== range.from || rangeRow?.to !== range.to)) {
      throw new InvalidPayloadError(`run ${state.runId} has no range ${range.index} as the step was given`);
    }
    if (run.cutoff !== state.cutoff || run.policy !== policy.name) {
      throw new InvalidPayloadError(
        `run ${state.runId} has cutoff ${run.cutoff}, the step was given ${state.cutoff}`,
      );
    }
    // Heartbeat at the step's start: what follows (catalog, lag reading, partition units) may take a while.
    const heartbeat = (waitSeconds?: number) =>
      sideLedger.renewLease(policy.name, state.runId, leaseTtlSeconds(waitSeconds));
    await heartbeat();
    // A source over one table's rows resolves it for the step (a whole-table source has many: no target).
    const prepared = await module.source.prepare?.(side, policy);
    const chunkAction = module.chunkAction({ deps, policy, side, sideLedger, run, chunking });
    action = chunkAction;
    // Throttle: before each chunk, a replica behind by more than the limit stops the step; the state machine
    // waits `checkEverySeconds` (no transaction or connection held) and the next step checks again.
    const throttle = chunking.throttle;
    const cloudWatchLag = throttle?.cloudWatch;
    const readLag =
      deps.replicaLagSeconds ??
      (cloudWatchLag
        ? () => {
            if (!deps.cloudWatch)
              throw new InvalidPayloadError(
                'throttle.cloudWatch is set but this step has no CloudWatch client',
              );
            return readCloudWatchReplicaLagSeconds(deps.cloudWatch, cloudWatchLag, deps.now());
          }
        : () => readReplicaLagSeconds(side));
    const replicaLagging = async (): Promise<number | undefined> => {
      if (!throttle) return undefined;
      const lag = await readLag();
      return lag > throttle.maxReplicaLagSeconds ? lag : undefined;
    };
    const { replicaLagSeconds: _previousLag, ...continuing } = state;
    /** The step's result: where the run stands, and how long the Pause state waits before the next step. */
    const stepResult = (
      progress: Pick<RunState, 'cursor' | 'batchRows' | 'done' | 'totals'>,
      lag?: number,
      actionWaitSeconds?: number,
    ): RunState => {
      if (throttle && lag !== undefined) {
        deps.log.info('replica lag above limit, waiting', {
          runId: state.runId,
          policy: policy.name,
          replicaLagSeconds: lag,
          maxReplicaLagSeconds: throttle.maxReplicaLagSeconds,
          waitSeconds: throttle.checkEverySeconds,
        });
      }
      const startedAt = state.executionStartedAt ? Date.parse(state.executionStartedAt) : Number.NaN;
      return {
        ...continuing,
        ...progress,
        iterations: state.iterations + 1,
        continueNow: !progress.done && deps.now().getTime() - startedAt > MAX_EXECUTION_AGE_MS,
        waitSeconds:
          throttle && lag !== undefined
            ? throttle.checkEverySeconds
            : Math.max(actionWaitSeconds ?? 0, chunking.pauseSeconds),
        ...(lag !== undefined ? { replicaLagSeconds: lag } : {}),
      };
    };
    /**
     * Ends the step with a heartbeat whose TTL covers the Pause the state machine waits next. `return await`
     * it: the `finally` below ends the side connection the heartbeat runs on.
     */
    const endStep = async (
      progress: Pick<RunState, 'cursor' | 'batchRows' | 'done' | 'totals'>,
      lag?: number,
      actionWaitSeconds?: number,
    ): Promise<RunState> => {
      const result = stepResult(progress, lag, actionWaitSeconds);
      await heartbeat(result.done ? 0 : result.waitSeconds);
      return result;
    };
    const startCursor = rangeRow ? rangeRow.cursor : run.cursor;
    if (range) await countRangeStep(side, state.runId, range.index);
    if (rangeRow?.done) {
      return await endStep({
        cursor: startCursor,
        batchRows: state.batchRows,
        done: true,
        totals: state.totals,
      });
    }
    const lagAtStart = await replicaLagging();
    if (lagAtStart !== undefined) {
      return await endStep(
        { cursor: startCursor, batchRows: state.batchRows, done: false, totals: state.totals },
        lagAtStart,
      );
    }
    // The other ranges start once range 0 has retired its whole partitions: a DETACH waits for every open chunk
    // transaction on the table, and a worker's next chunk is always open while the last one uploads. Before
    // taking a step slot, which range 0 may be waiting for.
    if (range && range.index > 0 && !(await waitForUnits(side, state.runId, deps))) {
      deps.log.info('range 0 is retiring partitions, waiting', { runId: state.runId, range: range.index });
      return await endStep(
        { cursor: startCursor, batchRows: state.batchRows, done: false, totals: state.totals },
        undefined,
        UNITS_WAIT_SECONDS,
      );
    }
    // The database-wide cap on chunk steps (every worker of every run, defaults.throttle): no free slot, no chunk.
    const slots = chunking.stepSlots;
    if (slots && (await takeStepSlot(side, slots.max)) === undefined) {
      deps.log.info('every chunk step slot of the database is taken, waiting', {
        runId: state.runId,
        policy: policy.name,
        maxConcurrentSteps: slots.max,
        waitSeconds: slots.checkEverySeconds,
      });
      return await endStep(
        { cursor: startCursor, batchRows: state.batchRows, done: false, totals: state.totals },
        undefined,
        slots.checkEverySeconds,
      );
    }
    const chunkClients = await openChunkConnections();

    // A worker sees its range only: the range's end as the cutoff, its start as a lower bound of every statement.
    const target =
      range?.from && prepared ? { ...prepared.target, lowerBound: range.from } : prepared?.target;
    const inputFor = (cursor: WorkCursor | null, limit: number, sent?: () => void): ChunkInput => ({
      runId: state.runId,
      policy,
      table: prepared?.table,
      target,
      cutoff: range ? range.to : state.cutoff,
      cursor,
      limit,
      chunking,
      sent,
    });

    /** BEGIN + take; statement/lock timeouts roll back and retry here with a smaller chunk. */
    const begin = async (
      client: pg.Client,
      cursor: WorkCursor | null,
      limit: number,
      sent?: () => void,
    ): Promise<InFlight> => {
      // Before BEGIN and once per chunk (a retry after a timeout reuses what was prepared).
      const preparedAt = performance.now();
      const prepared = await chunkAction.prepare?.(inputFor(cursor, limit));
      if (prepared && 'waitSeconds' in prepared) {
        const input = inputFor(cursor, limit);
        return {
          client,
          startedAt: performance.now(),
          preparedAt,
          limit,
          input,
          taken: undefined,
          ...prepared,
        };
      }
      for (let attempt = 0; ; ) {
        await heartbeat();
        const startedAt = performance.now();
        const chunkInput = inputFor(cursor, limit, sent);
        try {
          await beginBoundedTransaction(client, chunking);
          const taken = await chunkAction.take(client, chunkInput, prepared?.ready);
          return { client, startedAt, preparedAt, limit, input: chunkInput, taken } satisfies InFlight;
        } catch (thrown) {
          await client.query('ROLLBACK').catch(() => undefined);
          if (thrown instanceof TransactionBudgetError && limit > chunking.minRows) {
            // Over the transaction's budget: half the rows, at once and uncounted (halving ends at minRows,
            // where the action sets no budget). No backoff: nothing was in the way, the chunk was too big.
            limit = shrinkAfterTimeout(limit, chunking);
            deps.log.warn('chunk over its transaction budget, rolled back; retrying smaller', {
              runId: state.runId,
              targetTransactionMs: chunking.targetTransactionMs,
              limit,
            });
            continue;
          }
          // At minRows a budget error is retried as a statement timeout is (counted, with backoff); one that is
          // still there after that leaves as the statement timeout it wraps, when it wraps one.
          const overBudget = thrown instanceof TransactionBudgetError;
          const error = overBudget ? (thrown.cause ?? thrown) : thrown;
          const code = overBudget ? '57014' : (error as { code?: string }).code;
          if ((code === '57014' || code === '55P03') && attempt++ < MAX_LOCAL_RETRIES) {
            // Statement timeout: too big for the server right now. Lock timeout: a DDL lock; wait a bit.
            if (code === '57014') limit = shrinkAfterTimeout(limit, chunking);
            const backoffMs = (deps.chunkRetryBackoffMs ?? DEFAULT_CHUNK_RETRY_BACKOFF_MS) * attempt;
            deps.log.warn('chunk rolled back, retrying', {
              runId: state.runId,
              sqlstate: code,
              limit,
              attempt,
              backoffMs,
            });
            await sleep(backoffMs);
            continue;
          }
          throw error;
        }
      }
    };
    const abandon = async (flight: Promise<InFlight> | undefined) => {
      const settled = await flight?.catch(() => undefined);
      await settled?.client.query('ROLLBACK').catch(() => undefined);
    };

    // The ledger's cursor is authoritative: a retried step (crash after COMMIT) resumes after the last commit.
    let cursor = startCursor;
    let batchRows = state.batchRows;
    let lastChunkMs = 0;
    /** Bytes per row of the last chunk that held rows (archive), for chunking.maxChunkBytes. */
    let bytesPerRow: number | undefined;
    let done = false;
    const totals = { ...state.totals };
    // Partitions wholly before the cutoff go first, each as one unit (see run/partitions/driver.ts).
    // A parallel run: range 0 alone, with its end as the cutoff (Start put every retirable leaf in it).
    if (prepared && (!range || range.index === 0)) {
      const retired = await retirePartitions({
        deps,
        state: range ? { ...state, cutoff: range.to } : state,
        prepared,
        side,
        tx: chunkClients[0],
        strategyOf: (name) => moduleNamed(name, deps.actions)?.partitions,
      });
      addTotals(totals, retired);
      if (!retired.complete)
        return await endStep({ cursor, batchRows, done, totals }, undefined, retired.restSeconds);
      if (range) await finishUnits(side, state.runId);
      // Pacing: the rest owed after the last unit comes before the first chunk (the other ranges go on meanwhile).
      // Left to the Pause state, the next step retires nothing and owes nothing: its chunks then go on.
      const owed = retired.restMs ?? 0;
      if (owed > 0) {
        if (!restsInStep(owed, deps.remainingMs(), 0))
          return await endStep({ cursor, batchRows, done, totals }, undefined, restSecondsForPause(owed));
        await sleep(owed);
      }
    }
    let turn = 0;
    let lagged: number | undefined;
    /** Pacing's rest after the step's last chunk, left to the Pause state (s). */
    let restSeconds: number | undefined;
    let current: InFlight = await begin(chunkClients[0], cursor, batchRows);

    for (;;) {
      const { taken } = current;
      if (current.waitSeconds !== undefined) {
        // The action is waiting for something outside (a restore): the Pause state waits, not this Lambda.
        return await endStep({ cursor, batchRows, done, totals }, undefined, Math.ceil(current.waitSeconds));
      }
      if (!taken) {
        // Only an empty chunk proves the end: a chunk can delete fewer rows than it locked (a row updated by
        // another session after the statement's snapshot is locked but not visible to the DELETE).
        if (range) await finishRange(current.client, state.runId, range.index);
        await deps.hooks?.beforeCommit?.();
        await current.client.query('COMMIT');
        await deps.hooks?.afterCommit?.();
        done = true;
        break;
      }
      // Overlapping: while this chunk is encoded and uploaded (Node), PostgreSQL already takes the next one on the
      // other connection. It commits only after this one: its ledger update waits for this chunk's run-row lock.
      // What a chunk takes: the last one's whole time, or this one's so far when none has finished (a backup's
      // first batch is all in prepare: without it the second batch would start whatever time is left).
      // The take's own time, before the lag reading below (a CloudWatch call) adds to the clock.
      const takeMs = performance.now() - current.startedAt;
      const chunkMs = Math.max(lastChunkMs, performance.now() - current.preparedAt);
      const timeLeft = deps.remainingMs() >= 2 * chunkMs + 1000;
      // Overlapping, the next chunk starts now, before this one commits: decide with the lag now. Otherwise the
      // lag is read after this chunk's COMMIT, with no transaction open.
      lagged = timeLeft && overlapping ? await replicaLagging() : undefined;
      if (overlapping) turn = 1 - turn;
      // The next chunk starts before this one commits; when this one's take was its transaction, its
      // take time already says how big the next may be (otherwise sizes would only change every other chunk).
      const nextRows = chunkAction.takeIsTransaction
        ? capByBytes(
            nextBatchRows(
              current.limit,
              takeMs,
              taken.sizingRows ?? taken.rows,
              chunking,
              chunkAction.targetHeadroom,
            ),
            bytesPerRow,
            chunking,
          )
        : batchRows;
      // Only an action that signals its statement was sent is waited for (see below).
      let nextSent: (() => void) | undefined;
      const nextOnItsWay = chunkAction.signalsSent
        ? new Promise<void>((resolve) => {
            nextSent = resolve;
          })
        : undefined;
      const next =
        overlapping && timeLeft && lagged === undefined
          ? begin(chunkClients[turn] as pg.Client, taken.cursor, nextRows, nextSent)
          : undefined;
      next?.catch(() => undefined);
      let completedAt: number;
      let bytes = 0;
      let objects = 0;
      try {
        // The next chunk's statement reaches the server before this one's completion holds the thread (Parquet
        // encoding is CPU here): its BEGIN, settings and lookups each need the event loop. Only for an action that
        // signals it; a take that fails first costs at most SENT_WAIT_MS.
        if (next && nextOnItsWay)
          await firstOf([nextOnItsWay, next.then(noop, noop)], deps.chunkSentWaitMs ?? SENT_WAIT_MS);
        const completed = await chunkAction.complete(taken, current.input);
        await deps.hooks?.beforeLedger?.();
        const ledger = new Ledger(current.client);
        const seq = await ledger.recordChunk({
          runId: state.runId,
          rows: taken.rows,
          bytes: completed.bytes,
          objects: completed.objects.length,
          minTime: taken.minTime,
          maxTime: taken.maxTime,
          minKey: taken.minKey,
          maxKey: taken.maxKey,
          durationMs: Math.round(performance.now() - current.startedAt),
          // A worker moves its range's cursor, never the run's.
          cursor: range ? undefined : taken.cursor,
          stepToken,
        });
        if (range) await recordRangeChunk(current.client, state.runId, range.index, taken.rows, taken.cursor);
        if (completed.objects.length > 0) {
          if (!completed.objectKind)
            throw new InvalidPayloadError(`${policy.action} listed objects without their kind`);
          await ledger.insertObjects(state.runId, seq, completed.objectKind, completed.objects);
        }
        await deps.hooks?.beforeCommit?.();
        await current.client.query('COMMIT');
        completedAt = performance.now();
        bytes = completed.bytes;
        objects = completed.objects.length;
        await deps.hooks?.afterCommit?.();
        // Only now are the objects listed: locking them (objectLock) before COMMIT would lock orphans too.
        // This chunk's objects only, while the step has time: Finish locks whatever is left.
        await chunkAction.afterCommit?.(completed, current.input);
      } catch (error) {
        await current.client.query('ROLLBACK').catch(() => undefined);
        await abandon(next);
        throw error;
      }

      const durationMs = Math.round(completedAt - current.startedAt);
      // The time budget counts the action's prepare too (a backup writes its parts there).
      lastChunkMs = Math.round(completedAt - current.preparedAt);
      // Pacing: the rest after this chunk, in proportion to the chunk's whole time — prepare, transaction and,
      // for an archive, the upload outside the database: it errs towards resting longer.
      const restMs = restAfter(restCoefficient, lastChunkMs);
      cursor = taken.cursor;
      totals.rows += taken.rows;
      totals.bytes += bytes;
      totals.objects += objects;
      totals.chunks += 1;
      deps.metrics?.recordChunk({ rows: taken.rows, bytes, objects, durationMs });
      deps.log.info('chunk committed', {
        runId: state.runId,
        policy: policy.name,
        rows: taken.rows,
        bytes,
        objects,
        durationMs,
        batchRows: current.limit,
        minTime: taken.minTime,
        maxTime: taken.maxTime,
        ...(taken.selection === undefined ? {} : { selection: taken.selection }),
        ...(restMs > 0 ? { sleepMs: restMs } : {}),
      });
      if (taken.rowBytes !== undefined) bytesPerRow = taken.rowBytes / taken.rows;
      batchRows = capByBytes(
        nextBatchRows(
          current.limit,
          durationMs,
          taken.sizingRows ?? taken.rows,
          chunking,
          chunkAction.targetHeadroom,
        ),
        bytesPerRow,
        chunking,
      );
      if (next) {
        current = await next;
        continue;
      }
      if (overlapping) break;
      if (!restsInStep(restMs, deps.remainingMs(), lastChunkMs)) {
        // A long rest, or one that no longer fits this step, is the Pause state's (see pacing.ts).
        restSeconds = restSecondsForPause(restMs);
        break;
      }
      if (restMs > 0) await sleep(restMs);
      lagged = await replicaLagging();
      if (lagged !== undefined) break;
      // Without a take that was the transaction, the size learnt from this whole chunk.
      current = await begin(
        chunkClients[0],
        taken.cursor,
        chunkAction.takeIsTransaction ? nextRows : batchRows,
      );
    }
    return await endStep({ cursor, batchRows, done, totals }, lagged, restSeconds);
  } catch (error) {
    throw classifyDatabaseError(error);
  } finally {
    // A connection still being opened would otherwise escape the clean-up below.
    await Promise.allSettled(chunkConnecting ?? []);
    await action?.close?.().catch(() => undefined);
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
  }
}

/**
 * The Chunk state of a parallel run, after its Workers map: done when every range is. A worker that stopped at
 * its own bound (iterations, the execution's age) left its range open: the run pauses and maps again (ranges
 * already done end at once), or continues as a new execution.
 */
async function gatherRanges(deps: StepDependencies, state: RunState): Promise<RunState> {
  const db = await deps.connect(state.chunking);
  try {
    const ledger = new Ledger(db);
    await applyMigrations(db);
    const run = await ledger.getRun(state.runId);
    if (run?.status !== 'running') {
      throw new LeaseLostError(`run ${state.runId} is not running (${run?.status ?? 'missing'})`);
    }
    const ranges = await listRanges(db, state.runId);
    if (ranges.length === 0) throw new InvalidPayloadError(`run ${state.runId} has no ranges in the ledger`);
    const done = ranges.every((r) => r.done);
    // Every map over open ranges runs at least one worker step: none since the last gather means the machine
    // has no Workers map (a definition older than the policy's parallelism): fail rather than loop forever.
    const rangeSteps = ranges.reduce((sum, r) => sum + r.steps, 0);
    if (!done && rangeSteps === (state.rangeSteps ?? 0)) {
      throw new InvalidPayloadError(
        `run ${state.runId} of parallel policy ${state.policy.name}: no worker ran since the last look; ` +
          'is the deployed state machine the one for this policy (cdk deploy)?',
      );
    }
    await ledger.renewLease(state.policy.name, state.runId, leaseTtlSeconds());
    const startedAt = state.executionStartedAt ? Date.parse(state.executionStartedAt) : Number.NaN;
    deps.log.info('ranges gathered', {
      runId: state.runId,
      policy: state.policy.name,
      ranges: ranges.length,
      done: ranges.filter((r) => r.done).length,
    });
    return {
      ...state,
      done,
      totals: { rows: run.rows, objects: run.objects, bytes: run.bytes, chunks: run.chunks },
      rangeSteps,
      iterations: state.iterations + 1,
      continueNow: !done && deps.now().getTime() - startedAt > MAX_EXECUTION_AGE_MS,
      waitSeconds: done ? 0 : state.chunking.pauseSeconds,
    };
  } catch (error) {
    throw classifyDatabaseError(error);
  } finally {
    await db.end().catch(() => undefined);
  }
}
