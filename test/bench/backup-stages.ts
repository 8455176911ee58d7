/**
 * The backup path rebuilt one stage at a time on one connection, for the breakdown: each rung adds one stage
 * to the one before, so the differences are the stages' costs on the wall clock.
 *
 *   COPY → /dev/null                                 the baseline (copy.ts copyOutStream)
 *   COPY → compressor → /dev/null                    + compression (the product's compressor factory)
 *   writePart: COPY → compressor → SHA-256 → S3      + hashing, the multipart upload and its HEAD check: the
 *                                                      product's part writer, the whole table as one part
 *   backup without the checksum query                + the state machine, planning, parallel parts, DDL files,
 *                                                      manifest, ledger (backup-instrument.ts toggle)
 *   backup                                           + each part's content-checksum query
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { createCompressor, type PartCompression } from '../../functions/actions/backup/part-compression.ts';
import { writePart } from '../../functions/actions/backup/part-writer.ts';
import { BACKUP_COLUMNS, BACKUP_TABLE } from './dataset.ts';

export interface StageResult {
  readonly seconds: number;
  /** Bytes out of the last stage (compressed). */
  readonly bytes: number;
}

/** `COPY (select) TO STDOUT` → compressor → /dev/null. */
export async function copyCompressed(
  db: pg.ClientBase,
  select: string,
  compression: PartCompression,
): Promise<StageResult> {
  const started = performance.now();
  let bytes = 0;
  const compressor = createCompressor(compression);
  compressor.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  await pipeline(db.query(copyTo(`COPY (${select}) TO STDOUT`)), compressor, createWriteStream('/dev/null'));
  return { seconds: (performance.now() - started) / 1000, bytes };
}

/** The part writer on the whole table (one part), in a snapshot transaction as a backup's worker runs it. */
export async function writeWholeTablePart(
  db: pg.ClientBase,
  s3: S3Client,
  bucket: string,
  compression: PartCompression,
  rows: number,
): Promise<StageResult> {
  const key = `bench/whole-table-part.sql.${compression.codec === 'gzip' ? 'gz' : 'zst'}`;
  const started = performance.now();
  await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const written = await writePart({
      client: db,
      table: { quotedName: BACKUP_TABLE, columns: BACKUP_COLUMNS },
      s3,
      bucket,
      key,
      compression,
    });
    await db.query('COMMIT');
    if (written.rows !== rows) throw new Error(`writePart wrote ${written.rows} rows, expected ${rows}`);
    return { seconds: (performance.now() - started) / 1000, bytes: written.bytes };
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
}
