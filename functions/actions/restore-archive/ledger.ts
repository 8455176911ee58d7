/**
 * The ledger as restore-archive reads and writes it: the archive objects of a policy overlapping a time range
 * (lifecycle.archived_objects, kind 'archive-copy', of the policy's archive runs) and what was restored
 * already (lifecycle.restored_objects, sql/011).
 */
import type { Queryable } from '../../adapters/transactions.ts';
import { UnknownArchivePolicyError } from './errors.ts';

/** One archive object as the ledger lists it. */
export interface ListedObject {
  readonly objectId: string;
  readonly runId: string;
  readonly bucket: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly minTime: string;
  readonly maxTime: string;
}

/** The policy's table and time column, as its latest archive run resolved them. */
export interface ArchivedTable {
  readonly tableName: string;
  readonly timeColumn: string;
}

/** Refuses a policy with no run in the ledger, or one whose runs are not archives. */
export async function findArchivedTable(db: Queryable, policy: string): Promise<ArchivedTable> {
  const { rows } = await db.query<{ action: string; table_name: string; time_column: string | null }>(
    `SELECT DISTINCT ON (action) action, table_name, time_column
       FROM lifecycle.runs WHERE policy = $1 ORDER BY action, started_at DESC`,
    [policy],
  );
  if (rows.length === 0) {
    throw new UnknownArchivePolicyError(`no policy "${policy}" in the ledger: it has never run`, { policy });
  }
  const archive = rows.find((r) => r.action === 'archive');
  if (!archive?.time_column) {
    const actions = rows.map((r) => r.action).join(', ');
    throw new UnknownArchivePolicyError(
      `policy "${policy}" is not an archive policy (its runs: ${actions}); only archive objects can be restored`,
      { policy },
    );
  }
  return { tableName: archive.table_name, timeColumn: archive.time_column };
}

/**
 * The policy's archive objects in `bucket` whose time range overlaps [from, to), oldest first. Every listed
 * object counts, whatever its run's status: its rows were deleted in the transaction that listed it.
 */
export async function listObjectsInRange(
  db: Queryable,
  range: { policy: string; bucket: string; from: string; to: string },
): Promise<ListedObject[]> {
  const { rows } = await db.query<{
    object_id: string;
    run_id: string;
    bucket: string;
    key: string;
    rows: string;
    bytes: string;
    sha256: string;
    min_time: string;
    max_time: string;
  }>(
    `SELECT o.object_id::text, o.run_id::text, o.bucket, o.key, o.rows::text, o.bytes::text, o.sha256,
            o.min_time, o.max_time
       FROM lifecycle.archived_objects o
       JOIN lifecycle.runs r ON r.run_id = o.run_id
      WHERE r.policy = $1 AND r.action = 'archive' AND o.kind = 'archive-copy' AND o.bucket = $2
        AND o.min_time::timestamptz < $4::timestamptz AND o.max_time::timestamptz >= $3::timestamptz
      ORDER BY o.min_time::timestamptz, o.object_id`,
    [range.policy, range.bucket, range.from, range.to],
  );
  return rows.map((r) => ({
    objectId: r.object_id,
    runId: r.run_id,
    bucket: r.bucket,
    key: r.key,
    rows: Number(r.rows),
    bytes: Number(r.bytes),
    sha256: r.sha256,
    minTime: r.min_time,
    maxTime: r.max_time,
  }));
}

/**
 * Whether these bytes (key + SHA-256) were restored into `target` already, covering every row `predicate`
 * asks for: by a restore without a predicate, or with the same one.
 */
export async function alreadyRestored(
  db: Queryable,
  object: Pick<ListedObject, 'bucket' | 'key' | 'sha256'>,
  target: { readonly oid: string },
  predicate: string | undefined,
): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM lifecycle.restored_objects
      WHERE bucket = $1 AND key = $2 AND sha256 = $3 AND target_oid = $4::oid
        AND (predicate IS NULL OR predicate = $5)
      LIMIT 1`,
    [object.bucket, object.key, object.sha256, target.oid, predicate ?? null],
  );
  return rows.length > 0;
}

/** Whether these bytes were restored into `target` before, under any predicate. */
export async function restoredBefore(
  db: Queryable,
  object: Pick<ListedObject, 'bucket' | 'key' | 'sha256'>,
  target: { readonly oid: string },
): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM lifecycle.restored_objects
      WHERE bucket = $1 AND key = $2 AND sha256 = $3 AND target_oid = $4::oid LIMIT 1`,
    [object.bucket, object.key, object.sha256, target.oid],
  );
  return rows.length > 0;
}

/** One restored object, as lifecycle.restored_objects records it. */
export interface RestoredObjectRecord {
  readonly restoreId: string;
  readonly policy: string;
  readonly object: ListedObject;
  readonly versionId: string | undefined;
  readonly etag: string | undefined;
  readonly target: string;
  readonly targetOid: string;
  readonly predicate: string | undefined;
  readonly rowsStaged: number;
  readonly rowsSelected: number;
  readonly rowsInserted: number;
}

/** Records a restored object; runs in the transaction that inserted its rows. */
export async function recordRestoredObject(db: Queryable, record: RestoredObjectRecord): Promise<void> {
  await db.query(
    `INSERT INTO lifecycle.restored_objects
       (restore_id, policy, bucket, key, sha256, version_id, etag, source_run_id, target_table, predicate,
        rows_in_object, rows_staged, rows_selected, rows_inserted, target_oid)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::oid)`,
    [
      record.restoreId,
      record.policy,
      record.object.bucket,
      record.object.key,
      record.object.sha256,
      record.versionId ?? null,
      record.etag ?? null,
      record.object.runId,
      record.target,
      record.predicate ?? null,
      record.object.rows,
      record.rowsStaged,
      record.rowsSelected,
      record.rowsInserted,
      record.targetOid,
    ],
  );
}
