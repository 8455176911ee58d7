/**
 * The archive chunk's window DELETE (no sort, no TID array: an index range scan of the eligible rows before the
 * time of the (limit+1)-th one), held to the keyset slice it replaces: where it is used, that a tie longer than a
 * chunk still moves on, that no row is taken twice or left behind, and what a row another session holds does.
 */

import pg from 'pg';
import { resolveTable } from '../../functions/adapters/catalog.ts';
import { SESSION_OPTIONS } from '../../functions/commons/database.ts';
import { archiveTakeInput, TEXT_TYPES, takingArchiveAction } from '../support/copy-binary.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('archive_window');
  client = new pg.Client({ connectionString: db.url, options: SESSION_OPTIONS, types: TEXT_TYPES });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/** The COPY statements `client` is given, recorded. */
function recordingClient(copies: string[]): { query: (...args: unknown[]) => unknown } {
  return {
    query: (...args: unknown[]) => {
      const first = args[0] as string | { text?: string };
      const text = typeof first === 'string' ? first : String(first.text ?? '');
      if (text.startsWith('COPY (')) copies.push(text);
      return (client.query as (...a: unknown[]) => unknown)(...args);
    },
  };
}

const isWindow = (copy: string) => copy.includes('OFFSET');

interface Taken {
  readonly ids: string[];
  readonly rows: number[];
  readonly copies: string[];
}

/**
 * Every chunk `take` gives for `table` (time column `at`, key `id`) with `limit` rows per chunk, in one
 * transaction rolled back afterwards: the ids of the rows each chunk deleted (from the table, before and after).
 */
async function takeAll(table: string, limit: number): Promise<Taken> {
  const resolved = await resolveTable(client, table);
  const action = takingArchiveAction();
  const copies: string[] = [];
  const recording = recordingClient(copies);
  const ids = async () =>
    (await client.query<{ k: string }>(`SELECT id::text AS k FROM ${table} ORDER BY id`)).rows.map(
      (r) => r.k,
    );
  const all = await ids();
  const rows: number[] = [];
  await client.query('BEGIN');
  try {
    let cursor: unknown = null;
    for (let chunk = 0; chunk < 1000; chunk++) {
      const taken = await action.take(recording as never, archiveTakeInput(resolved, cursor, limit));
      if (!taken) break;
      rows.push(taken.rows);
      cursor = taken.cursor;
    }
    const left = new Set(await ids());
    return { ids: all.filter((id) => !left.has(id)), rows, copies };
  } finally {
    await client.query('ROLLBACK');
  }
}

describe('archive window DELETE', () => {
  it('is the optimistic statement where an index leads with the time column, and the keyset slice elsewhere', async () => {
    await client.query(`
      CREATE TABLE public.w_indexed (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_indexed (at);
      CREATE TABLE public.w_bare (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE TABLE public.w_second (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_second (id, at);
      CREATE TABLE public.w_partial (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_partial (at) WHERE id > 0;
      INSERT INTO public.w_indexed SELECT g, '2020-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 50) g;
      INSERT INTO public.w_bare SELECT * FROM public.w_indexed;
      INSERT INTO public.w_second SELECT * FROM public.w_indexed;
      INSERT INTO public.w_partial SELECT * FROM public.w_indexed`);
    const indexed = await takeAll('public.w_indexed', 20);
    expect(indexed.rows).toEqual([20, 20, 10]);
    expect(indexed.ids).toHaveLength(50);
    expect(indexed.copies.map(isWindow)).toEqual([true, true, true]);
    // Without an index led by the time column the window would read the table twice.
    for (const table of ['public.w_bare', 'public.w_second', 'public.w_partial']) {
      const other = await takeAll(table, 20);
      expect(other.rows).toEqual([20, 20, 10]);
      expect(other.copies.some(isWindow), table).toBe(false);
    }
  });

  it('moves on past a tie longer than a chunk (the window is empty: a keyset slice splits it), each row taken once', async () => {
    // 3 rows, then 45 sharing one time, then 7: with 10 rows per chunk the second window ends at that time.
    await client.query(`
      CREATE TABLE public.w_tie (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_tie (at);
      INSERT INTO public.w_tie SELECT g, '2020-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 3) g;
      INSERT INTO public.w_tie SELECT g, '2020-02-01' FROM generate_series(4, 48) g;
      INSERT INTO public.w_tie SELECT g, '2020-03-01'::timestamptz + g * interval '1 minute' FROM generate_series(49, 55) g`);
    const taken = await takeAll('public.w_tie', 10);
    expect(taken.ids).toHaveLength(55);
    expect(taken.rows.reduce((sum, n) => sum + n, 0)).toBe(55);
    // The first window stops before the tie (3 rows); the tie goes in keyset slices of 10 (the next chunks too).
    expect(taken.rows).toEqual([3, 10, 10, 10, 10, 10, 2]);
    expect(taken.rows.every((n) => n <= 10)).toBe(true);
    expect(taken.copies.filter(isWindow).length).toBeGreaterThan(0);
    expect(taken.copies.some((copy) => !isWindow(copy))).toBe(true);
  });

  it('keeps every chunk within its rows when the times repeat in short runs', async () => {
    // Runs of 1 to 6 rows per time: windows end where a run starts, never splitting one.
    await client.query(`
      CREATE TABLE public.w_runs (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_runs (at);
      INSERT INTO public.w_runs SELECT g, '2020-01-01'::timestamptz + ((g * 7) / (1 + g % 6)) * interval '1 second'
        FROM generate_series(1, 400) g`);
    const taken = await takeAll('public.w_runs', 13);
    expect(taken.ids).toHaveLength(400);
    expect(taken.rows.every((n) => n >= 1 && n <= 13)).toBe(true);
    expect(taken.copies.every(isWindow)).toBe(true);
  });

  it('works in a leaf partition and on a parent with a DEFAULT partition', async () => {
    await client.query(`
      CREATE TABLE public.w_parted (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
      CREATE TABLE public.w_parted_2020 PARTITION OF public.w_parted FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
      CREATE TABLE public.w_parted_rest PARTITION OF public.w_parted DEFAULT;
      CREATE INDEX ON public.w_parted (at);
      INSERT INTO public.w_parted SELECT g, '2020-12-31'::timestamptz + g * interval '1 hour' FROM generate_series(1, 60) g`);
    const taken = await takeAll('public.w_parted', 25);
    // 23 hours left in 2020 (the leaf), then the DEFAULT partition through the parent; each chunk in one year.
    expect(taken.rows).toEqual([23, 25, 12]);
    expect(taken.copies.map(isWindow)).toEqual([true, true, true]);
    expect(taken.copies[0]).toContain('"w_parted_2020"');
    expect(taken.copies[1]).not.toContain('"w_parted_2020"');
  });

  it('passes over a row another session holds: the window waits 20 ms, then SKIP LOCKED takes the rest', async () => {
    await client.query(`
      CREATE TABLE public.w_held (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_held (at);
      INSERT INTO public.w_held SELECT g, '2020-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 30) g`);
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN; SELECT 1 FROM public.w_held WHERE id = 5 FOR UPDATE');
      const taken = await takeAll('public.w_held', 10);
      expect(taken.ids).toEqual(
        Array.from({ length: 30 }, (_, i) => String(i + 1)).filter((id) => id !== '5'),
      );
      expect(isWindow(taken.copies[0] ?? '')).toBe(true);
      expect(taken.copies[1]).toContain('FOR UPDATE SKIP LOCKED');
    } finally {
      await holder.end();
    }
  });
});
