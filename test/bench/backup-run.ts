/**
 * The backup benchmark's policy and its runs: one backup policy over `bench_backup.*`, run through the
 * synthesized state machine with the real handlers (`runPolicyLocally`), its step dependencies instrumented
 * from outside; the manifest checked against the table; a measured backup's objects removed afterwards (the
 * local S3 server keeps every object in memory).
 */
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { type BackupManifest, backupKeys, parseManifest } from '../../functions/actions/backup/manifest.ts';
import { S3ObjectStore } from '../../functions/adapters/archive-store.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import { type LocalRunResult, runPolicyLocally } from '../../functions/local-runner/local-runner.ts';
import type { AslDefinition } from '../../functions/local-runner/synthesize.ts';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { type BackupTimings, instrumentBackupDependencies } from './backup-instrument.ts';
import { BACKUP_SCHEMA } from './dataset.ts';

export const POLICY = 'bench-backup';
export const BUCKET = 'pg-lifecycle-bench';

/** The policy as a config file would hold it (the synth child parses it too). */
export function backupConfigInput(backup: {
  readonly compression: 'gzip' | 'zstd';
  readonly level: number;
  readonly partMiB: number;
  readonly maxConcurrency: number;
}): unknown {
  return {
    sandbox: true,
    policies: [{ name: POLICY, action: 'backup', backup: { tables: [`${BACKUP_SCHEMA}.*`], ...backup } }],
  };
}

export interface BackupRunner {
  readonly databaseUrl: string;
  /** The steps' client: its commands are timed into `current.timings` (backup-instrument.ts timeS3Commands). */
  readonly s3: S3Client;
  readonly config: LifecycleConfig;
  readonly definition: AslDefinition;
  readonly current: { timings: BackupTimings | undefined };
}

export async function createBucket(s3: S3Client): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
  }
}

/** One backup run, timed into `timings`; `skipChecksum`: the bench toggle of backup-instrument.ts. */
export function runBackup(
  runner: BackupRunner,
  timings: BackupTimings,
  skipChecksum: boolean,
): Promise<LocalRunResult> {
  const base = localDependencies({
    databaseUrl: runner.databaseUrl,
    bucket: BUCKET,
    store: new S3ObjectStore(runner.s3, BUCKET),
  });
  runner.current.timings = timings;
  return runPolicyLocally({
    config: runner.config,
    policyName: POLICY,
    dependencies: instrumentBackupDependencies(base, timings, { skipChecksum }),
    definition: runner.definition,
    pauseMs: 0,
    retryIntervalMs: 0,
  }).finally(() => {
    runner.current.timings = undefined;
  });
}

/** The run succeeded and its manifest lists `rows` rows of one table whose checksum is `checksum`. */
export async function checkBackup(
  s3: S3Client,
  result: Pick<LocalRunResult, 'status' | 'summary' | 'failure'>,
  rows: number,
  checksum: string,
): Promise<BackupManifest> {
  if (result.status !== 'succeeded' || !result.summary?.backup)
    throw new Error(`backup run ${result.status}: ${JSON.stringify(result.failure ?? null)}`);
  const object = await s3.send(
    new GetObjectCommand({ Bucket: BUCKET, Key: result.summary.backup.manifestKey }),
  );
  const manifest = parseManifest((await object.Body?.transformToString()) ?? '');
  const table = manifest.tables[0];
  const problems: string[] = [];
  if (manifest.tables.length !== 1) problems.push(`${manifest.tables.length} tables in the manifest`);
  if (table?.rows !== rows) problems.push(`manifest lists ${table?.rows} rows, expected ${rows}`);
  if (table?.contentChecksum !== checksum)
    problems.push(`manifest checksum ${table?.contentChecksum}, the table's ${checksum}`);
  if (result.summary.rows !== rows) problems.push(`summary says ${result.summary.rows} rows`);
  if (problems.length > 0) throw new Error(`backup check failed:\n  ${problems.join('\n  ')}`);
  return manifest;
}

/** Removes a measured backup's objects. */
export async function removeBackup(s3: S3Client, backupId: string | undefined): Promise<void> {
  if (!backupId) return;
  for await (const page of paginateListObjectsV2(
    { client: s3 },
    { Bucket: BUCKET, Prefix: backupKeys(POLICY, backupId).base },
  )) {
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
    if (keys.length > 0)
      await s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys } }));
  }
}
