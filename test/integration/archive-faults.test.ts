/**
 * Fault injection at each step of an archive run (Start, each point of a chunk, Finish), through the synthesized state machine (run locally
 * with the real handlers) against a real PostgreSQL and a real S3 API server. Transient faults must be
 * retried by Step Functions into a successful run; a terminal fault must end the run as failed. Either
 * way: no row lost, none archived twice, no orphan object, lease released.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ObjectStore, S3ObjectStore } from '../../functions/adapters/archive-store.ts';
import { TransientDatabaseError, TransientStorageError } from '../../functions/core/errors.ts';
import { type AslDefinition, synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import { type ChunkFaultHooks, type StepLogger, silentLogger } from '../../functions/run/dependencies.ts';
import { runLocally, testConfig } from '../support/archive.ts';
import {
  type ArchiveScope,
  eligibleEventIds,
  expectArchiveGuarantees,
  FaultInjectingStore,
  failFrom,
  failOnce,
  runRecord,
  runsOfPolicy,
  seedEvents,
  tableKeys,
} from '../support/archive-guarantees.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createTestBucket, listAllKeys, testS3Client } from '../support/s3.ts';

let db: TestDatabase;
let s3: S3Client;
let bucket: string;
let definition: AslDefinition;

const NOW = new Date('2026-11-23T12:00:00.000Z');
const RETENTION = 'P90D';
const ROWS = 2000;
/** Fixed 200-row chunks: 1,641 eligible rows make 9 chunks, most of them spanning two month partitions. */
const CHUNKING = { initialRows: 200, minRows: 200, maxRows: 200 };

function policyFor(name: string, table: string) {
  return {
    name,
    table: `public.${table}`,
    action: 'archive' as const,
    timeColumn: 'created_at',
    retention: RETENTION,
    chunking: CHUNKING,
  };
}

interface Prepared {
  readonly table: string;
  readonly scope: ArchiveScope;
  readonly before: string[];
  readonly eligible: string[];
  readonly config: ReturnType<typeof testConfig>;
}

async function prepare(policy: string): Promise<Prepared> {
  const table = policy.replaceAll('-', '_');
  await seedEvents(db.pool, table, ROWS, NOW);
  const tableKeysSql = `SELECT id::text AS k FROM public.${table}`;
  return {
    table,
    scope: { pool: db.pool, s3, bucket, policy, tableKeysSql, keyOf: (row) => String(row.id) },
    before: await tableKeys(db.pool, tableKeysSql),
    eligible: await eligibleEventIds(db.pool, table, NOW, RETENTION),
    config: testConfig([policyFor(policy, table)]),
  };
}

function archive(
  prepared: Prepared,
  faults: { store?: ObjectStore; hooks?: ChunkFaultHooks; log?: StepLogger } = {},
) {
  return runLocally({
    config: prepared.config,
    policyName: prepared.scope.policy,
    definition,
    // About one chunk per Chunk invocation: the run spans several Lambda invocations.
    chunkBudgetMs: 1_100,
    deps: { databaseUrl: db.url, bucket, s3, now: () => NOW, ...faults },
  });
}

const sorted = (keys: readonly string[]) => [...keys].sort();
const without = (all: readonly string[], removed: readonly string[]) => {
  const gone = new Set(removed);
  return all.filter((k) => !gone.has(k));
};

/** The run succeeded and archived exactly the eligible rows, once each, with every guarantee kept. */
async function expectCompleteArchive(prepared: Prepared, result: Awaited<ReturnType<typeof archive>>) {
  expect(result.failure).toBeUndefined();
  expect(result.status).toBe('succeeded');
  const state = await expectArchiveGuarantees(prepared.scope, prepared.before);
  expect(sorted(state.archivedKeys)).toEqual(sorted(prepared.eligible));
  expect(sorted(state.remainingKeys)).toEqual(sorted(without(prepared.before, prepared.eligible)));
  expect(result.summary?.rows).toBe(prepared.eligible.length);
  const run = await runRecord(db.pool, result.summary?.runId);
  expect(run).toMatchObject({
    status: 'succeeded',
    rows: String(prepared.eligible.length),
    error_name: null,
  });
  return state;
}

async function openClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Waits for a run step's backend to block on a lock, terminates it, and returns its pid. */
async function terminateBackendWaitingOnLock(): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const { rows } = await db.pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'pg-lifecycle' AND wait_event_type = 'Lock'`,
    );
    const pid = rows[0]?.pid;
    if (pid !== undefined) {
      await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      return pid;
    }
    await sleep(5);
  }
  throw new Error('no run step blocked on the lock');
}

beforeAll(async () => {
  db = await createTestDatabase('archive_faults');
  s3 = testS3Client();
  bucket = await createTestBucket('archive-faults');
  // The definition does not depend on the policies (they travel in the input): synthesize it once.
  definition = await synthesizeDefinition(testConfig([policyFor('synth-only', 'synth_only')]));
});

afterAll(async () => {
  s3?.destroy();
  await db?.drop();
});

describe('archive under injected faults', () => {
  it('retries a failed upload and archives everything once', async () => {
    // Prepare
    const prepared = await prepare('upload-fails-once');
    const store = new FaultInjectingStore(new S3ObjectStore(s3, bucket), {
      put: failOnce(4, () => new TransientStorageError('injected: upload failed (503)')),
    });

    // Act
    const result = await archive(prepared, { store });

    // Assess
    expect(store.faultedKeys).toHaveLength(1);
    await expectCompleteArchive(prepared, result);
  });

  it('retries a failed verification and removes the object it left behind', async () => {
    // Prepare
    const prepared = await prepare('verify-fails-once');
    const store = new FaultInjectingStore(new S3ObjectStore(s3, bucket), {
      verify: failOnce(3, () => new TransientStorageError('injected: verification failed')),
    });

    // Act
    const result = await archive(prepared, { store });

    // Assess
    expect(store.faultedKeys).toHaveLength(1);
    const orphan = store.faultedKeys[0] as string;
    expect(store.uploadedKeys, 'the failed verification followed a real upload').toContain(orphan);
    await expectCompleteArchive(prepared, result);
    expect(result.summary?.orphansRemoved).toBeGreaterThanOrEqual(1);
    expect(store.deletedKeys).toContain(orphan);
    expect(await listAllKeys(s3, bucket, orphan)).toEqual([]);
  });

  it('retries a chunk whose ledger insert failed and removes its uploaded objects', async () => {
    // Prepare
    const prepared = await prepare('ledger-fails-once');
    let calls = 0;
    const uploaded: string[] = [];
    const hooks: ChunkFaultHooks = {
      afterUpload: (key) => {
        uploaded.push(key);
      },
      beforeLedger: () => {
        calls++;
        if (calls === 2) throw new TransientDatabaseError('injected: ledger insert failed');
      },
    };

    // Act
    const result = await archive(prepared, { hooks });

    // Assess
    expect(calls).toBeGreaterThan(2);
    const state = await expectCompleteArchive(prepared, result);
    const rolledBack = without(
      uploaded,
      state.objects.map((o) => o.key),
    );
    expect(rolledBack.length).toBeGreaterThanOrEqual(1);
    expect(result.summary?.orphansRemoved).toBe(rolledBack.length);
  });

  it('retries a chunk that crashed after its upload but before COMMIT, and removes the orphan', async () => {
    // Prepare
    const prepared = await prepare('crash-before-commit');
    let calls = 0;
    const uploaded: string[] = [];
    const hooks: ChunkFaultHooks = {
      afterUpload: (key) => {
        uploaded.push(key);
      },
      beforeCommit: () => {
        calls++;
        if (calls === 3) throw new TransientDatabaseError('injected: connection lost before COMMIT');
      },
    };

    // Act
    const result = await archive(prepared, { hooks });

    // Assess
    expect(calls).toBeGreaterThan(3);
    const state = await expectCompleteArchive(prepared, result);
    const rolledBack = without(
      uploaded,
      state.objects.map((o) => o.key),
    );
    expect(rolledBack.length).toBeGreaterThanOrEqual(1);
    expect(result.summary?.orphansRemoved).toBe(rolledBack.length);
  });

  it('retries a step that crashed after COMMIT without archiving anything twice', async () => {
    // Prepare
    const prepared = await prepare('crash-after-commit');
    let calls = 0;
    const hooks: ChunkFaultHooks = {
      afterCommit: () => {
        calls++;
        if (calls === 2) throw new TransientDatabaseError('injected: connection lost after COMMIT');
      },
    };

    // Act
    const result = await archive(prepared, { hooks });

    // Assess
    expect(calls).toBeGreaterThan(2);
    const state = await expectCompleteArchive(prepared, result);
    // The ledger's totals count each committed chunk once, whatever the retried step believed.
    expect(state.objects.reduce((sum, o) => sum + o.rows, 0)).toBe(prepared.eligible.length);
    const run = await runRecord(db.pool, result.summary?.runId);
    const chunkRows = await db.pool.query<{ rows: string }>(
      'SELECT sum(rows)::text AS rows FROM lifecycle.chunks WHERE run_id = $1',
      [result.summary?.runId],
    );
    expect(chunkRows.rows[0]?.rows).toBe(run?.rows);
  });

  it('retries a Start step that failed after opening the run, without locking the policy out', async () => {
    // Prepare: the step's logger throws once, right after the run row and the lease were committed: the
    // same as a connection lost while COMMIT's acknowledgement was on its way.
    const prepared = await prepare('start-fails-after-commit');
    let started = 0;
    const log: StepLogger = {
      ...silentLogger,
      info: (message) => {
        if (message === 'run started' && started++ === 0) {
          throw new TransientDatabaseError('injected: connection lost after the run was opened');
        }
      },
    };

    // Act
    const result = await archive(prepared, { log });

    // Assess
    expect(started).toBeGreaterThanOrEqual(1);
    // The retried Start must not refuse its own run's lease (LeaseHeldError).
    expect(result.failure).toBeUndefined();
    const runs = await runsOfPolicy(db.pool, prepared.scope.policy);
    expect(
      runs.filter((run) => run.status === 'running'),
      'runs left open',
    ).toEqual([]);
    await expectCompleteArchive(prepared, result);
  });

  it('retries a Chunk step whose database connection was killed mid-statement', async () => {
    // Prepare: after the second commit another session asks for an exclusive lock on the table. It queues
    // behind the chunk already in flight (the loop takes the next chunk while one completes), and a later
    // chunk's DELETE then waits behind it; that backend is terminated (what a failover or an admin does).
    const prepared = await prepare('chunk-connection-killed');
    const locker = await openClient();
    let commits = 0;
    let killed: Promise<number> | undefined;
    const hooks: ChunkFaultHooks = {
      afterCommit: () => {
        commits++;
        if (commits !== 2) return;
        const locking = locker
          .query('BEGIN')
          .then(() => locker.query(`LOCK TABLE public.${prepared.table} IN ACCESS EXCLUSIVE MODE`));
        killed = terminateBackendWaitingOnLock().finally(async () => {
          await locking;
          await locker.query('COMMIT');
        });
      },
    };

    // Act
    let result: Awaited<ReturnType<typeof archive>>;
    try {
      result = await archive(prepared, { hooks });
    } finally {
      await killed?.catch(() => undefined);
      await locker.end();
    }

    // Assess
    expect(await killed).toBeGreaterThan(0);
    await expectCompleteArchive(prepared, result);
  });

  it('retries a Start step whose database connection was killed mid-statement', async () => {
    // Prepare: an exclusive lock makes Start's EXPLAIN of the chunk query wait; its backend is terminated.
    const prepared = await prepare('start-connection-killed');
    const locker = await openClient();
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE public.${prepared.table} IN ACCESS EXCLUSIVE MODE`);
    const killed = terminateBackendWaitingOnLock().finally(() => locker.query('COMMIT'));

    // Act
    let result: Awaited<ReturnType<typeof archive>>;
    try {
      result = await archive(prepared);
    } finally {
      await killed.catch(() => undefined);
      await locker.end();
    }

    // Assess: a killed connection is transient (SQLSTATE 57P01): Step Functions retries Start
    expect(await killed).toBeGreaterThan(0);
    expect(result.failure).toBeUndefined();
    await expectCompleteArchive(prepared, result);
  });

  it('retries a Finish step whose database connection was killed mid-statement', async () => {
    // Prepare: after the last chunk's commit another session locks the run row, so Finish's update of it
    // waits; its backend is then terminated.
    const prepared = await prepare('finish-connection-killed');
    // Once the last eligible row is committed away, only the empty end chunk (it leaves the run row alone) and Finish remain.
    let lockedAtCommit: number | undefined;
    const locker = await openClient();
    let commits = 0;
    let killed: Promise<number> | undefined;
    const hooks: ChunkFaultHooks = {
      afterCommit: async () => {
        commits++;
        if (lockedAtCommit !== undefined) return;
        if ((await eligibleEventIds(db.pool, prepared.table, NOW, RETENTION)).length > 0) return;
        lockedAtCommit = commits;
        await locker.query('BEGIN');
        await locker.query(
          `SELECT 1 FROM lifecycle.runs WHERE policy = $1 AND status = 'running' FOR UPDATE`,
          [prepared.scope.policy],
        );
        killed = terminateBackendWaitingOnLock().finally(() => locker.query('COMMIT'));
      },
    };

    // Act
    let result: Awaited<ReturnType<typeof archive>>;
    try {
      result = await archive(prepared, { hooks });
    } finally {
      await killed?.catch(() => undefined);
      await locker.end();
    }

    // Assess
    expect(lockedAtCommit).toBeDefined();
    expect(await killed).toBeGreaterThan(0);
    expect(result.failure).toBeUndefined();
    await expectCompleteArchive(prepared, result);
  });

  it('records a persistent terminal failure, keeps every row, and lets the next run finish the work', async () => {
    // Prepare
    const prepared = await prepare('terminal-upload-failure');
    const boom = () =>
      Object.assign(new Error('injected: the bucket policy changed under us'), { name: 'BoomError' });
    const store = new FaultInjectingStore(new S3ObjectStore(s3, bucket), { put: failFrom(3, boom) });

    // Act
    const failed = await archive(prepared, { store });

    // Assess
    expect(failed.status).toBe('failed');
    expect(failed.failure).toMatchObject({
      error: 'BoomError',
      cause: expect.stringContaining('bucket policy changed'),
    });
    const runId = failed.failure?.runId;
    expect(runId).toBeDefined();
    const run = await runRecord(db.pool, runId);
    expect(run).toMatchObject({ status: 'failed', error_name: 'BoomError' });
    const state = await expectArchiveGuarantees(prepared.scope, prepared.before);
    // Mid-run: some chunks committed (their rows are in objects), the rest of the eligible rows stayed.
    expect(Number(run?.chunks)).toBeGreaterThanOrEqual(1);
    expect(state.archivedKeys.length).toBe(Number(run?.rows));
    expect(state.archivedKeys.length).toBeGreaterThan(0);
    expect(state.archivedKeys.length).toBeLessThan(prepared.eligible.length);
    expect(state.objects.every((o) => o.run_id === runId)).toBe(true);
    // Committed chunks took the oldest rows first (ids grow towards the past): the highest eligible ids.
    expect(sorted(state.archivedKeys)).toEqual(sorted(prepared.eligible.slice(-state.archivedKeys.length)));

    // Act: the next run, without the fault
    const next = await archive(prepared);

    // Assess
    expect(next.status).toBe('succeeded');
    expect(next.summary?.rows).toBe(prepared.eligible.length - state.archivedKeys.length);
    const final = await expectArchiveGuarantees(prepared.scope, prepared.before);
    expect(sorted(final.archivedKeys)).toEqual(sorted(prepared.eligible));
    expect(await runRecord(db.pool, next.summary?.runId)).toMatchObject({ status: 'succeeded' });
  });
});
