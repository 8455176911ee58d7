import type { Chunking } from '../../lib/contracts/config.ts';

/**
 * Share of `targetTransactionMs` the sizing aims at: time per row grows with the chunk (bigger sorts, WAL
 * flushes) and varies between chunks, so aiming at the target itself overshoots it (measured: 275 ms
 * transactions for a 250 ms target); the target is an upper bound.
 */
export const TARGET_HEADROOM = 0.8;

/**
 * Next chunk size, steering the chunk transaction towards `headroom` (default TARGET_HEADROOM) ×
 * `targetTransactionMs`; an action whose chunk times vary more asks for less (ChunkAction.targetHeadroom).
 * Growth and shrink per step are bounded (x2, /2) so one slow chunk (a checkpoint, a cold cache)
 * does not collapse the batch, and one fast chunk does not overshoot the lock-time budget.
 */
export function nextBatchRows(
  current: number,
  elapsedMs: number,
  rows: number,
  chunking: Chunking,
  headroom: number = TARGET_HEADROOM,
): number {
  // A short final chunk says nothing about the rate; keep the size.
  if (rows < current || elapsedMs <= 0) return current;
  const aimMs = chunking.targetTransactionMs * headroom;
  // More rows than the size (a purge window predicted from the last one's rows per second): the time `current`
  // rows would have taken.
  const factor = Math.min(2, Math.max(0.5, aimMs / ((elapsedMs * current) / rows)));
  return Math.min(chunking.maxRows, Math.max(chunking.minRows, Math.round(current * factor)));
}

/** After a statement timeout the chunk was too big for the server right now: halve it. */
export function shrinkAfterTimeout(current: number, chunking: Chunking): number {
  return Math.max(chunking.minRows, Math.floor(current / 2));
}

/**
 * Caps a row count so that a chunk's row data stays under `chunking.maxChunkBytes`, given the bytes per row
 * seen so far (never below one row: a single huge row still has to move).
 */
export function capByBytes(rows: number, bytesPerRow: number | undefined, chunking: Chunking): number {
  if (!bytesPerRow || bytesPerRow <= 0) return rows;
  return Math.max(1, Math.min(rows, Math.floor(chunking.maxChunkBytes / bytesPerRow)));
}

/** Characters of text one row holds (NULLs hold none): what bounds a chunk's memory. */
export function rowTextSize(row: ReadonlyArray<string | null>): number {
  let size = 0;
  for (const value of row) if (value !== null) size += value.length;
  return size;
}

/**
 * Time (ms) a chunk's main statement may still take when the action holds its transaction to
 * `targetTransactionMs` (purge): the target less what the transaction has spent and a reserve for the ledger
 * rows and COMMIT after it (a tenth of the target, at least 10 ms), at least 1 ms. Undefined for a chunk
 * already at `minRows`: the smallest chunk runs whatever it costs (a table whose rows each cost more than
 * the target, say through ON DELETE triggers, must still be purged), bounded by `statementTimeoutMs` only.
 */
export function statementBudgetMs(chunking: Chunking, limit: number, elapsedMs: number): number | undefined {
  if (limit <= chunking.minRows) return undefined;
  const reserveMs = Math.max(10, Math.round(chunking.targetTransactionMs / 10));
  return Math.max(1, Math.floor(chunking.targetTransactionMs - elapsedMs - reserveMs));
}
