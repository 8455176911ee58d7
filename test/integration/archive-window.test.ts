/**
 * The archive chunk's window DELETE (no sort, no TID array: an index range scan of the eligible rows before the
 * time of the (limit+1)-th one), held to the keyset slice it replaces: where it is used, that a tie longer than a
 * chunk still moves on, that no row is taken twice or left behind, and what a row another session holds does.
 */

import pg from 'pg';
import { KEYSET_CHUNKS_AFTER_TIE } from '../../functions/actions/archive/chunk.ts';
import { resolveTable, toChunkTarget } from '../../functions/adapters/catalog.ts';
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
  /** Each chunk's `selection` (what the run's log reports). */
  readonly selections: Array<string | undefined>;
}

/**
 * Every chunk `take` gives for `table` (time column `at`, key `id`) with `limit` rows per chunk, in one
 * transaction rolled back afterwards: the ids of the rows each chunk deleted (from the table, before and after).
 */
async function takeAll(
  table: string,
  limit: number,
  options: { filter?: string; time?: string; kind?: 'timestamptz' | 'timestamp' | 'date' } = {},
): Promise<Taken> {
  const resolved = await resolveTable(client, table);
  const time = { name: options.time ?? 'at', kind: options.kind ?? 'timestamptz' };
  const input = (cursor: unknown) => ({
    ...(archiveTakeInput(resolved, cursor, limit) as object),
    target: toChunkTarget(resolved, time, options.filter),
  });
  const action = takingArchiveAction();
  const copies: string[] = [];
  const recording = recordingClient(copies);
  const ids = async () =>
    (await client.query<{ k: string }>(`SELECT id::text AS k FROM ${table} ORDER BY id`)).rows.map(
      (r) => r.k,
    );
  const all = await ids();
  const rows: number[] = [];
  const selections: Array<string | undefined> = [];
  await client.query('BEGIN');
  try {
    let cursor: unknown = null;
    for (let chunk = 0; chunk < 1000; chunk++) {
      const taken = await action.take(recording as never, input(cursor) as never);
      if (!taken) break;
      rows.push(taken.rows);
      selections.push(taken.selection);
      cursor = taken.cursor;
    }
    const left = new Set(await ids());
    return { ids: all.filter((id) => !left.has(id)), rows, copies, selections };
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
      CREATE TABLE public.w_nulls_first (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_nulls_first (at NULLS FIRST);
      CREATE TABLE public.w_desc (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_desc (at DESC);
      CREATE TABLE public.w_invalid (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX w_invalid_at ON public.w_invalid (at);
      -- As a failed CREATE INDEX CONCURRENTLY leaves it: there, but not to be used.
      UPDATE pg_catalog.pg_index SET indisvalid = false WHERE indexrelid = 'public.w_invalid_at'::regclass;
      INSERT INTO public.w_indexed SELECT g, '2020-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 50) g;
      INSERT INTO public.w_bare SELECT * FROM public.w_indexed;
      INSERT INTO public.w_second SELECT * FROM public.w_indexed;
      INSERT INTO public.w_partial SELECT * FROM public.w_indexed;
      INSERT INTO public.w_nulls_first SELECT * FROM public.w_indexed;
      INSERT INTO public.w_desc SELECT * FROM public.w_indexed;
      INSERT INTO public.w_invalid SELECT * FROM public.w_indexed`);
    const indexed = await takeAll('public.w_indexed', 20);
    expect(indexed.rows).toEqual([20, 20, 10]);
    expect(indexed.ids).toHaveLength(50);
    expect(indexed.copies.map(isWindow)).toEqual([true, true, true]);
    expect(indexed.selections).toEqual(['window', 'window', 'window']);
    // DESC (NULLS FIRST, its default) serves ORDER BY at read backwards.
    expect((await takeAll('public.w_desc', 20)).copies.map(isWindow)).toEqual([true, true, true]);
    // Without an index led by the time column, in an order that serves ORDER BY at, the window would read the
    // table twice (or sort it).
    for (const table of [
      'public.w_bare',
      'public.w_second',
      'public.w_partial',
      'public.w_nulls_first',
      'public.w_invalid',
    ]) {
      const other = await takeAll(table, 20);
      expect(other.rows).toEqual([20, 20, 10]);
      expect(other.copies.some(isWindow), table).toBe(false);
      expect(other.selections, table).toEqual(['keyset', 'keyset', 'keyset']);
    }
  });

  it('moves on past a tie longer than a chunk (the window is empty: keyset slices split it), each row taken once', async () => {
    // 45 rows sharing the first time, then 200 one minute apart: with 10 rows per chunk the first window is empty.
    await client.query(`
      CREATE TABLE public.w_tie (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_tie (at);
      INSERT INTO public.w_tie SELECT g, '2020-02-01' FROM generate_series(1, 45) g;
      INSERT INTO public.w_tie SELECT g, '2020-03-01'::timestamptz + g * interval '1 minute' FROM generate_series(46, 245) g`);
    const taken = await takeAll('public.w_tie', 10);
    expect(taken.ids).toHaveLength(245);
    expect(taken.rows.every((n) => n === 10 || n === 5)).toBe(true);
    expect(taken.rows.reduce((sum, n) => sum + n, 0)).toBe(245);
    // The empty window, then keyset slices for this chunk and the next ones, then windows again.
    const keyset = Array<boolean>(KEYSET_CHUNKS_AFTER_TIE).fill(false);
    expect(taken.copies.map(isWindow).slice(0, KEYSET_CHUNKS_AFTER_TIE + 3)).toEqual([
      true,
      ...keyset,
      true,
      true,
    ]);
  });

  it('takes keyset slices after a window a run of equal times cut short, not after one its Hive partition ended', async () => {
    // 3 rows, then 45 sharing one time, then 200: the first window stops before the tie (3 rows of 10).
    await client.query(`
      CREATE TABLE public.w_short (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_short (at);
      INSERT INTO public.w_short SELECT g, '2020-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 3) g;
      INSERT INTO public.w_short SELECT g, '2020-02-01' FROM generate_series(4, 48) g;
      INSERT INTO public.w_short SELECT g, '2020-03-01'::timestamptz + g * interval '1 minute' FROM generate_series(49, 248) g;
      -- Five rows in 2019: a window its year's end cuts short.
      INSERT INTO public.w_short SELECT g, '2019-12-31'::timestamptz + (g - 248) * interval '1 hour' FROM generate_series(249, 253) g`);
    const taken = await takeAll('public.w_short', 10);
    expect(taken.ids).toHaveLength(253);
    // 2019's 5 rows (its end: windows go on), 3 rows (a tie: keyset slices split it), 10 per chunk after.
    expect(taken.rows.slice(0, 4)).toEqual([5, 3, 10, 10]);
    const keyset = Array<boolean>(KEYSET_CHUNKS_AFTER_TIE).fill(false);
    expect(taken.copies.map(isWindow).slice(0, KEYSET_CHUNKS_AFTER_TIE + 3)).toEqual([
      true,
      true,
      ...keyset,
      true,
    ]);
  });

  it('takes keyset slices for a policy with a filter (a window would walk the rows it rejects twice)', async () => {
    await client.query(`
      CREATE TABLE public.w_filtered (id int PRIMARY KEY, at timestamptz NOT NULL, kind int NOT NULL);
      CREATE INDEX ON public.w_filtered (at);
      INSERT INTO public.w_filtered SELECT g, '2020-01-01'::timestamptz + g * interval '1 minute', g % 10 FROM generate_series(1, 100) g`);
    const taken = await takeAll('public.w_filtered', 4, { filter: 'kind = 3' });
    expect(taken.ids).toEqual(Array.from({ length: 10 }, (_, i) => String(10 * i + 3)));
    expect(taken.copies.some(isWindow)).toBe(false);
  });

  it('takes every row once from timestamp and date columns with ±infinity, NULLs and a table without a key', async () => {
    // More -infinity rows than a chunk (an empty first window), then days of 3 rows: windows end between days.
    await client.query(`
      CREATE TABLE public.w_kinds (id int NOT NULL, ts timestamp, d date);
      CREATE INDEX ON public.w_kinds (ts);
      CREATE INDEX ON public.w_kinds (d);
      INSERT INTO public.w_kinds SELECT g, '-infinity', '-infinity' FROM generate_series(1, 12) g;
      INSERT INTO public.w_kinds SELECT g, '2020-01-01'::timestamp + (g / 3) * interval '1 day', '2020-01-01'::date + g / 3
        FROM generate_series(13, 112) g;
      INSERT INTO public.w_kinds VALUES (113, NULL, NULL), (114, 'infinity', 'infinity')`);
    for (const [time, kind] of [
      ['ts', 'timestamp'],
      ['d', 'date'],
    ] as const) {
      const taken = await takeAll('public.w_kinds', 10, { time, kind });
      // NULL and +infinity are never before the cutoff.
      expect(taken.ids.map(Number).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 112 }, (_, i) => i + 1),
      );
      expect(taken.rows.every((n) => n <= 10)).toBe(true);
      expect(taken.copies.some(isWindow), kind).toBe(true);
    }
  });

  it('keeps every chunk within its rows when the times repeat in short runs', async () => {
    // Runs of 1 to 6 rows per time: a window ends where a run starts, never splitting one.
    await client.query(`
      CREATE TABLE public.w_runs (id int PRIMARY KEY, at timestamptz NOT NULL);
      CREATE INDEX ON public.w_runs (at);
      INSERT INTO public.w_runs SELECT g, '2020-01-01'::timestamptz + ((g * 7) / (1 + g % 6)) * interval '1 second'
        FROM generate_series(1, 400) g`);
    const taken = await takeAll('public.w_runs', 13);
    expect(taken.ids).toHaveLength(400);
    expect(taken.rows.every((n) => n >= 1 && n <= 13)).toBe(true);
    // Windows, and keyset slices for a while after one a run cut short.
    expect(taken.copies.some(isWindow)).toBe(true);
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

  it('keeps a filter qualified with the schema on the parent-wide statement: the leaf is read under the bare name', async () => {
    await client.query(`
      CREATE TABLE public.w_pq (id int, at timestamptz NOT NULL, k int) PARTITION BY RANGE (at);
      CREATE TABLE public.w_pq_2020 PARTITION OF public.w_pq FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
      CREATE INDEX ON public.w_pq (at);
      INSERT INTO public.w_pq SELECT g, '2020-01-01'::timestamptz + g * interval '1 hour', g % 3 FROM generate_series(1, 100) g`);
    const kept = async (filter: string) => {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM public.w_pq WHERE ${filter}`,
      );
      return Number(rows[0]?.n);
    };
    const eligible = 100 - (await kept('k = 2'));
    for (const [filter, inLeaf] of [
      ['public.w_pq.k <> 2', false],
      ['"public"."w_pq".k <> 2', false],
      ['w_pq.k <> 2', true],
    ] as const) {
      const taken = await takeAll('public.w_pq', 30, { filter });
      expect(
        taken.rows.reduce((sum, n) => sum + n, 0),
        filter,
      ).toBe(eligible);
      expect(
        taken.copies.every((copy) => copy.includes('"w_pq_2020"') === inLeaf),
        filter,
      ).toBe(true);
    }
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
      expect(taken.selections[0]).toBe('skip-locked');
    } finally {
      await holder.end();
    }
  });
});
