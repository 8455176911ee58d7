/**
 * Edges of the archive's COPY binary reading, each held to what the row protocol gives for the same rows: a
 * composite value (and a composite key) whose fields are all NULL, a `format(text, <type>)` on the search_path
 * that must not be called, user types named like built-ins (read as text, never by a built-in's send format),
 * COPY errors that keep their SQLSTATE, random values of every binary-read type, types read through their
 * output function, partitioned tables; and key values that never enter the statement's text.
 */

import pg from 'pg';
import { resolveTable } from '../../functions/adapters/catalog.ts';
import { CopyBuffers, copyOut } from '../../functions/adapters/copy-out.ts';
import { SESSION_OPTIONS } from '../../functions/commons/database.ts';
import { vectorToArray } from '../../functions/core/parquet/column-vector.ts';
import {
  archiveTakeInput,
  plainValue,
  type Reading,
  readBoth,
  TEXT_TYPES,
  takingArchiveAction,
  timeTexts,
} from '../support/copy-binary.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('copy_binary_edges');
  client = new pg.Client({ connectionString: db.url, options: SESSION_OPTIONS, types: TEXT_TYPES });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/** A column's values as plain JS (STRING bytes as text), or the error's name. */
function column(reading: Reading, index: number): unknown {
  if (!reading.ok) return `refused: ${reading.error.name}`;
  return vectorToArray(reading.taken.values[index] ?? []).map(plainValue);
}

/** `client`, recording the text of every statement it is given into `texts`. */
function recordingClient(texts: string[]): { query: (...args: unknown[]) => unknown } {
  return {
    query: (...args: unknown[]) => {
      const first = args[0] as string | { text?: string };
      texts.push(typeof first === 'string' ? first : String(first.text ?? ''));
      return (client.query as (...a: unknown[]) => unknown)(...args);
    },
  };
}

describe('COPY binary chunk reading: edges', () => {
  it('keeps a composite value whose fields are all NULL (IS NULL is true for it), as the row protocol does', async () => {
    await client.query(`
      CREATE TYPE pair AS (a int, b text);
      CREATE TABLE public.with_composite (id int PRIMARY KEY, at timestamptz NOT NULL, p pair);
      INSERT INTO public.with_composite VALUES
        (1, '2020-01-01', ROW(1, 'x')), (2, '2020-01-02', ROW(NULL, NULL)), (3, '2020-01-03', NULL)`);
    const { binary, rows, names } = await readBoth(client, 'public.with_composite', 'at');
    const p = names.indexOf('p');
    expect(column(rows, p)).toEqual(['(1,x)', '(,)', null]);
    // IS NULL is true for ROW(NULL, NULL): tested that way, the value would be archived as SQL NULL.
    expect(column(binary, p)).toEqual(column(rows, p));
  });

  it('keeps a composite key whose fields are all NULL in the cursor (the next chunk must resume after it)', async () => {
    await client.query(`
      CREATE TYPE kpair AS (a int, b int);
      CREATE TABLE public.composite_key (k kpair PRIMARY KEY, at timestamptz NOT NULL);
      INSERT INTO public.composite_key VALUES
        (ROW(1, 2), '2020-01-01'), (ROW(NULL, NULL), '2020-01-01'), (ROW(3, 4), '2020-02-01')`);
    const resolved = await resolveTable(client, 'public.composite_key');
    const action = takingArchiveAction();
    const input = (cursor: unknown) => archiveTakeInput(resolved, cursor, 1);
    await client.query('BEGIN');
    try {
      // (1,2) sorts before (,) (NULL fields sort last): the second chunk takes the all-NULL key.
      const first = await action.take(client, input(null));
      const second = await action.take(client, input(first?.cursor));
      // The cursor (and the ledger's maxKey) hold the key's text, as the row protocol gives it.
      expect(second?.cursor).toEqual({ kind: 'keyset', values: ['2020-01-01 00:00:00+00', '(,)'] });
      // With a null there, every next chunk (and every retry: the ledger's cursor is authoritative) would fail.
      const third = await action.take(client, input(second?.cursor));
      expect(third?.rows).toBe(1);
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('calls pg_catalog.format, not a format(text, <type>) that search_path finds first', async () => {
    await client.query(`
      CREATE TABLE public.forged (id int PRIMARY KEY, at timestamptz NOT NULL, amount numeric);
      INSERT INTO public.forged VALUES (1, '2020-01-01', 12.5), (2, '2020-01-02', NULL)`);
    // An exact-type overload beats pg_catalog.format(text, VARIADIC "any"); search_path is "$user", public.
    // It runs as the archiving role (on PostgreSQL <= 14 anyone may create it in public).
    await client.query(
      `CREATE FUNCTION public.format(text, numeric) RETURNS text LANGUAGE sql AS $$ SELECT '999.99' $$;
       CREATE FUNCTION public.format(text, timestamptz) RETURNS text LANGUAGE sql AS $$ SELECT '1999-12-31 00:00:00+00' $$`,
    );
    try {
      const { binary, rows, names } = await readBoth(client, 'public.forged', 'at');
      const amount = names.indexOf('amount');
      expect(column(rows, amount)).toEqual(['12.5', null]);
      // A public.format(text, numeric) is never called: the real value is archived, not the forged one.
      expect(column(binary, amount)).toEqual(column(rows, amount));
      // Nor one for timestamptz: the time text feeds the Hive partition, the ledger's times and the cursor.
      expect(binary.ok && timeTexts(binary.taken)).toEqual(rows.ok && timeTexts(rows.taken));
    } finally {
      await client.query(
        'DROP FUNCTION public.format(text, numeric); DROP FUNCTION public.format(text, timestamptz)',
      );
    }
  });

  it.each([
    // A user type whose pg_type.typname is a built-in's: the catalog reports baseType 'bool' / 'text' / 'int8'
    // (typname only, no namespace), and the binary reader takes its send format for the built-in's.
    {
      name: 'an enum called bool',
      ddl: `CREATE TYPE public.bool AS ENUM ('no', 'yes')`,
      type: 'public.bool',
      values: [`'no'`, `'yes'`],
    },
    {
      name: 'a composite called text',
      ddl: `CREATE TYPE public.text AS (a int, b int)`,
      type: 'public.text',
      values: [`ROW(1, 2)`, `ROW(3, 4)`],
    },
    {
      name: 'an enum called int8',
      ddl: `CREATE TYPE public.int8 AS ENUM ('a', 'bb')`,
      type: 'public.int8',
      values: [`'a'`, `'bb'`],
    },
  ])('never archives $name from the bytes of another type', async ({ ddl, type, values }) => {
    const table = `shadow_${type.replace('public.', '')}`;
    await client.query(
      `${ddl}; CREATE TABLE public.${table} (id int PRIMARY KEY, at timestamptz NOT NULL, v ${type})`,
    );
    await client.query(
      `INSERT INTO public.${table} VALUES ${values.map((v, i) => `(${i + 1}, '2020-01-0${i + 1}', ${v})`).join(', ')}`,
    );
    const { binary, rows, names } = await readBoth(client, `public.${table}`, 'at');
    const v = names.indexOf('v');
    // The row protocol either stores the value's text or refuses the chunk; the binary reading must agree.
    // Read by a built-in's send format, an enum 'no' would be boolean true, a composite its record_send bytes.
    expect(column(binary, v)).toEqual(column(rows, v));
  });
});

describe('checked and sound (passing)', () => {
  it('COPY errors keep their SQLSTATE and leave the connection usable', async () => {
    await client.query(`CREATE TABLE public.locked_t (id int PRIMARY KEY, at timestamptz)`);
    await client.query('BEGIN');
    await client.query(`SET LOCAL statement_timeout = '200ms'`);
    const e1 = await copyOut(client, `COPY (SELECT pg_sleep(2)) TO STDOUT (FORMAT binary)`).catch((e) => e);
    await client.query('ROLLBACK');
    expect((e1 as { code?: string }).code).toBe('57014');
    const holder = await db.pool.connect();
    await holder.query('BEGIN; LOCK TABLE public.locked_t IN ACCESS EXCLUSIVE MODE');
    await client.query('BEGIN');
    await client.query(`SET LOCAL lock_timeout = '200ms'`);
    const e2 = await copyOut(
      client,
      `COPY (WITH d AS (DELETE FROM public.locked_t RETURNING *) SELECT * FROM d) TO STDOUT (FORMAT binary)`,
    ).catch((e) => e);
    await client.query('ROLLBACK');
    await holder.query('ROLLBACK');
    holder.release();
    expect((e2 as { code?: string }).code).toBe('55P03');
    expect((await client.query('SELECT 1 AS x')).rows[0]).toEqual({ x: '1' });
  });

  it('writes a COPY into a buffer given back by an earlier one, never into one still held', async () => {
    const buffers = new CopyBuffers();
    const sql = (from: number) =>
      `COPY (SELECT g, repeat('x', 40) FROM generate_series(${from}, ${from + 999}) g) TO STDOUT (FORMAT binary)`;
    const first = await copyOut(client, sql(1), { expectedBytes: 100_000, buffers });
    const kept = Buffer.from(first.data);
    // Held: the second COPY gets other memory, and the first one's bytes stay as they were.
    const second = await copyOut(client, sql(5001), { expectedBytes: 100_000, buffers });
    expect(second.data.buffer).not.toBe(first.data.buffer);
    expect(first.data.equals(kept)).toBe(true);
    // Given back: the third COPY writes into the first one's memory, and reads its own rows.
    first.release();
    const third = await copyOut(client, sql(9001), { expectedBytes: 100_000, buffers });
    expect(third.data.buffer).toBe(first.data.buffer);
    expect(third.rows).toBe(1000);
    expect(third.data.equals(second.data)).toBe(false);
    expect(third.data.length).toBe(second.data.length);
  });

  it('rejects, and leaves the connection usable, when pg has a callback on the query (query_timeout) or a piece cannot be kept', async () => {
    // pg gives a query a callback when the client has query_timeout: the error must still settle the COPY.
    const timed = new pg.Client({
      connectionString: db.url,
      options: SESSION_OPTIONS,
      query_timeout: 30_000,
    });
    await timed.connect();
    try {
      const error = await copyOut(timed, 'COPY (SELECT 1 / 0) TO STDOUT (FORMAT binary)').catch((e) => e);
      expect((error as { code?: string }).code).toBe('22012');
      expect((await timed.query('SELECT 2 AS x')).rows[0]).toEqual({ x: 2 });
    } finally {
      await timed.end();
    }
    // A failure inside the data handler (here the caller's) is the COPY's rejection, not an uncaught exception.
    const failing = await copyOut(
      client,
      'COPY (SELECT g FROM generate_series(1, 5000) g) TO STDOUT (FORMAT binary)',
      {
        onData: () => {
          throw new Error('cannot keep this piece');
        },
      },
    ).catch((e) => e);
    expect((failing as Error).message).toBe('cannot keep this piece');
    expect((await client.query('SELECT 3 AS x')).rows[0]).toEqual({ x: '3' });
  });

  it('gives a buffer back once: a second release does not hand it to two COPYs', async () => {
    const buffers = new CopyBuffers();
    const sql = 'COPY (SELECT g FROM generate_series(1, 1000) g) TO STDOUT (FORMAT binary)';
    const first = await copyOut(client, sql, { expectedBytes: 20_000, buffers });
    first.release();
    const second = await copyOut(client, sql, { expectedBytes: 20_000, buffers });
    expect(second.data.buffer).toBe(first.data.buffer);
    first.release(); // late and wrong: must not free the buffer `second` still uses
    const third = await copyOut(client, sql, { expectedBytes: 20_000, buffers });
    expect(third.data.buffer).not.toBe(second.data.buffer);
  });

  it("gives the row count of the COPY's own command tag (what the chunk checks its decoded rows against)", async () => {
    await client.query(`CREATE TABLE public.counted (id int PRIMARY KEY, at timestamptz)`);
    await client.query(`INSERT INTO public.counted SELECT g, now() FROM generate_series(1, 1234) g`);
    await client.query('BEGIN');
    const { data, rows } = await copyOut(
      client,
      `COPY (WITH d AS (DELETE FROM public.counted WHERE id <= 777 RETURNING *) SELECT * FROM d) TO STDOUT (FORMAT binary)`,
    );
    await client.query('ROLLBACK');
    expect(rows).toBe(777);
    expect(data.length).toBeGreaterThan(777 * 8);
  });
});

function same(a: Reading, b: Reading): void {
  if (!a.ok || !b.ok) {
    expect(a.ok ? 'ok' : `${a.error.name}: ${a.error.message}`).toBe(
      b.ok ? 'ok' : `${b.error.name}: ${b.error.message}`,
    );
    return;
  }
  for (let c = 0; c < b.taken.values.length; c++) {
    const x = vectorToArray(a.taken.values[c] ?? []).map(plainValue);
    const y = vectorToArray(b.taken.values[c] ?? []).map(plainValue);
    for (let r = 0; r < y.length; r++) {
      if (
        !Object.is(x[r], y[r]) &&
        JSON.stringify(x[r], (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)) !==
          JSON.stringify(y[r], (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))
      )
        expect({ c, r, v: x[r] }).toEqual({ c, r, v: y[r] });
    }
  }
  expect(timeTexts(a.taken)).toEqual(timeTexts(b.taken));
  for (let r = 0; r < b.taken.rows; r++) expect(a.taken.orderTextAt(r)).toEqual(b.taken.orderTextAt(r));
}

describe('checked and sound: equivalence (passing)', () => {
  it('random numerics, floats, dates, timestamps', async () => {
    await client.query(`
      CREATE TABLE public.rnd (id int PRIMARY KEY, at timestamptz NOT NULL,
        n1 numeric(38,0), n2 numeric(38,38), n3 numeric(10,-5), n4 numeric(3,7), n5 numeric(18,9), n6 numeric(19,2),
        n7 numeric(2,-30), f4 real, f8 double precision, d date, ts timestamp, tz timestamptz);
      INSERT INTO public.rnd SELECT g, '2020-01-01'::timestamptz + g * interval '1 ms',
        (floor(random() * 9.99e37) * sign(random() - 0.5))::numeric(38,0),
        (random() * sign(random() - 0.5))::numeric(38,38),
        (floor(random() * 9.99e14) * sign(random() - 0.5))::numeric(10,-5),
        (random() * 0.0000999 * sign(random() - 0.5))::numeric(3,7),
        (random() * 1e9 * sign(random() - 0.5))::numeric(18,9),
        (random() * 1e17 * sign(random() - 0.5))::numeric(19,2),
        (floor(random() * 9.4e31))::numeric(2,-30),
        (random() * 10 ^ (random() * 70 - 35))::real,
        (random() * 10 ^ (random() * 600 - 300))::float8,
        '4713-01-01 BC'::date + floor(random() * 2000000000)::int,
        '4713-01-01 00:00:00 BC'::timestamp + random() * interval '100000 years',
        '4713-01-01 00:00:00+00 BC'::timestamptz + random() * interval '100000 years'
      FROM generate_series(1, 20000) g`);
    const { binary, rows } = await readBoth(client, 'public.rnd', 'at');
    same(binary, rows);
  });

  it('other types through format', async () => {
    await client.query(
      `CREATE EXTENSION IF NOT EXISTS citext; CREATE EXTENSION IF NOT EXISTS hstore; CREATE EXTENSION IF NOT EXISTS ltree; CREATE EXTENSION IF NOT EXISTS cube;`,
    );
    await client.query(`
      CREATE TYPE pr AS (a int, b text);
      CREATE DOMAIN posint AS int CHECK (VALUE > 0);
      CREATE DOMAIN intarr AS int[];
      CREATE TABLE public.misc (k citext PRIMARY KEY, at timestamptz NOT NULL, h hstore, l ltree, cu cube,
        r int4range, mr int4multirange, ts tsvector, lsn pg_lsn, vb varbit, arr_pr pr[], dom posint, da intarr,
        mon money, "char" "char", nm name, bp char(3), bparr char(3)[], tt timetz, iv interval, x xml, js json, jb jsonb,
        nn numeric, o oid, bigarr int8[], f4arr real[], darr date[], tsarr timestamptz[]);
      INSERT INTO public.misc VALUES
       ('Ké''y\\', '2020-01-01', 'a=>1,"b c"=>NULL', 'a.b.c', '(1,2),(3,4)', '[1,5)', '{[1,2),[5,9)}', 'a fat:1 cat',
        '16/B374D848', B'101', ARRAY[ROW(NULL,NULL)::pr, ROW(1,'x')::pr], 5, '{1,2}', '-12.34', 'x', 'nm', 'é', '{"é","a"}',
        '12:00+05:30', '-1 day 3 hours', '<a/>', '{"a" : 1}', '{"b":2, "a":[1,2]}', 'NaN', 4294967295,
        '{-9223372036854775808,NULL}', '{NaN,-0,Infinity}', '{infinity,4713-01-01 BC}', '{-infinity,"2020-01-01 00:00:00.5+00"}'),
       ('a', '2020-01-02', '', '', '(0)', 'empty', '{}', '', '0/0', B'', '{}', NULL, '{}', '0', '', '', '', '{}',
        '00:00+00', '0', '', 'null', 'null', 'Infinity', 0, '{}', '{}', '{}', '{}')`);
    const { binary, rows } = await readBoth(client, 'public.misc', 'at');
    same(binary, rows);
  });

  it('partitioned keyless table and a keyed partitioned table via take()', async () => {
    await client.query(`
      CREATE TABLE public.parted (at timestamptz NOT NULL, "Note Text" text, v numeric(5,2)) PARTITION BY RANGE (at);
      CREATE TABLE public.parted_a PARTITION OF public.parted FOR VALUES FROM ('2019-01-01') TO ('2020-01-01');
      CREATE TABLE public.parted_b PARTITION OF public.parted FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
      INSERT INTO public.parted SELECT '2019-12-31'::timestamptz + (g % 3) * interval '12 hours', 'n''\\' || g, g / 100.0 FROM generate_series(1, 30) g`);
    const { binary, rows } = await readBoth(client, 'public.parted', 'at');
    same(binary, rows);
    expect(binary.ok && binary.taken.orderTextAt(0).length).toBe(3);
    const resolved = await resolveTable(client, 'public.parted');
    const action = takingArchiveAction();
    const input = (cursor: unknown, limit: number) => archiveTakeInput(resolved, cursor, limit, 'month');
    await client.query('BEGIN');
    try {
      let cursor: unknown = null;
      let total = 0;
      const seen: string[] = [];
      for (let i = 0; i < 20; i++) {
        const taken = await action.take(client, input(cursor, 7));
        if (!taken) break;
        total += taken.rows;
        seen.push(JSON.stringify([taken.minTime, taken.maxTime, taken.minKey, taken.maxKey]));
        cursor = taken.cursor;
      }
      expect(total).toBe(30);
      console.log(seen.join('\n'));
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('never writes key values into the statement text (pg_stat_activity and error logs show it)', async () => {
    await client.query(`
      CREATE TABLE public.by_email (email text PRIMARY KEY, at timestamptz NOT NULL);
      INSERT INTO public.by_email VALUES ('alice.o''hara@example.com', '2020-01-01'), ('bob@example.com', '2020-01-01')`);
    const resolved = await resolveTable(client, 'public.by_email');
    const action = takingArchiveAction();
    const texts: string[] = [];
    const recording = recordingClient(texts);
    const input = (cursor: unknown) => archiveTakeInput(resolved, cursor, 1);
    await client.query('BEGIN');
    try {
      const first = await action.take(recording as never, input(null));
      expect(first?.cursor).toEqual({
        kind: 'keyset',
        values: ['2020-01-01 00:00:00+00', "alice.o'hara@example.com"],
      });
      const second = await action.take(recording as never, input(first?.cursor));
      expect(second?.maxKey).toEqual(['bob@example.com']);
    } finally {
      await client.query('ROLLBACK');
    }
    expect(texts.some((text) => text.startsWith('COPY ('))).toBe(true);
    for (const text of texts) expect(text).not.toContain('example.com');
  });

  it('sizes the next COPY buffer within the byte budget after a chunk of one wide row', async () => {
    // One 200 KB row alone in its Hive partition, then narrow rows: the next chunk's 50 000-row limit at the wide
    // chunk's bytes per row asked for 21 GB (a RangeError, the run failed) before the estimate was capped.
    await client.query(`
      CREATE TABLE public.wide_then_narrow (id bigint PRIMARY KEY, at timestamptz NOT NULL, body bytea);
      INSERT INTO public.wide_then_narrow VALUES (1, '2020-06-01', decode(repeat('ab', 200000), 'hex'));
      INSERT INTO public.wide_then_narrow
        SELECT g, '2021-01-01'::timestamptz + g * interval '1 s', '\\x00' FROM generate_series(2, 2001) AS g`);
    const resolved = await resolveTable(client, 'public.wide_then_narrow');
    const action = takingArchiveAction();
    await client.query('BEGIN');
    try {
      const first = await action.take(client, archiveTakeInput(resolved, null, 50_000));
      expect(first?.rows).toBe(1);
      const second = await action.take(client, archiveTakeInput(resolved, first?.cursor, 50_000));
      expect(second?.rows).toBe(2000);
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('deletes without row locks while no row is held, and passes over a held row with SKIP LOCKED', async () => {
    await client.query(`
      CREATE TABLE public.held (n integer PRIMARY KEY, at timestamptz NOT NULL);
      INSERT INTO public.held VALUES (1, '2020-01-01'), (2, '2020-01-02'), (3, '2020-01-03'), (4, '2020-01-04')`);
    const resolved = await resolveTable(client, 'public.held');
    const action = takingArchiveAction();
    const texts: string[] = [];
    const recording = recordingClient(texts);
    const copies = () => texts.filter((text) => text.startsWith('COPY ('));
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    const input = (cursor: unknown) => archiveTakeInput(resolved, cursor, 1);
    await client.query('BEGIN');
    try {
      const first = await action.take(recording as never, input(null));
      expect(first?.maxKey).toEqual(['1']);
      expect(copies()).toHaveLength(1);
      expect(copies()[0]).not.toContain('FOR UPDATE');
      // Another session holds row 2: the plain DELETE waits 20 ms at most, then SKIP LOCKED takes row 3.
      await holder.query('BEGIN; SELECT 1 FROM public.held WHERE n = 2 FOR UPDATE');
      const second = await action.take(recording as never, input(first?.cursor));
      expect(second?.maxKey).toEqual(['3']);
      expect(copies()).toHaveLength(3);
      expect(copies()[2]).toContain('FOR UPDATE SKIP LOCKED');
      // And the next chunks go straight to SKIP LOCKED for a while.
      const third = await action.take(recording as never, input(second?.cursor));
      expect(third?.maxKey).toEqual(['4']);
      expect(copies()).toHaveLength(4);
      expect(copies()[3]).toContain('FOR UPDATE SKIP LOCKED');
      // Row 2 is still in the table, untouched: the rolled-back plain DELETE took nothing.
      const left = await client.query<{ n: number }>('SELECT n FROM public.held ORDER BY n');
      expect(left.rows.map((r) => Number(r.n))).toEqual([2]);
    } finally {
      await client.query('ROLLBACK');
      await holder.end();
    }
  });
  it('computes the cutoff and the cursor once per chunk statement, not once per row; a partitioned parent still skips partitions', async () => {
    // The COPY form reads its values back from settings, which PostgreSQL computes wherever they are reached:
    // as a filter (a row comparison over a time-only index, a scan without an index), once per row.
    await client.query(`
      CREATE TABLE public.filtered (id int PRIMARY KEY, at timestamptz NOT NULL, v text);
      CREATE INDEX ON public.filtered (at);
      INSERT INTO public.filtered SELECT g, '2020-01-01'::timestamptz + g * interval '1 minute', 'v' || g
        FROM generate_series(1, 2000) g;
      ANALYZE public.filtered;
      CREATE TABLE public.ranged (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
      CREATE TABLE public.ranged_2030 PARTITION OF public.ranged FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');
      CREATE TABLE public.ranged_rest PARTITION OF public.ranged DEFAULT;
      INSERT INTO public.ranged SELECT g, '2020-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 200) g;
      INSERT INTO public.ranged VALUES (0, '2030-06-01')`);
    const action = takingArchiveAction();
    const plans: string[] = [];
    /** The second chunk's DELETE (it has a cursor), explained in the chunk's own transaction and settings. */
    const explainSecondChunk = async (table: string, scans: 'index' | 'seq') => {
      const resolved = await resolveTable(client, table);
      const texts: string[] = [];
      const recording = recordingClient(texts);
      await client.query('BEGIN');
      try {
        if (scans === 'seq')
          await client.query('SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off');
        const first = await action.take(recording as never, archiveTakeInput(resolved, null, 100));
        await action.take(recording as never, archiveTakeInput(resolved, first?.cursor, 100));
        const copy = texts.filter((text) => text.startsWith('COPY (')).at(-1) ?? '';
        const deletion = copy.slice('COPY ('.length, copy.lastIndexOf(') TO STDOUT'));
        const plan = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${deletion}`);
        return plan.rows.map((row) => row['QUERY PLAN']).join('\n');
      } finally {
        await client.query('ROLLBACK');
      }
    };
    for (const scans of ['index', 'seq'] as const) {
      const plan = await explainSecondChunk('public.filtered', scans);
      plans.push(plan);
      expect(plan).toMatch(/Filter: .*ROW\(at, id\) > ROW\(\$\d+, \$\d+\)/);
      expect(plan).not.toContain('current_setting');
    }
    // On a partitioned parent (here no leaf is used: the rows are in the DEFAULT partition) the cutoff and the
    // chunk's upper bound (the end of the year 2020) stay stable expressions, which the planner uses to skip the
    // 2030 partition before the scan; the cursor is computed once all the same.
    const parent = await explainSecondChunk('public.ranged', 'index');
    expect(parent).toMatch(/ROW\(at, tableoid, ctid\) > ROW\(\$\d+, \$\d+, \$\d+\)/);
    expect(parent).toContain('Subplans Removed: 1');
  });
});
