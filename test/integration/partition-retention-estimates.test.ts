/**
 * Purge partition units under the default `partitions.count: "estimate"`: the estimate stays close to the rows
 * a partition holds when its statistics are stale (refilled in the pages a VACUUM left) or cannot be refreshed
 * (a role that may not ANALYZE it); and the no-row-at-or-after-the-cutoff check, proven from the partition's
 * bound, drops old partitions of every time kind without losing a row and still finds a NULL time the proof
 * cannot exclude.
 */
import pg from 'pg';
import { PartitionOperations } from '../../functions/adapters/partitions.ts';
import { describe, expect, it } from '../support/fixture.ts';
import {
  finishedUnits,
  PARTITION_CUTOFF,
  partitionsOf,
  runPartitionedTablePolicy,
  statisticsReported,
} from '../support/partitioned.ts';

describe('the default estimate of a partition whose statistics are stale', () => {
  it('a partition vacuumed nearly empty (pages kept by a live row at its end) then refilled', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare: January holds 50 000 rows, all but its last one deleted, VACUUMed (reltuples 1, relpages
    // kept: the live last row stops truncation), then 50 000 late rows written into the freed pages (a
    // backfill of old-dated events). Autovacuum off on it, as partition-retention-counts.test.ts does to
    // model statistics not yet refreshed; with it on, the same holds until the next autoanalyze.
    const table = 'refilled_events';
    await db.pool.query(`DROP TABLE IF EXISTS public.${table} CASCADE`);
    await db.pool.query(`
      CREATE TABLE public.${table} (id bigint NOT NULL, created_at timestamptz NOT NULL, payload text NOT NULL)
        PARTITION BY RANGE (created_at);
      CREATE TABLE public.${table}_2026_01 PARTITION OF public.${table}
        FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00') WITH (autovacuum_enabled = false);
      CREATE TABLE public.${table}_2026_11 PARTITION OF public.${table}
        FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00');
      INSERT INTO public.${table}
        SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '20 seconds', md5(g::text)
          FROM generate_series(1, 50000) g;
      DELETE FROM public.${table}_2026_01 WHERE id < 50000;`);
    await db.pool.query(`VACUUM public.${table}_2026_01`);
    await db.pool.query(`
      INSERT INTO public.${table}
        SELECT g, timestamptz '2026-01-02 00:00:00+00' + (g - 100000) * interval '20 seconds', md5(g::text)
          FROM generate_series(100001, 150000) g;
      INSERT INTO public.${table} VALUES (900001, timestamptz '2026-11-20 00:00:00+00', 'now');`);
    const { rows: held } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM public.${table}_2026_01`,
    );
    expect(Number(held[0]?.n)).toBe(50_001);
    await statisticsReported(db, `public.${table}_2026_01`, 'mod_since_analyze');

    // Act: the default partition options.
    const result = await runPartitionedTablePolicy(
      { runPolicy, definition },
      'purge',
      'refilled-purge',
      table,
    );

    // Assess: dropped, its rows flagged as estimated; the estimate should be near the 50 001 rows dropped
    // (partition-retention-counts.test.ts holds the estimate to 5 %), not the density of the last VACUUM (1
    // row over the same pages) times the same pages: about 1 row.
    expect(result.failure).toBeUndefined();
    expect(await partitionsOf(db, table)).toEqual([`${table}_2026_11`]);
    const units = await finishedUnits(db, result.summary?.runId);
    expect(units.map((u) => u.estimated)).toEqual([true]);
    expect(units[0]?.rows).toBeGreaterThan(50_001 * 0.5);
  });
});

describe('the default estimate when PostgreSQL skips the ANALYZE', () => {
  it('estimateRows on a partition the run role may detach and lock but does not own', async ({
    database: db,
  }) => {
    // Prepare: the parent owned by a tool role, the partition (never analyzed, 20 000 rows) by another role
    // (partitions created by a migration or partman role); the tool role detaches it and takes the drop's
    // lock, as the driver does. PostgreSQL 15 skips its ANALYZE with a WARNING, not an error.
    const suffix = Math.random().toString(36).slice(2, 8);
    const tool = `estimate_tool_${suffix}`;
    const table = 'foreign_owned_events';
    await db.pool.query(`CREATE ROLE ${tool} LOGIN`);
    try {
      await db.pool.query(`
        DROP TABLE IF EXISTS public.${table} CASCADE;
        CREATE TABLE public.${table} (id bigint NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
        CREATE TABLE public.${table}_2026_01 (id bigint NOT NULL, created_at timestamptz NOT NULL)
          WITH (autovacuum_enabled = false);
        INSERT INTO public.${table}_2026_01
          SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 20000) g;
        ALTER TABLE public.${table} ATTACH PARTITION public.${table}_2026_01
          FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00');
        CREATE TABLE public.${table}_2026_11 PARTITION OF public.${table}
          FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00');
        ALTER TABLE public.${table} OWNER TO ${tool};
        GRANT USAGE ON SCHEMA public TO ${tool};
        GRANT SELECT, UPDATE, DELETE, TRUNCATE ON public.${table}_2026_01 TO ${tool};`);
      await statisticsReported(db, `public.${table}_2026_01`, 'live_tuples');
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const notices: string[] = [];
      client.on('notice', (n) => notices.push(n.message ?? ''));
      try {
        await client.query(`SET ROLE ${tool}`);
        await client.query(`ALTER TABLE public.${table} DETACH PARTITION public.${table}_2026_01`);
        await client.query('BEGIN');
        await client.query(`LOCK TABLE public.${table}_2026_01 IN ACCESS EXCLUSIVE MODE`);

        // Act
        const estimate = await new PartitionOperations(client, { schema: 'public', table }).estimateRows(
          { schema: 'public', name: `${table}_2026_01` },
          'created_at',
        );
        await client.query('ROLLBACK');

        // Assess: PostgreSQL said it skipped the ANALYZE; the estimate is the live-row count, not a silent 0.
        expect(notices.join('\n')).toMatch(/only table or database owner can analyze/);
        expect(estimate.rows).toBeGreaterThan(0);
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
        await client.end();
      }
    } finally {
      await db.pool.query(`DROP TABLE IF EXISTS public.${table} CASCADE`);
      await db.pool.query(`DROP TABLE IF EXISTS public.${table}_2026_01`);
      await db.pool.query(`DROP OWNED BY ${tool}`).catch(() => undefined);
      await db.pool.query(`DROP ROLE IF EXISTS ${tool}`);
    }
  });
});

describe('the drop check is proven for every time kind, and still finds what the proof cannot exclude', () => {
  /** Reads of `relation` by `client`'s session so far (see partition-retention-counts.test.ts). */
  async function reads(client: pg.Client, relation: string) {
    const { rows } = await client.query<{ scans: string; blocks: string }>(
      `SELECT pg_stat_get_xact_numscans($1::regclass)::text AS scans,
              pg_stat_get_xact_blocks_fetched($1::regclass)::text AS blocks`,
      [relation],
    );
    return { scans: Number(rows[0]?.scans), blocks: Number(rows[0]?.blocks) };
  }

  for (const kind of ['date', 'timestamp'] as const) {
    it(`a ${kind} time column: old partitions dropped, no row at or after the cutoff lost`, async ({
      database: db,
      runPolicy,
      definition,
    }) => {
      // Prepare: monthly partitions of a `kind` column; rows every 6 h from January to November 2026.
      const table = `${kind}_events`;
      await db.pool.query(`DROP TABLE IF EXISTS public.${table} CASCADE`);
      await db.pool.query(`
        CREATE TABLE public.${table} (id bigint NOT NULL, created_at ${kind} NOT NULL, payload text NOT NULL)
          PARTITION BY RANGE (created_at);
        DO $$ DECLARE m date; BEGIN
          FOR m IN SELECT generate_series(date '2026-01-01', date '2026-11-01', interval '1 month')::date LOOP
            EXECUTE format('CREATE TABLE public.%I PARTITION OF public.${table} FOR VALUES FROM (%L) TO (%L)',
                           '${table}_' || to_char(m, 'YYYY_MM'), m::text, (m + interval '1 month')::date::text);
          END LOOP; END $$;
        INSERT INTO public.${table}
          SELECT g, (timestamp '2026-01-01 00:00:00' + g * interval '6 hours')::${kind}, md5(g::text)
            FROM generate_series(0, 1300) g;`);
      const { rows: before } = await db.pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM public.${table}
          WHERE NOT (created_at < ('${PARTITION_CUTOFF}'::timestamptz AT TIME ZONE 'UTC')::${kind})`,
      );

      // Act
      const result = await runPartitionedTablePolicy(
        { runPolicy, definition },
        'purge',
        `${kind}-purge`,
        table,
      );

      // Assess: January … July dropped; every row at or after the cutoff kept, every older one purged.
      expect(result.failure).toBeUndefined();
      expect(await partitionsOf(db, table)).toEqual([
        `${table}_2026_08`,
        `${table}_2026_09`,
        `${table}_2026_10`,
        `${table}_2026_11`,
      ]);
      const { rows: after } = await db.pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM public.${table}
          WHERE NOT (created_at < ('${PARTITION_CUTOFF}'::timestamptz AT TIME ZONE 'UTC')::${kind})`,
      );
      expect(after[0]?.n).toBe(before[0]?.n);
      const { rows: old } = await db.pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM public.${table}
          WHERE created_at < ('${PARTITION_CUTOFF}'::timestamptz AT TIME ZONE 'UTC')::${kind}`,
      );
      expect(Number(old[0]?.n)).toBe(0); // August's old rows: the chunk loop's
    });
  }

  it('a nullable column whose user CHECK has no IS NOT NULL: a NULL row is found, not proven away', async ({
    database: db,
  }) => {
    const table = 'nullable_checked';
    await db.pool.query(`DROP TABLE IF EXISTS public.${table}`);
    await db.pool.query(`
      CREATE TABLE public.${table} (id bigint, created_at timestamptz
        CHECK (created_at >= '2026-01-01 00:00:00+00' AND created_at < '2026-02-01 00:00:00+00'));
      INSERT INTO public.${table} VALUES (1, '2026-01-05 00:00:00+00'), (2, NULL);`);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const ops = new PartitionOperations(client, { schema: 'public', table: 'unused' });
      const check = () =>
        ops.holdsIneligibleRows(
          { schema: 'public', name: table },
          'created_at',
          (cutoff) => `created_at < ${cutoff}::timestamptz`,
          PARTITION_CUTOFF,
        );
      expect(await check()).toBe(true);
      await db.pool.query(`DELETE FROM public.${table} WHERE created_at IS NULL`);
      expect(await check()).toBe(false);
      // …and a NOT VALID constraint (the archive fence's kind) proves nothing either.
      await db.pool.query(`ALTER TABLE public.${table} DROP CONSTRAINT ${table}_created_at_check`);
      await db.pool.query(`INSERT INTO public.${table} VALUES (3, '2030-01-01 00:00:00+00')`);
      await db.pool.query(
        `ALTER TABLE public.${table} ADD CONSTRAINT fence CHECK (created_at < '2026-02-01') NOT VALID`,
      );
      expect(await check()).toBe(true);
      expect((await reads(client, `public.${table}`)).scans).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
  });
});
