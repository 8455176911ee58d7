/**
 * Archive chunk: DELETE … RETURNING a bounded, ordered, SKIP LOCKED slice → Parquet per Hive partition
 * → announce key (committed separately) → PutObject → verify → objects listed in the ledger by the
 * chunk loop in the same transaction. Any failure before COMMIT rolls the DELETE back: no row is lost;
 * an object uploaded for a rolled-back chunk stays announced-but-unlisted and is removed as an orphan.
 */
import type { ArchivePolicy } from '../../../lib/contracts/config.ts';
import type { ObjectStore } from '../../adapters/archive-store.ts';
import type { ArchivedObject } from '../../adapters/ledger/index.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { rowTextSize } from '../../core/batch-size.ts';
import { buildDeleteChunkStatement } from '../../core/chunk-sql.ts';
import { partitionEndOf, partitionOf } from '../../core/object-keys.ts';
import { planParquetColumns } from '../../core/parquet/column-plan.ts';
import type { StepLogger } from '../../run/dependencies.ts';
import {
  type ChunkAction,
  type ChunkInput,
  type CompletedChunk,
  keysetValues,
  summarizeTakenRows,
  type TakenChunk,
  targetOf,
} from '../chunk-action.ts';
import { NextEligibleLocator } from './next-eligible.ts';
import { lockListedObjects } from './object-lock.ts';
import { type ArchiveFaultHooks, ArchiveObjectWriter, type PendingRegistry } from './object-writer.ts';

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
  private readonly locator = new NextEligibleLocator();
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
    const withCursor = input.cursor !== null;
    const params: Array<string | number | null> = [input.cutoff, input.limit, ...keysetValues(input.cursor)];

    // Keep the chunk inside the Hive partition of the next eligible row, so the chunk is one object as
    // large as the chunk (S3 does not tier objects under 128 KB) rather than two pieces at every boundary.
    const next = await this.locator.find(tx, targetOf(input).target, params, withCursor);
    if (next === undefined) return undefined;
    let statement = buildDeleteChunkStatement(next.target, withCursor, { upperBound: true });
    let result = await tx.query<Array<string | null>>({
      text: statement.text,
      values: [...params, partitionEndOf(next.time, policy.archive.partitionBy)],
      rowMode: 'array',
    });
    if (result.rows.length === 0) {
      // Every eligible row of that partition is locked by other sessions: go on past the boundary.
      statement = buildDeleteChunkStatement(targetOf(input).target, withCursor);
      result = await tx.query<Array<string | null>>({
        text: statement.text,
        values: params,
        rowMode: 'array',
      });
    }
    const rows = result.rows;
    if (rows.length === 0) return undefined;
    const [timeAt = 0, ...keyAt] = statement.orderPositions;
    return {
      ...summarizeTakenRows(rows, statement.orderPositions),
      rowBytes: textSize(rows),
      values: rows,
      timeAt,
      keyAt,
      firstColumnAt: statement.firstColumnPosition,
    };
  }

  async complete(taken: TakenArchiveChunk, input: ChunkInput): Promise<CompletedChunk> {
    const policy = input.policy as ArchivePolicy;
    const plan = planParquetColumns(targetOf(input).table.columns);
    const objects: ArchivedObject[] = [];
    // Rows arrive ordered by time, so each Hive partition is one contiguous run of rows (normally one).
    for (const group of groupByPartition(taken.values, taken.timeAt, policy.archive.partitionBy)) {
      objects.push(
        await this.writer.write({
          policy,
          table: targetOf(input).table,
          runId: input.runId,
          partition: group.partition,
          plan,
          rows: group.rows,
          columnOffset: taken.firstColumnAt,
          timeAt: taken.timeAt,
          keyAt: taken.keyAt,
        }),
      );
    }
    return { bytes: objects.reduce((sum, o) => sum + o.bytes, 0), objects, objectKind: 'archive-copy' };
  }
}

/** The deleted rows, as returned, until they are encoded. */
export interface TakenArchiveChunk extends TakenChunk {
  readonly values: ReadonlyArray<Array<string | null>>;
  readonly timeAt: number;
  readonly keyAt: readonly number[];
  readonly firstColumnAt: number;
}

/** Characters of text the rows hold: what bounds a chunk's memory (see chunking.maxChunkBytes). */
function textSize(rows: ReadonlyArray<ReadonlyArray<string | null>>): number {
  let size = 0;
  for (const row of rows) size += rowTextSize(row);
  return size;
}

function* groupByPartition(
  rows: ReadonlyArray<Array<string | null>>,
  timeIndex: number,
  granularity: ArchivePolicy['archive']['partitionBy'],
): Generator<{ partition: string; rows: Array<Array<string | null>> }> {
  let current: { partition: string; rows: Array<Array<string | null>> } | undefined;
  for (const row of rows) {
    const partition = partitionOf(row[timeIndex] ?? '', granularity);
    if (!current || current.partition !== partition) {
      if (current) yield current;
      current = { partition, rows: [] };
    }
    current.rows.push(row);
  }
  if (current) yield current;
}
