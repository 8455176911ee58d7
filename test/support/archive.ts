/** Helpers for archive tests: run a policy through the local state machine and read the archive back. */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { parquetReadObjects } from 'hyparquet';
import type pg from 'pg';
import { sha256Hex } from '../../functions/adapters/archive-store.ts';
import {
  type LocalDependencyOptions,
  localDependencies,
} from '../../functions/local-runner/local-dependencies.ts';
import {
  type LocalRunOptions,
  type LocalRunResult,
  runPolicyLocally,
} from '../../functions/local-runner/local-runner.ts';
import { type LifecycleConfigInput, LifecycleConfigSchema } from '../../lib/contracts/config.ts';

export interface LedgerObject {
  key: string;
  rows: number;
  bytes: number;
  sha256: string;
  partition: string;
  run_id: string;
}

export async function ledgerObjects(pool: pg.Pool, runId?: string): Promise<LedgerObject[]> {
  const { rows } = await pool.query<LedgerObject>(
    `SELECT key, rows, bytes::int AS bytes, sha256, partition, run_id::text FROM lifecycle.archived_objects
      WHERE $1::uuid IS NULL OR run_id = $1 ORDER BY object_id`,
    [runId ?? null],
  );
  return rows;
}

export async function readObject(s3: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const body = await result.Body?.transformToByteArray();
  if (!body) throw new Error(`empty object ${key}`);
  return body;
}

/** All rows of the given objects, checking each object's bytes against its ledger SHA-256 first. */
export async function readArchivedRows(
  s3: S3Client,
  bucket: string,
  objects: readonly LedgerObject[],
): Promise<Array<Record<string, unknown>>> {
  const rows: Array<Record<string, unknown>> = [];
  for (const object of objects) {
    const body = await readObject(s3, bucket, object.key);
    if (sha256Hex(body) !== object.sha256) throw new Error(`sha256 mismatch for ${object.key}`);
    const buffer = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
    const objectRows = (await parquetReadObjects({ file: buffer })) as Array<Record<string, unknown>>;
    if (objectRows.length !== object.rows)
      throw new Error(`${object.key}: ${objectRows.length} rows, ledger says ${object.rows}`);
    rows.push(...objectRows);
  }
  return rows;
}

export function testConfig(
  policies: LifecycleConfigInput['policies'],
  extra: Partial<LifecycleConfigInput> = {},
) {
  return LifecycleConfigSchema.parse({ sandbox: true, ...extra, policies });
}

/** Runs a policy through the synthesized state machine with no sleeping (pauses, retry intervals and local chunk-retry backoff 0). */
export async function runLocally(
  options: Omit<LocalRunOptions, 'dependencies'> & { deps: LocalDependencyOptions },
): Promise<LocalRunResult> {
  const { deps, ...rest } = options;
  return runPolicyLocally({
    pauseMs: 0,
    retryIntervalMs: 0,
    chunkRetryBackoffMs: 0,
    ...rest,
    dependencies: localDependencies(deps),
  });
}
