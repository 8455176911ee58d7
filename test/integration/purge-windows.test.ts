/**
 * Purge by time windows (functions/actions/purge/chunk.ts) on shapes the windows must not get wrong: more rows
 * sharing one time value than a chunk takes (keyset chunks inside it), `date` time columns without a
 * primary key (ctid order), and rows other sessions hold for the whole run (skipped, never waited on).
 */

import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { type runLocally, testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';
import { capturingLogger, chunkSelections } from '../support/subject-archives.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

const count = async (db: TestDatabase, sql: string, params: unknown[] = []) =>
  Number((await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${sql}`, params)).rows[0]?.n);

interface ChunkRow {
  rows: number;
  min_time: string | null;
  max_time: string | null;
  min_key: string[] | null;
  max_key: string[] | null;
}

async function chunksOf(db: TestDatabase, runId: string | undefined): Promise<ChunkRow[]> {
  const { rows } = await db.pool.query<ChunkRow>(
    `SELECT rows, min_time, max_time, min_key, max_key FROM lifecycle.chunks WHERE run_id = $1 ORDER BY seq`,
    [runId],
  );
  return rows;
}

describe('purge windows', () => {
  it('purges more rows sharing one time value than a chunk takes, with exact key ranges per chunk', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 1 000 rows at one instant, 400 rows one per minute before it, 300 recent rows (kept).
    await db.pool.query(`DROP TABLE IF EXISTS public.bulk_import`);
    await db.pool.query(`
      CREATE TABLE public.bulk_import (id bigint PRIMARY KEY, imported_at timestamptz NOT NULL, body text);
      CREATE INDEX ON public.bulk_import (imported_at);`);
    await db.pool.query(
      `INSERT INTO public.bulk_import
       SELECT g, $1::timestamptz - interval '200 days', md5(g::text) FROM generate_series(1, 1000) g
       UNION ALL
       SELECT 1000 + g, $1::timestamptz - interval '300 days' + g * interval '1 minute', 'older'
         FROM generate_series(1, 400) g
       UNION ALL
       SELECT 2000 + g, $1::timestamptz - g * interval '1 hour', 'recent' FROM generate_series(1, 300) g`,
      [NOW.toISOString()],
    );
    const policy = {
      name: 'bulk-purge',
      action: 'purge',
      table: 'public.bulk_import',
      timeColumn: 'imported_at',
      retention: 'P90D',
      chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
    } as PolicyInput;

    // Act
    const result = await runPolicy(testConfig([policy]), 'bulk-purge');

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(1400);
    expect(await count(db, 'public.bulk_import')).toBe(300);
    expect(await count(db, `public.bulk_import WHERE body <> 'recent'`)).toBe(0);
    const chunks = await chunksOf(db, result.summary?.runId);
    expect(chunks.reduce((sum, c) => sum + c.rows, 0)).toBe(1400);
    expect(chunks.every((c) => c.rows <= 100)).toBe(true);
    // The 1 000 rows of one instant went in keyset chunks of 100, in key order: 1-100, 101-200, … (sorted
    // as numbers: as text, the first chunk's last key would read 99).
    const sameInstant = chunks.filter((c) => c.min_time === c.max_time && c.rows === 100);
    expect(sameInstant.map((c) => [c.min_key?.[0], c.max_key?.[0]])).toEqual(
      Array.from({ length: 10 }, (_, i) => [String(i * 100 + 1), String(i * 100 + 100)]),
    );
    // Chunks follow each other in time: no overlap, nothing taken twice.
    for (let i = 1; i < chunks.length; i++) {
      const previous = chunks[i - 1] as ChunkRow;
      const current = chunks[i] as ChunkRow;
      const before = await db.pool.query<{ ok: boolean }>(
        `SELECT ($1::timestamptz < $2::timestamptz OR ($1::timestamptz = $2::timestamptz AND $3::bigint < $4::bigint)) AS ok`,
        [previous.max_time, current.min_time, previous.max_key?.[0], current.min_key?.[0]],
      );
      expect(before.rows[0]?.ok).toBe(true);
    }
  });

  it('purges a date-keyed table without a primary key, many rows per day, honouring the filter', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 20 days × 150 rows per day; every third row is pinned (kept by the filter).
    await db.pool.query(`DROP TABLE IF EXISTS public."Daily Totals"`);
    await db.pool.query(`
      CREATE TABLE public."Daily Totals" ("Day" date NOT NULL, amount numeric(12,2), pinned boolean NOT NULL);
      CREATE INDEX ON public."Daily Totals" ("Day");`);
    await db.pool.query(
      `INSERT INTO public."Daily Totals"
       SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date - 95 - d, g * 1.25, g % 3 = 0
         FROM generate_series(0, 19) d, generate_series(1, 150) g`,
      [NOW.toISOString()],
    );
    // One recent day stays whole.
    await db.pool.query(
      `INSERT INTO public."Daily Totals" SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date - 1, 1, false FROM generate_series(1, 50)`,
      [NOW.toISOString()],
    );
    const policy = {
      name: 'daily-purge',
      action: 'purge',
      table: 'public."Daily Totals"',
      timeColumn: 'Day',
      retention: 'P90D',
      filter: 'NOT pinned',
      chunking: { initialRows: 64, minRows: 64, maxRows: 64 },
    } as PolicyInput;

    // Act
    const result = await runPolicy(testConfig([policy]), 'daily-purge');

    // Assess: 20 × 100 unpinned old rows gone; 20 × 50 pinned and the 50 recent rows stay.
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(2000);
    expect(await count(db, `public."Daily Totals" WHERE NOT pinned AND amount <> 1`)).toBe(0);
    expect(await count(db, `public."Daily Totals" WHERE pinned`)).toBe(1000);
    expect(await count(db, `public."Daily Totals" WHERE amount = 1`)).toBe(50);
    const chunks = await chunksOf(db, result.summary?.runId);
    expect(chunks.reduce((sum, c) => sum + c.rows, 0)).toBe(2000);
    expect(chunks.every((c) => c.rows <= 64)).toBe(true);
  });

  it('purges a hash-partitioned table without a key on a timestamp column, runs of equal times included', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 4 hash partitions; 600 rows share one old instant (more than a chunk), 900 older rows one per
    // minute, 200 recent rows; `kind = 'audit'` rows are kept by the filter.
    await db.pool.query(`DROP TABLE IF EXISTS public."Readings" CASCADE`);
    await db.pool.query(`
      CREATE TABLE public."Readings" ("Sensor" integer NOT NULL, "TakenAt" timestamp NOT NULL, kind text NOT NULL)
        PARTITION BY HASH ("Sensor");
      CREATE INDEX ON public."Readings" ("TakenAt");`);
    for (let i = 0; i < 4; i++) {
      await db.pool.query(
        `CREATE TABLE public."Readings_${i}" PARTITION OF public."Readings" FOR VALUES WITH (MODULUS 4, REMAINDER ${i})`,
      );
    }
    const local = `($1::timestamptz AT TIME ZONE 'UTC')`;
    await db.pool.query(
      `INSERT INTO public."Readings"
       SELECT g, ${local} - interval '120 days', CASE WHEN g % 10 = 0 THEN 'audit' ELSE 'sample' END
         FROM generate_series(1, 600) g
       UNION ALL
       SELECT g, ${local} - interval '200 days' + g * interval '1 minute', 'sample' FROM generate_series(1, 900) g
       UNION ALL
       SELECT g, ${local} - g * interval '1 hour', 'sample' FROM generate_series(1, 200) g`,
      [NOW.toISOString()],
    );
    const policy = {
      name: 'readings-purge',
      action: 'purge',
      table: 'public."Readings"',
      timeColumn: 'TakenAt',
      retention: 'P90D',
      filter: "kind <> 'audit'",
      partitions: { enabled: false },
      chunking: { initialRows: 150, minRows: 150, maxRows: 150 },
    } as PolicyInput;

    // Act
    const result = await runPolicy(testConfig([policy]), 'readings-purge');

    // Assess: 540 + 900 purged; the 60 audit rows and the 200 recent rows stay.
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(1440);
    expect(await count(db, `public."Readings"`)).toBe(260);
    expect(await count(db, `public."Readings" WHERE kind = 'audit'`)).toBe(60);
    const chunks = await chunksOf(db, result.summary?.runId);
    expect(chunks.reduce((sum, c) => sum + c.rows, 0)).toBe(1440);
    expect(chunks.every((c) => c.rows <= 150)).toBe(true);
  });

  it('purges tables named like the statements’ own aliases (bound, locked, deleted, first_row)', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: each table has 300 rows at one old instant (keyset chunks) and 300 distinct old times.
    const names = ['bound', 'locked', 'deleted', 'first_row'];
    for (const name of names) {
      await db.pool.query(`DROP TABLE IF EXISTS public.${name} CASCADE`);
      // "locked" is partitioned: its keyset chunks join the parent on (tableoid, ctid).
      await db.pool.query(
        name === 'locked'
          ? `CREATE TABLE public.locked (id integer NOT NULL, t timestamptz NOT NULL, PRIMARY KEY (id, t))
               PARTITION BY HASH (id);
             CREATE TABLE public.locked_0 PARTITION OF public.locked FOR VALUES WITH (MODULUS 2, REMAINDER 0);
             CREATE TABLE public.locked_1 PARTITION OF public.locked FOR VALUES WITH (MODULUS 2, REMAINDER 1);`
          : `CREATE TABLE public.${name} (id integer PRIMARY KEY, t timestamptz NOT NULL)`,
      );
      await db.pool.query(`CREATE INDEX ON public.${name} (t)`);
      await db.pool.query(
        `INSERT INTO public.${name}
         SELECT g, $1::timestamptz - interval '100 days' FROM generate_series(1, 300) g
         UNION ALL SELECT 300 + g, $1::timestamptz - interval '200 days' + g * interval '1 hour' FROM generate_series(1, 300) g
         UNION ALL SELECT 1000, $1::timestamptz`,
        [NOW.toISOString()],
      );
    }
    const policies = names.map(
      (name) =>
        ({
          name: `${name.replace('_', '-')}-purge`,
          action: 'purge',
          table: `public.${name}`,
          timeColumn: 't',
          retention: 'P30D',
          partitions: { enabled: false },
          // A filter that names its table (a dry run's plan and the run must both accept it).
          ...(name === 'deleted' ? { filter: 'deleted.id <> 7' } : {}),
          chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
        }) as PolicyInput,
    );
    const config = testConfig(policies);

    for (const policy of policies) {
      if (!('table' in policy)) throw new Error(`${policy.name} is not a purge`);
      const purged = policy.filter ? 599 : 600;
      // Act
      const plan = await runPolicy(config, policy.name, { dryRun: true });
      const result = await runPolicy(config, policy.name);

      // Assess
      expect(plan.failure, policy.name).toBeUndefined();
      expect(plan.summary?.eligibleRows, policy.name).toBe(purged);
      expect(result.failure, policy.name).toBeUndefined();
      expect(result.summary?.rows, policy.name).toBe(purged);
      expect(await count(db, policy.table), policy.name).toBe(601 - purged);
      // Window chunks of 100 hourly rows span time: their ranges come from the window's first and last rows.
      const chunks = await chunksOf(db, result.summary?.runId);
      expect(
        chunks.some((c) => c.min_time !== c.max_time),
        policy.name,
      ).toBe(true);
    }
  });

  it('grows chunks from the first one on: the pipelined next chunk is sized from this one’s DELETE', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await db.pool.query(`DROP TABLE IF EXISTS public.ticks`);
    await db.pool.query(`
      CREATE TABLE public.ticks (id integer PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.ticks (at);`);
    await db.pool.query(
      `INSERT INTO public.ticks SELECT g, $1::timestamptz - interval '100 days' - g * interval '1 second'
         FROM generate_series(1, 5000) g`,
      [NOW.toISOString()],
    );
    const policy = {
      name: 'ticks-purge',
      action: 'purge',
      table: 'public.ticks',
      timeColumn: 'at',
      retention: 'P30D',
      chunking: { initialRows: 100, minRows: 100 },
    } as PolicyInput;

    // Act
    const result = await runPolicy(testConfig([policy]), 'ticks-purge');

    // Assess: 100 rows take a few ms of a 250 ms target, so every next chunk doubles (not every other one).
    expect(result.summary?.rows).toBe(5000);
    const sizes = (await chunksOf(db, result.summary?.runId)).map((c) => c.rows);
    expect(sizes.slice(0, 4)).toEqual([100, 200, 400, 800]);
  });

  it('skips rows other sessions hold for the whole run and never waits on them', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 3 000 eligible rows; another session holds two of them (one among rows that share one
    // instant, one among distinct instants) from before the run until after it.
    await db.pool.query(`DROP TABLE IF EXISTS public.sessions`);
    await db.pool.query(`
      CREATE TABLE public.sessions (id integer PRIMARY KEY, last_seen timestamptz NOT NULL);
      CREATE INDEX ON public.sessions (last_seen);`);
    await db.pool.query(
      `INSERT INTO public.sessions
       SELECT g, $1::timestamptz - interval '100 days' - CASE WHEN g <= 500 THEN interval '0' ELSE g * interval '1 minute' END
         FROM generate_series(1, 3000) g`,
      [NOW.toISOString()],
    );
    const holder = await db.pool.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT id FROM public.sessions WHERE id IN (250, 1700) FOR UPDATE`);
    // A lock_timeout longer than the test's own timeout: waiting for the held rows would fail the test.
    const policy = {
      name: 'sessions-purge',
      action: 'purge',
      table: 'public.sessions',
      timeColumn: 'last_seen',
      retention: 'P30D',
      chunking: { initialRows: 200, minRows: 100, maxRows: 200, lockTimeoutMs: 60_000 },
    } as PolicyInput;

    // Act
    let result: Awaited<ReturnType<typeof runLocally>>;
    const log = capturingLogger();
    try {
      result = await runPolicy(testConfig([policy]), 'sessions-purge', { deps: { log } });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(2998);
    const left = await db.pool.query<{ id: number }>(`SELECT id FROM public.sessions ORDER BY id`);
    expect(left.rows.map((r) => r.id)).toEqual([250, 1700]);
    // The log says how: keyset slices through the 500 rows of one instant, then windows (probed, then predicted
    // from the last one's rows per second), turned to SKIP LOCKED at the held row.
    const selections = chunkSelections(log.lines);
    expect(new Set(selections)).toEqual(new Set(['keyset', 'window', 'predicted-window', 'skip-locked']));
  }, 20_000);
});
