/**
 * restore-archive where a hostile review found it wrong, each through the real CLI on rows the real archive
 * wrote: a target keyed on a surrogate must not get rows twice (refused, or with --allow-no-key never the same
 * object under another --where); ON CONFLICT skips only rows whose key is there, a clash on another unique
 * constraint fails the object; bad input found after objects were committed is exit 1, not 2.
 */
import { testConfig } from '../support/archive.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';
import { runCliInProcess } from '../support/leases.ts';

const RANGE = ['--from', '2000-01-01', '--to', '2030-01-01T00:00:00Z'];

describe('restore-archive after review', () => {
  beforeAll(async ({ database: db, runPolicy }) => {
    await db.pool.query(`
      CREATE TABLE public.src (id bigint PRIMARY KEY, at timestamptz NOT NULL, dev int);
      CREATE INDEX ON public.src (at);
      INSERT INTO public.src SELECT g, timestamptz '2020-01-01' + g * interval '1 hour', g % 3 FROM generate_series(1, 300) g;
      CREATE TABLE public.sur (rid bigserial PRIMARY KEY, id bigint, at timestamptz, dev int, extra text);
      CREATE TABLE public.narrow (id bigint PRIMARY KEY, at timestamptz, dev int);`);
    const config = testConfig([
      {
        name: 'arch',
        table: 'public.src',
        action: 'archive',
        timeColumn: 'at',
        retention: 'P2Y',
        chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
      },
    ]);
    expect((await runPolicy(config, 'arch')).failure).toBeUndefined();
    // The table gains a column; later rows are archived with it.
    await db.pool.query(`ALTER TABLE public.src ADD COLUMN extra text;
      INSERT INTO public.src SELECT g, timestamptz '2021-06-01' + g * interval '1 hour', g % 3, 'x' FROM generate_series(1001, 1100) g;`);
    expect((await runPolicy(config, 'arch')).failure).toBeUndefined();
  }, 120_000);

  it('refuses a target whose key is not archived, and never restores an object twice without one', async ({
    database: db,
    bucket,
  }) => {
    const base = [
      'restore-archive',
      '--policy',
      'arch',
      '--bucket',
      bucket,
      ...RANGE,
      '--into',
      'public.sur',
    ];
    const refused = await runCliInProcess(db, base);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('its primary key is not made of archived columns');
    const first = await runCliInProcess(db, [...base, '--allow-no-key', '--where', 'dev = 1']);
    expect(first.code).toBe(0);
    const second = await runCliInProcess(db, [...base, '--allow-no-key']);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain('before under another --where');
    const { rows } = await db.pool.query<{ n: number; ids: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM public.sur',
    );
    expect(rows[0]?.n).toBe(rows[0]?.ids);
  });

  it('skips only rows whose key is there: a clash on another unique constraint fails the object', async ({
    database: db,
    bucket,
  }) => {
    await db.pool.query(`CREATE TABLE public.uq (id bigint PRIMARY KEY, at timestamptz UNIQUE, dev int, extra text);
      INSERT INTO public.uq VALUES (999999, timestamptz '2020-01-01' + 5 * interval '1 hour', 0, 'a live row')`);
    const result = await runCliInProcess(db, [
      'restore-archive',
      '--policy',
      'arch',
      '--bucket',
      bucket,
      ...RANGE,
      '--into',
      'public.uq',
      '--json',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/unique|duplicate key/);
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM public.uq WHERE id = 5',
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('says exit 1, not 2, when bad input is found after objects were restored', async ({
    database: db,
    bucket,
  }) => {
    const result = await runCliInProcess(db, [
      'restore-archive',
      '--policy',
      'arch',
      '--bucket',
      bucket,
      ...RANGE,
      '--into',
      'public.narrow',
    ]);
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.narrow');
    expect(rows[0]?.n).toBeGreaterThan(0);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('objects were restored before it');
  });

  it('restores into a table made again under a name used before (the ledger knows tables by oid)', async ({
    database: db,
    bucket,
  }) => {
    const make = 'CREATE TABLE public.scratch (id bigint PRIMARY KEY, at timestamptz, dev int, extra text)';
    await db.pool.query(make);
    const args = [
      'restore-archive',
      '--policy',
      'arch',
      '--bucket',
      bucket,
      ...RANGE,
      '--into',
      'public.scratch',
    ];
    expect((await runCliInProcess(db, args)).code).toBe(0);
    await db.pool.query(`DROP TABLE public.scratch; ${make}`);
    expect((await runCliInProcess(db, args)).code).toBe(0);
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.scratch');
    expect(rows[0]?.n).toBe(400);
  });
});
