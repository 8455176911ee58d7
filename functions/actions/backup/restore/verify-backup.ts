/**
 * `verify --backup`: whether a backup is what its manifest says, without a database to restore into. Every
 * part is read once (length, SHA-256, a COPY block of the manifest's columns, its row count), the schema files
 * exist, parts.txt and SHA256SUMS list exactly the manifest's parts, the manifest fits its place and its totals, the ledger (when given) lists the same parts with the same
 * rows, bytes and SHA-256 for the backup's run, and nothing lies under the backup's prefix that the manifest
 * does not list. Problems are returned, each named by kind; only a backup that does not exist at all, or a
 * failure to read S3, is thrown.
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { type BackupManifest, backupKeys } from '../manifest.ts';
import { listObjects, objectExists, readBackupManifest, readObjectText } from './backup-store.ts';
import { type BackupProblem, checkParts } from './check-parts.ts';
import { BackupNotFoundError } from './errors.ts';
import { manifestPlacementProblems } from './manifest-checks.ts';

export type { BackupProblem, BackupProblemKind } from './check-parts.ts';

/** What verify needs of the ledger: the parts a run listed (`Ledger.listRunObjects`). */
export interface BackupPartsLedger {
  listRunObjects(
    runId: string,
    kind: 'backup-part',
  ): Promise<
    ReadonlyArray<{
      readonly bucket: string;
      readonly key: string;
      readonly rows: number;
      readonly bytes: number;
      readonly sha256: string;
    }>
  >;
}

export interface BackupVerification {
  readonly policy: string;
  readonly backupId: string;
  readonly ok: boolean;
  readonly problems: readonly BackupProblem[];
  readonly partsChecked: number;
  readonly bytesChecked: number;
  /** Rows counted in the parts read (undefined when they could not be decompressed here). */
  readonly rowsCounted: number | undefined;
  readonly ledger: 'checked' | 'not-checked';
}

export interface VerifyBackupOptions {
  /** Compare with the ledger's record of the backup's run. */
  readonly ledger?: BackupPartsLedger | undefined;
  /** Parts read at once. @default 4 */
  readonly concurrency?: number;
}

/**
 * Verifies a backup given by its manifest, or by policy and id (then a missing or unreadable manifest is a
 * problem found, not an error).
 * @throws BackupNotFoundError when nothing at all lies under the id's prefix
 */
export async function verifyBackup(
  s3: S3Client,
  bucket: string,
  target: BackupManifest | { readonly policy: string; readonly backupId: string },
  options: VerifyBackupOptions = {},
): Promise<BackupVerification> {
  const { policy, backupId } = target;
  let manifest: BackupManifest;
  if ('formatVersion' in target) manifest = target;
  else {
    const read = await readBackupManifest(s3, bucket, policy, backupId);
    if (read.status === 'incomplete') {
      const objects = await listObjects(s3, bucket, backupKeys(policy, backupId).base);
      if (objects.length === 0)
        throw new BackupNotFoundError(`no backup ${backupId} under s3://${bucket}/backup/${policy}/`, {
          policy,
        });
      return {
        policy,
        backupId,
        ok: false,
        problems: [{ kind: 'manifest', key: backupKeys(policy, backupId).manifest, message: read.problem }],
        partsChecked: 0,
        bytesChecked: 0,
        rowsCounted: undefined,
        ledger: 'not-checked',
      };
    }
    manifest = read.manifest;
  }
  const problems: BackupProblem[] = manifestPlacementProblems(manifest, policy, backupId).map((message) => ({
    kind: 'manifest',
    key: backupKeys(policy, backupId).manifest,
    message,
  }));
  const parts = await checkParts(
    s3,
    bucket,
    manifest.compression.codec,
    manifest.tables,
    options.concurrency ?? 4,
  );
  problems.push(...parts.problems);
  problems.push(...(await checkFiles(s3, bucket, manifest)));
  problems.push(...(await checkPartLists(s3, bucket, manifest)));
  problems.push(...(await unlistedObjects(s3, bucket, manifest)));
  if (options.ledger) problems.push(...(await ledgerProblems(options.ledger, bucket, manifest)));
  return {
    policy,
    backupId,
    ok: problems.length === 0,
    problems,
    partsChecked: parts.checked,
    bytesChecked: parts.bytes,
    rowsCounted: parts.rows,
    ledger: options.ledger ? 'checked' : 'not-checked',
  };
}

/**
 * parts.txt and SHA256SUMS, what a shell restore (README) loops over and checks with sha256sum: each must list
 * exactly the manifest's parts (a line more would load a part the manifest does not hold).
 */
export function expectedPartLists(manifest: BackupManifest): { partsList: string; checksums: string } {
  const base = backupKeys(manifest.policy, manifest.backupId).base;
  const parts = manifest.tables.flatMap((t) =>
    t.parts.map((p) => ({ path: p.key.slice(base.length), sha256: p.sha256 })),
  );
  return {
    partsList: parts.map((p) => `${p.path}\n`).join(''),
    checksums: parts.map((p) => `${p.sha256}  ${p.path}\n`).join(''),
  };
}

async function checkPartLists(
  s3: S3Client,
  bucket: string,
  manifest: BackupManifest,
): Promise<BackupProblem[]> {
  const keys = backupKeys(manifest.policy, manifest.backupId);
  const expected = expectedPartLists(manifest);
  const problems: BackupProblem[] = [];
  for (const [key, text] of [
    [keys.partsList, expected.partsList],
    [keys.checksums, expected.checksums],
  ] as const) {
    const found = await readObjectText(s3, bucket, key);
    if (found === undefined)
      problems.push({ kind: 'missing-file', key, message: `${key}: not in the bucket` });
    else if (found !== text)
      problems.push({
        kind: 'part-list',
        key,
        message: `${key}: does not list exactly the manifest's parts`,
      });
  }
  return problems;
}

function ddlKeys(manifest: BackupManifest): string[] {
  const keys = [manifest.schemaKey, manifest.postDataKey];
  if (manifest.relocatable) keys.push(manifest.relocatable.schemaKey, manifest.relocatable.postDataKey);
  return keys;
}

async function checkFiles(s3: S3Client, bucket: string, manifest: BackupManifest): Promise<BackupProblem[]> {
  const problems: BackupProblem[] = [];
  for (const key of ddlKeys(manifest)) {
    const expected = manifest.fileSha256?.[key];
    if (expected === undefined) {
      if (!(await objectExists(s3, bucket, key)))
        problems.push({
          kind: 'missing-file',
          key,
          message: `${key}: listed in the manifest, not in the bucket`,
        });
      continue;
    }
    const text = await readObjectText(s3, bucket, key);
    if (text === undefined)
      problems.push({
        kind: 'missing-file',
        key,
        message: `${key}: listed in the manifest, not in the bucket`,
      });
    else if (createHash('sha256').update(text, 'utf8').digest('hex') !== expected)
      problems.push({ kind: 'file-sha256', key, message: `${key}: SHA-256 differs from the manifest's` });
  }
  return problems;
}

async function unlistedObjects(
  s3: S3Client,
  bucket: string,
  manifest: BackupManifest,
): Promise<BackupProblem[]> {
  const keys = backupKeys(manifest.policy, manifest.backupId);
  const known = new Set([
    keys.manifest,
    keys.partsList,
    keys.checksums,
    ...ddlKeys(manifest),
    ...manifest.tables.flatMap((t) => t.parts.map((p) => p.key)),
  ]);
  return (await listObjects(s3, bucket, keys.base))
    .filter((object) => !known.has(object.key))
    .map((object) => ({
      kind: 'unlisted-object' as const,
      key: object.key,
      message: `${object.key}: under the backup's prefix but not in its manifest (${object.bytes} bytes)`,
    }));
}

async function ledgerProblems(
  ledger: BackupPartsLedger,
  bucket: string,
  manifest: BackupManifest,
): Promise<BackupProblem[]> {
  const recorded = await ledger.listRunObjects(manifest.runId, 'backup-part');
  if (recorded.length === 0 && manifest.tables.some((t) => t.parts.length > 0)) {
    return [{ kind: 'ledger', message: `the ledger lists no backup parts for run ${manifest.runId}` }];
  }
  const problems: BackupProblem[] = [];
  const byKey = new Map(recorded.map((object) => [object.key, object]));
  for (const table of manifest.tables) {
    for (const part of table.parts) {
      const object = byKey.get(part.key);
      byKey.delete(part.key);
      if (!object) {
        problems.push({
          kind: 'ledger',
          key: part.key,
          message: `${part.key}: in the manifest, not in the ledger of run ${manifest.runId}`,
        });
        continue;
      }
      const differences = (['rows', 'bytes', 'sha256'] as const)
        .filter((field) => object[field] !== part[field])
        .map((field) => (field === 'sha256' ? 'SHA-256' : `${field} ${part[field]} ≠ ${object[field]}`));
      if (object.bucket !== bucket) differences.push(`bucket ${object.bucket}`);
      if (differences.length > 0) {
        problems.push({
          kind: 'ledger',
          key: part.key,
          message: `${part.key}: the manifest and the ledger differ (${differences.join(', ')}; manifest first)`,
        });
      }
    }
  }
  for (const key of byKey.keys()) {
    problems.push({
      kind: 'ledger',
      key,
      message: `${key}: in the ledger of run ${manifest.runId}, not in the manifest`,
    });
  }
  return problems;
}
