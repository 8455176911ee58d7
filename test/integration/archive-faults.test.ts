/**
 * Fault injection at each step of an archive run (Start, each point of a chunk, Finish), through the synthesized state machine (run locally
 * with the real handlers) against a real PostgreSQL and a real S3 API server. Transient faults must be
 * retried by Step Functions into a successful run; a terminal fault must end the run as failed. Either
 * way: no row lost, none archived twice, no orphan object, lease released.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { S3ObjectStore } from '../../functions/adapters/archive-store.ts';
import { TransientDatabaseError, TransientStorageError } from '../../functions/core/errors.ts';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import { type ChunkFaultHooks, type StepLogger, silentLogger } from '../../functions/run/dependencies.ts';
import {
  eligibleEventIds,
  expectArchiveGuarantees,
  FaultInjectingStore,
  failFrom,
  failOnce,
  runRecord,
  runsOfPolicy,
} from '../support/archive-guarantees.ts';
import type { TestDatabase } from '../support/database.ts';
import { expectCompleteArchive, it, sorted, without } from '../support/event-archive.ts';
import { describe, expect, NOW } from '../support/fixture.ts';
import { listAllKeys } from '../support/s3.ts';
import { openSession, runBackendsWaitingOnLocks } from '../support/sessions.ts';

/** Waits for a run step's backend to block on a lock, terminates it, and returns its pid. */
async function terminateBackendWaitingOnLock(db: TestDatabase): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const [pid] = await runBackendsWaitingOnLocks(db);
    if (pid !== undefined) {
      await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      return pid;
    }
    await sleep(5);
  }
  throw new Error('no run step blocked on the lock');
}

/**
 * Another session, holding a lock that a run step then waits on (what a failover or an admin would end):
 * `killWaiter` terminates the waiting backend, then commits the session's transaction.
 */
class Locker {
  private killed: Promise<number> | undefined;

  private constructor(
    private readonly db: TestDatabase,
    readonly session: pg.Client,
  ) {}

  static async open(db: TestDatabase): Promise<Locker> {
    return new Locker(db, await openSession(db));
  }

  /** Terminates the step's backend once one waits on a lock; commits once `locking` (the lock asked for) is done. */
  killWaiter(locking?: Promise<unknown>): void {
    this.killed = terminateBackendWaitingOnLock(this.db).finally(async () => {
      await locking;
      await this.session.query('COMMIT');
    });
  }

  /** Runs the archive beside the session, then closes it; `killed` is the pid terminated (if `killWaiter` ran). */
  async beside(
    run: () => Promise<LocalRunResult>,
  ): Promise<{ result: LocalRunResult; killed: Promise<number> | undefined }> {
    try {
      return { result: await run(), killed: this.killed };
    } finally {
      await this.killed?.catch(() => undefined);
      await this.session.end();
    }
  }
}

describe('archive under injected faults', () => {
  it('retries a failed upload and archives everything once', async ({ s3, bucket, events }) => {
    // Prepare
    const prepared = await events.prepare('upload-fails-once');
    const store = new FaultInjectingStore(new S3ObjectStore(s3, bucket), {
      put: failOnce(4, () => new TransientStorageError('injected: upload failed (503)')),
    });

    // Act
    const result = await events.run(prepared, { store });

    // Assess
    expect(store.faultedKeys).toHaveLength(1);
    await expectCompleteArchive(prepared, result);
  });

  it('retries a failed verification and removes the object it left behind', async ({
    s3,
    bucket,
    events,
  }) => {
    // Prepare
    const prepared = await events.prepare('verify-fails-once');
    const store = new FaultInjectingStore(new S3ObjectStore(s3, bucket), {
      verify: failOnce(3, () => new TransientStorageError('injected: verification failed')),
    });

    // Act
    const result = await events.run(prepared, { store });

    // Assess
    expect(store.faultedKeys).toHaveLength(1);
    const orphan = store.faultedKeys[0] as string;
    expect(store.uploadedKeys, 'the failed verification followed a real upload').toContain(orphan);
    await expectCompleteArchive(prepared, result);
    expect(result.summary?.orphansRemoved).toBeGreaterThanOrEqual(1);
    expect(store.deletedKeys).toContain(orphan);
    expect(await listAllKeys(s3, bucket, orphan)).toEqual([]);
  });

  // A transient fault between a chunk's uploads and its COMMIT: the chunk rolls back, its uploads are orphans.
  const rolledBackChunks = [
    {
      title: 'retries a chunk whose ledger insert failed and removes its uploaded objects',
      policy: 'ledger-fails-once',
      point: 'beforeLedger',
      nth: 2,
      message: 'injected: ledger insert failed',
    },
    {
      title: 'retries a chunk that crashed after its upload but before COMMIT, and removes the orphan',
      policy: 'crash-before-commit',
      point: 'beforeCommit',
      nth: 3,
      message: 'injected: connection lost before COMMIT',
    },
  ] as const;
  for (const { title, policy, point, nth, message } of rolledBackChunks) {
    it(title, async ({ events }) => {
      // Prepare
      const prepared = await events.prepare(policy);
      let calls = 0;
      const uploaded: string[] = [];
      const hooks: ChunkFaultHooks = {
        afterUpload: (key) => {
          uploaded.push(key);
        },
        [point]: () => {
          calls++;
          if (calls === nth) throw new TransientDatabaseError(message);
        },
      };

      // Act
      const result = await events.run(prepared, { hooks });

      // Assess
      expect(calls).toBeGreaterThan(nth);
      const state = await expectCompleteArchive(prepared, result);
      const rolledBack = without(
        uploaded,
        state.objects.map((o) => o.key),
      );
      expect(rolledBack.length).toBeGreaterThanOrEqual(1);
      expect(result.summary?.orphansRemoved).toBe(rolledBack.length);
    });
  }

  it('retries a step that crashed after COMMIT without archiving anything twice', async ({
    database: db,
    events,
  }) => {
    // Prepare
    const prepared = await events.prepare('crash-after-commit');
    let calls = 0;
    const hooks: ChunkFaultHooks = {
      afterCommit: () => {
        calls++;
        if (calls === 2) throw new TransientDatabaseError('injected: connection lost after COMMIT');
      },
    };

    // Act
    const result = await events.run(prepared, { hooks });

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

  it('retries a Start step that failed after opening the run, without locking the policy out', async ({
    database: db,
    events,
  }) => {
    // Prepare: the step's logger throws once, right after the run row and the lease were committed: the
    // same as a connection lost while COMMIT's acknowledgement was on its way.
    const prepared = await events.prepare('start-fails-after-commit');
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
    const result = await events.run(prepared, { log });

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

  it('retries a Chunk step whose database connection was killed mid-statement', async ({
    database: db,
    events,
  }) => {
    // Prepare: after the second commit another session asks for an exclusive lock on the table. It queues
    // behind the chunk already in flight (the loop takes the next chunk while one completes), and a later
    // chunk's DELETE then waits behind it; that backend is terminated (what a failover or an admin does).
    const prepared = await events.prepare('chunk-connection-killed');
    const locker = await Locker.open(db);
    let commits = 0;
    const hooks: ChunkFaultHooks = {
      afterCommit: () => {
        commits++;
        if (commits !== 2) return;
        locker.killWaiter(
          locker.session
            .query('BEGIN')
            .then(() => locker.session.query(`LOCK TABLE public.${prepared.table} IN ACCESS EXCLUSIVE MODE`)),
        );
      },
    };

    // Act
    const { result, killed } = await locker.beside(() => events.run(prepared, { hooks }));

    // Assess
    expect(await killed).toBeGreaterThan(0);
    await expectCompleteArchive(prepared, result);
  });

  it('retries a Start step whose database connection was killed mid-statement', async ({
    database: db,
    events,
  }) => {
    // Prepare: an exclusive lock makes Start's EXPLAIN of the chunk query wait; its backend is terminated.
    const prepared = await events.prepare('start-connection-killed');
    const locker = await Locker.open(db);
    await locker.session.query('BEGIN');
    await locker.session.query(`LOCK TABLE public.${prepared.table} IN ACCESS EXCLUSIVE MODE`);
    locker.killWaiter();

    // Act
    const { result, killed } = await locker.beside(() => events.run(prepared));

    // Assess: a killed connection is transient (SQLSTATE 57P01): Step Functions retries Start
    expect(await killed).toBeGreaterThan(0);
    expect(result.failure).toBeUndefined();
    await expectCompleteArchive(prepared, result);
  });

  it('retries a Finish step whose database connection was killed mid-statement', async ({
    database: db,
    events,
  }) => {
    // Prepare: after the last chunk's commit another session locks the run row, so Finish's update of it
    // waits; its backend is then terminated.
    const prepared = await events.prepare('finish-connection-killed');
    // Once the last eligible row is committed away, only the empty end chunk (it leaves the run row alone) and Finish remain.
    let lockedAtCommit: number | undefined;
    const locker = await Locker.open(db);
    let commits = 0;
    const hooks: ChunkFaultHooks = {
      afterCommit: async () => {
        commits++;
        if (lockedAtCommit !== undefined) return;
        if ((await eligibleEventIds(db.pool, prepared.table, NOW, 'P90D')).length > 0) return;
        lockedAtCommit = commits;
        await locker.session.query('BEGIN');
        await locker.session.query(
          `SELECT 1 FROM lifecycle.runs WHERE policy = $1 AND status = 'running' FOR UPDATE`,
          [prepared.scope.policy],
        );
        locker.killWaiter();
      },
    };

    // Act
    const { result, killed } = await locker.beside(() => events.run(prepared, { hooks }));

    // Assess
    expect(lockedAtCommit).toBeDefined();
    expect(await killed).toBeGreaterThan(0);
    expect(result.failure).toBeUndefined();
    await expectCompleteArchive(prepared, result);
  });

  it('records a persistent terminal failure, keeps every row, and lets the next run finish the work', async ({
    database: db,
    s3,
    bucket,
    events,
  }) => {
    // Prepare
    const prepared = await events.prepare('terminal-upload-failure');
    const boom = () =>
      Object.assign(new Error('injected: the bucket policy changed under us'), { name: 'BoomError' });
    const store = new FaultInjectingStore(new S3ObjectStore(s3, bucket), { put: failFrom(3, boom) });

    // Act
    const failed = await events.run(prepared, { store });

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
    const next = await events.run(prepared);

    // Assess
    expect(next.status).toBe('succeeded');
    expect(next.summary?.rows).toBe(prepared.eligible.length - state.archivedKeys.length);
    const final = await expectArchiveGuarantees(prepared.scope, prepared.before);
    expect(sorted(final.archivedKeys)).toEqual(sorted(prepared.eligible));
    expect(await runRecord(db.pool, next.summary?.runId)).toMatchObject({ status: 'succeeded' });
  });
});
