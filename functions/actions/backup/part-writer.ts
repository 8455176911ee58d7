/**
 * Writes one backup part: `COPY (SELECT cols FROM t WHERE range) TO STDOUT` streamed, never parsed, through
 * the compressor and a SHA-256 into an S3 multipart upload. The object is a psql-ready block (`COPY … FROM
 * stdin;`, the rows, `\.`), so a part restores with psql alone. Memory is bounded by the upload's part size
 * times its queue, whatever the table's size: the COPY waits while the upload is behind (backpressure).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, pipeline, Transform, type TransformCallback } from 'node:stream';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import { mapS3Error } from '../../adapters/archive-store.ts';
import { readyForQuery } from '../../adapters/copy-out.ts';
import { TransientStorageError } from '../../core/errors.ts';
import { createCompressor, type PartCompression } from './part-compression.ts';

/** The table a part reads, as the catalog names it. */
export interface PartTable {
  /** `"schema"."table"`, quoted (quoteQualified). */
  readonly quotedName: string;
  /** Column names as the catalog gives them (unquoted), in the order the part's rows carry them. */
  readonly columns: readonly string[];
  /**
   * Read the table's own rows only (`FROM ONLY`): its inheritance children are backed up as tables of their
   * own. Never for a partitioned table, whose rows are all in its partitions.
   */
  readonly only?: boolean;
}

/** A row range: a predicate over the table's columns with `$n` placeholders, and their values as text. */
export interface RowRange {
  readonly sql: string;
  readonly params: readonly string[];
}

/** Upload bounds: memory held is about `partSizeBytes × (queueSize + 1)`. */
export interface PartUploadOptions {
  /** S3's minimum is 5 MiB. @default 8 MiB */
  readonly partSizeBytes?: number;
  /** Parts in flight at once. @default 2 */
  readonly queueSize?: number;
}

export interface WritePartProps {
  /** A client whose transaction (and snapshot) the caller has set; the COPY runs in it. */
  readonly client: pg.ClientBase;
  readonly table: PartTable;
  /** Absent: the whole table. */
  readonly range?: RowRange;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly compression: PartCompression;
  readonly upload?: PartUploadOptions;
}

/** What was stored: `bytes` and `sha256` are of the object (compressed), as the manifest records them. */
export interface WrittenPart {
  readonly key: string;
  /** From the COPY command tag. */
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  /** The psql block's length before compression (header, rows, trailer). */
  readonly uncompressedBytes: number;
}

const DEFAULT_PART_SIZE_BYTES = 8 * 1024 * 1024;
const DEFAULT_QUEUE_SIZE = 2;

/**
 * The first line of every part: the rows are UTF-8 (the project's connections ask for it), whatever the
 * encoding of the database a psql restore loads them into (without it, psql would send them as the target's
 * client encoding and a LATIN1 database would store `MÃ¼ller` for `Müller`).
 */
export const PART_ENCODING_LINE = "SET client_encoding = 'UTF8';\n";

/** The encoding line, then `COPY "s"."t" ("a", "b") FROM stdin;` and a newline: every part's header. */
export function partHeader(table: Pick<PartTable, 'quotedName' | 'columns'>): string {
  if (table.columns.length === 0) {
    // `COPY t () FROM stdin` is not SQL: a table with no stored column has nothing a part could carry.
    throw new RangeError(`${table.quotedName} has no stored column to copy`);
  }
  return `${PART_ENCODING_LINE}COPY ${table.quotedName} (${table.columns.map(quoteIdent).join(', ')}) FROM stdin;\n`;
}

/**
 * The text settings of the project's connections (functions/commons/database.ts SESSION_OPTIONS), set for
 * the caller's transaction before the COPY: a session with extra_float_digits 0 would write 0.3 for
 * 0.30000000000000004 and the restore would hold another value.
 */
export const PINNED_TEXT_SETTINGS = `SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, MDY', true),
  set_config('IntervalStyle', 'iso_8601', true), set_config('extra_float_digits', '3', true),
  set_config('bytea_output', 'hex', true)`;

/** The end-of-data marker psql expects after COPY FROM stdin rows. */
export const PART_TRAILER = '\\.\n';

/** The COPY TO statement of a part, its range's values inlined (COPY takes no bind parameters). */
export function copyOutSql(table: PartTable, range?: RowRange): string {
  const columns = table.columns.map(quoteIdent).join(', ');
  const from = `${table.only ? 'ONLY ' : ''}${table.quotedName}`;
  const where = range ? ` WHERE ${inlineParameters(range.sql, range.params)}` : '';
  return `COPY (SELECT ${columns} FROM ${from}${where}) TO STDOUT`;
}

/**
 * Replaces `$n` by the n-th value as a string literal, outside quoted identifiers and string literals (the
 * predicate's identifiers are quoted and may hold `$1`). pg's escapeLiteral writes E'…' when a value has a
 * backslash, so the literal reads the same whatever standard_conforming_strings says.
 */
export function inlineParameters(sql: string, params: readonly string[]): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const char = sql[i] as string;
    if (char === '"' || char === "'") {
      const end = closingQuote(sql, i, char);
      out += sql.slice(i, end);
      i = end;
      continue;
    }
    const placeholder = char === '$' ? /^\$(\d+)/.exec(sql.slice(i)) : null;
    if (placeholder) {
      const index = Number(placeholder[1]) - 1;
      const value = params[index];
      if (value === undefined) throw new RangeError(`range predicate has $${index + 1} but no such value`);
      out += pg.escapeLiteral(value);
      i += placeholder[0].length;
      continue;
    }
    out += char;
    i++;
  }
  return out;
}

/** The index just past the quote closing the one at `start` (a doubled quote is part of the text). */
function closingQuote(sql: string, start: number, quote: string): number {
  let i = start + 1;
  for (;;) {
    const next = sql.indexOf(quote, i);
    if (next === -1) throw new SyntaxError('unterminated quote in range predicate');
    if (sql[next + 1] === quote) {
      i = next + 2;
      continue;
    }
    return next + 1;
  }
}

/** Counts and hashes the bytes passing through (the compressed bytes S3 stores). */
class HashingCounter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/**
 * Writes one part and returns what the manifest records of it. On any failure the multipart upload is
 * aborted (no object, no parts left) and the error is thrown; after an S3 failure the rest of the part's
 * COPY output is read and dropped so that the connection ends the COPY cleanly (a part is bounded, so is
 * that read).
 */
export async function writePart(props: WritePartProps): Promise<WrittenPart> {
  const { client, table, range, s3, bucket, key, compression } = props;
  const compressor = createCompressor(compression);
  const counter = new HashingCounter();
  const body = new PassThrough();
  const contentType = `application/${compression.codec}`;
  const upload = new Upload({
    client: s3,
    partSize: props.upload?.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES,
    queueSize: props.upload?.queueSize ?? DEFAULT_QUEUE_SIZE,
    leavePartsOnError: false,
    params: { Bucket: bucket, Key: key, Body: body, ContentType: contentType },
  });
  // An error anywhere in compressor → counter → body destroys the body, which fails the upload.
  pipeline(compressor, counter, body, () => undefined);
  let uploadError: unknown;
  const uploading = upload.done();
  const uploadFailed = uploading.then(
    () => new Promise<never>(() => undefined),
    (error: unknown) => {
      uploadError = error;
    },
  );

  /** Writes with backpressure; false once the upload has failed (the rest is then dropped). */
  const write = async (chunk: Buffer | string): Promise<boolean> => {
    if (uploadError !== undefined) return false;
    if (compressor.write(chunk)) return true;
    await Promise.race([once(compressor, 'drain'), uploadFailed]).catch((error: unknown) => {
      uploadError ??= error;
    });
    return uploadError === undefined;
  };

  let uncompressedBytes = 0;
  const header = partHeader(table);
  await client.query(PINNED_TEXT_SETTINGS);
  const copy = copyTo(copyOutSql(table, range));
  const ready = readyForQuery(copy);
  try {
    await write(header);
    uncompressedBytes += Buffer.byteLength(header);
    client.query(copy);
    // The loop body never throws: an early exit would destroy the COPY stream mid-protocol and leave the
    // connection stuck; a failed upload only turns the loop into a drain.
    for await (const chunk of copy as AsyncIterable<Buffer>) {
      if (await write(chunk)) uncompressedBytes += chunk.length;
    }
    await ready;
    if (await write(PART_TRAILER)) uncompressedBytes += PART_TRAILER.length;
    compressor.end();
  } catch (error) {
    // The COPY failed (the server's error): the upload must not complete with a truncated body.
    compressor.destroy(error instanceof Error ? error : new Error(String(error)));
    await uploading.catch(() => undefined);
    await upload.abort();
    throw error;
  }
  try {
    await uploading;
  } catch (error) {
    await upload.abort();
    throw mapS3Error(error, `upload of ${key}`);
  }
  const written: WrittenPart = {
    key,
    rows: copy.rowCount,
    bytes: counter.bytes,
    sha256: counter.hash.digest('hex'),
    uncompressedBytes,
  };
  await checkStoredLength(s3, bucket, written);
  return written;
}

/** HEAD: S3 holds as many bytes as were hashed (a proxy or server that cut the body is caught here). */
async function checkStoredLength(s3: S3Client, bucket: string, part: WrittenPart): Promise<void> {
  let length: number | undefined;
  try {
    length = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: part.key }))).ContentLength;
  } catch (error) {
    throw mapS3Error(error, `check of ${part.key}`);
  }
  if (length !== part.bytes)
    throw new TransientStorageError(
      `${part.key}: S3 holds ${length ?? 'no'} bytes, ${part.bytes} were written`,
    );
}
