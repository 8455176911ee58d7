/**
 * `lifecycle.archived_objects` and `lifecycle.pending_objects` (sql/001, sql/008). A key is announced as
 * pending (autocommit, before its upload starts) and listed in the chunk's transaction; a key announced and
 * never listed is an orphan, deleted by Finish.
 */
import type { Queryable } from '../transactions.ts';

/**
 * What a listed object is (sql/008): an archive copy is the only copy of rows its chunk deleted; a backup
 * part, an export document or a rewritten archive object is not.
 */
export type ObjectKind = 'archive-copy' | 'backup-part' | 'export' | 'rewrite';

export interface ArchivedObject {
  readonly bucket: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  /** Hive partition and time range: an archive copy's; null for a backup part (no time range). */
  readonly partition: string | null;
  readonly minTime: string | null;
  readonly maxTime: string | null;
  readonly minKey: ReadonlyArray<string | null> | null;
  readonly maxKey: ReadonlyArray<string | null> | null;
  /** Facts of its kind (a backup part: table, part number, content checksum, snapshot); never row values. */
  readonly detail?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Inside the chunk transaction: lists the objects a chunk wrote as `kind` (only 'archive-copy' is the rows'
 * only copy) and clears their pending marks.
 */
export async function insertObjects(
  db: Queryable,
  runId: string,
  chunkSeq: number,
  kind: ObjectKind,
  objects: readonly ArchivedObject[],
): Promise<void> {
  if (objects.length === 0) return;
  await db.query(
    `INSERT INTO lifecycle.archived_objects
       (run_id, chunk_seq, kind, bucket, key, rows, bytes, sha256, partition, min_time, max_time, min_key, max_key, detail)
     SELECT $1, $2, $4, o.bucket, o.key, o.rows, o.bytes, o.sha256, o.partition, o.min_time, o.max_time, o.min_key, o.max_key, o.detail
       FROM jsonb_to_recordset($3::jsonb) AS o(bucket text, key text, rows integer, bytes bigint, sha256 text,
            partition text, min_time text, max_time text, min_key jsonb, max_key jsonb, detail jsonb)`,
    [
      runId,
      chunkSeq,
      JSON.stringify(
        objects.map((o) => ({
          bucket: o.bucket,
          key: o.key,
          rows: o.rows,
          bytes: o.bytes,
          sha256: o.sha256,
          partition: o.partition,
          min_time: o.minTime,
          max_time: o.maxTime,
          min_key: o.minKey,
          max_key: o.maxKey,
          detail: o.detail ?? null,
        })),
      ),
      kind,
    ],
  );
  await db.query('DELETE FROM lifecycle.pending_objects WHERE bucket = $1 AND key = ANY ($2::text[])', [
    objects[0]?.bucket,
    objects.map((o) => o.key),
  ]);
}

export async function isArchived(db: Queryable, bucket: string, key: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM lifecycle.archived_objects WHERE bucket = $1 AND key = $2', [
    bucket,
    key,
  ]);
  return rows.length > 0;
}

/** Outside the chunk transaction (autocommit): announces a key before its upload starts. */
export async function announcePending(
  db: Queryable,
  bucket: string,
  key: string,
  runId: string,
): Promise<void> {
  await db.query('INSERT INTO lifecycle.pending_objects (bucket, key, run_id) VALUES ($1, $2, $3)', [
    bucket,
    key,
    runId,
  ]);
}

/**
 * Orphans: announced keys of this policy's runs that never made it into archived_objects, from runs
 * that are no longer uploading (this run at its finish, or runs that ended).
 */
export async function listOrphans(
  db: Queryable,
  policy: string,
  finishingRunId: string,
): Promise<Array<{ bucket: string; key: string }>> {
  const { rows } = await db.query<{ bucket: string; key: string }>(
    `SELECT p.bucket, p.key FROM lifecycle.pending_objects p
       JOIN lifecycle.runs r ON r.run_id = p.run_id
      WHERE r.policy = $1 AND (r.run_id = $2 OR r.status <> 'running')
        AND NOT EXISTS (SELECT 1 FROM lifecycle.archived_objects a WHERE a.bucket = p.bucket AND a.key = p.key)
      ORDER BY p.created_at`,
    [policy, finishingRunId],
  );
  return rows;
}

/** Before an orphan's object is deleted: from now on its uploader may not keep it (see isStillPending). */
export async function markRemoving(db: Queryable, bucket: string, key: string): Promise<void> {
  await db.query('UPDATE lifecycle.pending_objects SET removing = true WHERE bucket = $1 AND key = $2', [
    bucket,
    key,
  ]);
}

/** After an upload: the key is announced and no orphan removal has started on it. */
export async function isStillPending(db: Queryable, bucket: string, key: string): Promise<boolean> {
  const { rows } = await db.query(
    'SELECT 1 FROM lifecycle.pending_objects WHERE bucket = $1 AND key = $2 AND NOT removing',
    [bucket, key],
  );
  return rows.length > 0;
}

/** Forgets a pending key once its object is gone; refuses (no-op) for a ledger-listed key. */
export async function forgetPending(db: Queryable, bucket: string, key: string): Promise<void> {
  await db.query('DELETE FROM lifecycle.pending_objects WHERE bucket = $1 AND key = $2', [bucket, key]);
}

/** An object a run listed, as a backup's Finish and verify read them back. */
export interface ListedObject {
  readonly bucket: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly detail: Readonly<Record<string, unknown>> | undefined;
}

/** The objects of `kind` a run listed, in the order they were listed. */
export async function listRunObjects(
  db: Queryable,
  runId: string,
  kind: ObjectKind,
): Promise<ListedObject[]> {
  const { rows } = await db.query<{
    bucket: string;
    key: string;
    rows: string;
    bytes: string;
    sha256: string;
    detail: string | null;
  }>(
    `SELECT bucket, key, rows::text, bytes::text, sha256, detail::text FROM lifecycle.archived_objects
      WHERE run_id = $1 AND kind = $2 ORDER BY object_id`,
    [runId, kind],
  );
  return rows.map((r) => ({
    bucket: r.bucket,
    key: r.key,
    rows: Number(r.rows),
    bytes: Number(r.bytes),
    sha256: r.sha256,
    detail: r.detail === null ? undefined : JSON.parse(r.detail),
  }));
}
