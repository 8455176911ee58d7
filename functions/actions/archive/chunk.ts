/**
 * Archive chunk: DELETE … RETURNING a bounded, ordered slice (plainly under a 20 ms lock_timeout; SKIP LOCKED once a
 * row another session holds got in the way) → Parquet per Hive partition
 * → announce key (committed separately) → PutObject → verify → objects listed in the ledger by the
 * chunk loop in the same transaction. Any failure before COMMIT rolls the DELETE back: no row is lost;
 * an object uploaded for a rolled-back chunk stays announced-but-unlisted and is removed as an orphan.
 */
import type { ArchivePolicy } from '../../../lib/contracts/config.ts';
import type { ObjectStore } from '../../adapters/archive-store.ts';
import { CopyBuffers, copyOut } from '../../adapters/copy-out.ts';
import type { ArchivedObject } from '../../adapters/ledger/index.ts';
import { type Queryable, withLocalTimeout } from '../../adapters/transactions.ts';
import type { CatalogColumn } from '../../core/catalog-column.ts';
import { buildDeleteChunkStatement, type ChunkTarget, settingParams } from '../../core/chunk-sql.ts';
import { partitionEndOf, partitionOf } from '../../core/object-keys.ts';
import { type ParquetColumnPlan, planParquetColumns } from '../../core/parquet/column-plan.ts';
import { CopyBinaryDecoder } from '../../core/parquet/copy-binary.ts';
import { encodeParquetColumns } from '../../core/parquet/encode.ts';
import { ParquetInputError } from '../../core/parquet/errors.ts';
import type { StepLogger } from '../../run/dependencies.ts';
import {
  type ChunkAction,
  type ChunkInput,
  type ChunkSelection,
  type CompletedChunk,
  keysetValues,
  OPTIMISTIC_LOCK_WAIT_MS,
  SKIP_LOCKED_CHUNKS_AFTER_CONFLICT,
  type TakenChunk,
  targetOf,
} from '../chunk-action.ts';
import { NextEligibleLocator } from './next-eligible.ts';
import { lockListedObjects } from './object-lock.ts';
import { type ArchiveFaultHooks, ArchiveObjectWriter, type PendingRegistry } from './object-writer.ts';
import { copySelection, fromDecoded, type TakenColumns } from './taken-columns.ts';

/** Rows a COPY's decoder has room for at first, whatever the last chunk was (it grows past them). */
const MIN_DECODER_ROWS = 1_024;

/**
 * After a window came back empty while rows were eligible (more than a chunk's rows share one time), or short with
 * rows of its Hive partition left (a run of equal times held its end back), this many chunks are keyset slices
 * before a window is tried again: a keyset slice splits a run of equal times, a window never does.
 */
export const KEYSET_CHUNKS_AFTER_TIE = 8;

/** A window with fewer rows than this share of its limit ended early, unless its Hive partition (or the run) did. */
const SHORT_WINDOW_SHARE = 0.9;

/** SQLSTATE serialization_failure: under READ COMMITTED, a row moved to another partition by a concurrent UPDATE. */
const SERIALIZATION_FAILURE = '40001';

/** Where the objects of committed chunks are locked from (archive.objectLock): a connection outside the chunk transactions. */
export interface CommittedObjectLocking {
  readonly db: Queryable;
  readonly now: () => Date;
  /** The step's time left (ms). */
  readonly remainingMs: () => number;
  readonly log: StepLogger;
}

/**
 * Step time (ms) below which a chunk's objects are left for Finish to lock: the next chunk, already taken
 * and holding its row locks, needs the time to complete and commit.
 */
const AFTER_COMMIT_LOCK_RESERVE_MS = 10_000;

export class ArchiveAction implements ChunkAction<TakenArchiveChunk> {
  // Its complete encodes Parquet on this thread: the loop lets the next chunk's DELETE go out first.
  readonly signalsSent = true;
  private readonly locator = new NextEligibleLocator();
  /** After a slice met a row another session holds, this many are taken with SKIP LOCKED before trying plainly. */
  private skipLockedChunksLeft = 0;
  /** After an empty or short window (see KEYSET_CHUNKS_AFTER_TIE), this many chunks are keyset slices. */
  private keysetChunksLeft = 0;
  /** The Hive partition end of the last chunk when it was a short window: the next chunk there says why. */
  private shortWindowBefore: string | undefined;
  /** COPY output bytes per row of the last chunk (0 before the first): the next chunk's buffer is sized from it. */
  private copyBytesPerRow = 0;
  /** Rows of the last chunk's COPY (0 before the first): the next decoder's room. */
  private lastChunkRows = 0;
  /** The COPY buffers of chunks already encoded, written again by the next chunks. */
  private readonly copyBuffers = new CopyBuffers();
  private readonly writer: ArchiveObjectWriter;

  constructor(
    private readonly store: ObjectStore,
    pending: PendingRegistry,
    hooks: ArchiveFaultHooks = {},
    private readonly locking?: CommittedObjectLocking,
  ) {
    this.writer = new ArchiveObjectWriter(store, pending, hooks);
  }

  /**
   * With objectLock: locks this chunk's own objects, while the step has time. The next chunk's transaction is
   * open meanwhile, so nothing else is locked here: Finish locks whatever is left (a crash, a deadline, a
   * partition unit's objects, an object S3 holds other bytes for, which Finish reports). A failure only logs.
   */
  async afterCommit(completed: CompletedChunk, input: ChunkInput): Promise<void> {
    const policy = input.policy as ArchivePolicy;
    const locking = this.locking;
    if (!locking || !policy.archive.objectLock || completed.objects.length === 0) return;
    try {
      await lockListedObjects(locking.db, this.store, policy, {
        scope: { keys: completed.objects.map((object) => object.key) },
        now: locking.now,
        timeLeft: () => locking.remainingMs() > AFTER_COMMIT_LOCK_RESERVE_MS,
        mismatches: 'leave',
        log: locking.log,
      });
    } catch (error) {
      locking.log.warn('object lock after commit failed; Finish retries it', {
        runId: input.runId,
        policy: policy.name,
        error: (error as Error).name,
      });
    }
  }

  async take(tx: Queryable, input: ChunkInput): Promise<TakenArchiveChunk | undefined> {
    const policy = input.policy as ArchivePolicy;
    const { table, target } = targetOf(input);
    const withCursor = input.cursor !== null;
    const params: Array<string | number | null> = [input.cutoff, input.limit, ...keysetValues(input.cursor)];
    const plan = planParquetColumns(table.columns);

    // Keep the chunk inside the Hive partition of the next eligible row, so the chunk is one object as
    // large as the chunk (S3 does not tier objects under 128 KB) rather than two pieces at every boundary.
    const next = await this.locator.find(tx, target, params, withCursor);
    if (next === undefined) return undefined;
    const partitionEnd = partitionEndOf(next.time, policy.archive.partitionBy);
    const boundedParams = [...params, partitionEnd];
    // The last chunk was a short window and this one starts in the same Hive partition: not the partition's end
    // but a run of equal times cut the window short.
    if (this.shortWindowBefore === partitionEnd) this.keysetChunksLeft = KEYSET_CHUNKS_AFTER_TIE + 1;
    this.shortWindowBefore = undefined;
    const slice = {
      withCursor,
      columns: table.columns,
      plan,
      sent: input.sent,
      lockTimeoutMs: input.chunking.lockTimeoutMs,
      skipLocked: this.skipLockedChunksLeft > 0,
      maxChunkBytes: input.chunking.maxChunkBytes,
      // A filter the index does not serve would be walked twice (the window's end, then its rows): with a
      // selective one that costs more than the keyset slice saves.
      windowed: next.timeIndexed && !target.filter && !target.pending,
    };
    // Counted per chunk, not per statement: a chunk past a Hive partition boundary may take two.
    if (slice.skipLocked) this.skipLockedChunksLeft--;
    if (this.keysetChunksLeft > 0) this.keysetChunksLeft--;
    let taken = await this.deleteChunk(tx, {
      ...slice,
      target: next.target,
      upperBound: true,
      params: boundedParams,
    });
    if (taken.columns.rows === 0) {
      taken.release();
      // Every eligible row of that partition is locked by other sessions: go on past the boundary.
      taken = await this.deleteChunk(tx, { ...slice, target, upperBound: false, params, windowed: false });
    }
    if (taken.selection === 'window' && taken.columns.rows < input.limit * SHORT_WINDOW_SHARE)
      this.shortWindowBefore = partitionEnd;
    const { columns, bytes, release } = taken;
    if (columns.rows === 0) {
      release();
      return undefined;
    }
    const first = columns.orderTextAt(0);
    const last = columns.orderTextAt(columns.rows - 1);
    return {
      rows: columns.rows,
      cursor: { kind: 'keyset', values: last },
      minTime: first[0] ?? null,
      maxTime: last[0] ?? null,
      minKey: first.slice(1),
      maxKey: last.slice(1),
      rowBytes: bytes,
      selection: taken.selection,
      columns,
      plan,
      release,
    };
  }

  /**
   * DELETE … RETURNING one chunk, read through COPY binary into column vectors (text values arrive in the
   * client encoding, UTF-8, as on the row protocol: textsend converts).
   */
  private async deleteChunk(
    tx: Queryable,
    slice: {
      readonly target: ChunkTarget;
      readonly withCursor: boolean;
      readonly upperBound: boolean;
      readonly params: ReadonlyArray<string | number | null>;
      readonly columns: readonly CatalogColumn[];
      readonly plan: readonly ParquetColumnPlan[];
      readonly sent: (() => void) | undefined;
      /** The policy's lock_timeout, restored after the optimistic DELETE's short one. */
      readonly lockTimeoutMs: number;
      /** This chunk is one of those taken with SKIP LOCKED after a conflict. */
      readonly skipLocked: boolean;
      /** The policy's byte budget of a chunk: the most the COPY buffer is sized for up front. */
      readonly maxChunkBytes: number;
      /** The time column is indexed: the optimistic DELETE may be a window (an index range scan). */
      readonly windowed: boolean;
    },
  ): Promise<{ columns: TakenColumns; bytes: number; release: () => void; selection: ChunkSelection }> {
    const {
      target,
      withCursor,
      upperBound,
      params,
      columns,
      plan,
      sent,
      lockTimeoutMs,
      skipLocked,
      maxChunkBytes,
      windowed,
    } = slice;
    const { prelude, param } = settingParams(params);
    const build = (shape: 'skip' | 'none' | 'window') => {
      const statement = buildDeleteChunkStatement(target, withCursor, {
        upperBound,
        param,
        locking: shape === 'skip' ? 'skip' : 'none',
        window: shape === 'window',
      });
      return { statement, selection: copySelection(statement, columns, plan) };
    };
    await tx.query(prelude);
    // copyOut sends the statement before its first await: the server works on the DELETE from here on.
    // Sized from the last chunk's bytes per row: the output is copied into place while it streams. A hint only,
    // capped by the chunk's byte budget: the last chunk may have been a few wide rows and this one's row limit
    // sized for narrow ones (a 200 KB row alone before a partition boundary asked for 21 GB).
    const expectedBytes = Math.min(
      this.copyBytesPerRow * Number(params[1] ?? 0) * 1.05,
      maxChunkBytes * 1.05,
    );
    const limit = Number(params[1] ?? 0);
    const run = async ({ selection }: ReturnType<typeof build>) => {
      // Rows are decoded as they arrive, while the server deletes and sends the rest. The decoder is made once
      // the statement is out (its first rows come in a later event), with room for about the last chunk's rows.
      let decoder: CopyBinaryDecoder | undefined;
      const out = copyOut(tx, selection.text, {
        expectedBytes,
        buffers: this.copyBuffers,
        onData: (data, length) => decoder?.feed(data, length),
      });
      sent?.();
      decoder = new CopyBinaryDecoder(
        selection.readers,
        Math.min(limit, Math.max(MIN_DECODER_ROWS, Math.ceil(this.lastChunkRows * 1.1))),
      );
      return { ...(await out), decoder };
    };
    let chosen = build('skip');
    let chosenBy: ChunkSelection = 'skip-locked';
    let result: Awaited<ReturnType<typeof run>> | undefined;
    if (!skipLocked && this.skipLockedChunksLeft === 0) {
      // Optimistic: no row lock before the DELETE, waiting at most OPTIMISTIC_LOCK_WAIT_MS on a row another
      // session holds; then this slice again with SKIP LOCKED, and the next chunks straight away (as purge).
      // A window first where the time column is indexed; when it is empty (more than a chunk's rows share the
      // next time), the ordered keyset slice, which splits a tie.
      const shapes =
        windowed && this.keysetChunksLeft === 0 ? (['window', 'none'] as const) : (['none'] as const);
      for (const shape of shapes) {
        const optimistic = build(shape);
        const plain = await withLocalTimeout(
          tx,
          'archive_take',
          {
            setting: 'lock_timeout',
            ms: Math.min(OPTIMISTIC_LOCK_WAIT_MS, lockTimeoutMs),
            restoreMs: lockTimeoutMs,
          },
          () => run(optimistic),
          // 40001: a row another session moved to another partition meanwhile; SKIP LOCKED passes over it.
          [SERIALIZATION_FAILURE],
        );
        if (!plain.done) {
          this.skipLockedChunksLeft = SKIP_LOCKED_CHUNKS_AFTER_CONFLICT;
          break;
        }
        if (shape === 'window' && plain.value.rows === 0) {
          plain.value.release();
          this.keysetChunksLeft = KEYSET_CHUNKS_AFTER_TIE;
          continue;
        }
        chosen = optimistic;
        result = plain.value;
        chosenBy = shape === 'window' ? 'window' : 'keyset';
        break;
      }
    }
    const { statement, selection } = chosen;
    const { data, rows, release, decoder } = result ?? (await run(chosen));
    if (rows > 0) {
      this.copyBytesPerRow = data.length / rows;
      this.lastChunkRows = rows;
    }
    const decoded = decoder.finish(data);
    // Every row the DELETE removed must be in the object: a count that differs rolls the chunk back.
    if (decoded.rows !== rows) {
      throw new ParquetInputError(
        `the chunk deleted ${rows} rows but ${decoded.rows} were read from its COPY`,
      );
    }
    return {
      columns: fromDecoded(decoded, statement, selection),
      bytes: data.length,
      release,
      selection: chosenBy,
    };
  }

  async complete(taken: TakenArchiveChunk, input: ChunkInput): Promise<CompletedChunk> {
    const policy = input.policy as ArchivePolicy;
    const { columns, plan } = taken;
    const objects: ArchivedObject[] = [];
    try {
      // Rows arrive ordered by time, so each Hive partition is one contiguous run of rows (normally one).
      for (const group of partitionRuns(columns, policy.archive.partitionBy)) {
        const first = columns.orderTextAt(group.start);
        const last = columns.orderTextAt(group.end - 1);
        const slice = columns.values.map((vector) =>
          group.start === 0 && group.end === columns.rows ? vector : vector.slice(group.start, group.end),
        );
        objects.push(
          await this.writer.write({
            policy,
            table: targetOf(input).table,
            runId: input.runId,
            partition: group.partition,
            content: {
              rows: group.end - group.start,
              encode: (compression) => encodeParquetColumns(plan, slice, { compression }),
              minTime: first[0] ?? '',
              maxTime: last[0] ?? '',
              minKey: first.slice(1),
              maxKey: last.slice(1),
            },
          }),
        );
      }
    } finally {
      // Every object of the chunk is encoded (or the chunk failed): nothing reads its COPY output any more.
      taken.release();
    }
    return { bytes: objects.reduce((sum, o) => sum + o.bytes, 0), objects, objectKind: 'archive-copy' };
  }
}

/** The deleted rows, column by column, until they are encoded. */
export interface TakenArchiveChunk extends TakenChunk {
  readonly columns: TakenColumns;
  readonly plan: readonly ParquetColumnPlan[];
  /** Hands the COPY buffer `columns` reads from to the next chunks: once every object is encoded. */
  readonly release: () => void;
}

/**
 * Contiguous runs of rows of one Hive partition (rows come ordered by time). A row on the same day as the one
 * before is in its partition: the partition's text is only worked out where the day changes.
 */
function* partitionRuns(
  columns: TakenColumns,
  granularity: ArchivePolicy['archive']['partitionBy'],
): Generator<{ partition: string; start: number; end: number }> {
  let current: { partition: string; start: number } | undefined;
  let previousDay: number | undefined;
  for (let row = 0; row < columns.rows; row++) {
    const day = columns.dayAt(row);
    if (current && day !== undefined && day === previousDay) continue;
    previousDay = day;
    const partition = partitionOf(columns.timeTextAt(row) ?? '', granularity);
    if (current?.partition !== partition) {
      if (current) yield { ...current, end: row };
      current = { partition, start: row };
    }
  }
  if (current) yield { ...current, end: columns.rows };
}
