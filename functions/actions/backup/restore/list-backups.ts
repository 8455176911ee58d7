/**
 * The backups under `backup/<policy>/` and the one a command names. A backup is complete only when its
 * manifest.json (written last) is there, parses, and fits its place; anything else is listed as incomplete
 * with the reason and is never restorable: `latest` is the greatest complete id (ids sort by time).
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { mapS3Error } from '../../../adapters/archive-store.ts';
import { type BackupManifest, backupKeys } from '../manifest.ts';
import {
  BACKUP_ID_PATTERN,
  listBackupIds,
  listBackupPolicies,
  type ManifestRead,
  mapLimit,
  readBackupManifest,
} from './backup-store.ts';
import { BackupIncompleteError, BackupManifestError, BackupNotFoundError } from './errors.ts';

/** One backup as `backups list` shows it. */
export interface BackupSummary {
  readonly policy: string;
  readonly backupId: string;
  readonly status: 'complete' | 'incomplete';
  /** Why an incomplete backup is: no manifest (failed or still running), or one that cannot be trusted. */
  readonly reason?: 'no-manifest' | 'unreadable-manifest';
  readonly problem?: string;
  /** When it was taken: the manifest's startedAt, else the time its id starts with (undefined if none). */
  readonly time: string | undefined;
  readonly finishedAt?: string;
  readonly tables?: number;
  readonly rows?: number;
  /** Stored (compressed) bytes of its parts. */
  readonly bytes?: number;
  readonly consistency?: BackupManifest['consistency'];
  readonly retentionDays?: number;
  /** When S3 expires its first part, so that it stops being restorable (needs the manifest's retentionDays). */
  readonly expiresAt?: string;
}

const ID_TIME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/;

/** The time a backup id starts with (`20261202T010000Z-…` → `2026-12-02T01:00:00Z`), if it has one. */
export function backupIdTime(backupId: string): string | undefined {
  const match = ID_TIME.exec(backupId);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second] = match;
  const iso = `${year}-${month}-${day}T${hour}:${minute}:${second}Z`;
  return Number.isNaN(Date.parse(iso)) ? undefined : iso;
}

/**
 * When a backup started at `startedAt` stops being restorable: S3's lifecycle rule expires an object
 * `retentionDays` after it was written, rounded up to the next midnight UTC, and the first part was written
 * right after the start.
 */
export function backupExpiry(startedAt: string, retentionDays: number): string {
  const due = new Date(Date.parse(startedAt) + retentionDays * 86_400_000);
  const midnight = Date.UTC(due.getUTCFullYear(), due.getUTCMonth(), due.getUTCDate() + 1);
  return new Date(midnight).toISOString();
}

function summarize(policy: string, backupId: string, read: ManifestRead): BackupSummary {
  if (read.status === 'incomplete') {
    return {
      policy,
      backupId,
      status: 'incomplete',
      reason: read.reason,
      problem: read.problem,
      time: backupIdTime(backupId),
    };
  }
  const { manifest } = read;
  return {
    policy,
    backupId,
    status: 'complete',
    time: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    tables: manifest.tables.length,
    rows: manifest.tables.reduce((sum, t) => sum + t.rows, 0),
    bytes: manifest.tables.reduce((sum, t) => sum + t.bytes, 0),
    consistency: manifest.consistency,
    ...(manifest.retentionDays !== undefined
      ? {
          retentionDays: manifest.retentionDays,
          expiresAt: backupExpiry(manifest.startedAt, manifest.retentionDays),
        }
      : {}),
  };
}

/** Every backup of `policy` (or of every policy with backups), oldest first per policy. */
export async function listBackups(
  s3: S3Client,
  bucket: string,
  options: { readonly policy?: string | undefined } = {},
): Promise<BackupSummary[]> {
  const policies = options.policy !== undefined ? [options.policy] : await listBackupPolicies(s3, bucket);
  const summaries: BackupSummary[] = [];
  for (const policy of policies) {
    const ids = await listBackupIds(s3, bucket, policy);
    const reads = await mapLimit(ids, 4, (backupId) => readBackupManifest(s3, bucket, policy, backupId));
    ids.forEach((backupId, index) => {
      summaries.push(summarize(policy, backupId, reads[index] as ManifestRead));
    });
  }
  return summaries;
}

/** Whether anything lies under the backup's prefix (one key is enough). */
async function backupExists(s3: S3Client, bucket: string, policy: string, backupId: string) {
  try {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: backupKeys(policy, backupId).base, MaxKeys: 1 }),
    );
    return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
  } catch (error) {
    throw mapS3Error(error, `listing of s3://${bucket}/${backupKeys(policy, backupId).base}`);
  }
}

/**
 * The manifest of backup `idOrLatest` of `policy`: an id, or `latest` (the greatest complete id).
 * @throws BackupNotFoundError no such backup, or no complete one for `latest`
 * @throws BackupIncompleteError the id has objects but no manifest
 * @throws BackupManifestError its manifest is unreadable or names another backup
 */
export async function findBackup(
  s3: S3Client,
  bucket: string,
  policy: string,
  idOrLatest: string,
): Promise<BackupManifest> {
  const where = `s3://${bucket}/backup/${policy}/`;
  if (idOrLatest === 'latest') {
    const ids = await listBackupIds(s3, bucket, policy);
    const skipped: string[] = [];
    for (const backupId of [...ids].sort().reverse()) {
      const read = await readBackupManifest(s3, bucket, policy, backupId);
      if (read.status === 'complete') return read.manifest;
      skipped.push(backupId);
    }
    throw new BackupNotFoundError(
      ids.length === 0
        ? `no backup of policy "${policy}" under ${where}`
        : `no complete backup of policy "${policy}" under ${where} (incomplete: ${skipped.join(', ')})`,
      { policy },
    );
  }
  if (!BACKUP_ID_PATTERN.test(idOrLatest)) {
    throw new BackupNotFoundError(
      `${JSON.stringify(idOrLatest)} is not a backup id (like 20261202T010000Z-1a2b3c4d) or latest`,
      { policy },
    );
  }
  const read = await readBackupManifest(s3, bucket, policy, idOrLatest);
  if (read.status === 'complete') return read.manifest;
  if (read.reason === 'unreadable-manifest') {
    throw new BackupManifestError(`backup ${idOrLatest} of policy "${policy}": ${read.problem}`, { policy });
  }
  if (!(await backupExists(s3, bucket, policy, idOrLatest))) {
    const recent = (await listBackupIds(s3, bucket, policy)).sort().reverse().slice(0, 5);
    throw new BackupNotFoundError(
      `no backup ${idOrLatest} under ${where} (newest: ${recent.length > 0 ? recent.join(', ') : 'none'})`,
      { policy },
    );
  }
  throw new BackupIncompleteError(
    `backup ${idOrLatest} of policy "${policy}" has no manifest.json: it failed or is still being written, and cannot be restored`,
    { policy },
  );
}
