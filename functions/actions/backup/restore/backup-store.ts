/**
 * A backup's objects as restore, verify, listing and drills read them from S3: the backup ids under a
 * policy's prefix, a backup's keys, its manifest, an object's text. S3 errors go through the archive store's mapping: a missing bucket or access denied is a
 * StorageConfigurationError, anything else a TransientStorageError.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { mapS3Error } from '../../../adapters/archive-store.ts';
import { backupPrefix } from '../contract.ts';
import { type BackupManifest, backupKeys, parseManifest } from '../manifest.ts';
import { manifestPlacementProblems } from './manifest-checks.ts';

/** What a backup id looks like (the manifest's `backupId`): refused before it is put into a key. */
export const BACKUP_ID_PATTERN = /^[0-9A-Za-z-]{8,64}$/;

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: unknown } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}

/** The names one level below `prefix` (`prefix/<name>/…`), in S3's (byte) order, across every page. */
export async function listChildNames(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const page of paginateListObjectsV2(
      { client: s3 },
      { Bucket: bucket, Prefix: prefix, Delimiter: '/' },
    )) {
      for (const common of page.CommonPrefixes ?? []) {
        if (common.Prefix) names.push(common.Prefix.slice(prefix.length, -1));
      }
    }
  } catch (error) {
    throw mapS3Error(error, `listing of s3://${bucket}/${prefix}`);
  }
  return names;
}

/** Every object under `prefix` with its length, across every page. */
export async function listObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<Array<{ key: string; bytes: number }>> {
  const objects: Array<{ key: string; bytes: number }> = [];
  try {
    for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: prefix })) {
      for (const item of page.Contents ?? []) {
        if (item.Key !== undefined) objects.push({ key: item.Key, bytes: item.Size ?? 0 });
      }
    }
  } catch (error) {
    throw mapS3Error(error, `listing of s3://${bucket}/${prefix}`);
  }
  return objects;
}

/** The backup ids of `policy` (complete or not): the names under `backup/<policy>/`. */
export async function listBackupIds(s3: S3Client, bucket: string, policy: string): Promise<string[]> {
  return listChildNames(s3, bucket, backupPrefix(policy));
}

/** The policies that have anything under `backup/`. */
export function listBackupPolicies(s3: S3Client, bucket: string): Promise<string[]> {
  return listChildNames(s3, bucket, 'backup/');
}

/** An object's text (UTF-8), or undefined when there is no such key. */
export async function readObjectText(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await result.Body?.transformToString('utf8')) ?? '';
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw mapS3Error(error, `download of ${key}`);
  }
}

/** Whether `key` exists (HEAD). */
export async function objectExists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw mapS3Error(error, `check of ${key}`);
  }
}

/** A backup's manifest as found: complete, or why the backup is not (never restorable then). */
export type ManifestRead =
  | { readonly status: 'complete'; readonly manifest: BackupManifest }
  | {
      readonly status: 'incomplete';
      /** `no-manifest`: failed or still running; `unreadable-manifest`: damaged, edited or misplaced. */
      readonly reason: 'no-manifest' | 'unreadable-manifest';
      readonly problem: string;
    };

/** Reads and checks `backup/<policy>/<backupId>/manifest.json`. */
export async function readBackupManifest(
  s3: S3Client,
  bucket: string,
  policy: string,
  backupId: string,
): Promise<ManifestRead> {
  const text = await readObjectText(s3, bucket, backupKeys(policy, backupId).manifest);
  if (text === undefined) {
    return {
      status: 'incomplete',
      reason: 'no-manifest',
      problem: 'no manifest.json (the backup failed or is still being written)',
    };
  }
  let manifest: BackupManifest;
  try {
    manifest = parseManifest(text);
  } catch (error) {
    return { status: 'incomplete', reason: 'unreadable-manifest', problem: (error as Error).message };
  }
  const problems = manifestPlacementProblems(manifest, policy, backupId);
  if (problems.length > 0) {
    return {
      status: 'incomplete',
      reason: 'unreadable-manifest',
      problem: `manifest.json contradicts its place: ${problems.join('; ')}`,
    };
  }
  return { status: 'complete', manifest };
}

/** Runs `work` over `items`, at most `limit` at a time; resolves in input order, rejects on the first error. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
