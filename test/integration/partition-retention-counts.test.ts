/**
 * How a purge records the rows of the partitions it drops, and what its checks read. By default
 * (`partitions.count: "estimate"`) the ledger gets the planner's estimate, flagged `rows_estimated`, scaled to
 * the heap's size now and refreshed by a sampled ANALYZE when the partition was never analyzed; with
 * `count: "exact"` it gets count(*). The drop's safety check (no row at or after the cutoff) is answered from
 * the partition's constraints without reading a row, and still finds a late row when those cannot prove it.
 */
import pg from 'pg';
import { PartitionOperations } from '../../functions/adapters/partitions.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';
import {
  finishedUnits,
  PARTITION_CUTOFF,
  partitionsOf,
  runPartitionedTablePolicy,
  statisticsReported,
} from '../support/partitioned.ts';

/** January: analyzed at 20 000 rows, then grown to 80 000 unanalyzed; February: 50 000, never analyzed. */
const JANUARY_ROWS = 80_000;
const FEBRUARY_ROWS = 50_000;

/**
 * `public.<table>` RANGE-partitioned by month on created_at: two old partitions whose statistics are stale
 * or missing (autovacuum off on them, so nothing refreshes them behind the test's back) and the current one.
 */
async function seedStaleStatistics(db: TestDatabase, table: string): Promise<void> {
  await db.pool.query(`DROP TABLE IF EXISTS public.${table} CASCADE`);
  await db.pool.query(`
    CREATE TABLE public.${table} (id bigint NOT NULL, created_at timestamptz NOT NULL, payload text NOT NULL)
      PARTITION BY RANGE (created_at);
    CREATE INDEX ON public.${table} (created_at);
    CREATE TABLE public.${table}_2026_01 PARTITION OF public.${table}
      FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00') WITH (autovacuum_enabled = false);
    CREATE TABLE public.${table}_2026_02 PARTITION OF public.${table}
      FOR VALUES FROM ('2026-02-01 00:00:00+00') TO ('2026-03-01 00:00:00+00') WITH (autovacuum_enabled = false);
    CREATE TABLE public.${table}_2026_11 PARTITION OF public.${table}
      FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00');`);
  const insert = (from: number, to: number, start: string) =>
    db.pool.query(
      `INSERT INTO public.${table}
       SELECT g, timestamptz '${start}' + (g - $1::int) * interval '20 seconds', md5(g::text)
         FROM generate_series($1::int, $2::int) g`,
      [from, to],
    );
  await insert(1, 20_000, '2026-01-01 00:00:00+00');
  await db.pool.query(`ANALYZE public.${table}_2026_01`);
  await insert(20_001, JANUARY_ROWS, '2026-01-01 00:00:00+00');
  await insert(100_001, 100_000 + FEBRUARY_ROWS, '2026-02-01 00:00:00+00');
  await db.pool.query(
    `INSERT INTO public.${table} SELECT 900000 + g, timestamptz '2026-11-20 00:00:00+00' + g * interval '1 minute', 'now'
       FROM generate_series(1, 10) g`,
  );
}

async function ledgerRows(db: TestDatabase, runId: string | undefined): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(
    'SELECT coalesce(sum(rows), 0)::text AS n FROM lifecycle.chunks WHERE run_id = $1',
    [runId],
  );
  return Number(rows[0]?.n);
}

describe('partition retention: purge row counts', () => {
  it('records the estimate by default, flagged, scaled to the heap now and sampled when never analyzed', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare
    const table = 'estimated_events';
    await seedStaleStatistics(db, table);

    // Act: the default partition options.
    const result = await runPartitionedTablePolicy(
      { runPolicy, definition },
      'purge',
      'estimate-purge',
      table,
    );

    // Assess: both old partitions dropped, each recorded as an estimate within 5 % of its rows (pg_class
    // alone says 20 000 and "never analyzed"), and the run's totals and ledger are those estimates.
    expect(result.failure).toBeUndefined();
    expect(await partitionsOf(db, table)).toEqual([`${table}_2026_11`]);
    const units = await finishedUnits(db, result.summary?.runId);
    expect(units.map((u) => [u.name, u.estimated])).toEqual([
      [`"public"."${table}_2026_01"`, true],
      [`"public"."${table}_2026_02"`, true],
    ]);
    expect(Math.abs((units[0]?.rows ?? 0) / JANUARY_ROWS - 1)).toBeLessThan(0.05);
    expect(Math.abs((units[1]?.rows ?? 0) / FEBRUARY_ROWS - 1)).toBeLessThan(0.05);
    const recorded = units.reduce((sum, u) => sum + u.rows, 0);
    expect(result.summary?.rows).toBe(recorded);
    expect(await ledgerRows(db, result.summary?.runId)).toBe(recorded);
  });

  it('records the exact count with count: "exact"', async ({ database: db, runPolicy, definition }) => {
    // Prepare
    const table = 'exact_events';
    await seedStaleStatistics(db, table);

    // Act
    const result = await runPartitionedTablePolicy({ runPolicy, definition }, 'purge', 'exact-purge', table, {
      overrides: { partitions: { count: 'exact' } },
    });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(await finishedUnits(db, result.summary?.runId)).toEqual([
      { name: `"public"."${table}_2026_01"`, rows: JANUARY_ROWS, estimated: false },
      { name: `"public"."${table}_2026_02"`, rows: FEBRUARY_ROWS, estimated: false },
    ]);
    expect(result.summary?.rows).toBe(JANUARY_ROWS + FEBRUARY_ROWS);
    expect(await ledgerRows(db, result.summary?.runId)).toBe(JANUARY_ROWS + FEBRUARY_ROWS);
  });
});

describe('partition retention: what a purge unit reads', () => {
  /**
   * Scans and pages of `relation` read by this session so far: PostgreSQL's per-transaction counters, which
   * on a fresh connection hold this transaction's reads alone (PostgreSQL 15 also counts earlier transactions
   * of the session whose statistics are not flushed yet).
   */
  async function reads(client: pg.Client, relation: string) {
    const { rows } = await client.query<{ scans: string; blocks: string }>(
      `SELECT pg_stat_get_xact_numscans($1::regclass)::text AS scans,
              pg_stat_get_xact_blocks_fetched($1::regclass)::text AS blocks`,
      [relation],
    );
    return { scans: Number(rows[0]?.scans), blocks: Number(rows[0]?.blocks) };
  }

  /** `public.<table>` without any index, January 2026 (20 000 rows) detached CONCURRENTLY as the driver does. */
  async function detachedWithoutIndex(db: TestDatabase, table: string): Promise<string> {
    await db.pool.query(`DROP TABLE IF EXISTS public.${table} CASCADE`);
    await db.pool.query(`DROP TABLE IF EXISTS public.${table}_2026_01`);
    await db.pool.query(`
      CREATE TABLE public.${table} (id bigint NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
      CREATE TABLE public.${table}_2026_01 PARTITION OF public.${table}
        FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00');
      CREATE TABLE public.${table}_2026_11 PARTITION OF public.${table}
        FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00');
      INSERT INTO public.${table}
        SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 20000) g;`);
    // Analyzed once the inserts are reported (up to a second after their commit): reported after the ANALYZE,
    // they would count as changes since it, as they never do for an old partition.
    await statisticsReported(db, `public.${table}_2026_01`, 'mod_since_analyze');
    await db.pool.query(`ANALYZE public.${table}_2026_01`);
    await db.pool.query(`ALTER TABLE public.${table} DETACH PARTITION public.${table}_2026_01 CONCURRENTLY`);
    return `public.${table}_2026_01`;
  }

  /** `work` in a transaction of a fresh connection holding the drop's lock on `relation`; rolled back. */
  async function inLockedTransaction<T>(
    db: TestDatabase,
    relation: string,
    work: (client: pg.Client) => Promise<T>,
  ): Promise<T> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(`LOCK TABLE ${relation} IN ACCESS EXCLUSIVE MODE`);
      return await work(client);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  }

  const check = (client: pg.Client, table: string) =>
    new PartitionOperations(client, { schema: 'public', table }).holdsIneligibleRows(
      { schema: 'public', name: `${table}_2026_01` },
      'created_at',
      (cutoff) => `created_at < ${cutoff}::timestamptz`,
      PARTITION_CUTOFF,
    );

  it('answers the detached check and the estimate without reading the partition (no index on the time column)', async ({
    database: db,
  }) => {
    // Prepare
    const table = 'unindexed_events';
    const relation = await detachedWithoutIndex(db, table);

    // Act
    const outcome = await inLockedTransaction(db, relation, async (client) => {
      const ops = new PartitionOperations(client, { schema: 'public', table });
      const holds = await check(client, table);
      const estimate = await ops.estimateRows({ schema: 'public', name: `${table}_2026_01` }, 'created_at');
      const setting = await client.query<{ v: string }>(
        `SELECT current_setting('constraint_exclusion') AS v`,
      );
      return { holds, estimate, read: await reads(client, relation), setting: setting.rows[0]?.v };
    });

    // Assess: no scan and no page of the partition read; the connection's setting is back as it was.
    expect(outcome.holds).toBe(false);
    expect(outcome.estimate).toEqual({ rows: 20_000, estimated: true });
    expect(outcome.read).toEqual({ scans: 0, blocks: 0 });
    expect(outcome.setting).toBe('partition');
  });

  it('answers the attached check from the bound, outside a transaction, and leaves the session as it was', async ({
    database: db,
  }) => {
    // Prepare: an attached partition without an index on the time column; a fresh autocommit connection.
    const table = 'attached_events';
    await detachedWithoutIndex(db, table);
    await db.pool.query(
      `ALTER TABLE public.${table} ATTACH PARTITION public.${table}_2026_01
         FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')`,
    );
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const notices: string[] = [];
    client.on('notice', (notice) => notices.push(`${notice.severity}: ${notice.message}`));
    try {
      // Act
      const holds = await check(client, table);
      const plan = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT 1 FROM public.${table}_2026_01 WHERE created_at >= '${PARTITION_CUTOFF}'`,
      );
      const setting = await client.query<{ v: string }>(
        `SELECT current_setting('constraint_exclusion') AS v`,
      );

      // Assess: no "SET LOCAL can only be used in transaction blocks" warning (the setting applied to the
      // check), and the session's planning is as before (a plain query on the partition still scans it).
      expect(holds).toBe(false);
      expect(notices).toEqual([]);
      expect(setting.rows[0]?.v).toBe('partition');
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/Seq Scan/);
    } finally {
      await client.end();
    }
  });

  it('still finds a late row when no constraint can prove there is none', async ({ database: db }) => {
    // Prepare: the CHECK the detach added is dropped and a row past the cutoff written into the table.
    const table = 'late_row_events';
    const relation = await detachedWithoutIndex(db, table);
    const { rows } = await db.pool.query<{ conname: string }>(
      `SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'`,
      [relation],
    );
    expect(rows).toHaveLength(1);
    await db.pool.query(`ALTER TABLE ${relation} DROP CONSTRAINT "${rows[0]?.conname}"`);
    const withoutLateRow = await inLockedTransaction(db, relation, (client) => check(client, table));
    await db.pool.query(`INSERT INTO ${relation} VALUES (0, timestamptz '2026-11-01 00:00:00+00')`);

    // Act
    const withLateRow = await inLockedTransaction(db, relation, (client) => check(client, table));

    // Assess
    expect(withoutLateRow).toBe(false);
    expect(withLateRow).toBe(true);
  });

  it('samples a partition never analyzed instead of reading it whole', async ({ database: db }) => {
    // Prepare: 150 000 rows (about 800 pages), never analyzed.
    const table = 'unanalyzed_events';
    await db.pool.query(`DROP TABLE IF EXISTS public.${table}`);
    await db.pool.query(`
      CREATE TABLE public.${table} (id bigint NOT NULL, created_at timestamptz NOT NULL)
        WITH (autovacuum_enabled = false);
      INSERT INTO public.${table}
        SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '10 seconds' FROM generate_series(1, 150000) g;`);
    const relation = `public.${table}`;

    // Act
    const outcome = await inLockedTransaction(db, relation, async (client) => {
      const pages = await client.query<{ n: string }>(
        `SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::text AS n`,
        [relation],
      );
      const ops = new PartitionOperations(client, { schema: 'public', table });
      const estimate = await ops.estimateRows({ schema: 'public', name: table }, 'created_at');
      return { pages: Number(pages.rows[0]?.n), estimate, read: await reads(client, relation) };
    });

    // Assess: close to the rows, from at most ~300 of the pages.
    expect(outcome.pages).toBeGreaterThan(600);
    expect(outcome.estimate.estimated).toBe(true);
    expect(Math.abs(outcome.estimate.rows / 150_000 - 1)).toBeLessThan(0.02);
    expect(outcome.read.blocks).toBeLessThanOrEqual(320);
  });
});
