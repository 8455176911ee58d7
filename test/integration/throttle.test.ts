/**
 * The replica-lag guard through the synthesized state machine with the real handlers: while the (injected)
 * lag is above the limit no chunk runs and the Pause state waits the check interval; then the run goes on
 * and completes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLocally, testConfig } from '../support/archive.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const NOW = new Date('2026-11-23T12:00:00.000Z');

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('throttle');
  await db.pool.query(`
    CREATE TABLE public.samples (id bigint PRIMARY KEY, created_at timestamptz NOT NULL);
    CREATE INDEX ON public.samples (created_at);`);
  await db.pool.query(
    `INSERT INTO public.samples SELECT g, $1::timestamptz - g * interval '1 day' FROM generate_series(1, 1000) g`,
    [NOW.toISOString()],
  );
});

afterAll(async () => {
  await db?.drop();
});

describe('replica-lag throttle', () => {
  it('runs no chunk while a replica lags, waits the check interval, then continues and completes', async () => {
    // Prepare: lag above the limit on the 1st, 2nd and 6th reading; every chunk commit is logged in between.
    const lagScript = [40, 40, 0, 0, 0, 40];
    const events: string[] = [];
    const openTransactions: number[] = [];
    let reads = 0;
    const replicaLagSeconds = async () => {
      const lag = lagScript[reads++] ?? 0;
      events.push(lag > 10 ? 'lagging' : 'ok');
      if (reads === 1) {
        // At the first check of a step no chunk transaction is open.
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
        );
        openTransactions.push(rows[0].n);
      }
      return lag;
    };
    const config = testConfig([
      {
        name: 'samples-purge',
        action: 'purge',
        table: 'public.samples',
        timeColumn: 'created_at',
        retention: 'P100D',
        chunking: { initialRows: 100, minRows: 100, maxRows: 100, pauseSeconds: 0 },
        throttle: { maxReplicaLagSeconds: 10, checkEverySeconds: 1 },
        vacuum: { enabled: false },
      },
    ]);
    const started = performance.now();

    // Act: the Pause state's own wait (no pauseMs override), so lagging checks really wait.
    const result = await runLocally({
      config,
      policyName: 'samples-purge',
      pauseMs: undefined,
      deps: {
        databaseUrl: db.url,
        now: () => NOW,
        replicaLagSeconds,
        hooks: { afterCommit: () => void events.push('commit') },
      },
    });

    // Assess
    const elapsedMs = performance.now() - started;
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.summary?.rows).toBe(900);
    expect(await db.pool.query(`SELECT count(*)::int AS n FROM public.samples`)).toMatchObject({
      rows: [{ n: 100 }],
    });
    // Two lagging checks before the first chunk: nothing committed until the lag cleared.
    expect(events.slice(0, 3)).toEqual(['lagging', 'lagging', 'ok']);
    expect(openTransactions).toEqual([0]);
    // The mid-run lagging check: only the chunk already in flight commits before the next check.
    const sixth = events.indexOf('lagging', 2);
    const afterSixth = events.slice(sixth + 1);
    const nextCheck = afterSixth.findIndex((e) => e !== 'commit');
    expect(afterSixth.slice(0, nextCheck).length).toBeLessThanOrEqual(1);
    // Three lagging checks, each followed by a 1 s wait.
    expect(elapsedMs).toBeGreaterThanOrEqual(3000);
    // One step per lagging check, besides those that ran chunks.
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(4);
  });
});
