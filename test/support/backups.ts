/** What backup tests read back: keys under a prefix, and a run's manifest through the restore side's own reader. */
import type { S3Client } from '@aws-sdk/client-s3';
import type { BackupManifest } from '../../functions/actions/backup/manifest.ts';
import { findBackup } from '../../functions/actions/backup/restore/index.ts';
import type { RunSummary } from '../../lib/contracts/payloads.ts';
import { listAllKeys } from './s3.ts';

/** Every key under `prefix`, sorted (all pages). */
export async function keysUnderPrefix(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  return (await listAllKeys(s3, bucket, prefix)).sort();
}

/** The manifest of the backup a run wrote, read and checked as `restore` reads it. */
export async function manifestOfRun(
  s3: S3Client,
  bucket: string,
  summary: RunSummary | undefined,
): Promise<BackupManifest> {
  if (!summary?.backup) throw new Error('the run wrote no backup');
  return findBackup(s3, bucket, summary.policy, summary.backup.backupId);
}
