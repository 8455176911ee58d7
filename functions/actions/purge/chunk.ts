/**
 * Purge chunk: delete one time window of eligible rows. Nothing happens outside the database, so
 * `complete` has nothing to do: the chunk loop records the chunk and commits.
 *
 * A window is `start ≤ time < end` where `end` is the time of the (limit+1)-th eligible row: a plain range
 * DELETE (index range scan, no sort, no row-lock records, nothing returned) runs as fast per row as one big
 * `DELETE … WHERE time < cutoff`. Hot rows must never hold the run up, so that DELETE may wait for a row
 * lock only briefly (OPTIMISTIC_LOCK_WAIT_MS, inside a savepoint): when it meets a row another session
 * holds, the window is deleted again with FOR UPDATE SKIP LOCKED (the held rows stay for the next run), and
 * the next windows go straight to SKIP LOCKED for a while.
 *
 * Every window and keyset transaction (not soft delete's UPDATE, which anonymize shares) stays within
 * `targetTransactionMs`: sizing from the last chunks aims at 0.7 of it, and each
 * DELETE runs with a statement timeout of what the transaction has left (core/batch-size.ts statementBudgetMs),
 * so a window the server has grown slower for is rolled back and taken again at half the rows
 * (TransactionBudgetError) instead of holding its locks and its snapshot longer than the target.
 *
 * Cursors: `[end]` after a window (every row before `end` is done), or the keyset `[time, key…]` inside a
 * run of rows that share one time value and outnumber a chunk (then keyset chunks, ordered and locked,
 * take them; see buildPurgeChunkStatement).
 */

import type { PurgePolicy } from '../../../lib/contracts/policy.ts';
import { type Queryable, withLocalTimeout } from '../../adapters/transactions.ts';
import { statementBudgetMs } from '../../core/batch-size.ts';
import {
  buildPurgeChunkStatement,
  buildPurgeWindowStatements,
  type PurgeWindowStatements,
  type WindowStart,
} from '../../core/chunk-sql.ts';
import { ForeignKeyError, InvalidPayloadError, TransactionBudgetError } from '../../core/errors.ts';
import { describeError } from '../../core/redact-database-error.ts';
import {
  type ChunkAction,
  type ChunkInput,
  type ChunkSelection,
  type CompletedChunk,
  OPTIMISTIC_LOCK_WAIT_MS,
  SKIP_LOCKED_CHUNKS_AFTER_CONFLICT,
  summarizeTakenRows,
  type TakenChunk,
  targetOf,
} from '../chunk-action.ts';
import { softDeleteChunk } from './soft-delete.ts';

/** SQLSTATE foreign_key_violation: a row still referenced by a NO ACTION / RESTRICT foreign key. */
const FOREIGN_KEY_VIOLATION = '23503';
/** A predicted window with at least this share of `limit` rows sizes the next chunk as a full one. */
const PREDICTED_FULL = 0.95;
/** Longest predicted window (s), about 31 years: a longer one could overflow the time type. */
const MAX_PREDICTED_SPAN_SECONDS = 1e9;
/** A lock wait inside a budgeted DELETE times out this much (ms) before the statement would. */
const LOCK_BEFORE_BUDGET_MS = 5;
/** A predicted window aims at no more than this share of `maxRows`: it holds more rows than aimed at half the time. */
const PREDICTED_MAX_ROWS_SHARE = 0.8;
/** A predicted window holding fewer than this share of the rows it aimed at forgets the rate. */
const SPARSER_THAN_PREDICTED = 0.5;
/** SQLSTATE query_canceled: here, the statement timeout set from the transaction's budget. */
const STATEMENT_TIMEOUT = '57014';

interface Start {
  readonly kind: WindowStart;
  readonly time?: string | undefined;
}

type Row = Array<string | null>;

export class PurgeAction implements ChunkAction {
  readonly takeIsTransaction = true;
  /**
   * Measured (npm run bench -- purge, 1 M rows, 250 ms target, one chunk connection): aiming at 0.8 × target gave
   * a longest transaction of 248 ms (a chunk's later rows cost more than its first: pages a fresh backend has not
   * touched yet); 0.7 gave 193–215 ms at the same rate.
   */
  readonly targetHeadroom = 0.7;
  private skipLockedWindowsLeft = 0;
  /**
   * Eligible rows per second of time in the last window (what a predicted window's span is sized from); unknown
   * at a step's start (each Chunk step has its own action) and after a predicted window went wrong.
   */
  private rowsPerSecond: number | undefined;

  async take(tx: Queryable, input: ChunkInput): Promise<TakenChunk | undefined> {
    if ((input.policy as PurgePolicy).softDelete) return softDeleteChunk(tx, input);
    try {
      return await this.takeChunk(tx, input);
    } catch (error) {
      if ((error as { code?: string }).code === FOREIGN_KEY_VIOLATION) {
        // The start step checked that child policies exist; their rows still reference this chunk's rows.
        // Redacted, and not kept as the cause: the error's DETAIL holds the referenced key's values.
        throw new ForeignKeyError(
          `purge of ${targetOf(input).table.schema}.${targetOf(input).table.table} stopped: ${describeError(error)}; ` +
            'run the child policies first (their retention must cover the referencing rows)',
          {
            policy: input.policy.name,
            table: `${targetOf(input).table.schema}.${targetOf(input).table.table}`,
            sqlstate: FOREIGN_KEY_VIOLATION,
          },
        );
      }
      throw error;
    }
  }

  async complete(): Promise<CompletedChunk> {
    return { bytes: 0, objects: [] };
  }

  private async takeChunk(tx: Queryable, input: ChunkInput): Promise<TakenChunk | undefined> {
    const began = performance.now();
    let start: Start = { kind: 'first' };
    const cursor = input.cursor;
    if (cursor?.kind === 'window') {
      start = { kind: 'at', time: cursor.end };
    } else if (cursor?.kind === 'keyset') {
      // Inside a run of rows sharing one time value: go on after the cursor's key, then past that time.
      const time = cursor.values[0] as string;
      const taken = await this.takeSameTime(tx, input, time, cursor.values, began);
      if (taken) return taken;
      start = { kind: 'after', time };
    } else if (cursor !== null) {
      throw new InvalidPayloadError(`a purge chunk cannot resume from a ${cursor.kind} cursor`);
    }
    // Each pass moves `start` strictly forward, so this ends; it loops only past windows whose every row
    // another session holds (or that vanished since the probe).
    const target = targetOf(input).target;
    let mayPredict = true;
    for (;;) {
      const statements = buildPurgeWindowStatements(target, start.kind);
      const startParams = start.kind === 'first' ? [] : [start.time];
      const spanSeconds = mayPredict ? this.predictedSpanSeconds(input) : undefined;
      const predicted = spanSeconds !== undefined;
      const probe = (
        await tx.query<Row>({
          text: predicted ? statements.predicted : statements.probe,
          values: [input.cutoff, predicted ? String(spanSeconds) : input.limit, ...startParams],
          rowMode: 'array',
        })
      ).rows[0] as Row;
      const [bound = null, end = null] = probe;
      const first = probe.slice(2, 2 + statements.terms);
      const last = probe.slice(2 + statements.terms, 2 + 2 * statements.terms);
      const span = probe[2 + 2 * statements.terms] ?? null;
      const firstTime = first[0] ?? null;
      if (firstTime === null || end === null) return undefined;
      if (predicted && bound === null) {
        // An infinite first time: no end follows from it. Probe this window.
        mayPredict = false;
        continue;
      }
      if (bound === firstTime) {
        // More eligible rows share this time value than one chunk takes: keyset chunks through them.
        const taken = await this.takeSameTime(tx, input, firstTime, null, began);
        if (taken) return taken;
        start = { kind: 'after', time: firstTime };
        continue;
      }
      const { rows, selection } = await this.removePredictedOrProbed(
        tx,
        input,
        statements,
        [input.cutoff, end, ...startParams],
        began,
        predicted,
      );
      if (rows > 0) {
        // Rows per second between the window's first and last rows: n rows span n − 1 gaps (the window's end
        // would count the time after its last row too, a gap before a stretch of rows included).
        // A predicted window far sparser than aimed at (the rows thinned out, after a burst say) forgets the rate:
        // measured from its few rows, the next windows would hold a row or two each. The next window is probed.
        const spanValue = span === null ? 0 : Number(span);
        if (predicted && rows < this.aimedRows(input) * SPARSER_THAN_PREDICTED)
          this.rowsPerSecond = undefined;
        else if (spanValue > 0 && rows > 1) this.rowsPerSecond = (rows - 1) / spanValue;
        // Time and key ranges as the probe saw the window: its first and last rows in keyset order.
        const lastRow = last[0] === null || last[0] === undefined ? first : last;
        const ends = summarizeTakenRows([first, lastRow], [...first.keys()]);
        return {
          ...ends,
          rows,
          // A predicted window holds the rows of its time span, not `limit` exactly: within PREDICTED_FULL of it,
          // it sizes the next chunk as a full one would (fewer rows keep the size, as a short last chunk does).
          ...(predicted && rows >= input.limit * PREDICTED_FULL
            ? { sizingRows: Math.max(rows, input.limit) }
            : {}),
          cursor: { kind: 'window', end },
          selection: predicted && selection === 'window' ? 'predicted-window' : selection,
        };
      }
      start = { kind: 'at', time: end };
    }
  }

  /**
   * Seconds of the next window when its end can be predicted: `limit` rows at the last window's rows per
   * second, for a `timestamp`/`timestamptz` column, above minRows, once a probed window has measured the rate.
   */
  private predictedSpanSeconds(input: ChunkInput): number | undefined {
    if (this.rowsPerSecond === undefined) return undefined;
    if (targetOf(input).target.timeColumn.kind === 'date') return undefined;
    // At minRows no transaction budget cuts a window short (core/batch-size.ts statementBudgetMs): a predicted
    // one spanning a burst of rows would be deleted whole before its row count could refuse it.
    if (input.limit <= input.chunking.minRows) return undefined;
    const seconds = this.aimedRows(input) / this.rowsPerSecond;
    // Under a millisecond: rows bunch up at single instants (the probe finds runs of equal times); over
    // MAX_PREDICTED_SPAN_SECONDS a sparse table's window could run past the type's range.
    if (!(seconds >= 0.001) || seconds > MAX_PREDICTED_SPAN_SECONDS) return undefined;
    return seconds;
  }

  /** Rows a predicted window aims at. */
  private aimedRows(input: ChunkInput): number {
    return Math.min(input.limit, input.chunking.maxRows * PREDICTED_MAX_ROWS_SHARE);
  }

  /**
   * The window's DELETE. A predicted window that ran over its budget or held more than `maxRows` (the rows grew
   * denser than the last window's, or the server slower) forgets the rate, and the chunk loop takes the chunk
   * again, smaller: the probe then finds that window's exact end (or a run of equal times) and measures the rate
   * the next prediction starts from.
   */
  private async removePredictedOrProbed(
    tx: Queryable,
    input: ChunkInput,
    statements: PurgeWindowStatements,
    params: Array<string | undefined>,
    began: number,
    predicted: boolean,
  ): Promise<{ rows: number; selection: ChunkSelection }> {
    try {
      const removed = await this.removeWindow(tx, input, statements, params, began);
      if (predicted && removed.rows > input.chunking.maxRows)
        throw new TransactionBudgetError(
          `a predicted purge window held ${removed.rows} rows, over maxRows (${input.chunking.maxRows})`,
          { policy: input.policy.name },
        );
      return removed;
    } catch (error) {
      if (predicted && error instanceof TransactionBudgetError) this.rowsPerSecond = undefined;
      throw error;
    }
  }

  /** Plain DELETE of the window, waiting at most OPTIMISTIC_LOCK_WAIT_MS on a held row; else SKIP LOCKED. */
  private async removeWindow(
    tx: Queryable,
    input: ChunkInput,
    statements: PurgeWindowStatements,
    params: Array<string | undefined>,
    began: number,
  ): Promise<{ rows: number; selection: ChunkSelection }> {
    const skippingLocked = async () => {
      const { rows } = await withinBudget(tx, input, began, () =>
        tx.query<Row>({ text: statements.removeSkippingLocked, values: params, rowMode: 'array' }),
      );
      return { rows: Number(rows[0]?.[0] ?? 0), selection: 'skip-locked' as const };
    };
    if (this.skipLockedWindowsLeft > 0) {
      this.skipLockedWindowsLeft--;
      return skippingLocked();
    }
    const plain = await withinBudget(tx, input, began, () =>
      withLocalTimeout(
        tx,
        'purge_window',
        { setting: 'lock_timeout', ms: OPTIMISTIC_LOCK_WAIT_MS, restoreMs: input.chunking.lockTimeoutMs },
        () => tx.query({ text: statements.remove, values: params }),
      ),
    );
    if (plain.done) return { rows: plain.value.rowCount ?? 0, selection: 'window' };
    this.skipLockedWindowsLeft = SKIP_LOCKED_CHUNKS_AFTER_CONFLICT;
    return skippingLocked();
  }

  /**
   * Keyset chunk (ordered, FOR UPDATE SKIP LOCKED, `limit` rows) among the eligible rows at exactly `time`,
   * after `cursor` when given. Undefined when none is left there that no other session holds.
   */
  private async takeSameTime(
    tx: Queryable,
    input: ChunkInput,
    time: string,
    cursor: ReadonlyArray<string | null> | null,
    began: number,
  ): Promise<TakenChunk | undefined> {
    const statement = buildPurgeChunkStatement(targetOf(input).target, cursor !== null, { atTime: true });
    const { rows } = await withinBudget(tx, input, began, () =>
      tx.query<Row>({
        text: statement.text,
        values: [input.cutoff, input.limit, ...(cursor ?? []), time],
        rowMode: 'array',
      }),
    );
    const summary = rows[0];
    if (!summary || Number(summary[0]) === 0) return undefined;
    const first = summary.slice(1, 1 + statement.terms);
    const last = summary.slice(1 + statement.terms);
    const ends = summarizeTakenRows([first, last], [...first.keys()]);
    // Always with SKIP LOCKED: an ordered slice of one instant's rows, as the archive's keyset slices.
    return { ...ends, rows: Number(summary[0]), selection: 'keyset' };
  }
}

/**
 * Runs a chunk's DELETE with the statement timeout set to what its transaction (begun at `began`) has left of
 * `targetTransactionMs`, then back to the policy's `statementTimeoutMs` for the ledger rows and COMMIT. The
 * timeout expiring becomes TransactionBudgetError (the chunk loop takes the chunk again, smaller). A lock wait
 * is bounded by the same budget, a little earlier, so that it fails as the lock timeout it is (55P03: retried
 * with backoff, the chunk's size kept) rather than as a chunk too big. When the statements before the DELETE
 * (probe, lookups) already took half the target, they are what is slow, not the DELETE: a smaller chunk would
 * pay them again, so the DELETE runs unbudgeted and the sizing shrinks the next chunk.
 */
async function withinBudget<T>(
  tx: Queryable,
  input: ChunkInput,
  began: number,
  work: () => Promise<T>,
): Promise<T> {
  const elapsedMs = performance.now() - began;
  const budgetMs = statementBudgetMs(input.chunking, input.limit, elapsedMs);
  if (budgetMs === undefined || elapsedMs > input.chunking.targetTransactionMs / 2) return work();
  const setTimeouts = (statementMs: number, lockMs: number) =>
    tx.query(`SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)`, [
      `${statementMs}ms`,
      `${lockMs}ms`,
    ]);
  await setTimeouts(
    budgetMs,
    Math.min(input.chunking.lockTimeoutMs, Math.max(1, budgetMs - LOCK_BEFORE_BUDGET_MS)),
  );
  let value: T;
  try {
    value = await work();
  } catch (error) {
    if ((error as { code?: string }).code !== STATEMENT_TIMEOUT) throw error;
    throw new TransactionBudgetError(
      `a purge chunk of ${input.limit} rows ran past the ${budgetMs} ms left of its ${input.chunking.targetTransactionMs} ms transaction`,
      { policy: input.policy.name, sqlstate: STATEMENT_TIMEOUT, cause: error },
    );
  }
  await setTimeouts(input.chunking.statementTimeoutMs, input.chunking.lockTimeoutMs);
  return value;
}
