/**
 * Writes one archive object: Parquet → key announced as pending (committed on its own connection) →
 * PutObject with the locally computed SHA-256 → verify. The one place both archive paths (chunks and whole
 * partitions) put rows into S3, so the integrity rules live once: a key is announced before any byte is
 * uploaded, and an object is only returned (for the ledger) after it was verified.
 */
import { randomUUID } from 'node:crypto';
import type { ArchivePolicy } from '../../../lib/contracts/config.ts';
import { type ObjectStore, sha256Hex } from '../../adapters/archive-store.ts';
import type { ArchivedObject } from '../../adapters/ledger/index.ts';
import { LeaseLostError } from '../../core/errors.ts';
import { objectKey } from '../../core/object-keys.ts';
import type { ParquetColumnPlan } from '../../core/parquet/column-plan.ts';
import { encodeParquet, type ParquetCompression } from '../../core/parquet/encode.ts';

/** Announces a key before upload on a connection outside the chunk transaction. */
export interface PendingRegistry {
  announcePending(bucket: string, key: string, runId: string): Promise<void>;
  /** False once orphan removal has started on the key (its run ended while this upload ran). */
  isStillPending(bucket: string, key: string): Promise<boolean>;
}

/** Test seam: awaited after an upload, before its verification; may throw to inject a fault. */
export interface ArchiveFaultHooks {
  afterUpload?(key: string): Promise<void> | void;
}

/** One object's rows: how many, how to encode them, and the ledger's ranges (order-term text). */
export interface ObjectContent {
  readonly rows: number;
  encode(compression: ParquetCompression): Uint8Array;
  readonly minTime: string;
  readonly maxTime: string;
  readonly minKey: Array<string | null> | null;
  readonly maxKey: Array<string | null> | null;
}

export interface ObjectRows {
  readonly policy: ArchivePolicy;
  /** The configured (parent) table: its schema.table names the key prefix. */
  readonly table: { readonly schema: string; readonly table: string };
  readonly runId: string;
  /** Hive partition of every row (e.g. year=2024/month=03). */
  readonly partition: string;
  readonly content: ObjectContent;
}

/**
 * Text rows (table columns only, in plan order) as object content; `timeAt` / `keyAt` index the time and key
 * columns in a row. Rows arrive in keyset order, so the first and last rows bound the ranges.
 */
export function rowsContent(
  plan: readonly ParquetColumnPlan[],
  rows: ReadonlyArray<ReadonlyArray<string | null>>,
  timeAt: number,
  keyAt: readonly number[],
): ObjectContent {
  const first = rows[0] ?? [];
  const last = rows[rows.length - 1] ?? [];
  const keyOf = (row: ReadonlyArray<string | null>) =>
    keyAt.length > 0 ? keyAt.map((i) => row[i] ?? null) : null;
  return {
    rows: rows.length,
    encode: (compression) => encodeParquet(plan, rows, { compression }),
    minTime: first[timeAt] ?? '',
    maxTime: last[timeAt] ?? '',
    minKey: keyOf(first),
    maxKey: keyOf(last),
  };
}

export class ArchiveObjectWriter {
  constructor(
    private readonly store: ObjectStore,
    private readonly pending: PendingRegistry,
    private readonly hooks: ArchiveFaultHooks = {},
  ) {}

  async write(object: ObjectRows): Promise<ArchivedObject> {
    const { policy, content } = object;
    const key = objectKey({
      policyName: policy.name,
      schema: object.table.schema,
      table: object.table.table,
      partition: object.partition,
      runId: object.runId,
      unique: randomUUID(),
    });
    // Sent before the encoding holds the thread, so the server commits the announcement meanwhile (a commit's
    // round trip less between chunks); awaited before any byte is uploaded. A key announced for an object that
    // then fails to encode is never uploaded: orphan removal finds nothing under it.
    const announced = this.pending.announcePending(this.store.bucket, key, object.runId);
    let body: Uint8Array;
    try {
      body = content.encode(policy.archive.compression);
    } catch (error) {
      await announced.catch(() => undefined);
      throw error;
    }
    const sha256 = sha256Hex(body);
    await announced;
    await this.store.put(key, body, sha256, { rows: String(content.rows), run: object.runId });
    await this.hooks.afterUpload?.(key);
    await this.store.verify({ key, bytes: body.byteLength, sha256 }, policy.archive.verify);
    if (!(await this.pending.isStillPending(this.store.bucket, key))) {
      // A stale invocation: the run ended and removed its orphans while this upload ran. The orphan removal
      // may have deleted the key before this PUT landed; delete it here, or nothing ever would. Every version:
      // in a versioned bucket a plain delete would keep these live rows' copy as a noncurrent version.
      await this.store.deleteEveryVersion(key);
      throw new LeaseLostError(
        `run ${object.runId} ended while ${key} was uploading; the object was removed`,
      );
    }
    return {
      bucket: this.store.bucket,
      key,
      rows: content.rows,
      bytes: body.byteLength,
      sha256,
      partition: object.partition,
      minTime: content.minTime,
      maxTime: content.maxTime,
      minKey: content.minKey,
      maxKey: content.maxKey,
    };
  }
}
