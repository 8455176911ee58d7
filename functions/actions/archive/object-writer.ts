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
import { encodeParquet } from '../../core/parquet/encode.ts';

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

export interface ObjectRows {
  readonly policy: ArchivePolicy;
  /** The configured (parent) table: its schema.table names the key prefix. */
  readonly table: { readonly schema: string; readonly table: string };
  readonly runId: string;
  /** Hive partition of every row (e.g. year=2024/month=03). */
  readonly partition: string;
  readonly plan: readonly ParquetColumnPlan[];
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>;
  /** Values ahead of the table's columns in each row (ctid, tableoid). */
  readonly columnOffset: number;
  /** Index in each row of the time value and of the key values (for the ledger's ranges). */
  readonly timeAt: number;
  readonly keyAt: readonly number[];
}

export class ArchiveObjectWriter {
  constructor(
    private readonly store: ObjectStore,
    private readonly pending: PendingRegistry,
    private readonly hooks: ArchiveFaultHooks = {},
  ) {}

  async write(object: ObjectRows): Promise<ArchivedObject> {
    const { policy, rows } = object;
    const body = encodeParquet(object.plan, rows, {
      compression: policy.archive.compression,
      columnOffset: object.columnOffset,
    });
    const sha256 = sha256Hex(body);
    const key = objectKey({
      policyName: policy.name,
      schema: object.table.schema,
      table: object.table.table,
      partition: object.partition,
      runId: object.runId,
      unique: randomUUID(),
    });
    await this.pending.announcePending(this.store.bucket, key, object.runId);
    await this.store.put(key, body, sha256, { rows: String(rows.length), run: object.runId });
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
    const first = rows[0] ?? [];
    const last = rows[rows.length - 1] ?? [];
    const keyOf = (row: ReadonlyArray<string | null>) =>
      object.keyAt.length > 0 ? object.keyAt.map((i) => row[i] ?? null) : null;
    return {
      bucket: this.store.bucket,
      key,
      rows: rows.length,
      bytes: body.byteLength,
      sha256,
      partition: object.partition,
      minTime: first[object.timeAt] ?? '',
      maxTime: last[object.timeAt] ?? '',
      minKey: keyOf(first),
      maxKey: keyOf(last),
    };
  }
}
