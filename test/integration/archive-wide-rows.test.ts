/**
 * Rows with large values (a 64 KB document each): chunks are bounded by bytes as well as rows, so a run
 * never holds more than chunking.maxChunkBytes of row text per chunk, and still archives every row once.
 */
import { ledgerObjects, readArchivedRows, testConfig } from '../support/archive.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

describe('archive of wide rows', () => {
  it('keeps each chunk under maxChunkBytes of row text and archives every row once', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: 300 rows of ~64 KB each (incompressible text, so TOAST keeps it large).
    await db.pool.query(
      `CREATE TABLE public.documents (id int PRIMARY KEY, created_at timestamptz NOT NULL, body text)`,
    );
    await db.pool.query('CREATE INDEX ON public.documents (created_at)');
    await db.pool.query(
      `INSERT INTO public.documents
       SELECT g, $1::timestamptz - interval '3 years' + g * interval '1 hour',
              (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 2048) AS i)
         FROM generate_series(1, 300) AS g`,
      [NOW.toISOString()],
    );
    const maxChunkBytes = 1024 * 1024;
    const config = testConfig([
      {
        name: 'documents',
        table: 'public.documents',
        action: 'archive',
        timeColumn: 'created_at',
        retention: 'P2Y',
        archive: { partitionBy: 'year' },
        chunking: { initialRows: 10_000, minRows: 500, maxChunkBytes },
      },
    ]);

    // Act
    const result = await runPolicy(config, 'documents');

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(300);
    const chunks = await db.pool.query<{ rows: number }>(
      'SELECT rows FROM lifecycle.chunks WHERE run_id = $1',
      [result.summary?.runId],
    );
    // 64 KB rows, 1 MiB per chunk: at most 16 rows per chunk, whatever initialRows/minRows say.
    expect(Math.max(...chunks.rows.map((c) => c.rows))).toBeLessThanOrEqual(16);
    expect(chunks.rows.length).toBeGreaterThanOrEqual(300 / 16);
    const archived = await readArchivedRows(s3, bucket, await ledgerObjects(db.pool, result.summary?.runId));
    expect(archived).toHaveLength(300);
    expect(new Set(archived.map((r) => r.id)).size).toBe(300);
    expect(archived.every((r) => typeof r.body === 'string' && r.body.length === 64 * 1024)).toBe(true);
  });

  it('bounds each object of a whole-partition archive by maxChunkBytes too', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: a monthly partition wholly before the cutoff, holding 120 rows of ~64 KB.
    await db.pool.query(`CREATE TABLE public.reports (id int NOT NULL, created_at timestamptz NOT NULL, body text,
                           PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)`);
    await db.pool.query(
      `CREATE TABLE public.reports_old PARTITION OF public.reports FOR VALUES FROM ('2023-01-01') TO ('2023-02-01')`,
    );
    await db.pool.query(
      `CREATE TABLE public.reports_new PARTITION OF public.reports FOR VALUES FROM ('2026-11-01') TO ('2026-12-01')`,
    );
    await db.pool.query('CREATE INDEX ON public.reports (created_at)');
    await db.pool.query(
      `INSERT INTO public.reports
       SELECT g, timestamptz '2023-01-01' + g * interval '1 hour',
              (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 2048) AS i)
         FROM generate_series(1, 120) AS g`,
    );
    const config = testConfig([
      {
        name: 'reports',
        table: 'public.reports',
        action: 'archive',
        timeColumn: 'created_at',
        retention: 'P2Y',
        chunking: { maxChunkBytes: 1024 * 1024 },
      },
    ]);

    // Act
    const result = await runPolicy(config, 'reports');

    // Assess: the partition was retired as a unit, in objects of at most 16 rows, every row once.
    expect(result.failure).toBeUndefined();
    const partitions = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'public.reports'::regclass`,
    );
    expect(partitions.rows[0].n).toBe(1);
    const objects = await ledgerObjects(db.pool, result.summary?.runId);
    expect(Math.max(...objects.map((o) => o.rows))).toBeLessThanOrEqual(16);
    const archived = await readArchivedRows(s3, bucket, objects);
    expect(archived).toHaveLength(120);
    expect(new Set(archived.map((r) => r.id)).size).toBe(120);
  });
});
