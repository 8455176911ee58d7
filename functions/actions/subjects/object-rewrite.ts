/**
 * One archive object rewritten without a subject (GDPR erasure): the object is read at the version the ledger
 * lists (length and SHA-256), decoded to PostgreSQL text, the subject's rows found by the key column's own
 * equality (as the live DELETE finds them), and the rest encoded again with the file's own Parquet schema,
 * codec and row groups (core/parquet/file-plan.ts), so Glue and DuckDB see the same columns and types. For a
 * table the mapping anonymizes, the subject's rows stay and their masked columns are masked by the database,
 * with the same SQL the live UPDATE ran (a temporary table shaped like the live one).
 *
 * Order, so that no step can lose a row or keep the subject:
 *   1. the new object (a new key beside the old one, the old one's storage class and encryption) is announced
 *      as pending, written, read back and decoded again: its rows must be exactly the kept ones;
 *   2. the old key is HEADed again: a version written by someone else since it was read means the rewrite read
 *      stale bytes, so the new object is deleted and the rewrite starts over (up to three times);
 *   3. one transaction swaps the ledger row (only if it still lists the old key and checksum), forgets the new
 *      key's pending mark, marks the old key pending (an orphan to delete should this process die) and records
 *      the old key in the request's progress;
 *   4. every version of the old key is deleted (object-versions.ts), then its marks are cleared.
 * An object left with no rows is deleted with its ledger row (archived_objects holds no empty objects).
 */
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { isColdStorageClass, mapS3Error, sha256Hex } from '../../adapters/archive-store.ts';
import { deleteEveryVersion, headObject, type ObjectHead } from '../../adapters/object-versions.ts';
import { LeaseLostError, LifecycleError, TransientStorageError } from '../../core/errors.ts';
import { encodeParquet } from '../../core/parquet/encode.ts';
import { encodingOfArchiveFile, planFromArchiveFile } from '../../core/parquet/file-plan.ts';
import { type HashKey, PLACEHOLDER_KEY } from '../anonymize/hash-key.ts';
import { maskAssignments, pendingPredicate } from '../anonymize/masks.ts';
import { ParamList } from '../anonymize/param-list.ts';
import { ArchivedObjectIntegrityError } from '../restore-archive/errors.ts';
import { readVerifiedObject } from '../restore-archive/object-reader.ts';
import { decodeArchiveObject, readArchivedSchema } from '../restore-archive/parquet-decode.ts';
import { matchingKeyTexts } from './archived-rows.ts';
import type { ResolvedSubjectTable } from './mapping.ts';

/** An archive object as the erasure walks them: the ledger's row. */
export interface ErasureObject {
  readonly objectId: string;
  readonly bucket: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  /** `"schema"."table"` of the run that archived it. */
  readonly table: string;
  /** The Object Lock retention the archive policy gives it (archived_objects.lock_until), when it has one. */
  readonly lockUntil?: string | null | undefined;
}

/** What the request's proof records of one rewrite: keys and counts, never values. */
export interface RewriteRecord {
  readonly table: string;
  readonly oldKey: string;
  /** null: every row was the subject's, the object and its ledger row are gone. */
  readonly newKey: string | null;
  readonly rowsRemoved: number;
  readonly rowsMasked: number;
  readonly rowsLeft: number;
  readonly storageClass: string;
}

export type ObjectOutcome =
  /** Searched: none of its rows is the subject's. */
  | { readonly kind: 'absent' }
  /** In Glacier Flexible Retrieval / Deep Archive and not restored: a restore must be requested (or is under way). */
  | { readonly kind: 'cold'; readonly storageClass: string }
  /** Under S3 Object Lock (retention or legal hold): its versions cannot be deleted before `until` (null: hold). */
  | { readonly kind: 'locked'; readonly until: string | null }
  /**
   * Listed, but no current version in S3 (expired by the bucket's lifecycle rule, or deleted): nothing of it can be
   * read; its noncurrent versions, which may still hold the subject, were deleted.
   */
  | { readonly kind: 'gone'; readonly versionsDeleted: number }
  | (RewriteRecord & { readonly kind: 'rewritten'; readonly versionsDeleted: number })
  /** The ledger no longer lists it as read (another worker rewrote it first): nothing to do here. */
  | { readonly kind: 'superseded' };

/** Test seams: each may throw to inject a crash, or act as a concurrent writer. */
export interface RewriteHooks {
  /** After the new object is written and verified, before the old key is checked again and the ledger swapped. */
  beforeSwap?(oldKey: string): Promise<void> | void;
  /** After the ledger swap committed, before the old key's versions are deleted. */
  afterSwap?(oldKey: string): Promise<void> | void;
}

export interface RewriteContext {
  readonly s3: S3Client;
  /** A connection of its own (not the chunk's, not the heartbeat's): the swap is a transaction on it. */
  readonly db: pg.ClientBase;
  readonly runId: string;
  readonly requestId: string;
  readonly key: HashKey | undefined;
  readonly hooks?: RewriteHooks | undefined;
  readonly now: () => Date;
}

const ATTEMPTS = 3;
const UUID_FILE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.parquet$/;

/** Beside the old key (same Hive partition folder), a new unique name. */
export function rewrittenKey(oldKey: string): string {
  const id = randomUUID();
  if (UUID_FILE.test(oldKey)) return oldKey.replace(UUID_FILE, `${id}.parquet`);
  const slash = oldKey.lastIndexOf('/');
  return `${oldKey.slice(0, slash + 1)}${id}.parquet`;
}

/** The erasure cannot search an object (a permanent reason, not S3 or the database being unavailable). */
export class ArchiveErasureError extends LifecycleError {
  override readonly name = 'ArchiveErasureError';
}

function ledgerLock(object: ErasureObject, now: Date): { until: string | null } | undefined {
  if (!object.lockUntil) return undefined;
  const until = new Date(object.lockUntil);
  return until.getTime() > now.getTime() ? { until: until.toISOString() } : undefined;
}

function lockedUntil(head: ObjectHead, now: Date): { until: string | null } | undefined {
  if (head.legalHold) return { until: null };
  if (head.retainUntil && head.retainUntil.getTime() > now.getTime())
    return { until: head.retainUntil.toISOString() };
  return undefined;
}

function isCold(head: ObjectHead): boolean {
  if (!isColdStorageClass(head.storageClass)) return false;
  // `ongoing-request="false"` once S3 holds a readable copy.
  return !head.restore?.includes('ongoing-request="false"');
}

/**
 * Rewrites `object` without the subject's rows (or with them masked, for a table the mapping anonymizes).
 * @throws ArchivedObjectIntegrityError when the object is missing or not the ledger's bytes (nothing changed)
 * @throws TransientStorageError when a concurrent writer kept changing the old key, or S3 failed
 */
export async function eraseFromObject(
  ctx: RewriteContext,
  object: ErasureObject,
  table: ResolvedSubjectTable,
  subjectKey: string,
): Promise<ObjectOutcome> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const head = await headObject(ctx.s3, object.bucket, object.key);
    if (!head) {
      if (!(await stillListed(ctx.db, object))) return { kind: 'superseded' };
      // Expired (a delete marker on top) or deleted: its noncurrent versions may still hold the subject.
      return { kind: 'gone', versionsDeleted: await eraseGone(ctx, object) };
    }
    // Object Lock refuses the deletion of the old versions: nothing is written until it ends. The ledger knows the
    // locks the archive policy sets (HEAD shows them only with s3:GetObjectRetention); HEAD shows any other.
    const locked = ledgerLock(object, ctx.now()) ?? lockedUntil(head, ctx.now());
    if (locked) return { kind: 'locked', until: locked.until };
    if (isCold(head)) return { kind: 'cold', storageClass: head.storageClass };
    let read: Awaited<ReturnType<typeof readVerifiedObject>>;
    try {
      read = await readVerifiedObject(ctx.s3, object);
    } catch (error) {
      // What changed since the HEAD is no fault of the object: a restored copy that expired meanwhile (restore it
      // again), a key deleted or replaced meanwhile (look at it again).
      const s3Name = ((error as Error).cause as { name?: string } | undefined)?.name;
      if (s3Name === 'InvalidObjectState') return { kind: 'cold', storageClass: head.storageClass };
      if (s3Name === 'NoSuchKey' && attempt < ATTEMPTS) continue;
      throw error;
    }
    const decoded = await decodeArchiveObject(read.body);
    const keyIndex = decoded.columns.findIndex((c) => c.name === table.keyColumn.name);
    if (keyIndex < 0)
      throw new ArchiveErasureError(
        `${object.key} has no column ${quoteIdent(table.keyColumn.name)} (the mapping's key column of ${table.qualified}): ` +
          'was it renamed or added after the object was archived? The subject cannot be searched for in it',
      );
    const keyTexts = new Set<string>();
    for (const row of decoded.rows) {
      const value = row[keyIndex];
      if (value !== null && value !== undefined) keyTexts.add(value);
    }
    const matching = await matchingKeyTexts(ctx.db, table, [...keyTexts], subjectKey);
    if (matching.size === 0) return { kind: 'absent' };
    const isSubject = (row: ReadonlyArray<string | null>) => {
      const value = row[keyIndex];
      return value !== null && value !== undefined && matching.has(value);
    };
    const names = decoded.columns.map((c) => c.name);
    const kept: Array<ReadonlyArray<string | null>> = [];
    let removed = 0;
    let masked = 0;
    if (table.action === 'anonymize') {
      const subjectRows = decoded.rows.filter(isSubject);
      const maskedRows = await maskRows(ctx, table, names, subjectRows);
      masked = maskedRows.changed;
      // Every row of the subject already masked: the object holds nothing of theirs to rewrite.
      if (masked === 0) return { kind: 'absent' };
      const stored = await asStored(ctx, read.body, maskedRows.rows, maskedRows.columns, names);
      let next = 0;
      for (const row of decoded.rows)
        kept.push(isSubject(row) ? (stored[next++] as Array<string | null>) : row);
    } else {
      for (const row of decoded.rows) if (isSubject(row)) removed++;
      for (const row of decoded.rows) if (!isSubject(row)) kept.push(row);
    }

    const newKey = kept.length > 0 ? rewrittenKey(object.key) : null;
    let written: { bytes: number; sha256: string } | undefined;
    if (newKey) written = await writeVerified(ctx, object, head, read.body, newKey, kept);
    await ctx.hooks?.beforeSwap?.(object.key);
    // A version written since it was read: what was read may not be what is there now.
    const now = await headObject(ctx.s3, object.bucket, object.key);
    if (!now || now.versionId !== read.versionId || now.etag !== read.etag) {
      if (newKey) await removeUnlisted(ctx, object.bucket, newKey);
      if (attempt < ATTEMPTS) continue;
      throw new TransientStorageError(
        `${object.key} changed ${ATTEMPTS} times while it was being rewritten; the erasure will try again`,
      );
    }
    const record: RewriteRecord = {
      table: object.table,
      oldKey: object.key,
      newKey,
      rowsRemoved: removed,
      rowsMasked: masked,
      rowsLeft: kept.length,
      storageClass: head.storageClass,
    };
    const swapped = await swapLedger(ctx, object, newKey, written, record);
    if (!swapped) {
      if (newKey) await removeUnlisted(ctx, object.bucket, newKey);
      return { kind: 'superseded' };
    }
    await ctx.hooks?.afterSwap?.(object.key);
    const versionsDeleted = await finishDeletion(ctx, object.bucket, object.key);
    return { kind: 'rewritten', ...record, versionsDeleted };
  }
  throw new Error('unreachable');
}

async function stillListed(db: pg.ClientBase, object: ErasureObject): Promise<boolean> {
  const { rows } = await db.query(
    'SELECT 1 FROM lifecycle.archived_objects WHERE object_id = $1 AND key = $2 AND sha256 = $3',
    [object.objectId, object.key, object.sha256],
  );
  return rows.length > 0;
}

/**
 * The kept rows in the file's own schema, written beside the old object with its storage class, encryption and
 * metadata, then read back and decoded: the bytes must be ours and the rows exactly the kept ones.
 */
async function writeVerified(
  ctx: RewriteContext,
  object: ErasureObject,
  head: ObjectHead,
  oldBody: Uint8Array,
  newKey: string,
  kept: ReadonlyArray<ReadonlyArray<string | null>>,
): Promise<{ bytes: number; sha256: string }> {
  const { columns, metadata } = readArchivedSchema(oldBody);
  const plan = planFromArchiveFile(metadata, columns);
  const encoding = encodingOfArchiveFile(metadata);
  const body = encodeParquet(plan, kept, encoding);
  const sha256 = sha256Hex(body);
  // What is uploaded must read back as the kept rows in the original schema: checked on the bytes themselves, as
  // an object written in a cold class cannot be read back from S3.
  if (!(await readsBackAs(body, kept, metadata.schema)))
    throw new ArchivedObjectIntegrityError(
      `the rewrite of ${object.key} does not decode as the kept rows in the original schema; nothing was written`,
    );
  await ctx.db.query('INSERT INTO lifecycle.pending_objects (bucket, key, run_id) VALUES ($1, $2, $3)', [
    object.bucket,
    newKey,
    ctx.runId,
  ]);
  try {
    await ctx.s3.send(
      new PutObjectCommand({
        Bucket: object.bucket,
        Key: newKey,
        Body: body,
        ContentLength: body.byteLength,
        ContentType: head.contentType ?? 'application/vnd.apache.parquet',
        ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
        // STANDARD is S3's default; sending it would only differ from the original's absent header.
        ...(head.storageClass !== 'STANDARD' ? { StorageClass: head.storageClass as 'GLACIER' } : {}),
        ...(head.serverSideEncryption ? { ServerSideEncryption: head.serverSideEncryption } : {}),
        ...(head.kmsKeyId ? { SSEKMSKeyId: head.kmsKeyId } : {}),
        ...(head.bucketKeyEnabled !== undefined ? { BucketKeyEnabled: head.bucketKeyEnabled } : {}),
        Metadata: {
          ...head.metadata,
          rows: String(kept.length),
          sha256,
          'rewritten-from': object.key.slice(object.key.lastIndexOf('/') + 1),
          'erasure-request': ctx.requestId,
        },
      }),
    );
  } catch (error) {
    throw mapS3Error(error, `upload of ${newKey}`);
  }
  const stored = { bucket: object.bucket, key: newKey, bytes: body.byteLength, sha256 };
  // GetObject refuses a cold class until a restore: the rewrite is verified by HEAD there, not read back.
  if (isColdStorageClass(head.storageClass)) {
    const written = await headObject(ctx.s3, object.bucket, newKey);
    if (written?.contentLength !== body.byteLength || written.metadata.sha256 !== sha256) {
      await removeUnlisted(ctx, object.bucket, newKey);
      throw new TransientStorageError(
        `${newKey}: S3 does not report the length and SHA-256 that were written`,
      );
    }
  } else {
    // Read back: S3 holds exactly these bytes.
    await readVerifiedObject(ctx.s3, stored);
  }
  return { bytes: body.byteLength, sha256 };
}

async function readsBackAs(
  body: Uint8Array,
  kept: ReadonlyArray<ReadonlyArray<string | null>>,
  schema: unknown,
): Promise<boolean> {
  const again = await decodeArchiveObject(body);
  return (
    again.rows.length === kept.length &&
    again.rows.every((row, r) =>
      row.every((value, c) => value === (kept[r] as ReadonlyArray<string | null>)[c]),
    ) &&
    JSON.stringify(readArchivedSchema(body).metadata.schema) === JSON.stringify(schema)
  );
}

/** A new object the ledger never listed: deleted, its pending mark forgotten. */
async function removeUnlisted(ctx: RewriteContext, bucket: string, key: string): Promise<void> {
  await ctx.db.query('UPDATE lifecycle.pending_objects SET removing = true WHERE bucket = $1 AND key = $2', [
    bucket,
    key,
  ]);
  await deleteEveryVersion(ctx.s3, bucket, key);
  await ctx.db.query('DELETE FROM lifecycle.pending_objects WHERE bucket = $1 AND key = $2', [bucket, key]);
}

/**
 * One transaction: the ledger row now lists the new object (or is gone with an emptied one), the old key is an
 * orphan to delete and a key the request still has to delete. False when the ledger no longer lists the old key
 * with the checksum that was read.
 */
async function swapLedger(
  ctx: RewriteContext,
  object: ErasureObject,
  newKey: string | null,
  written: { bytes: number; sha256: string } | undefined,
  record: RewriteRecord,
): Promise<boolean> {
  await ctx.db.query('BEGIN');
  try {
    // A step that outlived its run (the run failed or finished meanwhile, its orphans removed, perhaps this new
    // key among them) must not list anything: the run row is locked against Finish / RecordFailure closing it.
    const { rows: run } = await ctx.db.query<{ status: string }>(
      'SELECT status FROM lifecycle.runs WHERE run_id = $1 FOR UPDATE',
      [ctx.runId],
    );
    const stillPending =
      newKey === null ||
      (
        await ctx.db.query(
          'DELETE FROM lifecycle.pending_objects WHERE bucket = $1 AND key = $2 AND NOT removing',
          [object.bucket, newKey],
        )
      ).rowCount === 1;
    if (run[0]?.status !== 'running' || !stillPending) {
      await ctx.db.query('ROLLBACK');
      if (newKey) await removeUnlisted(ctx, object.bucket, newKey);
      throw new LeaseLostError(
        `run ${ctx.runId} ended while ${object.key} was being rewritten; nothing was swapped`,
      );
    }
    const detail = JSON.stringify({
      rewrittenBy: ctx.requestId,
      previousKey: object.key,
      previousRows: object.rows,
      previousSha256: object.sha256,
    });
    const { rowCount } =
      newKey && written
        ? await ctx.db.query(
            `UPDATE lifecycle.archived_objects
                SET key = $4, rows = $5, bytes = $6, sha256 = $7, detail = coalesce(detail, '{}') || $8::jsonb
              WHERE object_id = $1 AND key = $2 AND sha256 = $3`,
            [
              object.objectId,
              object.key,
              object.sha256,
              newKey,
              record.rowsLeft,
              written.bytes,
              written.sha256,
              detail,
            ],
          )
        : await ctx.db.query(
            'DELETE FROM lifecycle.archived_objects WHERE object_id = $1 AND key = $2 AND sha256 = $3',
            [object.objectId, object.key, object.sha256],
          );
    if ((rowCount ?? 0) === 0) {
      await ctx.db.query('ROLLBACK');
      return false;
    }
    await ctx.db.query(
      `INSERT INTO lifecycle.pending_objects (bucket, key, run_id) VALUES ($1, $2, $3)
       ON CONFLICT (bucket, key) DO UPDATE SET run_id = EXCLUDED.run_id`,
      [object.bucket, object.key, ctx.runId],
    );
    // A restore-archive that brought the old object back must recognize the new one as the same rows (minus the
    // subject's): its record follows the object, else restoring the range again would insert the others twice.
    if (newKey && written)
      await ctx.db.query(
        `UPDATE lifecycle.restored_objects SET key = $4, sha256 = $5
          WHERE bucket = $1 AND key = $2 AND sha256 = $3`,
        [object.bucket, object.key, object.sha256, newKey, written.sha256],
      );
    // The request's record of it, in the same transaction: the proof lists every rewrite, and the old key stays
    // `deleted = false` until all of its versions are gone (a crash in between is finished by the next step).
    await recordRewrite(ctx, object.bucket, record, newKey ? 'rewritten' : 'emptied');
    await ctx.db.query('COMMIT');
    return true;
  } catch (error) {
    await ctx.db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** One row of lifecycle.subject_rewrites (sql/013). */
async function recordRewrite(
  ctx: RewriteContext,
  bucket: string,
  record: RewriteRecord,
  outcome: 'rewritten' | 'emptied' | 'gone',
): Promise<void> {
  await ctx.db.query(
    `INSERT INTO lifecycle.subject_rewrites
       (request_id, bucket, old_key, new_key, outcome, table_name, rows_removed, rows_masked, rows_left, storage_class)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (request_id, bucket, old_key) DO NOTHING`,
    [
      ctx.requestId,
      bucket,
      record.oldKey,
      record.newKey,
      outcome,
      record.table,
      record.rowsRemoved,
      record.rowsMasked,
      record.rowsLeft,
      record.storageClass,
    ],
  );
}

/** A listed object with no current version: its noncurrent versions deleted, and the fact recorded. */
async function eraseGone(ctx: RewriteContext, object: ErasureObject): Promise<number> {
  await recordRewrite(
    ctx,
    object.bucket,
    {
      table: object.table,
      oldKey: object.key,
      newKey: null,
      rowsRemoved: 0,
      rowsMasked: 0,
      rowsLeft: 0,
      storageClass: 'none',
    },
    'gone',
  );
  return await finishDeletion(ctx, object.bucket, object.key);
}

/** Every version of an old key deleted, then its marks cleared (the rewrite's and the orphan one). */
export async function finishDeletion(ctx: RewriteContext, bucket: string, key: string): Promise<number> {
  const deleted = await deleteEveryVersion(ctx.s3, bucket, key);
  await ctx.db.query('BEGIN');
  try {
    await ctx.db.query('DELETE FROM lifecycle.pending_objects WHERE bucket = $1 AND key = $2', [bucket, key]);
    await ctx.db.query(
      'UPDATE lifecycle.subject_rewrites SET deleted = true WHERE request_id = $1 AND bucket = $2 AND old_key = $3',
      [ctx.requestId, bucket, key],
    );
    await ctx.db.query('COMMIT');
  } catch (error) {
    await ctx.db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return deleted;
}

/**
 * The subject's archived rows with the mapping's masks applied by the database. The rows go into a temporary table
 * made from the live one's columns (CREATE TABLE AS: types only, no NOT NULL or other constraint, so a column added
 * since is simply NULL), each archived text cast to its live column's type; the masks' UPDATE runs there (values
 * already masked are left alone), and only the masked columns are taken back: every other column keeps the object's
 * own text, whatever today's types would make of it.
 */
async function maskRows(
  ctx: RewriteContext,
  table: ResolvedSubjectTable,
  names: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | null>>,
): Promise<{
  rows: Array<Array<string | null>>;
  changed: number;
  /** The masked columns and their live types. */
  columns: Array<{ name: string; type: string }>;
}> {
  const masks = table.masks;
  if (!masks) throw new Error(`${table.qualified}: action anonymize without masks`);
  const temp = { schema: 'pg_temp', table: 'pg_lifecycle_erasure_rows' };
  const tempName = quoteQualified(temp.schema, temp.table);
  const { rows: liveColumns } = await ctx.db.query<{ name: string; type: string }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
      WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped`,
    [table.table.oid],
  );
  const liveType = new Map(liveColumns.map((c) => [c.name, c.type]));
  const shared = names.filter((n) => liveType.has(n));
  const params = new ParamList(1);
  const assignments = maskAssignments(temp, masks, params, ctx.key).filter((a) => shared.includes(a.column));
  if (assignments.length === 0) return { rows: rows.map((r) => [...r]), changed: 0, columns: [] };
  const maskedNames = assignments.map((a) => a.column);
  await ctx.db.query('BEGIN');
  try {
    await ctx.db.query(
      `CREATE TEMPORARY TABLE ${quoteIdent(temp.table)} ON COMMIT DROP AS
         SELECT *, 0 AS pg_lifecycle_row FROM ${table.qualified} WITH NO DATA`,
    );
    const objects = rows.map((row) => Object.fromEntries(names.map((n, c) => [n, row[c] ?? null])));
    // ->> gives each archived text back as text (json/jsonb included), cast by the live type's input function.
    // Only the masked columns are cast (their values are replaced anyway): another column's archived text need not
    // be a value of today's type (an enum label renamed since, a narrower numeric).
    await ctx.db.query(
      `INSERT INTO ${tempName} (${maskedNames.map(quoteIdent).join(', ')}, pg_lifecycle_row)
       SELECT ${maskedNames.map((n) => `(r.value->>${literal(n)})::${liveType.get(n)}`).join(', ')}, (r.ordinality - 1)::int
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS r`,
      [JSON.stringify(objects)],
    );
    const updated = await ctx.db.query(
      `UPDATE ${tempName} SET ${assignments.map((a) => `${quoteIdent(a.column)} = ${a.set}`).join(', ')}
        WHERE ${pendingPredicate(temp, masks, PLACEHOLDER_KEY)}`,
      [...params.values],
    );
    const { rows: out } = await ctx.db.query<{ r: string }>(
      `SELECT json_build_array(${maskedNames.map((n) => `${quoteIdent(n)}::text`).join(', ')})::text AS r
         FROM ${tempName} ORDER BY pg_lifecycle_row`,
    );
    await ctx.db.query('COMMIT');
    const masked = out.map((o, i) => {
      const values = JSON.parse(o.r) as Array<string | null>;
      const byName = new Map(maskedNames.map((n, c) => [n, values[c] ?? null]));
      const original = rows[i] as ReadonlyArray<string | null>;
      return names.map((n, c) => (byName.has(n) ? (byName.get(n) ?? null) : (original[c] ?? null)));
    });
    return {
      rows: masked,
      changed: updated.rowCount ?? 0,
      columns: maskedNames.map((name) => ({ name, type: liveType.get(name) as string })),
    };
  } catch (error) {
    await ctx.db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * The masked rows as the object will hold them: PostgreSQL prints a value in its own text form (`{erased}` for a
 * text[]), the object's decoder in another (`{"erased"}`), so the masked rows go through the file's own encoding
 * once, and each masked value read back must equal the database's under the column's type — a value the file's
 * type cannot hold exactly (a precision narrower than the mask's output) is refused here, before anything is
 * written.
 */
async function asStored(
  ctx: RewriteContext,
  oldBody: Uint8Array,
  rows: ReadonlyArray<ReadonlyArray<string | null>>,
  columns: ReadonlyArray<{ name: string; type: string }>,
  names: readonly string[],
): Promise<Array<Array<string | null>>> {
  const { columns: archived, metadata } = readArchivedSchema(oldBody);
  const encoding = encodingOfArchiveFile(metadata);
  const again = await decodeArchiveObject(
    encodeParquet(planFromArchiveFile(metadata, archived), rows, encoding),
  );
  for (const { name, type } of columns) {
    const c = names.indexOf(name);
    const { rows: check } = await ctx.db.query<{ same: boolean | string | null }>(
      // Compared as the type's own output text: json, point or xml have no equality operator.
      `SELECT bool_and(x::${type}::text IS NOT DISTINCT FROM y::${type}::text) AS same
         FROM unnest($1::text[], $2::text[]) AS t(x, y)`,
      [rows.map((r) => r[c] ?? null), again.rows.map((r) => r[c] ?? null)],
    );
    const same = check[0]?.same;
    if (!(same === true || same === 't' || same === null))
      throw new ArchivedObjectIntegrityError(
        `column ${quoteIdent(name)} of the archive object cannot hold its masked values exactly (its Parquet type is ` +
          'narrower than the mask gives); nothing was written',
      );
  }
  return again.rows.map((r) => [...r]);
}

/** A string literal for a column name inside SQL text (->> key): quotes doubled. */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
