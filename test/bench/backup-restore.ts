/**
 * The restore half of `npm run bench -- backup`. The baseline: one `COPY … FROM STDIN` of the table's COPY text
 * from a local file into an empty table of the same shape, in one transaction. The restore: the backup's parts
 * loaded into another such table with the product's building block, `restorePart` (download to a temporary
 * file while hashing, length and SHA-256 checked against the manifest, then decompress → COPY FROM STDIN),
 * every part in one transaction as a restore loads a table; then, in the same transaction and timed apart, the
 * content checksum of the loaded rows, which must equal the manifest's (what `restore` and drills check before
 * COMMIT). For the breakdown, a pass that only downloads and verifies every part.
 *
 * Both targets are created (columns and NOT NULL, no index: a full restore builds indexes after the data) and
 * checkpointed before their load, outside the timed transaction.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import {
  contentChecksumSql,
  formatContentChecksum,
} from '../../functions/actions/backup/content-checksum.ts';
import type { BackupManifest, BackupTableEntry } from '../../functions/actions/backup/manifest.ts';
import { downloadVerified, restorePart } from '../../functions/actions/backup/part-reader.ts';
import { PINNED_TEXT_SETTINGS } from '../../functions/actions/backup/part-writer.ts';
import { quoteIdent } from '../../lib/contracts/identifiers.ts';
import { type CopyResult, copyInFile } from './copy.ts';
import { BACKUP_COLUMNS, BACKUP_TABLE } from './dataset.ts';

const RESTORE_SCHEMA = 'bench_restore';
export const BASELINE_TARGET = `${RESTORE_SCHEMA}.events_copy`;
export const RESTORE_TARGET = `${RESTORE_SCHEMA}.events`;

/** Drops and creates `table` like the backed-up one (no index), then CHECKPOINT. */
export async function createRestoreTarget(admin: pg.Client, table: string): Promise<void> {
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${RESTORE_SCHEMA}`);
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.query(`CREATE TABLE ${table} (LIKE ${BACKUP_TABLE})`);
  await admin.query('CHECKPOINT').catch(() => undefined);
}

/** The baseline: the COPY text file into BASELINE_TARGET (created here, dropped after). */
export async function copyInBaseline(
  admin: pg.Client,
  db: pg.Client,
  copyTextFile: string,
  rows: number,
): Promise<CopyResult> {
  await createRestoreTarget(admin, BASELINE_TARGET);
  const columns = BACKUP_COLUMNS.map(quoteIdent).join(', ');
  const result = await copyInFile(db, BASELINE_TARGET, columns, copyTextFile);
  if (result.rows !== rows) throw new Error(`COPY FROM loaded ${result.rows} rows, expected ${rows}`);
  await admin.query(`DROP TABLE ${BASELINE_TARGET}`);
  return result;
}

/** The only table of a bench backup's manifest. */
export function onlyTable(manifest: BackupManifest): BackupTableEntry {
  const entry = manifest.tables[0];
  if (manifest.tables.length !== 1 || !entry)
    throw new Error(`the backup holds ${manifest.tables.length} tables, expected 1`);
  return entry;
}

export interface RestoredParts {
  /** BEGIN, restorePart of every part, COMMIT; not the checksum. */
  readonly restore_seconds: number;
  /** The content checksum of the loaded rows, in the restore's transaction. */
  readonly checksum_seconds: number;
}

/** Restores every part of `manifest` into `target` (existing, empty) in one transaction; checks rows and checksum. */
export async function restoreParts(
  db: pg.ClientBase,
  s3: S3Client,
  bucket: string,
  manifest: BackupManifest,
  target: string,
  rows: number,
): Promise<RestoredParts> {
  const entry = onlyTable(manifest);
  const tempDir = await mkdtemp(join(tmpdir(), 'bench-restore-'));
  try {
    const started = performance.now();
    await db.query('BEGIN');
    try {
      await db.query(PINNED_TEXT_SETTINGS);
      let loaded = 0;
      for (const part of entry.parts) {
        const result = await restorePart({
          client: db,
          s3,
          bucket,
          part,
          codec: manifest.compression.codec,
          targetQuotedName: target,
          columns: entry.columns,
          tempDir,
        });
        loaded += result.rows;
      }
      const loadedAt = performance.now();
      const { rows: sums } = await db.query<{ rows: string; sum: string }>(
        contentChecksumSql(target, entry.columns, { only: true }),
      );
      const checkedAt = performance.now();
      const sum = sums[0];
      const restored = sum ? formatContentChecksum({ rows: sum.rows, sum: sum.sum }) : 'none';
      if (loaded !== rows || restored !== entry.contentChecksum)
        throw new Error(
          `restore loaded ${loaded} rows (expected ${rows}), checksum ${restored} (manifest ${entry.contentChecksum})`,
        );
      await db.query('COMMIT');
      const committedAt = performance.now();
      return {
        restore_seconds: (loadedAt - started + (committedAt - checkedAt)) / 1000,
        checksum_seconds: (checkedAt - loadedAt) / 1000,
      };
    } catch (error) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } finally {
    await rm(tempDir, { recursive: true, force: true });
  }
}

/** Seconds to download and verify every part (nothing loaded). */
export async function downloadParts(s3: S3Client, bucket: string, manifest: BackupManifest): Promise<number> {
  const tempDir = await mkdtemp(join(tmpdir(), 'bench-download-'));
  try {
    const started = performance.now();
    for (const part of onlyTable(manifest).parts) {
      const file = join(tempDir, 'part');
      await downloadVerified(s3, bucket, part, file);
      await rm(file, { force: true });
    }
    return (performance.now() - started) / 1000;
  } finally {
    await rm(tempDir, { recursive: true, force: true });
  }
}
