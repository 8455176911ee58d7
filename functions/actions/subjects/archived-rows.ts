/**
 * A subject's archived rows, for an export: archive policies moved old rows of a mapped table into Parquet
 * objects (lifecycle.archived_objects, kind 'archive-copy'), and those rows are the subject's data as much as
 * the live ones. Each of the table's objects is read exactly as restore-archive reads it (length and SHA-256
 * against the ledger, then decoded to PostgreSQL text), one object at a time, and only the subject's rows of
 * it are kept. An object in a cold storage class (Glacier Flexible Retrieval, Deep Archive, not restored) is
 * not read: it is reported as unread, with its key and class, for the operator to restore in S3 first. A listed
 * object with no current version (expired by the bucket's rule) holds nothing any more: it is reported as expired.
 *
 * The key is matched like the live query matches it (`column = $1::text::<type>`): the archived key values
 * (PostgreSQL text) and the subject key are both cast to the key column's current type by the database and
 * compared with the type's own equality, so numeric scale, time zones or a case-insensitive type match the
 * archived rows exactly when they would match live ones.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { headObject } from '../../adapters/object-versions.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { StorageConfigurationError } from '../../core/errors.ts';
import { readObjectStates } from '../restore-archive/cold-objects.ts';
import { readVerifiedObject } from '../restore-archive/object-reader.ts';
import { decodeArchiveObject } from '../restore-archive/parquet-decode.ts';
import type { ResolvedSubjectTable } from './mapping.ts';

/** One archived row: column name → PostgreSQL text, or null. */
export type ArchivedRow = Record<string, string | null>;

/** An archive object that could not be read without an S3 restore first. */
export interface UnreadObject {
  readonly key: string;
  readonly storageClass: string;
}

export interface ArchivedRowsOfTable {
  readonly rows: ArchivedRow[];
  /** Objects read and searched (not counting unread ones). */
  readonly objectsRead: number;
  readonly unread: UnreadObject[];
  /**
   * Listed objects S3 no longer has a current version of (the bucket's expiry rule deleted them, or an erasure
   * found them so): their rows are gone, there is nothing to export.
   */
  readonly expired: string[];
}

/** One archive object of a table, as the ledger lists it. */
export interface TableArchiveObject {
  readonly bucket: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * The archive copies of `qualified` (`"schema"."table"`, as archive runs record their table), oldest first.
 * Every listed object counts whatever its run's status: its rows were deleted in the transaction that listed it.
 */
export async function listTableArchiveObjects(
  db: Queryable,
  qualified: string,
): Promise<TableArchiveObject[]> {
  const { rows } = await db.query<{
    bucket: string;
    key: string;
    rows: string;
    bytes: string;
    sha256: string;
  }>(
    `SELECT o.bucket, o.key, o.rows::text, o.bytes::text, o.sha256
       FROM lifecycle.archived_objects o
       JOIN lifecycle.runs r ON r.run_id = o.run_id
      WHERE r.table_name = $1 AND r.action = 'archive' AND o.kind = 'archive-copy'
      ORDER BY o.min_time::timestamptz, o.object_id`,
    [qualified],
  );
  return rows.map((r) => ({
    bucket: r.bucket,
    key: r.key,
    rows: Number(r.rows),
    bytes: Number(r.bytes),
    sha256: r.sha256,
  }));
}

/** Of `values` (archived key texts), those equal to the subject key under the key column's type. */
export async function matchingKeyTexts(
  db: Queryable,
  table: ResolvedSubjectTable,
  values: readonly string[],
  subjectKey: string,
): Promise<Set<string>> {
  if (values.length === 0) return new Set();
  const type = table.keyColumn.typeName;
  const { rows } = await db.query<{ v: string }>(
    `SELECT v FROM unnest($1::text[]) AS v WHERE v::${type} = $2::text::${type}`,
    [values, subjectKey],
  );
  return new Set(rows.map((r) => r.v));
}

/**
 * The subject's rows in the table's archive objects. Objects are read one at a time; only the matching rows
 * of each are kept.
 * @throws StorageConfigurationError when the table has archive objects and there is no S3 client
 * @throws ArchivedObjectIntegrityError, ArchivedObjectFormatError for an object that is missing, not the
 *   ledger's bytes, or not readable: the export would be incomplete
 */
export async function readArchivedRows(
  db: Queryable,
  s3: S3Client | undefined,
  table: ResolvedSubjectTable,
  subjectKey: string,
): Promise<ArchivedRowsOfTable> {
  const objects = await listTableArchiveObjects(db, table.qualified);
  const found: ArchivedRow[] = [];
  const unread: UnreadObject[] = [];
  const expired: string[] = [];
  let objectsRead = 0;
  if (objects.length === 0) return { rows: found, objectsRead, unread, expired };
  if (!s3) {
    throw new StorageConfigurationError(
      `${table.qualified} has ${objects.length} archive object(s) and the export has no S3 client to read them`,
    );
  }
  for (const object of objects) {
    if ((await headObject(s3, object.bucket, object.key)) === undefined) {
      expired.push(object.key);
      continue;
    }
    const [state] = await readObjectStates(s3, [object]);
    if (state && state.state !== 'readable') {
      unread.push({ key: object.key, storageClass: state.storageClass });
      continue;
    }
    const { body } = await readVerifiedObject(s3, object);
    const decoded = await decodeArchiveObject(body);
    objectsRead++;
    // A key column added after the object was written: none of its rows has the subject's key.
    const keyIndex = decoded.columns.findIndex((c) => c.name === table.keyColumn.name);
    if (keyIndex < 0) continue;
    const values = new Set<string>();
    for (const row of decoded.rows) {
      const value = row[keyIndex];
      if (value !== null && value !== undefined) values.add(value);
    }
    const matching = await matchingKeyTexts(db, table, [...values], subjectKey);
    if (matching.size === 0) continue;
    for (const row of decoded.rows) {
      const value = row[keyIndex];
      if (value === null || value === undefined || !matching.has(value)) continue;
      // fromEntries defines own properties: a column named __proto__ stays a column.
      found.push(Object.fromEntries(decoded.columns.map((column, i) => [column.name, row[i] ?? null])));
    }
  }
  return { rows: found, objectsRead, unread, expired };
}
