/**
 * Parallel workers against what a hostile review tried (tmp-exp/review-parallel, 2026-12-03): every time
 * column kind with -infinity, BC dates, NULL and sub-second times; a DEFAULT partition; LIST partitions; a
 * partitioned table whose partitions are not retired (the ranges stay balanced); partition units while the
 * other workers' uploads are slow (they wait for range 0); a parallel run on a machine without the Workers map
 * (a named error, not an endless gather).
 */
import type pg from 'pg';
import type { ObjectStore } from '../../functions/adapters/archive-store.ts';
import { S3ObjectStore } from '../../functions/adapters/archive-store.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { eventArchivePolicy, it } from '../support/event-archive.ts';
import { describe, expect, NOW } from '../support/fixture.ts';
import {
  idsWhere,
  PARTITION_CUTOFF,
  partitionedTablePolicy,
  seedPartitioned,
} from '../support/partitioned.ts';

async function rangesOf(pool: pg.Pool, runId: string | undefined) {
  const { rows } = await pool.query<{ range_no: number; rows: number; done: boolean }>(
    'SELECT range_no, rows::int, done FROM lifecycle.run_ranges WHERE run_id = $1 ORDER BY range_no',
    [runId],
  );
  return rows;
}

/** The cutoff as each time column kind compares it (chunk-sql.ts cutoffValue). */
const KINDS = [
  { kind: 'timestamptz', cutoffAs: '$1::timestamptz' },
  { kind: 'timestamp', cutoffAs: `($1::timestamptz AT TIME ZONE 'UTC')` },
  { kind: 'date', cutoffAs: `($1::timestamptz AT TIME ZONE 'UTC')::date` },
] as const;

/** An S3 store whose PUT takes `ms` longer: the chunk's transaction stays open meanwhile. */
function slowStore(inner: ObjectStore, ms: number): ObjectStore {
  return {
    get bucket() {
      return inner.bucket;
    },
    checkBucket: (check) => inner.checkBucket(check),
    put: async (key, body, sha256, metadata) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      await inner.put(key, body, sha256, metadata);
    },
    verify: (object, mode) => inner.verify(object, mode),
    delete: (key) => inner.delete(key),
    deleteEveryVersion: (key) => inner.deleteEveryVersion(key),
  };
}

describe('parallel workers at the edges', () => {
  for (const { kind, cutoffAs } of KINDS) {
    it(`${kind} column: exactly the rows a single worker would purge, across 5 ranges`, async ({
      services,
    }) => {
      // Prepare: a row every 7 h 13 min 17.123457 s over ~3 years, plus -infinity, NULL, a BC date, infinity.
      const { db } = services;
      const table = `edges_${kind}`;
      await db.pool.query(`DROP TABLE IF EXISTS public.${table}`);
      await db.pool.query(`CREATE TABLE public.${table} (id bigint PRIMARY KEY, t ${kind})`);
      await db.pool.query(`CREATE INDEX ON public.${table} (t)`);
      await db.pool.query(
        `INSERT INTO public.${table}
         SELECT g, ($1::timestamptz - g * interval '7 hours 13 minutes 17.123457 seconds')::${kind}
           FROM generate_series(1, 3600) g`,
        [NOW.toISOString()],
      );
      await db.pool.query(
        `INSERT INTO public.${table} VALUES (100001, '-infinity'), (100002, NULL), (100003, '0044-03-15 BC'), (100004, 'infinity')`,
      );
      const cutoff = '2025-11-23T12:00:00.000000Z'; // NOW less P1Y
      const keep = await db.pool.query<{ id: string }>(
        `SELECT id::text FROM public.${table} WHERE NOT (t < ${cutoffAs}) OR t IS NULL ORDER BY id`,
        [cutoff],
      );
      const config = testConfig([
        {
          name: `edges-${kind}`,
          table: `public.${table}`,
          action: 'purge',
          timeColumn: 't',
          retention: 'P1Y',
          parallelism: 5,
          chunking: { initialRows: 40, minRows: 40, maxRows: 40 },
        } as LifecycleConfigInput['policies'][number],
      ]);

      // Act
      const result = await services.runPolicy(config, `edges-${kind}`, { chunkBudgetMs: 1_500 });

      // Assess
      expect(result.failure).toBeUndefined();
      expect(result.summary?.cutoff).toBe(cutoff);
      const left = await db.pool.query<{ id: string }>(`SELECT id::text FROM public.${table} ORDER BY id`);
      expect(left.rows).toEqual(keep.rows);
      const ranges = await rangesOf(db.pool, result.summary?.runId);
      expect(ranges.length).toBe(5);
      expect(ranges.reduce((sum, r) => sum + r.rows, 0)).toBe(result.summary?.rows);
    });
  }

  it('a DEFAULT partition beside retirable ones: exactly the rows past retention', async ({ services }) => {
    // Prepare
    const { db } = services;
    await seedPartitioned(db.pool, 'edges_default', {
      first: '2026-01-01',
      last: '2026-10-01',
      from: '2025-06-01',
      withDefault: true,
    });
    const kept = await idsWhere(db, 'edges_default', `created_at >= '${PARTITION_CUTOFF}'`);
    const config = testConfig([
      partitionedTablePolicy('purge', 'edges-default', 'edges_default', { parallelism: 4 }),
    ]);

    // Act
    const result = await services.runPolicy(config, 'edges-default', { chunkBudgetMs: 1_500 });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(await idsWhere(db, 'edges_default')).toEqual(kept);
  });

  it('a LIST-partitioned table: exactly the rows past retention', async ({ services }) => {
    // Prepare
    const { db } = services;
    await db.pool.query('DROP TABLE IF EXISTS public.edges_list');
    await db.pool.query(
      `CREATE TABLE public.edges_list (id bigint, region int, created_at timestamptz NOT NULL,
         PRIMARY KEY (id, region)) PARTITION BY LIST (region)`,
    );
    await db.pool.query(
      'CREATE TABLE public.edges_list_a PARTITION OF public.edges_list FOR VALUES IN (0, 1)',
    );
    await db.pool.query('CREATE TABLE public.edges_list_b PARTITION OF public.edges_list FOR VALUES IN (2)');
    await db.pool.query('CREATE INDEX ON public.edges_list (created_at)');
    await db.pool.query(
      `INSERT INTO public.edges_list
       SELECT g, g % 3, $1::timestamptz - g * interval '5 hours' FROM generate_series(1, 3000) g`,
      [NOW.toISOString()],
    );
    const config = testConfig([
      partitionedTablePolicy('purge', 'edges-list', 'edges_list', { parallelism: 3 }),
    ]);

    // Act
    const result = await services.runPolicy(config, 'edges-list', { chunkBudgetMs: 1_500 });

    // Assess
    expect(result.failure).toBeUndefined();
    const { rows } = await db.pool.query<{ eligible: number; total: number }>(
      `SELECT count(*) FILTER (WHERE created_at < $1::timestamptz)::int AS eligible, count(*)::int AS total
         FROM public.edges_list`,
      [result.summary?.cutoff],
    );
    expect(rows[0]).toEqual({ eligible: 0, total: 3000 - (result.summary?.rows ?? 0) });
  });

  it('keeps the ranges balanced on a partitioned table whose partitions are not retired (a filter)', async ({
    services,
  }) => {
    // Prepare
    const { db } = services;
    await seedPartitioned(db.pool, 'edges_unretired', {
      first: '2025-10-01',
      last: '2027-01-01',
      from: '2025-10-01',
    });
    const eligible = await idsWhere(
      db,
      'edges_unretired',
      `created_at < '${PARTITION_CUTOFF}' AND id % 2 = 0`,
    );
    const config = testConfig([
      partitionedTablePolicy('purge', 'edges-unretired', 'edges_unretired', {
        parallelism: 4,
        filter: 'id % 2 = 0',
      }),
    ]);

    // Act
    const result = await services.runPolicy(config, 'edges-unretired', { chunkBudgetMs: 1_100 });

    // Assess: 4 ranges, none with half of the rows (a fair share is a quarter).
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(eligible.length);
    const ranges = await rangesOf(db.pool, result.summary?.runId);
    expect(ranges).toHaveLength(4);
    for (const range of ranges)
      expect(range.rows, `range ${range.range_no}`).toBeLessThan(eligible.length / 2);
  });

  it('retires range 0’s partitions before the other workers open their (slow) chunks', async ({
    services,
  }) => {
    // Prepare: 5 retirable months; uploads slowed so that a chunk's transaction stays open 400 ms; a DETACH
    // would wait for such transactions and give up after 300 ms.
    const { db, s3, bucket } = services;
    await seedPartitioned(db.pool, 'edges_detach', {
      first: '2026-03-01',
      last: '2027-01-01',
      from: '2026-03-01',
    });
    const eligible = await idsWhere(db, 'edges_detach', `created_at < '${PARTITION_CUTOFF}'`);
    const config = testConfig([
      partitionedTablePolicy('archive', 'edges-detach', 'edges_detach', {
        parallelism: 3,
        chunking: { initialRows: 20, minRows: 20, maxRows: 20, lockTimeoutMs: 300 },
      }),
    ]);

    // Act
    const complaints: string[] = [];
    const complain = (message: string, fields?: Record<string, unknown>) =>
      complaints.push(`${message} ${JSON.stringify(fields ?? {})}`);
    const result = await services.runPolicy(config, 'edges-detach', {
      chunkBudgetMs: 30_000,
      deps: {
        store: slowStore(new S3ObjectStore(s3, bucket), 400),
        log: { info: () => undefined, warn: complain, error: complain },
      },
    });

    // Assess: no step failed on a lock and rolled a chunk back (that chunk's upload would be an orphan).
    expect(result.failure).toBeUndefined();
    expect(complaints).toEqual([]);
    expect(result.summary?.orphansRemoved).toBe(0);
    expect(result.summary?.rows).toBe(eligible.length);
    const units = await db.pool.query(
      `SELECT 1 FROM lifecycle.partition_units WHERE finished_by = $1 AND state = 'dropped'`,
      [result.summary?.runId],
    );
    expect(units.rowCount).toBe(5);
  });

  it('fails with a named error on a machine without the Workers map, instead of gathering forever', async ({
    events,
    services,
  }) => {
    // Prepare: the file's definition was synthesized for a policy without parallelism.
    const prepared = await events.prepare('edges-skew', { rows: 500 });
    const config = testConfig([
      eventArchivePolicy(prepared.scope.policy, prepared.table, { parallelism: 3 }),
    ]);

    // Act
    const result = await services.runPolicy(config, 'edges-skew', {
      definition: services.definition,
      chunkBudgetMs: 1_000,
    });

    // Assess: the first gather sees that no worker ran; nothing was archived.
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('InvalidPayloadError');
    expect(result.failure?.cause).toMatch(/no worker ran/);
    expect(result.chunkInvocations).toBe(1);
    expect(await idsWhere(services.db, prepared.table)).toHaveLength(prepared.before.length);
  });
});
