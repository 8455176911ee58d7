/**
 * The VACUUMs a run issues are throttled (cost-based delay) as configured: the purge's VACUUM after a large
 * purge and maintain's VACUUM of a bloated table. What a user relies on: by default they run at the server's
 * autovacuum pace, not at a manual VACUUM's full speed next to the application; `off` and explicit values do
 * what they say. Seen from outside: the VACUUM's backend waits on `VacuumDelay` (pg_stat_activity) when
 * throttled, never when not, and the purge's ledger records the pace the server applied.
 */
import type pg from 'pg';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { migrateLedger } from '../support/database.ts';
import { beforeAll, describe, expect, it, NOW } from '../support/fixture.ts';
import { changeAndPublish } from '../support/maintain.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

/** `public.vac_logs`: 20 000 rows, one every hour back from NOW: ≈ 97 % of them past a 30-day retention. */
async function seedLogs(pool: pg.Pool): Promise<void> {
  await pool.query(`
    DROP TABLE IF EXISTS public.vac_logs;
    CREATE TABLE public.vac_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, message text NOT NULL)
      WITH (autovacuum_enabled = off);
    CREATE INDEX ON public.vac_logs (created_at);`);
  await pool.query(
    `INSERT INTO public.vac_logs SELECT g, $1::timestamptz - g * interval '1 hour', md5(g::text)
       FROM generate_series(1, 20000) g`,
    [NOW.toISOString()],
  );
  await pool.query('ANALYZE public.vac_logs');
}

function purgePolicy(costDelay?: unknown): PolicyInput {
  return {
    name: 'vac-purge',
    action: 'purge',
    table: 'public.vac_logs',
    timeColumn: 'created_at',
    retention: 'P30D',
    chunking: { initialRows: 5000, minRows: 1000, maxRows: 20000 },
    vacuum: costDelay === undefined ? {} : { costDelay },
  } as PolicyInput;
}

/**
 * Samples the wait events of every VACUUM statement running in this database (but the sampler's) until
 * `work` settles: whether one was seen at all, and whether one waited on its cost-based delay.
 */
async function watchVacuums<T>(
  pool: pg.Pool,
  work: Promise<T>,
): Promise<{ result: T; sawVacuum: boolean; sawDelay: boolean }> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  const client = await pool.connect();
  let sawVacuum = false;
  let sawDelay = false;
  try {
    while (!done) {
      const { rows } = await client.query<{ wait_event: string | null }>(
        `SELECT wait_event FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'VACUUM%'
            AND state = 'active'`,
      );
      if (rows.length > 0) sawVacuum = true;
      if (rows.some((r) => r.wait_event === 'VacuumDelay')) sawDelay = true;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    client.release();
  }
  return { result: await settled, sawVacuum, sawDelay };
}

async function setting(pool: pg.Pool, name: string): Promise<number> {
  const { rows } = await pool.query<{ setting: string }>('SELECT setting FROM pg_settings WHERE name = $1', [
    name,
  ]);
  return Number(rows[0]?.setting);
}

beforeAll(async ({ database }) => {
  await migrateLedger(database);
});

describe('VACUUM cost-based delay', () => {
  it("paces the purge's VACUUM like autovacuum by default, reading -1 as the plain setting", async ({
    database,
    runPolicy,
  }) => {
    // Prepare: the database's own vacuum_cost_limit (300) is what autovacuum's -1 stands for here.
    await seedLogs(database.pool);
    const autovacuumDelay = await setting(database.pool, 'autovacuum_vacuum_cost_delay');
    const autovacuumLimit = await setting(database.pool, 'autovacuum_vacuum_cost_limit');
    const { rows } = await database.pool.query<{ db: string }>('SELECT current_database() AS db');
    const dbName = `"${rows[0]?.db}"`;
    await database.pool.query(`ALTER DATABASE ${dbName} SET vacuum_cost_limit = 300`);

    try {
      // Act
      const result = await runPolicy(testConfig([purgePolicy()]), 'vac-purge');

      // Assess
      expect(result.failure).toBeUndefined();
      expect(result.summary?.maintenance).toMatchObject({
        vacuumed: true,
        reason: 'done',
        costDelayMs: autovacuumDelay === -1 ? 0 : autovacuumDelay,
        costLimit: autovacuumLimit === -1 ? 300 : autovacuumLimit,
      });
      expect(autovacuumDelay).toBeGreaterThan(0);
    } finally {
      await database.pool.query(`ALTER DATABASE ${dbName} RESET vacuum_cost_limit`);
    }
  });

  it("throttles the purge's VACUUM with explicit values (it waits on VacuumDelay) and records them", async ({
    database,
    runPolicy,
  }) => {
    // Prepare
    await seedLogs(database.pool);

    // Act
    const watched = await watchVacuums(
      database.pool,
      runPolicy(testConfig([purgePolicy({ delayMs: 10, limit: 150 })]), 'vac-purge'),
    );

    // Assess
    expect(watched.result.failure).toBeUndefined();
    expect(watched.result.summary?.rows).toBeGreaterThan(19_000);
    expect(watched.result.summary?.maintenance).toMatchObject({
      vacuumed: true,
      reason: 'done',
      costDelayMs: 10,
      costLimit: 150,
      deadTuplesAfter: 0,
    });
    expect(watched.sawDelay).toBe(true);
  });

  it("runs the purge's VACUUM unthrottled with off", async ({ database, runPolicy }) => {
    // Prepare
    await seedLogs(database.pool);

    // Act
    const result = await runPolicy(testConfig([purgePolicy('off')]), 'vac-purge');

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.maintenance).toMatchObject({ vacuumed: true, reason: 'done', costDelayMs: 0 });
  });

  for (const [label, vacuumCostDelay, throttled] of [
    ['explicit values', { delayMs: 10, limit: 150 }, true],
    ['off', 'off', false],
  ] as const) {
    it(`throttles maintain's VACUUM as configured: ${label}`, async ({ database, runPolicy }) => {
      // Prepare: 60 000 rows, 90 % of them deleted (dead tuples over the 20 % threshold).
      const schema = throttled ? 'vac_throttled' : 'vac_unthrottled';
      await database.pool.query(`
      DROP SCHEMA IF EXISTS ${schema} CASCADE;
      CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}.events (id bigint PRIMARY KEY, payload text NOT NULL) WITH (autovacuum_enabled = off);
      INSERT INTO ${schema}.events SELECT g, md5(g::text) FROM generate_series(1, 60000) g;
      ANALYZE ${schema}.events;`);
      await changeAndPublish(database.pool, `DELETE FROM ${schema}.events WHERE id % 10 <> 0`);
      const config = testConfig([
        {
          name: 'vac-maintain',
          action: 'maintain',
          maintain: { tables: [`${schema}.*`], reindex: 'skip', vacuumCostDelay },
        },
      ]);

      // Act
      const watched = await watchVacuums(database.pool, runPolicy(config, 'vac-maintain'));

      // Assess
      expect(watched.result.failure).toBeUndefined();
      const { rows } = await database.pool.query<{ statement: string; outcome: string }>(
        'SELECT statement, outcome FROM lifecycle.maintenance_actions WHERE run_id = $1',
        [watched.result.summary?.runId],
      );
      expect(rows).toEqual([expect.objectContaining({ statement: 'vacuum', outcome: 'done' })]);
      expect(watched.sawVacuum).toBe(true);
      expect(watched.sawDelay).toBe(throttled);
    });
  }
});
