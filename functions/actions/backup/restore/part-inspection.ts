/**
 * One read of a stored part that checks everything that can be checked without a database: its length and
 * SHA-256 (every byte hashed, even after the content turned out unreadable), and — decompressed on the fly
 * and never stored — that it is a COPY block of the manifest's columns and how many rows it holds (a row is
 * one line: COPY text escapes newlines inside values). Memory stays at a few stream buffers whatever the part's
 * size.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { quoteIdent } from '../../../../lib/contracts/identifiers.ts';
import { mapS3Error } from '../../../adapters/archive-store.ts';
import { createDecompressor, type PartCompression } from '../part-compression.ts';
import { CopyBlockBody } from '../part-reader.ts';

/** What one read of a part found. */
export type PartInspection =
  | { readonly found: false }
  | {
      readonly found: true;
      readonly bytes: number;
      readonly sha256: string;
      /** Rows in the block; undefined when its rows were not counted (see `unreadable`, or no decompressor). */
      readonly rows: number | undefined;
      /** Why the content is not a COPY block of the columns (a stream the decompressor refused included). */
      readonly unreadable: string | undefined;
    };

/** Counts newlines: one per row of the block's body. */
class LineCounter extends Writable {
  lines = 0;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) this.lines++;
    callback();
  }
}

export interface InspectPartProps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly key: string;
  /** Absent: only length and SHA-256 (this Node cannot decompress the codec). */
  readonly codec: PartCompression['codec'] | undefined;
  readonly columns: readonly string[];
}

export async function inspectPart(props: InspectPartProps): Promise<PartInspection> {
  let body: Readable;
  try {
    const result = await props.s3.send(new GetObjectCommand({ Bucket: props.bucket, Key: props.key }));
    body = result.Body as Readable;
  } catch (error) {
    const name = (error as { name?: unknown }).name;
    if (name === 'NoSuchKey' || name === 'NotFound') return { found: false };
    throw mapS3Error(error, `download of ${props.key}`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const content = props.codec === undefined ? undefined : contentCheck(props.key, props.codec, props.columns);
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      await content?.write(chunk);
    }
  } catch (error) {
    content?.abort();
    throw mapS3Error(error, `download of ${props.key}`);
  }
  const checked = await content?.end();
  return {
    found: true,
    bytes,
    sha256: hash.digest('hex'),
    rows: checked?.rows,
    unreadable: checked?.unreadable,
  };
}

/**
 * The decompress → COPY-block → line-count side of the read. It never fails the download: once the content
 * is found unreadable it stops being fed, and the rest is only hashed.
 */
function contentCheck(key: string, codec: PartCompression['codec'], columns: readonly string[]) {
  const decompressor = createDecompressor(codec);
  const counter = new LineCounter();
  let unreadable: string | undefined;
  const parsing = pipeline(
    decompressor,
    new CopyBlockBody(key, columns.map(quoteIdent).join(', ')),
    counter,
  ).catch((error: unknown) => {
    unreadable = (error as Error).message;
  });
  return {
    async write(chunk: Buffer): Promise<void> {
      if (unreadable !== undefined || decompressor.destroyed) return;
      if (!decompressor.write(chunk)) {
        await Promise.race([once(decompressor, 'drain').catch(() => undefined), parsing]);
      }
    },
    /** The download failed: nothing more comes, and nothing waits for the rest. */
    abort(): void {
      decompressor.destroy();
    },
    async end(): Promise<{ rows: number | undefined; unreadable: string | undefined }> {
      if (!decompressor.destroyed) decompressor.end();
      await parsing;
      return unreadable === undefined ? { rows: counter.lines, unreadable } : { rows: undefined, unreadable };
    },
  };
}
