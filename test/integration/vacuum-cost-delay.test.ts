/**
 * The VACUUMs a run issues are throttled (cost-based delay) as configured: the purge's VACUUM after a large
 * purge and maintain's VACUUM of a bloated table. What a user relies on: by default they run at the server's
 * autovacuum pace, not at a manual VACUUM's full speed next to the application; `off` and explicit values do
 * what they say. Seen from outside: the VACUUM's backend waits on `VacuumDelay` (pg_stat_activity) when
 * throttled, never when not, and the purge's ledger records the pace the server applied.
 */
import pg from 'pg';
import { withVacuumCostDelay } from '../../functions/adapters/vacuum-cost.ts';
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

/** Resolves once a VACUUM runs in this database (from another session), with its backend's pid. */
async function vacuumRunning(pool: pg.Pool): Promise<number> {
  for (let i = 0; i < 1000; i++) {
    const { rows } = await pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND query ILIKE 'VACUUM%' AND state = 'active'`,
    );
    if (rows[0]) return rows[0].pid;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('no VACUUM started');
}

/**
 * What a migration does while the VACUUM runs: ALTER TABLE under a 3 s lock_timeout. Without the VACUUM giving
 * way it would wait for all of it (the VACUUM is paced to take minutes) and fail with 55P03.
 */
async function alterWhileVacuuming(pool: pg.Pool, table: string): Promise<void> {
  await vacuumRunning(pool);
  const client = await pool.connect();
  try {
    await client.query(`SET lock_timeout = '3s'`);
    await client.query(`ALTER TABLE ${table} ADD COLUMN added_by_migration integer`);
  } finally {
    client.release();
  }
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

  it("takes the table's own autovacuum cost settings first", async ({ database, runPolicy }) => {
    // Prepare
    await seedLogs(database.pool);
    await database.pool.query(
      'ALTER TABLE public.vac_logs SET (autovacuum_vacuum_cost_delay = 7, autovacuum_vacuum_cost_limit = 777)',
    );

    // Act
    const result = await runPolicy(testConfig([purgePolicy()]), 'vac-purge');

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.maintenance).toMatchObject({ reason: 'done', costDelayMs: 7, costLimit: 777 });
  });

  it('names the pace when a throttled VACUUM runs out of time (purge and maintain)', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: paced to take minutes, given one second.
    await seedLogs(database.pool);
    const slow = { delayMs: 50, limit: 10 };
    const purge = {
      ...purgePolicy(),
      vacuum: { costDelay: slow, timeoutMs: 1_000 },
    } as PolicyInput;
    const maintain = testConfig([
      {
        name: 'vac-maintain',
        action: 'maintain',
        maintain: { tables: ['public.vac_logs'], reindex: 'skip', vacuumCostDelay: slow, timeoutMs: 1_000 },
      },
    ]);

    // Act
    const purged = await runPolicy(testConfig([purge]), 'vac-purge');
    await changeAndPublish(database.pool, 'DELETE FROM public.vac_logs WHERE id % 2 = 0');
    const maintained = await runPolicy(maintain, 'vac-maintain');

    // Assess: both runs succeed; each records the timeout with the pace that made it slow.
    expect(purged.failure).toBeUndefined();
    expect(purged.summary?.maintenance).toMatchObject({
      reason: 'timed-out',
      error: expect.stringMatching(
        /^VACUUM exceeded 1000 ms \(throttled: vacuum_cost_delay 50 ms per 10 cost units\); vacuum\.costDelay/,
      ),
    });
    expect(maintained.failure).toBeUndefined();
    const { rows } = await database.pool.query(
      'SELECT outcome, error FROM lifecycle.maintenance_actions WHERE run_id = $1',
      [maintained.summary?.runId],
    );
    expect(rows).toEqual([
      {
        outcome: 'timed-out',
        error: expect.stringMatching(
          /^exceeded 1000 ms \(throttled: vacuum_cost_delay 50 ms per 10 cost units\)/,
        ),
      },
    ]);
  });

  it("gives way to a session waiting for the table's lock, as autovacuum does (purge)", async ({
    database,
    runPolicy,
  }) => {
    // Prepare: paced to take minutes (50 ms per 10 cost units).
    await seedLogs(database.pool);

    // Act
    const [result] = await Promise.all([
      runPolicy(testConfig([purgePolicy({ delayMs: 50, limit: 10 })]), 'vac-purge'),
      alterWhileVacuuming(database.pool, 'public.vac_logs'),
    ]);

    // Assess: the migration got its lock within its 3 s; the run succeeded, its VACUUM recorded as yielded.
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.summary?.maintenance).toMatchObject({
      vacuumed: false,
      reason: 'yielded',
      costDelayMs: 50,
    });
    expect(result.summary?.maintenance?.error).toMatch(
      /VACUUM gave way to a session waiting for AccessExclusiveLock/,
    );
    const { rows } = await database.pool.query(
      `SELECT 1 FROM information_schema.columns WHERE table_name = 'vac_logs' AND column_name = 'added_by_migration'`,
    );
    expect(rows).toHaveLength(1);
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
        'SELECT statement, outcome, cost_delay_ms, cost_limit FROM lifecycle.maintenance_actions WHERE run_id = $1',
        [watched.result.summary?.runId],
      );
      expect(rows).toEqual([
        {
          statement: 'vacuum',
          outcome: 'done',
          cost_delay_ms: throttled ? 10 : 0,
          cost_limit: throttled ? 150 : await setting(database.pool, 'vacuum_cost_limit'),
        },
      ]);
      expect(watched.sawVacuum).toBe(true);
      expect(watched.sawDelay).toBe(throttled);
    });
  }

  it("gives way to a session waiting for the table's lock, as autovacuum does (maintain)", async ({
    database,
    runPolicy,
  }) => {
    // Prepare
    await database.pool.query(`
      DROP SCHEMA IF EXISTS vac_yield CASCADE;
      CREATE SCHEMA vac_yield;
      CREATE TABLE vac_yield.events (id bigint PRIMARY KEY, payload text NOT NULL) WITH (autovacuum_enabled = off);
      INSERT INTO vac_yield.events SELECT g, md5(g::text) FROM generate_series(1, 60000) g;
      ANALYZE vac_yield.events;`);
    await changeAndPublish(database.pool, 'DELETE FROM vac_yield.events WHERE id % 10 <> 0');
    const config = testConfig([
      {
        name: 'vac-maintain',
        action: 'maintain',
        maintain: { tables: ['vac_yield.*'], reindex: 'skip', vacuumCostDelay: { delayMs: 50, limit: 10 } },
      },
    ]);

    // Act
    const [result] = await Promise.all([
      runPolicy(config, 'vac-maintain'),
      alterWhileVacuuming(database.pool, 'vac_yield.events'),
    ]);

    // Assess
    expect(result.failure).toBeUndefined();
    const { rows } = await database.pool.query(
      'SELECT statement, outcome, error, cost_delay_ms FROM lifecycle.maintenance_actions WHERE run_id = $1',
      [result.summary?.runId],
    );
    expect(rows).toEqual([
      {
        statement: 'vacuum',
        outcome: 'yielded',
        error: expect.stringMatching(/^VACUUM gave way to a session waiting for AccessExclusiveLock/),
        cost_delay_ms: 50,
      },
    ]);
  });

  it("restores the session's own settings afterwards, also when the statement fails", async ({
    database,
  }) => {
    // Prepare: a session whose own vacuum_cost_delay (9 ms) and limit (99) come from its startup options.
    const client = new pg.Client({
      connectionString: database.url,
      options: '-c vacuum_cost_delay=9 -c vacuum_cost_limit=99',
    });
    await client.connect();
    const show = async () =>
      (
        await client.query('SELECT current_setting($1) AS d, current_setting($2) AS l', [
          'vacuum_cost_delay',
          'vacuum_cost_limit',
        ])
      ).rows[0];
    try {
      // Act
      const inside = await withVacuumCostDelay(
        client,
        { delayMs: 3, limit: 33 },
        undefined,
        async (cost) => ({
          cost,
          seen: await show(),
        }),
      );
      const failed = await withVacuumCostDelay(client, 'off', undefined, async () => {
        await client.query('VACUUM public.no_such_table');
      }).catch((error: { code?: string }) => error.code);

      // Assess
      expect(inside).toEqual({ cost: { delayMs: 3, limit: 33 }, seen: { d: '3ms', l: '33' } });
      expect(failed).toBe('42P01');
      expect(await show()).toEqual({ d: '9ms', l: '99' });
    } finally {
      await client.end();
    }
  });
});
