/**
 * Restores one backup part. The object is first downloaded to a temporary file while it is hashed, and
 * its length and SHA-256 are checked against the manifest before a single row reaches the database: a
 * truncated, altered or missing part loads nothing. Then the decompressed block is streamed into
 * `COPY target (cols) FROM STDIN` without its own `COPY … FROM stdin;` line and `\.` trailer, so a part
 * loads into any table with those columns (a restore next to the original).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import { mapS3Error } from '../../adapters/archive-store.ts';
import { classifyDatabaseError, LifecycleError } from '../../core/errors.ts';
import { isPostgresError } from '../../core/redact-database-error.ts';
import { checkDecompression, createDecompressor, type PartCompression } from './part-compression.ts';
import { PART_ENCODING_LINE, PART_TRAILER } from './part-writer.ts';

/** A part S3 holds is not the one the manifest lists (or is gone): nothing of it was loaded. */
export class BackupPartMismatchError extends LifecycleError {
  override readonly name = 'BackupPartMismatchError';
}

/** A part whose bytes match the manifest but whose text is not a COPY block of the expected columns. */
export class BackupPartFormatError extends LifecycleError {
  override readonly name = 'BackupPartFormatError';
}

/** A part as the manifest lists it. */
export interface ListedPart {
  readonly key: string;
  readonly bytes: number;
  readonly sha256: string;
  /**
   * The COPY must load exactly this many rows, else the part is refused (the caller's transaction then rolls
   * back): the server stops at the first `\.`, so a block cut short or followed by another would load silently.
   */
  readonly rows: number;
}

export interface RestorePartProps {
  /** The COPY runs in the caller's transaction on this client. */
  readonly client: pg.ClientBase;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly part: ListedPart;
  readonly codec: PartCompression['codec'];
  /** `"schema"."table"` to load into (quoted). */
  readonly targetQuotedName: string;
  /** The columns of the part, in its order (the header must list exactly these). */
  readonly columns: readonly string[];
  /** Where the download goes. @default os.tmpdir() */
  readonly tempDir?: string;
}

/** Downloads, verifies, and loads one part; returns the rows COPY loaded. */
export async function restorePart(props: RestorePartProps): Promise<{ rows: number }> {
  checkDecompression(props.codec);
  const directory = await mkdtemp(join(props.tempDir ?? tmpdir(), 'backup-part-'));
  try {
    const file = join(directory, 'part');
    await downloadVerified(props.s3, props.bucket, props.part, file);
    return await loadPart(props, file);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Streams the object to `file`, then refuses it unless its length and SHA-256 are the manifest's. */
export async function downloadVerified(
  s3: S3Client,
  bucket: string,
  part: ListedPart,
  file: string,
): Promise<void> {
  let body: Readable;
  try {
    const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: part.key }));
    body = result.Body as Readable;
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'NoSuchKey' || name === 'NotFound')
      throw new BackupPartMismatchError(`${part.key}: listed in the manifest but missing from the bucket`, {
        cause: error,
      });
    throw mapS3Error(error, `download of ${part.key}`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  try {
    await pipeline(body, tap, createWriteStream(file));
  } catch (error) {
    throw mapS3Error(error, `download of ${part.key}`);
  }
  if (bytes !== part.bytes)
    throw new BackupPartMismatchError(
      `${part.key}: ${bytes} bytes in the bucket, the manifest lists ${part.bytes}`,
    );
  if (hash.digest('hex') !== part.sha256)
    throw new BackupPartMismatchError(`${part.key}: SHA-256 differs from the manifest's`);
}

/**
 * Drops the part's header (the encoding line, then the COPY header of `columns`, both checked) and its `\.`
 * trailer (checked to end the text), passing the rows between through unchanged.
 */
export class CopyBlockBody extends Transform {
  private header: Buffer | undefined = Buffer.alloc(0);
  private tail = Buffer.alloc(0);

  constructor(
    private readonly key: string,
    private readonly columnList: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const rows = this.cut(chunk);
    if (rows instanceof Error) callback(rows);
    else callback(null, rows);
  }

  override _flush(callback: TransformCallback): void {
    if (this.header !== undefined) callback(this.formatError('no header line'));
    else if (this.tail.toString('utf8') !== PART_TRAILER)
      callback(this.formatError('no \\. trailer at its end'));
    else callback();
  }

  /** The rows of `chunk` that can be passed on (possibly none), or why the block is not a part's. */
  private cut(chunk: Buffer): Buffer | BackupPartFormatError {
    let data = chunk;
    if (this.header !== undefined) {
      const seen: Buffer = Buffer.concat([this.header, data]);
      if (seen.length < PART_ENCODING_LINE.length) {
        this.header = seen;
        return Buffer.alloc(0);
      }
      if (seen.subarray(0, PART_ENCODING_LINE.length).toString('utf8') !== PART_ENCODING_LINE)
        return this.formatError('its first line is not the client encoding');
      const newline = headerEnd(seen, PART_ENCODING_LINE.length);
      if (newline === -1) {
        // A header is one line of at most ~1600 quoted names; a part with no end to it within 1 MiB is not ours.
        if (seen.length > 1024 * 1024) return this.formatError('no header line');
        this.header = seen;
        return Buffer.alloc(0);
      }
      const problem = this.checkHeader(seen.subarray(PART_ENCODING_LINE.length, newline).toString('utf8'));
      if (problem) return this.formatError(problem);
      this.header = undefined;
      data = seen.subarray(newline + 1);
    }
    // Hold back what could be the trailer; everything before it is rows.
    const all = Buffer.concat([this.tail, data]);
    const keep = Math.min(all.length, PART_TRAILER.length);
    this.tail = Buffer.from(all.subarray(all.length - keep));
    return all.subarray(0, all.length - keep);
  }

  private checkHeader(line: string): string | undefined {
    if (!line.startsWith('COPY ') || !line.endsWith(' FROM stdin;'))
      return 'its second line is not a COPY header';
    if (!line.endsWith(` (${this.columnList}) FROM stdin;`)) return 'its columns are not the expected ones';
    return undefined;
  }

  private formatError(problem: string): BackupPartFormatError {
    return new BackupPartFormatError(`${this.key}: not a COPY block (${problem})`);
  }
}

/**
 * The index of the newline ending the header: the first one outside double quotes (a quoted identifier
 * may hold a newline; a doubled quote inside one toggles twice). -1 while the header goes on.
 */
function headerEnd(text: Buffer, from: number): number {
  let quoted = false;
  for (let i = from; i < text.length; i++) {
    const byte = text[i];
    if (byte === 0x22) quoted = !quoted;
    else if (byte === 0x0a && !quoted) return i;
  }
  return -1;
}

async function loadPart(props: RestorePartProps, file: string): Promise<{ rows: number }> {
  const columnList = props.columns.map(quoteIdent).join(', ');
  const copy = copyFrom(`COPY ${props.targetQuotedName} (${columnList}) FROM STDIN`);
  // The client is the caller's, in its transaction: a failed COPY rolls back with it.
  const target = props.client.query(copy);
  try {
    await pipeline(
      createReadStream(file),
      createDecompressor(props.codec),
      new CopyBlockBody(props.part.key, columnList),
      target,
    );
  } catch (error) {
    throw loadError(props.part.key, error);
  }
  const rows = copy.rowCount;
  if (rows !== props.part.rows)
    throw new BackupPartMismatchError(
      `${props.part.key}: COPY loaded ${rows} rows, the manifest lists ${props.part.rows}`,
    );
  return { rows };
}

/**
 * A failed load, named: the server's error through the redaction every database error goes through (a COPY
 * error quotes the row value it choked on, in its message and its `where`); a stream the decompressor
 * cannot read (its SHA-256 matched, so it was written so) as a format error.
 */
function loadError(key: string, error: unknown): unknown {
  if (error instanceof LifecycleError) return error;
  if (isPostgresError(error)) return classifyDatabaseError(error);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new BackupPartFormatError(`${key}: not a readable compressed stream (${code})`);
  }
  return error;
}
