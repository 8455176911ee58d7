/**
 * Helpers for lease and CLI tests: the real CLI run in-process against a test database, runs opened the way
 * Start opens them, holder backends, and what the ledger says about leases and their releases.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { inject, vi } from 'vitest';
import { type LeaseHolderBackend, Ledger } from '../../functions/adapters/ledger/index.ts';
import { LEASE_TTL_SECONDS } from '../../lib/contracts/lease.ts';
import type { TestDatabase } from './database.ts';

export interface CliOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `pg-lifecycle <args>` in-process (main) against `db`, with S3 from the test setup. */
export async function runCliInProcess(db: TestDatabase, args: string[]): Promise<CliOutcome> {
  const out: string[] = [];
  const err: string[] = [];
  vi.stubEnv('DATABASE_URL', db.url);
  vi.stubEnv('AWS_ENDPOINT_URL_S3', inject('s3Endpoint'));
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0),
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0),
  ];
  try {
    const { main } = await import('../../bin/cli/main.ts');
    return { code: await main(args), stdout: out.join(''), stderr: err.join('') };
  } finally {
    for (const spy of spies) spy.mockRestore();
    vi.unstubAllEnvs();
  }
}

/** A connection standing for a live run, and its backend as the local runner records it. */
export async function liveBackend(
  db: TestDatabase,
): Promise<{ client: pg.Client; backend: LeaseHolderBackend }> {
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => undefined);
  await client.connect();
  const { rows } = await client.query<{ pid: number; start: string }>(
    'SELECT pid, backend_start::text AS start FROM pg_stat_activity WHERE pid = pg_backend_pid()',
  );
  const row = rows[0] as { pid: number; start: string };
  return { client, backend: { pid: row.pid, backendStart: row.start } };
}

/** Waits (up to 10 s) until no backend has `pid`. */
export async function waitUntilBackendGone(db: TestDatabase, pid: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const { rowCount } = await db.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
    if (rowCount === 0) return;
    await sleep(10);
  }
  throw new Error(`backend ${pid} did not go away`);
}

/** Opens a run holding the policy's lease, as Start does (lease and run row in one transaction). */
export async function openRun(
  db: TestDatabase,
  policy: string,
  holder: { backend?: LeaseHolderBackend; executionId?: string },
): Promise<string> {
  const runId = randomUUID();
  const client = await db.pool.connect();
  try {
    const ledger = new Ledger(client);
    await client.query('BEGIN');
    await ledger.acquireLease(policy, runId, LEASE_TTL_SECONDS, holder.backend);
    await ledger.insertRun({
      runId,
      policy,
      action: 'archive',
      tableName: '"public"."events"',
      source: 'time-cutoff',
      timeColumn: 'created_at',
      cutoff: '2025-01-01T00:00:00Z',
      filter: undefined,
      dryRun: false,
      trigger: 'local',
      executionId:
        holder.executionId ?? `arn:aws:states:us-east-1:123456789012:execution:pg-lifecycle-local:${runId}`,
    });
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  return runId;
}

/** The run holding the policy's lease, if any. */
export async function leaseOf(db: TestDatabase, policy: string): Promise<string | undefined> {
  const { rows } = await db.pool.query<{ run_id: string }>(
    'SELECT run_id::text FROM lifecycle.leases WHERE policy = $1',
    [policy],
  );
  return rows[0]?.run_id;
}

/** Seconds until the policy's lease expires, as the server sees it. */
export async function leaseSecondsLeft(db: TestDatabase, policy: string): Promise<number> {
  const { rows } = await db.pool.query<{ left: number }>(
    `SELECT extract(epoch FROM expires_at - clock_timestamp())::float8 AS left FROM lifecycle.leases WHERE policy = $1`,
    [policy],
  );
  return rows[0]?.left ?? Number.NaN;
}

/** The policy's recorded operator releases, oldest first. */
export async function releasesOf(db: TestDatabase, policy: string): Promise<Array<Record<string, unknown>>> {
  const { rows } = await db.pool.query(
    `SELECT run_id::text, forced, reason, released_by_role, released_by_os_user, holder, evidence
       FROM lifecycle.lease_releases WHERE policy = $1 ORDER BY release_id`,
    [policy],
  );
  return rows;
}
