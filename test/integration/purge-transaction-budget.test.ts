/**
 * A purge holds every chunk transaction to `targetTransactionMs` even when the server turns slower than its
 * last chunks said (a busier machine, a colder cache): the chunk that would run over is rolled back at its
 * budget and taken again smaller. The slowdown is injected: a statement-level ON DELETE trigger sleeps a set
 * time per deleted row, and the test raises that time between two chunks.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { beforeEach, describe, expect, it, NOW } from '../support/fixture.ts';
import { capturingLogger, logLinesOf } from '../support/subject-archives.ts';

type Policy = LifecycleConfigInput['policies'][number];

/** The purge default (lib/contracts/chunking.ts), spelled out: what every transaction is held to. */
const TARGET_MS = 250;
const BUDGET_WARNING = 'chunk over its transaction budget, rolled back; retrying smaller';

beforeEach(async ({ database: db }) => {
  await db.pool.query(`
    DROP TABLE IF EXISTS public."Meter Readings";
    DROP TABLE IF EXISTS public.delete_cost;
    CREATE TABLE public.delete_cost (ms_per_row float8 NOT NULL);
    CREATE TABLE public."Meter Readings" (id bigint PRIMARY KEY, read_at timestamptz NOT NULL, kwh numeric);
    CREATE INDEX ON public."Meter Readings" (read_at);
    CREATE OR REPLACE FUNCTION public.charge_delete_cost() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_sleep((SELECT count(*) FROM gone) * (SELECT ms_per_row FROM public.delete_cost) / 1000.0);
      RETURN NULL;
    END $$;
    CREATE TRIGGER charge_delete_cost AFTER DELETE ON public."Meter Readings"
      REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION public.charge_delete_cost();`);
});

async function seed(pool: pg.Pool, oldRows: number, msPerRow: number): Promise<void> {
  // `oldRows` rows a minute apart, all older than the 30-day retention, and 100 recent rows (kept).
  await pool.query(
    `INSERT INTO public."Meter Readings"
     SELECT g, $1::timestamptz - interval '60 days' - g * interval '1 minute', g FROM generate_series(1, $2::int) g
     UNION ALL
     SELECT $2::int + g, $1::timestamptz - g * interval '1 hour', 0 FROM generate_series(1, 100) g`,
    [NOW.toISOString(), oldRows],
  );
  await pool.query(`INSERT INTO public.delete_cost VALUES ($1)`, [msPerRow]);
}

function purgePolicy(chunking: Record<string, number>): Policy {
  return {
    name: 'readings-purge',
    action: 'purge',
    table: 'public."Meter Readings"',
    timeColumn: 'read_at',
    retention: 'P30D',
    chunking: { targetTransactionMs: TARGET_MS, ...chunking },
    vacuum: { enabled: false },
  };
}

async function ledgerChunks(pool: pg.Pool, runId: string | undefined) {
  const { rows } = await pool.query<{ rows: number; duration_ms: number }>(
    `SELECT rows, duration_ms FROM lifecycle.chunks WHERE run_id = $1 AND rows > 0 ORDER BY seq`,
    [runId],
  );
  return rows;
}

/** Rows left older than 30 days (the retention) and newer. */
const remaining = async (pool: pg.Pool) =>
  (
    await pool.query<{ old: number; recent: number }>(
      `SELECT count(*) FILTER (WHERE read_at < $1::timestamptz - interval '30 days')::int AS old,
              count(*) FILTER (WHERE read_at >= $1::timestamptz - interval '30 days')::int AS recent
         FROM public."Meter Readings"`,
      [NOW.toISOString()],
    )
  ).rows[0];

/** The captured log's budget warnings, with their fields. */
const budgetWarnings = (lines: readonly string[]) =>
  logLinesOf<{ targetTransactionMs?: number; limit?: number }>(lines, BUDGET_WARNING);

describe('purge transaction budget', () => {
  it('rolls back the chunk the server grew too slow for and takes it again smaller: no transaction over target', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: deleting costs 0.01 ms a row, so chunks double from 1 000 rows (10 ms); after the third chunk it
    // costs four times as much, and the fourth chunk, sized from the third, would take about 320 ms.
    await seed(db.pool, 40_000, 0.01);
    let commits = 0;
    const hooks = {
      afterCommit: async () => {
        if (++commits === 3) await db.pool.query(`UPDATE public.delete_cost SET ms_per_row = 0.04`);
      },
    };
    const log = capturingLogger();

    // Act
    const result = await runPolicy(
      testConfig([purgePolicy({ initialRows: 1000, minRows: 500, maxRows: 40_000 })]),
      'readings-purge',
      { deps: { log, hooks } },
    );

    // Assess: every row older than the cutoff gone, none newer, every chunk in the ledger.
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(40_000);
    expect(await remaining(db.pool)).toEqual({ old: 0, recent: 100 });
    const chunks = await ledgerChunks(db.pool, result.summary?.runId);
    expect(chunks.reduce((sum, c) => sum + c.rows, 0)).toBe(40_000);
    expect(chunks.slice(0, 3).map((c) => c.rows)).toEqual([1000, 2000, 4000]);
    // The slowed chunk was rolled back at its budget, and no transaction that committed ran over the target.
    const overBudget = budgetWarnings(log.lines);
    expect(overBudget.length).toBeGreaterThanOrEqual(1);
    // …and taken again at half the rows: the next chunk committed is that size.
    expect(overBudget[0]).toMatchObject({ targetTransactionMs: TARGET_MS, limit: chunks[3]?.rows });
    expect(Math.max(...chunks.map((c) => c.duration_ms))).toBeLessThanOrEqual(TARGET_MS);
  }, 30_000);

  it('bounds a wait for a table lock by the budget too, as a lock timeout: retried with backoff, the size kept', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: deleting is cheap; after the second chunk another session holds a SHARE lock on the table (as a
    // CREATE INDEX without CONCURRENTLY does) for 600 ms, well inside the policy's 2 s lock_timeout.
    await seed(db.pool, 20_000, 0);
    const holder = await db.pool.connect();
    let commits = 0;
    let released: Promise<void> = Promise.resolve();
    const hooks = {
      afterCommit: async () => {
        if (++commits !== 2) return;
        await holder.query(`BEGIN; LOCK TABLE public."Meter Readings" IN SHARE MODE`);
        released = sleep(600).then(async () => {
          await holder.query('COMMIT');
        });
      },
    };
    const log = capturingLogger();

    // Act
    let result: Awaited<ReturnType<typeof runPolicy>>;
    try {
      result = await runPolicy(
        testConfig([purgePolicy({ initialRows: 1000, minRows: 500, maxRows: 40_000 })]),
        'readings-purge',
        { deps: { log, hooks } },
      );
    } finally {
      await released;
      holder.release();
    }

    // Assess: every old row gone; the wait failed as the lock timeout it was (55P03, within the transaction's
    // budget rather than the policy's 2 s), never as a chunk too big, and the retried chunk kept its size.
    expect(result.failure).toBeUndefined();
    expect(await remaining(db.pool)).toEqual({ old: 0, recent: 100 });
    expect(budgetWarnings(log.lines)).toEqual([]);
    const retries = logLinesOf<{ sqlstate?: string; limit?: number }>(
      log.lines,
      'chunk rolled back, retrying',
    );
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries.every((line) => line.sqlstate === '55P03')).toBe(true);
    expect(new Set(retries.map((line) => line.limit)).size).toBe(1);
    const chunks = await ledgerChunks(db.pool, result.summary?.runId);
    expect(Math.max(...chunks.map((c) => c.duration_ms))).toBeLessThanOrEqual(TARGET_MS);
  }, 30_000);

  it('lets a chunk of minRows run past the target when even that many rows cost more: the purge still ends', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 0.6 ms a row, so 500 rows (minRows) take 300 ms, over the 250 ms target.
    await seed(db.pool, 1500, 0.6);
    const log = capturingLogger();

    // Act
    const result = await runPolicy(
      testConfig([purgePolicy({ initialRows: 1000, minRows: 500, maxRows: 1000 })]),
      'readings-purge',
      { deps: { log } },
    );

    // Assess: the first chunk (1 000 rows, 600 ms) rolled back at its budget, then chunks of 500 rows each ran
    // over the target rather than fail the run.
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(1500);
    expect(await remaining(db.pool)).toEqual({ old: 0, recent: 100 });
    const chunks = await ledgerChunks(db.pool, result.summary?.runId);
    expect(chunks.map((c) => c.rows)).toEqual([500, 500, 500]);
    expect(chunks.every((c) => c.duration_ms >= 300)).toBe(true);
    expect(budgetWarnings(log.lines)).toHaveLength(1);
  }, 30_000);
});
