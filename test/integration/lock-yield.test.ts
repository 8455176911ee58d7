/**
 * The watcher that makes a run's VACUUM give way to lock waiters (functions/adapters/lock-yield.ts), on a real
 * PostgreSQL: it cancels only for a waiter the VACUUM really holds up, and a watcher that fails never costs
 * the VACUUM (nor crashes the process with an unhandled rejection).
 */
import pg from 'pg';
import { yieldingToLockWaiters } from '../../functions/adapters/lock-yield.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';

async function client(db: TestDatabase, options?: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: db.url, ...(options ? { options } : {}) });
  await c.connect();
  return c;
}

/** 50 000 rows, 90 % deleted, autovacuum off: a VACUUM with work to do. */
async function seed(db: TestDatabase, table: string): Promise<void> {
  await db.pool.query(`
    DROP TABLE IF EXISTS ${table};
    CREATE TABLE ${table} (id bigint PRIMARY KEY, payload text NOT NULL) WITH (autovacuum_enabled = off);
    INSERT INTO ${table} SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
    DELETE FROM ${table} WHERE id % 10 <> 0;`);
}

describe('VACUUM giving way to lock waiters', () => {
  it('is not cancelled for sessions queued behind it while it still waits for its own lock', async ({
    database,
  }) => {
    // Prepare: another session holds SHARE (the VACUUM queues behind it); a third asks for SHARE UPDATE
    // EXCLUSIVE and queues behind both. Cancelling the VACUUM would not let the third through.
    await seed(database, 'public.queued');
    const holder = await client(database);
    const vacuuming = await client(database, '-c lock_timeout=1500');
    const third = await client(database, '-c lock_timeout=4000');
    await holder.query('BEGIN; LOCK TABLE public.queued IN SHARE MODE');
    try {
      // Act
      const outcome = yieldingToLockWaiters(
        vacuuming,
        () => client(database),
        () => vacuuming.query('VACUUM public.queued'),
      ).then(
        (result) => ('yielded' in result ? 'yielded' : 'done'),
        (error: { code?: string }) => error.code,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const thirdLock = third.query('BEGIN; LOCK TABLE public.queued IN SHARE UPDATE EXCLUSIVE MODE');

      // Assess: the VACUUM ran into its own lock_timeout (55P03), it did not give way.
      expect(await outcome).toBe('55P03');
      await holder.query('COMMIT');
      await thirdLock;
      await third.query('COMMIT');
    } finally {
      await holder.end();
      await vacuuming.end();
      await third.end();
    }
  });

  it('runs the VACUUM unwatched when the watcher cannot be opened or dies midway', async ({ database }) => {
    // Prepare: the second VACUUM paced to last seconds, so that it outlives its watcher by several polls.
    await seed(database, 'public.unwatched_a');
    await seed(database, 'public.unwatched_b');
    const plain = await client(database);
    const paced = await client(database, '-c vacuum_cost_delay=20 -c vacuum_cost_limit=50');
    let watcherPid: number | undefined;
    try {
      // Act 1: no watcher at all.
      const noWatcher = await yieldingToLockWaiters(
        plain,
        () => Promise.reject(new Error('too many connections')),
        () => plain.query('VACUUM public.unwatched_a'),
      );
      // Act 2: the watcher's backend terminated while the VACUUM runs.
      const dying = await yieldingToLockWaiters(
        paced,
        async () => {
          const watcher = await client(database);
          watcher.on('error', () => undefined);
          watcherPid = (await watcher.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
          return watcher;
        },
        async () => {
          const vacuum = paced.query('VACUUM public.unwatched_b');
          await new Promise((resolve) => setTimeout(resolve, 150));
          await database.pool.query('SELECT pg_terminate_backend($1)', [watcherPid]);
          return vacuum;
        },
      );

      // Assess: both VACUUMs completed (no error, no unhandled rejection); the result says they ran unwatched.
      expect(noWatcher).toMatchObject({ unwatched: expect.stringMatching(/too many connections/) });
      expect(dying).toMatchObject({ unwatched: expect.stringMatching(/no longer watched/) });
    } finally {
      await plain.end();
      await paced.end();
    }
  });
});
