/**
 * Maintain end to end: the synthesized state machine run locally with the real handlers against a real
 * PostgreSQL. What a user relies on: a bloated table is vacuumed and the ledger shows its figures before and
 * after; a bloated index is rebuilt concurrently while another session keeps reading and writing through it;
 * statistics are analyzed only when stale; a dry run changes and records nothing; leftovers of interrupted
 * rebuilds are reported, never touched; a table it cannot find stops the run before anything runs.
 */
import type pg from 'pg';
import { testConfig } from '../support/archive.ts';
import { migrateLedger } from '../support/database.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';
import { changeAndPublish, type MaintenanceLedgerRow, maintenanceLedgerOf } from '../support/maintain.ts';

type LedgerRow = MaintenanceLedgerRow;

function maintainConfig(name: string, maintain: { tables: string[] } & Record<string, unknown>) {
  return testConfig([{ name, action: 'maintain', maintain: { reindex: 'concurrently', ...maintain } }]);
}

const ledgerOf = maintenanceLedgerOf;

async function tableStats(pool: pg.Pool, schema: string, table: string) {
  const { rows } = await pool.query<{
    dead: string;
    live: string;
    last_vacuum: string | null;
    last_analyze: string | null;
  }>(
    `SELECT n_dead_tup::text AS dead, n_live_tup::text AS live, last_vacuum::text, last_analyze::text
       FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2`,
    [schema, table],
  );
  return rows[0];
}

async function waitForDeadTuples(pool: pg.Pool, schema: string, table: string, atLeast: number) {
  for (let i = 0; i < 100; i++) {
    if (Number((await tableStats(pool, schema, table))?.dead ?? 0) >= atLeast) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${schema}.${table}: statistics never showed ${atLeast} dead tuples`);
}

/** 200 000 rows, autovacuum off; 90 % deleted (every row past 150 000 and 9 in 10 before): bloat on purpose. */
async function seedBloatedTable(pool: pg.Pool, schema: string, table = 'events') {
  const qualified = `"${schema}"."${table}"`;
  await pool.query(`
    CREATE SCHEMA "${schema}";
    CREATE TABLE ${qualified} (id bigint PRIMARY KEY, payload text NOT NULL) WITH (autovacuum_enabled = off);
    INSERT INTO ${qualified} SELECT g, md5(g::text) FROM generate_series(1, 200000) g;
    ANALYZE ${qualified};`);
  await changeAndPublish(pool, `DELETE FROM ${qualified} WHERE id % 10 <> 0 OR id > 150000`);
  await waitForDeadTuples(pool, schema, table, 185_000);
}

beforeAll(async ({ database }) => {
  await migrateLedger(database);
});

describe('maintain run', () => {
  it('vacuums a bloated table and records the estimate before and after, the dead tuples gone', async ({
    database,
    runPolicy,
  }) => {
    // Prepare
    await seedBloatedTable(database.pool, 'bloat_stats');

    // Act
    const result = await runPolicy(
      maintainConfig('vacuum-stats', { tables: ['bloat_stats.*'], reindex: 'skip' }),
      'vacuum-stats',
    );

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.status).toBe('succeeded');
    const rows = await ledgerOf(database.pool, result.summary?.runId);
    expect(rows).toHaveLength(1);
    const vacuum = rows[0] as LedgerRow;
    expect(vacuum).toMatchObject({
      table_name: '"bloat_stats"."events"',
      index_name: null,
      statement: 'vacuum',
      outcome: 'done',
      estimate_method: 'statistics',
      dead_tuples_after: '0',
      error: null,
    });
    expect(vacuum.reason).toMatch(
      /% dead tuples \(pg_stat_user_tables\) at or above maxTableBloatPercent 20; [\d.]+ % bloat \(estimated from statistics\)$/,
    );
    expect(Number(vacuum.bloat_percent_before)).toBeGreaterThan(80);
    expect(Number(vacuum.dead_tuples_before)).toBeGreaterThanOrEqual(185_000);
    // The empty pages at the end went back to the OS; the sparse ones before them stay (reusable, not returned).
    expect(Number(vacuum.size_bytes_after)).toBeLessThan(Number(vacuum.size_bytes_before));
    expect(Number(vacuum.bloat_percent_after)).toBeLessThan(Number(vacuum.bloat_percent_before));
    const stats = await tableStats(database.pool, 'bloat_stats', 'events');
    expect(stats?.dead).toBe('0');
    expect(stats?.last_vacuum).not.toBeNull();
    expect(result.summary?.rows).toBe(1);
  });

  it('rebuilds a bloated index concurrently while another session reads and writes through it', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: mixed case and spaces in every name.
    const table = '"Reindex Me"."Big Table"';
    await database.pool.query(`
      CREATE SCHEMA "Reindex Me";
      CREATE TABLE ${table} (id bigint PRIMARY KEY, k bigint NOT NULL, note text)
        WITH (autovacuum_enabled = off);
      CREATE INDEX "K Index" ON ${table} (k);
      INSERT INTO ${table} SELECT g, g, 'n' || g FROM generate_series(1, 300000) g;
      ANALYZE ${table};`);
    await changeAndPublish(database.pool, `DELETE FROM ${table} WHERE id % 5 <> 0`);
    await changeAndPublish(database.pool, `VACUUM (ANALYZE) ${table}`);
    const sizeOf = async (index: string) =>
      Number(
        (
          await database.pool.query<{ size: string }>(`SELECT pg_relation_size($1::regclass)::text AS size`, [
            index,
          ])
        ).rows[0]?.size,
      );
    const sizeBefore = await sizeOf('"Reindex Me"."K Index"');
    // The other session: insert a row, then find it through the index, over and over until the run ends.
    const session = await database.pool.connect();
    await session.query('SET enable_seqscan = off; SET enable_bitmapscan = off');
    // A third session watches for the rebuilds (pg_stat_progress_create_index), to count what the other did meanwhile.
    const watcher = await database.pool.connect();
    let stop = false;
    let rebuilding = false;
    let written = 0;
    let writtenWhileRebuilding = 0;
    const errors: unknown[] = [];
    const traffic = (async () => {
      while (!stop) {
        try {
          const k = 1_000_000 + written;
          const during = rebuilding;
          await session.query(`INSERT INTO ${table} (id, k) VALUES ($1, $1)`, [k]);
          const { rowCount } = await session.query(`SELECT id FROM ${table} WHERE k = $1`, [k]);
          if (rowCount !== 1) errors.push(new Error(`row ${k} not found through the index`));
          written += 1;
          if (during && rebuilding) writtenWhileRebuilding += 1;
        } catch (error) {
          errors.push(error);
        }
      }
    })();
    const watching = (async () => {
      while (!stop) {
        const { rowCount } = await watcher.query(
          `SELECT 1 FROM pg_stat_progress_create_index
            WHERE relid = $1::regclass AND command = 'REINDEX CONCURRENTLY'`,
          [table],
        );
        rebuilding = (rowCount ?? 0) > 0;
      }
    })();

    // Act
    let result: Awaited<ReturnType<typeof runPolicy>>;
    try {
      result = await runPolicy(
        maintainConfig('reindex', { tables: ['"Reindex Me"."Big Table"'], minRelationBytes: 0 }),
        'reindex',
      );
    } finally {
      stop = true;
      await Promise.all([traffic, watching]);
      session.release();
      watcher.release();
    }

    // Assess
    expect(result.failure).toBeUndefined();
    expect(errors).toEqual([]);
    expect(writtenWhileRebuilding).toBeGreaterThan(0);
    const rows = await ledgerOf(database.pool, result.summary?.runId);
    const reindexed = rows.filter((r) => r.statement === 'reindex');
    expect(reindexed.map((r) => [r.index_name, r.outcome])).toEqual([
      ['"Big Table_pkey"', 'done'],
      ['"K Index"', 'done'],
    ]);
    const kIndex = reindexed[1] as LedgerRow;
    expect(Number(kIndex.bloat_percent_before)).toBeGreaterThan(30);
    expect(Number(kIndex.size_bytes_after)).toBeLessThan(Number(kIndex.size_bytes_before) / 2);
    expect(Number(kIndex.bloat_percent_after)).toBeLessThan(30);
    // Same name, valid, smaller, and it still finds every row the other session wrote.
    const { rows: indexes } = await database.pool.query<{ name: string; valid: boolean }>(
      `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = $1::regclass ORDER BY 1`,
      [table],
    );
    expect(indexes).toEqual([
      { name: 'Big Table_pkey', valid: true },
      { name: 'K Index', valid: true },
    ]);
    expect(await sizeOf('"Reindex Me"."K Index"')).toBeLessThan(sizeBefore / 2);
    const client = await database.pool.connect();
    try {
      await client.query('SET enable_seqscan = off; SET enable_bitmapscan = off');
      const { rows: found } = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM ${table} WHERE k >= 1000000`,
      );
      expect(Number(found[0]?.n)).toBe(written);
    } finally {
      client.release();
    }
  });

  it('analyzes only statistics that are stale or much changed', async ({ database, runPolicy }) => {
    // Prepare: one table analyzed and untouched, one analyzed then half updated, one never analyzed.
    await changeAndPublish(
      database.pool,
      `
      CREATE SCHEMA stale;
      CREATE TABLE stale.fresh (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
      CREATE TABLE stale.changed (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
      CREATE TABLE stale.never (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
      INSERT INTO stale.fresh SELECT g, g FROM generate_series(1, 1000) g;
      INSERT INTO stale.changed SELECT g, g FROM generate_series(1, 1000) g;`,
    );
    // ANALYZE in a transaction of its own: one that also inserted counts its rows as changed after it.
    await changeAndPublish(database.pool, 'ANALYZE stale.fresh');
    await changeAndPublish(database.pool, 'ANALYZE stale.changed');
    await changeAndPublish(
      database.pool,
      'INSERT INTO stale.never SELECT g, g FROM generate_series(1, 1000) g',
    );
    await changeAndPublish(database.pool, 'UPDATE stale.changed SET v = v + 1 WHERE id <= 500');
    const freshBefore = await tableStats(database.pool, 'stale', 'fresh');
    const config = (analyzeAfterDays: number) =>
      maintainConfig('analyze', { tables: ['stale.*'], analyzeAfterDays });

    // Act
    const first = await runPolicy(config(7), 'analyze');
    const second = await runPolicy(config(7), 'analyze');
    const freshAfter = await tableStats(database.pool, 'stale', 'fresh');
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const aged = await runPolicy(config(0.00001), 'analyze');

    // Assess
    const analyzed = async (run: typeof first) =>
      (await ledgerOf(database.pool, run.summary?.runId)).map((r) => [r.table_name, r.statement, r.reason]);
    expect(await analyzed(first)).toEqual([
      [
        '"stale"."changed"',
        'analyze',
        expect.stringMatching(/^50\.0 % of rows changed since the last ANALYZE/),
      ],
      ['"stale"."never"', 'analyze', 'never analyzed'],
    ]);
    expect(freshAfter?.last_analyze).toBe(freshBefore?.last_analyze);
    expect(await analyzed(second)).toEqual([]);
    expect(second.summary?.status).toBe('succeeded');
    expect((await analyzed(aged)).map(([table, statement]) => [table, statement])).toEqual([
      ['"stale"."changed"', 'analyze'],
      ['"stale"."fresh"', 'analyze'],
      ['"stale"."never"', 'analyze'],
    ]);
    expect(await analyzed(aged)).toEqual(
      expect.arrayContaining([['"stale"."fresh"', 'analyze', expect.stringMatching(/days old/)]]),
    );
  });

  it('works down its list across Chunk steps when a step has time for one statement only', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: three tables never analyzed.
    await changeAndPublish(
      database.pool,
      ['a', 'b', 'c']
        .map(
          (t) => `CREATE TABLE IF NOT EXISTS steps_${t} (id int) WITH (autovacuum_enabled = off);
                     INSERT INTO steps_${t} SELECT generate_series(1, 10);`,
        )
        .join('\n'),
    );

    // Act: 19 s a step leaves less than the 15 s margin + 5 s a second statement needs.
    const result = await runPolicy(
      maintainConfig('steps', { tables: ['steps_a', 'public.steps_b', '"public"."steps_c"'] }),
      'steps',
      { chunkBudgetMs: 19_000 },
    );

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(3);
    expect(
      (await ledgerOf(database.pool, result.summary?.runId)).map((r) => [r.table_name, r.statement]),
    ).toEqual([
      ['"public"."steps_a"', 'analyze'],
      ['"public"."steps_b"', 'analyze'],
      ['"public"."steps_c"', 'analyze'],
    ]);
  });

  it('maintains a partitioned table and its partitions, minus what exclude names', async ({
    database,
    runPolicy,
  }) => {
    // Prepare
    await changeAndPublish(
      database.pool,
      `CREATE SCHEMA "Sales";
       CREATE TABLE "Sales"."Orders" (id int, at date) PARTITION BY RANGE (at);
       CREATE TABLE "Sales"."Orders 2025" PARTITION OF "Sales"."Orders" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
       CREATE TABLE "Sales"."Orders 2026" PARTITION OF "Sales"."Orders" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
       CREATE TABLE "Sales"."Orders old" PARTITION OF "Sales"."Orders" FOR VALUES FROM ('2000-01-01') TO ('2025-01-01');
       INSERT INTO "Sales"."Orders" SELECT g, date '2024-12-31' + g FROM generate_series(1, 500) g;`,
    );
    const config = maintainConfig('partitions', {
      tables: ['"Sales"."Orders"'],
      exclude: ['"Sales"."Orders old"'],
    });
    const ledgerLines = async (run: Awaited<ReturnType<typeof runPolicy>>) =>
      (await ledgerOf(database.pool, run.summary?.runId)).map((r) => [r.table_name, r.statement, r.reason]);

    // Act
    const first = await runPolicy(config, 'partitions');
    await changeAndPublish(
      database.pool,
      `UPDATE "Sales"."Orders" SET id = id + 1 WHERE at >= '2026-01-01' OR at < '2025-01-01'`,
    );
    const second = await runPolicy(config, 'partitions');

    // Assess: the parent first (autovacuum never analyzes a partitioned table; its ANALYZE samples every
    // partition and analyzes each, so none is due after it), then only the changed partition not excluded.
    expect(first.failure).toBeUndefined();
    expect(await ledgerLines(first)).toEqual([['"Sales"."Orders"', 'analyze', 'never analyzed']]);
    expect(await ledgerLines(second)).toEqual([
      ['"Sales"."Orders 2026"', 'analyze', expect.stringMatching(/% of rows changed since the last ANALYZE/)],
    ]);
  });

  it('plans without changing or recording anything', async ({ database, runPolicy }) => {
    // Prepare
    await seedBloatedTable(database.pool, 'planned');
    const counts = async () =>
      (
        await database.pool.query<{ runs: string; actions: string }>(
          `SELECT (SELECT count(*) FROM lifecycle.runs)::text AS runs,
                  (SELECT count(*) FROM lifecycle.maintenance_actions)::text AS actions`,
        )
      ).rows[0];
    const before = await counts();
    const statsBefore = await tableStats(database.pool, 'planned', 'events');

    // Act
    const result = await runPolicy(maintainConfig('plan', { tables: ['planned.*'] }), 'plan', {
      dryRun: true,
    });

    // Assess
    expect(result.status).toBe('dry_run');
    const plan = result.summary?.plan;
    expect(plan?.refusals).toEqual([]);
    expect(plan?.maintenance).toEqual([
      expect.objectContaining({
        table: '"planned"."events"',
        statement: 'vacuum',
        method: 'statistics',
        reason: expect.stringMatching(/above maxTableBloatPercent 20/),
        bloatPercent: expect.any(Number),
        deadTuples: expect.any(Number),
      }),
      expect.objectContaining({ table: '"planned"."events"', index: '"events_pkey"' }),
    ]);
    expect(plan?.eligibleRows).toBeGreaterThanOrEqual(1);
    expect(await counts()).toEqual(before);
    expect(await tableStats(database.pool, 'planned', 'events')).toEqual(statsBefore);
  });

  it('reports a leftover invalid _ccnew index and leaves it alone', async ({ database, runPolicy }) => {
    // Prepare: what a REINDEX CONCURRENTLY cancelled midway leaves, made with a failing unique build.
    await changeAndPublish(
      database.pool,
      `
      CREATE SCHEMA leftovers;
      CREATE TABLE leftovers.t (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
      INSERT INTO leftovers.t SELECT g, g % 10 FROM generate_series(1, 1000) g;`,
    );
    await changeAndPublish(database.pool, 'ANALYZE leftovers.t');
    await expect(
      database.pool.query('CREATE UNIQUE INDEX CONCURRENTLY t_v_idx_ccnew ON leftovers.t (v)'),
    ).rejects.toThrow();

    // Act
    const result = await runPolicy(maintainConfig('leftovers', { tables: ['leftovers.t'] }), 'leftovers');
    const plan = await runPolicy(maintainConfig('leftovers', { tables: ['leftovers.t'] }), 'leftovers', {
      dryRun: true,
    });

    // Assess
    expect(result.summary?.status).toBe('succeeded');
    expect(await ledgerOf(database.pool, result.summary?.runId)).toEqual([
      expect.objectContaining({
        table_name: '"leftovers"."t"',
        index_name: '"t_v_idx_ccnew"',
        statement: 'skip',
        outcome: 'skipped',
        reason: expect.stringContaining(
          'invalid, named like the leftover of an interrupted REINDEX CONCURRENTLY',
        ),
      }),
    ]);
    const { rows } = await database.pool.query(
      `SELECT 1 FROM pg_class WHERE relname = 't_v_idx_ccnew' AND relnamespace = 'leftovers'::regnamespace`,
    );
    expect(rows).toHaveLength(1);
    expect(plan.summary?.plan?.warnings).toEqual([
      expect.stringMatching(
        /^"leftovers"."t" index "t_v_idx_ccnew" skipped: invalid, named like the leftover/,
      ),
    ]);
  });

  it('refuses a table that does not exist, naming the field, before anything runs', async ({
    database,
    runPolicy,
  }) => {
    // Prepare
    await database.pool.query('CREATE VIEW public.a_view AS SELECT 1 AS one');

    // Act
    const result = await runPolicy(
      maintainConfig('unknown', { tables: ['public.nope', 'public.a_view'] }),
      'unknown',
    );

    // Assess
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('CatalogError');
    expect(result.failure?.cause).toBe(
      'maintain.tables[0] public.nope: no such table; maintain.tables[1] public.a_view is a view: maintain works on tables',
    );
    expect(result.failure?.runId).toBeUndefined();
  });

  it('reads exact figures with pgstattuple when it is installed', async ({ database, runPolicy }) => {
    // Prepare
    await seedBloatedTable(database.pool, 'bloat_exact');
    await database.pool.query('CREATE EXTENSION pgstattuple');
    try {
      // Act
      const result = await runPolicy(
        maintainConfig('vacuum-exact', { tables: ['bloat_exact.*'], minRelationBytes: 0 }),
        'vacuum-exact',
      );

      // Assess
      expect(result.failure).toBeUndefined();
      const [vacuum, reindex, ...more] = await ledgerOf(database.pool, result.summary?.runId);
      expect(vacuum).toMatchObject({ statement: 'vacuum', outcome: 'done', estimate_method: 'pgstattuple' });
      expect(vacuum?.reason).toMatch(
        /% dead tuples \(pgstattuple\) at or above maxTableBloatPercent 20; [\d.]+ % bloat \(pgstattuple\)$/,
      );
      expect(Number(vacuum?.bloat_percent_before)).toBeGreaterThan(70);
      expect(vacuum?.dead_tuples_after).toBe('0');
      // The primary key, read with pgstatindex after the VACUUM emptied its leaves, then rebuilt.
      expect(reindex).toMatchObject({
        index_name: '"events_pkey"',
        statement: 'reindex',
        outcome: 'done',
        estimate_method: 'pgstattuple',
      });
      expect(Number(reindex?.bloat_percent_before)).toBeGreaterThan(50);
      expect(Number(reindex?.bloat_percent_after)).toBeLessThan(20);
      expect(Number(reindex?.size_bytes_after)).toBeLessThan(Number(reindex?.size_bytes_before));
      expect(more).toEqual([]);
    } finally {
      await database.pool.query('DROP EXTENSION pgstattuple');
    }
  });
});
