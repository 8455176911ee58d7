/**
 * Archive chunk: DELETE … RETURNING a bounded, ordered, SKIP LOCKED slice → Parquet per Hive partition
 * → announce key (committed separately) → PutObject → verify → objects listed in the ledger by the
 * chunk loop in the same transaction. Any failure before COMMIT rolls the DELETE back: no row is lost;
 * an object uploaded for a rolled-back chunk stays announced-but-unlisted and is removed as an orphan.
 */
import { randomUUID } from 'node:crypto';
import type { ArchivePolicy } from '../../lib/contracts/config.ts';
import { type ObjectStore, sha256Hex } from '../adapters/archive-store.ts';
import type { Queryable } from '../adapters/catalog.ts';
import type { ArchivedObject } from '../adapters/ledger.ts';
import { rowTextSize } from '../core/batch-size.ts';
import { buildDeleteChunkStatement } from '../core/chunk-sql.ts';
import { objectKey, partitionEndOf, partitionOf } from '../core/object-keys.ts';
import { planParquetColumns } from '../core/parquet/column-plan.ts';
import { encodeParquet } from '../core/parquet/encode.ts';
import {
  type ChunkAction,
  type ChunkInput,
  type CompletedChunk,
  summarizeTakenRows,
  type TakenChunk,
} from './action.ts';
import { NextEligibleLocator } from './next-eligible.ts';

/** Announces a key before upload on a connection outside the chunk transaction. */
export interface PendingRegistry {
  announcePending(bucket: string, key: string, runId: string): Promise<void>;
}

/** Test seams: each is awaited at its point in the chunk and may throw to inject a fault. */
export interface ArchiveFaultHooks {
  afterUpload?(key: string): Promise<void> | void;
}

export class ArchiveAction implements ChunkAction<TakenArchiveChunk> {
  private readonly locator = new NextEligibleLocator();

  constructor(
    private readonly store: ObjectStore,
    private readonly pending: PendingRegistry,
    private readonly hooks: ArchiveFaultHooks = {},
  ) {}

  async take(tx: Queryable, input: ChunkInput): Promise<TakenArchiveChunk | undefined> {
    const policy = input.policy as ArchivePolicy;
    const withCursor = input.cursor !== null;
    const params: Array<string | number | null> = [input.cutoff, input.limit, ...(input.cursor ?? [])];

    // Keep the chunk inside the Hive partition of the next eligible row, so the chunk is one object as
    // large as the chunk (S3 does not tier objects under 128 KB) rather than two pieces at every boundary.
    const next = await this.locator.find(tx, input.target, params, withCursor);
    if (next === undefined) return undefined;
    let statement = buildDeleteChunkStatement(next.target, withCursor, { upperBound: true });
    let result = await tx.query<Array<string | null>>({
      text: statement.text,
      values: [...params, partitionEndOf(next.time, policy.archive.partitionBy)],
      rowMode: 'array',
    });
    if (result.rows.length === 0) {
      // Every eligible row of that partition is locked by other sessions: go on past the boundary.
      statement = buildDeleteChunkStatement(input.target, withCursor);
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
    const plan = planParquetColumns(input.table.columns);
    const keyOf = (row: ReadonlyArray<string | null>) => taken.keyAt.map((i) => row[i] ?? null);
    const objects: ArchivedObject[] = [];
    let bytes = 0;
    // Rows arrive ordered by time, so each Hive partition is one contiguous run of rows (normally one).
    for (const group of groupByPartition(taken.values, taken.timeAt, policy.archive.partitionBy)) {
      const body = encodeParquet(plan, group.rows, {
        compression: policy.archive.compression,
        columnOffset: taken.firstColumnAt,
      });
      const sha256 = sha256Hex(body);
      const key = objectKey({
        policyName: policy.name,
        schema: input.table.schema,
        table: input.table.table,
        partition: group.partition,
        runId: input.runId,
        unique: randomUUID(),
      });
      await this.pending.announcePending(this.store.bucket, key, input.runId);
      await this.store.put(key, body, sha256, { rows: String(group.rows.length), run: input.runId });
      await this.hooks.afterUpload?.(key);
      await this.store.verify({ key, bytes: body.byteLength, sha256 }, policy.archive.verify);
      const first = group.rows[0] as Array<string | null>;
      const last = group.rows[group.rows.length - 1] as Array<string | null>;
      objects.push({
        bucket: this.store.bucket,
        key,
        rows: group.rows.length,
        bytes: body.byteLength,
        sha256,
        partition: group.partition,
        minTime: first[taken.timeAt] ?? '',
        maxTime: last[taken.timeAt] ?? '',
        minKey: keyOf(first),
        maxKey: keyOf(last),
      });
      bytes += body.byteLength;
    }
    return { bytes, objects };
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
