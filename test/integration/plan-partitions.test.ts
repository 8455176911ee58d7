/** The plan lists the partitions a run would retire as units, and planning drops none of them. */

import { testConfig } from '../support/archive.ts';
import { describe, expect, it } from '../support/fixture.ts';

describe('plan of a partitioned table', () => {
  it('names the partitions wholly before the cutoff, keeps the straddling one, and changes nothing', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: monthly partitions 2026-01 … 2026-12; cutoff P90D → 2026-08-25.
    await db.pool.query(`
      CREATE TABLE public.readings (id bigint NOT NULL, created_at timestamptz NOT NULL, PRIMARY KEY (id, created_at))
        PARTITION BY RANGE (created_at)`);
    await db.pool.query('CREATE INDEX ON public.readings (created_at)');
    for (let month = 1; month <= 12; month++) {
      const from = `2026-${String(month).padStart(2, '0')}-01`;
      const to = month === 12 ? '2027-01-01' : `2026-${String(month + 1).padStart(2, '0')}-01`;
      await db.pool.query(
        `CREATE TABLE public.readings_${month} PARTITION OF public.readings FOR VALUES FROM ('${from}') TO ('${to}')`,
      );
    }
    await db.pool.query(`INSERT INTO public.readings SELECT g, timestamptz '2026-01-01' + g * interval '1 hour'
                           FROM generate_series(0, 7800) g`);
    const config = testConfig([
      {
        name: 'readings',
        table: 'public.readings',
        action: 'purge',
        timeColumn: 'created_at',
        retention: 'P90D',
      },
    ]);
    const partitionsBefore = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'public.readings'::regclass`,
    );
    const rowsBefore = await db.pool.query('SELECT count(*)::int AS n FROM public.readings');

    // Act
    const result = await runPolicy(config, 'readings', { dryRun: true });

    // Assess
    expect(result.status).toBe('dry_run');
    const partitions = result.summary?.plan?.partitions ?? [];
    expect(partitions.map((p) => p.name)).toEqual(
      ['1', '2', '3', '4', '5', '6', '7'].map((m) => `"public"."readings_${m}"`),
    );
    expect(partitions[0]?.from).toContain('2026-01-01');
    expect(partitions[6]?.to).toContain('2026-08-01');
    const partitionsAfter = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'public.readings'::regclass`,
    );
    expect(partitionsAfter.rows[0].n).toBe(partitionsBefore.rows[0].n);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM public.readings')).rows[0].n).toBe(
      rowsBefore.rows[0].n,
    );
  });
});
