/**
 * A CSV or Parquet object in S3 as an import's source. The object is loaded into a staging table (every
 * column text, plus `import_line`: the data row's number from 1, its key) and the import then walks that table
 * as it walks a source table: the same expressions, casts, per-row validation and rejects (by line number).
 *
 * - CSV is streamed from S3 straight into `COPY … FROM STDIN (FORMAT csv, HEADER true)`: PostgreSQL parses it
 *   (quotes, embedded delimiters and line breaks), nothing is held in memory. The header line names the columns.
 * - Parquet is read whole (at most {@link MAX_PARQUET_BYTES}), decoded by hyparquet and written to the same
 *   COPY as text: numbers and booleans as PostgreSQL reads them, timestamps as ISO-8601 UTC, binary as bytea
 *   hex, nested values as JSON. The schema's top-level fields name the columns.
 *
 * The object is pinned by the ETag Start saw: a different object under the key fails the staging (the line
 * numbers of a reject would otherwise point into another file).
 */

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type FileMetaData, parquetMetadata, parquetRead, type SchemaElement } from 'hyparquet';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { LEDGER_SCHEMA } from '../../../lib/contracts/protected-schemas.ts';
import { mapS3Error } from '../../adapters/s3-errors.ts';
import { CatalogError, StorageConfigurationError } from '../../core/errors.ts';
import { decompressors } from '../restore-archive/parquet-decode.ts';
import {
  bigIntFromBytes,
  dateText,
  decimalText,
  float32Text,
  floatText,
  timestampText,
} from '../restore-archive/pg-text-out.ts';
import { type ObjectSource, parseS3Uri } from './contract.ts';

/** A Parquet source is read into memory whole: bounded so that a Chunk invocation keeps room. */
export const MAX_PARQUET_BYTES = 512 * 1024 * 1024;
/** The staging table's key column: the data row's number in the object, from 1. */
export const LINE_COLUMN = 'import_line';
/** How much of a CSV object is read to find its header line. */
const HEADER_BYTES = 1024 * 1024;

/** What Start learns of the object: its columns and the version it will import. */
export interface ObjectFacts {
  readonly columns: readonly string[];
  readonly etag: string;
  readonly bytes: number;
}

/** `name` qualified by the session's own temporary schema (pg_temp_N: the catalog lookup needs the real name). */
export async function tempTableName(client: pg.ClientBase, name: string): Promise<string> {
  const { rows } = await client.query<{ schema: string }>(
    `SELECT nspname AS schema FROM pg_namespace WHERE oid = pg_my_temp_schema()`,
  );
  const schema = rows[0]?.schema;
  if (!schema) throw new Error('no temporary schema in this session');
  return quoteQualified(schema, name);
}

/** The run's staging table (in the ledger schema, named after the run). */
export function stagingTable(runId: string): { readonly schema: string; readonly table: string } {
  return { schema: LEDGER_SCHEMA, table: `import_staging_${runId.replace(/-/g, '')}` };
}

/** HEAD and header of the object; throws StorageConfigurationError (missing, forbidden) or CatalogError (columns). */
export async function readObjectFacts(s3: S3Client, source: ObjectSource): Promise<ObjectFacts> {
  const { bucket, key } = parseS3Uri(source.object);
  let head: { ETag?: string | undefined; ContentLength?: number | undefined };
  try {
    head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404)
      throw new StorageConfigurationError(`import source ${source.object} does not exist`, { cause: error });
    throw mapS3Error(error, `import source ${source.object}`);
  }
  const etag = head.ETag ?? '';
  const bytes = head.ContentLength ?? 0;
  const columns =
    source.format === 'csv'
      ? await readCsvHeader(s3, source, etag)
      : topLevelColumns((await readParquetFooter(s3, source, etag, bytes)).schema).map((c) => c.name);
  checkColumnNames(source, columns);
  return { columns, etag, bytes };
}

async function readCsvHeader(s3: S3Client, source: ObjectSource, etag: string): Promise<string[]> {
  const { bucket, key } = parseS3Uri(source.object);
  const response = await s3
    .send(
      new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${HEADER_BYTES - 1}`, IfMatch: etag }),
    )
    .catch((error: unknown) => {
      throw mapS3Error(error, `import source ${source.object}`);
    });
  const text = (await response.Body?.transformToString('utf8')) ?? '';
  const header = firstCsvRecord(text.replace(/^\uFEFF/, ''), source.delimiter);
  if (!header)
    throw new CatalogError(
      `import source ${source.object}: no header line within its first ${HEADER_BYTES} bytes (the first line must name the columns)`,
    );
  return header;
}

/** The first record of CSV text (RFC 4180 quoting: "" inside quotes, quoted delimiters and line breaks). */
export function firstCsvRecord(text: string, delimiter: string): string[] | undefined {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') {
        quoted = false;
      } else {
        field += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === delimiter) {
      fields.push(field);
      field = '';
    } else if (char === '\n' || char === '\r') {
      fields.push(field);
      return fields;
    } else {
      field += char;
    }
  }
  return undefined;
}

async function readWhole(
  s3: S3Client,
  source: ObjectSource,
  etag: string,
  bytes: number,
): Promise<Uint8Array> {
  if (bytes > MAX_PARQUET_BYTES) {
    throw new StorageConfigurationError(
      `import source ${source.object} is ${bytes} bytes: a Parquet source is read whole, at most ${MAX_PARQUET_BYTES} (split it, or load it as CSV)`,
    );
  }
  const { bucket, key } = parseS3Uri(source.object);
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }));
    return (await response.Body?.transformToByteArray()) ?? new Uint8Array();
  } catch (error) {
    throw changedOr(error, source);
  }
}

/** 412 on IfMatch: another object now lies under the key. */
function changedOr(error: unknown, source: ObjectSource): Error {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === 412)
    return new StorageConfigurationError(
      `import source ${source.object} changed since the run started (ETag): start a new run`,
      { cause: error },
    );
  return mapS3Error(error, `import source ${source.object}`);
}

/** The footer alone (two ranged GETs: its length, then itself), so Start does not download the whole file. */
async function readParquetFooter(
  s3: S3Client,
  source: ObjectSource,
  etag: string,
  bytes: number,
): Promise<FileMetaData> {
  const range = async (from: number): Promise<Uint8Array> => {
    const { bucket, key } = parseS3Uri(source.object);
    try {
      const response = await s3.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          Range: `bytes=${from}-${bytes - 1}`,
          IfMatch: etag,
        }),
      );
      return (await response.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (error) {
      throw changedOr(error, source);
    }
  };
  try {
    if (bytes < 12) throw new Error('too short for Parquet');
    const tail = await range(bytes - 8);
    const length = new DataView(tail.buffer, tail.byteOffset, tail.byteLength).getUint32(0, true);
    if (length + 8 > bytes) throw new Error('footer length past the start of the file');
    return parquetMetadata(toArrayBuffer(await range(bytes - 8 - length)));
  } catch (error) {
    if (
      error instanceof StorageConfigurationError ||
      (error as { name?: string }).name?.startsWith('Transient')
    )
      throw error;
    throw new CatalogError(
      `import source ${source.object} is not a readable Parquet file: ${(error as Error).message}`,
    );
  }
}

/** A top-level field: its schema element and how many leaf columns it spans. */
interface TopLevelColumn {
  readonly name: string;
  readonly element: SchemaElement;
  readonly nested: boolean;
}

/** The root element's children, in order: the top-level fields. */
function topLevelColumns(schema: readonly SchemaElement[]): TopLevelColumn[] {
  const [root, ...rest] = schema;
  const columns: TopLevelColumn[] = [];
  let index = 0;
  for (let child = 0; child < (root?.num_children ?? 0); child++) {
    const element = rest[index];
    if (!element) break;
    columns.push({ name: element.name, element, nested: (element.num_children ?? 0) > 0 });
    index += 1 + countDescendants(rest, index);
  }
  return columns;
}

/** DECIMAL columns are read raw (hyparquet would make a float of them) and formatted exactly here. */
function decimalScale(element: SchemaElement): number | undefined {
  const logical = element.logical_type as { type?: string; scale?: number } | undefined;
  if (logical?.type === 'DECIMAL') return logical.scale ?? element.scale ?? 0;
  if (element.converted_type === 'DECIMAL') return element.scale ?? 0;
  return undefined;
}

function withoutDecimal(element: SchemaElement): SchemaElement {
  if (decimalScale(element) === undefined) return element;
  const { converted_type: _c, logical_type: _l, scale: _s, precision: _p, ...rest } = element;
  return rest;
}

/** How each top-level column's decoded value becomes text PostgreSQL reads exactly. */
function columnFormatter(column: TopLevelColumn): (value: unknown) => string {
  const scale = column.nested ? undefined : decimalScale(column.element);
  if (scale !== undefined) {
    return (value) =>
      decimalText(
        value instanceof Uint8Array ? bigIntFromBytes(value) : BigInt(value as number | bigint),
        scale,
      );
  }
  if (!column.nested && column.element.type === 'FLOAT') return (value) => float32Text(value as number);
  if (!column.nested && column.element.type === 'DOUBLE') return (value) => floatText(value as number);
  return textOf;
}

/**
 * Timestamps to exact text (hyparquet's default is a millisecond `Date`): microseconds kept, nanoseconds cut to
 * the microseconds PostgreSQL has; written with `+00`, which a timestamp without time zone ignores.
 */
const EXACT_PARSERS = {
  timestampFromMilliseconds: (millis: bigint) => timestampText(millis * 1000n, true),
  timestampFromMicroseconds: (micros: bigint) => timestampText(micros, true),
  timestampFromNanoseconds: (nanos: bigint) => timestampText(nanos / 1000n, true),
  dateFromDays: (days: number) => dateText(days),
};

/** How many schema elements follow `index` as its descendants (depth-first layout). */
function countDescendants(
  elements: ReadonlyArray<{ num_children?: number | undefined }>,
  index: number,
): number {
  let count = 0;
  let pending = elements[index]?.num_children ?? 0;
  let at = index + 1;
  while (pending > 0) {
    const element = elements[at];
    if (!element) break;
    pending += (element.num_children ?? 0) - 1;
    count++;
    at++;
  }
  return count;
}

function checkColumnNames(source: ObjectSource, columns: readonly string[]): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const name of columns) {
    if (name === '') problems.push('an empty column name');
    else if (name === LINE_COLUMN) problems.push(`a column named ${LINE_COLUMN} (the staging table's own)`);
    else if (seen.has(name)) problems.push(`column ${JSON.stringify(name)} twice`);
    else if (name.length > 63)
      problems.push(`column name ${JSON.stringify(name.slice(0, 20))}… longer than 63 bytes`);
    seen.add(name);
  }
  if (columns.length === 0) problems.push('no columns');
  if (problems.length > 0)
    throw new CatalogError(`import source ${source.object} has ${problems.join(', ')}`);
}

/**
 * `CREATE … TABLE` of the staging table: `import_line` (identity: COPY numbers rows in file order), text columns.
 * Logged, not UNLOGGED: crash recovery (a failover) empties an unlogged table but keeps it, and the run would
 * then find no more rows and end "succeeded" with rows never imported.
 */
export function createStagingSql(
  name: { readonly schema: string; readonly table: string },
  columns: readonly string[],
  kind: 'logged' | 'temporary',
): string {
  const qualified = kind === 'temporary' ? quoteIdent(name.table) : quoteQualified(name.schema, name.table);
  return `CREATE ${kind === 'temporary' ? 'TEMPORARY ' : ''}TABLE ${qualified} (
            ${quoteIdent(LINE_COLUMN)} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ${columns.map((c) => `${quoteIdent(c)} text`).join(',\n            ')})${kind === 'temporary' ? ' ON COMMIT DROP' : ''}`;
}

/**
 * Loads the object into the (just created) staging table `qualified` inside the caller's transaction.
 * @returns the rows loaded
 */
export async function loadObject(
  client: pg.ClientBase,
  s3: S3Client,
  source: ObjectSource,
  facts: Pick<ObjectFacts, 'columns' | 'etag' | 'bytes'>,
  qualified: string,
): Promise<number> {
  const columnList = facts.columns.map(quoteIdent).join(', ');
  if (source.format === 'csv') {
    const { bucket, key } = parseS3Uri(source.object);
    const response = await s3
      .send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: facts.etag }))
      .catch((error: unknown) => {
        throw changedOr(error, source);
      });
    const copy = client.query(
      copyFrom(
        `COPY ${qualified} (${columnList}) FROM STDIN (FORMAT csv, HEADER true, DELIMITER ${literal(source.delimiter)}, NULL ${literal(source.null)}, ENCODING 'UTF8')`,
      ),
    );
    await pipeline(response.Body as Readable, copy);
    return copy.rowCount ?? 0;
  }
  const body = toArrayBuffer(await readWhole(s3, source, facts.etag, facts.bytes));
  const copy = client.query(copyFrom(`COPY ${qualified} (${columnList}) FROM STDIN`));
  await pipeline(Readable.from(parquetCopyText(body)), copy);
  return copy.rowCount ?? 0;
}

/** The file's rows as COPY text, one row group at a time (never every row decoded at once). */
async function* parquetCopyText(file: ArrayBuffer): AsyncGenerator<string> {
  const metadata = parquetMetadata(file);
  const columns = topLevelColumns(metadata.schema);
  const formatters = columns.map(columnFormatter);
  const raw: FileMetaData = { ...metadata, schema: metadata.schema.map(withoutDecimal) };
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: unknown[][] = [];
    await parquetRead({
      file,
      metadata: raw,
      rowStart,
      rowEnd,
      // Binary columns stay bytes (bytea hex); only columns annotated as strings are decoded as UTF-8.
      utf8: false,
      compressors: decompressors(),
      parsers: EXACT_PARSERS,
      onComplete: (decoded: unknown[][]) => {
        rows = decoded;
      },
    });
    yield* copyLines(rows, formatters);
    rowStart = rowEnd;
  }
}

/** A SQL string literal (standard_conforming_strings is on in every session). */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function toArrayBuffer(body: Uint8Array): ArrayBuffer {
  return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
}

/** Decoded Parquet rows as COPY text lines, a few thousand rows per chunk. */
function* copyLines(
  rows: readonly unknown[][],
  formatters: ReadonlyArray<(value: unknown) => string>,
): Generator<string> {
  const batch: string[] = [];
  for (const row of rows) {
    batch.push(`${row.map((value, i) => copyField(value, formatters[i] ?? textOf)).join('\t')}\n`);
    if (batch.length >= 4096) {
      yield batch.join('');
      batch.length = 0;
    }
  }
  if (batch.length > 0) yield batch.join('');
}

/** One value as COPY text: `\N` for NULL, backslash, tab and line breaks escaped. */
function copyField(value: unknown, format: (value: unknown) => string): string {
  if (value === null || value === undefined) return '\\N';
  return format(value)
    .replace(/\\/g, '\\\\')
    .replace(/\t/g, '\\t')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r');
}

/** A decoded Parquet value as text PostgreSQL's input functions read. */
function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  // String() spells NaN, Infinity and -Infinity as PostgreSQL's float input reads them.
  if (typeof value === 'number') return String(value);
  if (typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
