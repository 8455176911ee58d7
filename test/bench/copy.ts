/**
 * The baselines: `COPY (SELECT …) TO STDOUT` read to the end by a pg client and discarded, and `COPY … FROM
 * STDIN` of a local file.
 *
 * The archive baseline (`copyOut`) uses pg itself: a Query whose CopyData handler counts bytes. The rows cross
 * the wire and pg's protocol parser frames every CopyData message, but nothing parses fields: it is the cost
 * of getting the rows out of PostgreSQL, not of using them. The backup baselines go through pg-copy-streams,
 * as the backup's part writer and reader do (`copyOutStream`, `copyInFile`).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { EVENTS_TABLE } from './dataset.ts';

export interface CopyResult {
  readonly rows: number;
  readonly bytes: number;
  readonly seconds: number;
}

/** A Query whose COPY OUT data is counted and dropped. */
class DiscardingCopy extends pg.Query {
  bytes = 0;

  /** Called by pg's Client for each CopyData message of the active query (pg's own Query ignores them). */
  handleCopyData(message: { chunk: Buffer }): void {
    this.bytes += message.chunk.length;
  }
}

export async function copyOut(db: pg.Client, select: string): Promise<CopyResult> {
  const started = performance.now();
  const { rows, bytes } = await new Promise<{ rows: number; bytes: number }>((resolve, reject) => {
    const query: DiscardingCopy = new DiscardingCopy(`COPY (${select}) TO STDOUT`, (error, result) => {
      if (error) reject(error);
      else resolve({ rows: result.rowCount ?? 0, bytes: query.bytes });
    });
    db.query(query);
  });
  return { rows, bytes, seconds: (performance.now() - started) / 1000 };
}

/** The rows an archive run takes, in the order it takes them. `cutoff`: ISO text. */
export function orderedSelect(cutoff: string): string {
  return `SELECT * FROM ${EVENTS_TABLE} WHERE created_at < '${cutoff}'::timestamptz ORDER BY created_at, id`;
}

export function unorderedSelect(cutoff: string): string {
  return `SELECT * FROM ${EVENTS_TABLE} WHERE created_at < '${cutoff}'::timestamptz`;
}

/** Counts the bytes passing through. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/**
 * `COPY (select) TO STDOUT` through pg-copy-streams into `file` (default /dev/null: read and dropped), on one
 * connection; `bytes` is the COPY text.
 */
export async function copyOutStream(
  db: pg.ClientBase,
  select: string,
  file = '/dev/null',
): Promise<CopyResult> {
  const started = performance.now();
  const copy = db.query(copyTo(`COPY (${select}) TO STDOUT`));
  const counter = new ByteCounter();
  await pipeline(copy, counter, createWriteStream(file));
  return { rows: copy.rowCount, bytes: counter.bytes, seconds: (performance.now() - started) / 1000 };
}

/**
 * `COPY table (columns) FROM STDIN` of a file of COPY text through pg-copy-streams, in one transaction (as a
 * restore loads a table); `table` and `columns` quoted by the caller.
 */
export async function copyInFile(
  db: pg.ClientBase,
  quotedTable: string,
  quotedColumns: string,
  file: string,
): Promise<CopyResult> {
  const started = performance.now();
  await db.query('BEGIN');
  try {
    const copy = copyFrom(`COPY ${quotedTable} (${quotedColumns}) FROM STDIN`);
    const counter = new ByteCounter();
    await pipeline(createReadStream(file), counter, db.query(copy));
    await db.query('COMMIT');
    return { rows: copy.rowCount, bytes: counter.bytes, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
