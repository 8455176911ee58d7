/**
 * The archive reads a chunk's deleted rows through COPY binary into column vectors. These tests hold it to
 * the row protocol's text, value for value, on the same rows: every type with a binary reader at its edges
 * (infinities, BC dates, NaN, -0, integer extremes), text types the binary path sends raw (char(n) keeps its
 * padding), types whose cast to text is not their output (inet, boolean, "char"), keys of every kind; and a
 * LATIN1 database's text arrives as UTF-8 (binary text is converted to the client encoding, as rows are), a
 * SQL_ASCII database's invalid bytes are replaced as the row protocol replaces them.
 */

import pg from 'pg';
import type { TakenColumns } from '../../functions/actions/archive/taken-columns.ts';
import { resolveTable } from '../../functions/adapters/catalog.ts';
import { SESSION_OPTIONS } from '../../functions/commons/database.ts';
import type { ParquetColumnPlan } from '../../functions/core/parquet/column-plan.ts';
import { vectorToArray } from '../../functions/core/parquet/column-vector.ts';
import { encodeParquetColumns } from '../../functions/core/parquet/encode.ts';
import { UnrepresentableValueError } from '../../functions/core/parquet/errors.ts';
import {
  archiveTakeInput,
  plainValue,
  readBoth,
  TEXT_TYPES,
  taken,
  takingArchiveAction,
  timeTexts,
} from '../support/copy-binary.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('copy_binary');
  client = new pg.Client({ connectionString: db.url, options: SESSION_OPTIONS, types: TEXT_TYPES });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/** Both readings of one chunk of `table` (ordered by `time`); either one's error is thrown. */
async function bothPaths(
  table: string,
  time: string,
): Promise<{ binary: TakenColumns; rows: TakenColumns; plan: ParquetColumnPlan[] }> {
  const both = await readBoth(client, table, time);
  return { binary: taken(both.binary), rows: taken(both.rows), plan: both.plan };
}

/** Both readings refuse the chunk, with the same error. */
async function expectBothRefuse(
  table: string,
  error: RegExp | (new (...args: never[]) => Error),
): Promise<void> {
  const both = await readBoth(client, table, 'at');
  expect(() => taken(both.binary)).toThrow(error);
  expect(() => taken(both.rows)).toThrow(error);
}

function expectSame(
  binary: TakenColumns,
  rows: TakenColumns,
  expectedRows: number,
  plan: readonly ParquetColumnPlan[],
): void {
  expect(binary.rows).toBe(expectedRows);
  expect(rows.rows).toBe(expectedRows);
  // Object.is per value: -0, NaN and bigint vs number all count. STRING columns arrive as their UTF-8 bytes.
  for (let c = 0; c < rows.values.length; c++) {
    const a = vectorToArray(binary.values[c] ?? []);
    const b = vectorToArray(rows.values[c] ?? []);
    expect(a.length).toBe(b.length);
    for (let r = 0; r < b.length; r++) {
      const right = b[r];
      const raw = a[r];
      const left =
        typeof right === 'string' && raw instanceof Uint8Array ? Buffer.from(raw).toString('utf8') : raw;
      if (left instanceof Uint8Array || Array.isArray(left)) expect(left).toEqual(right);
      else expect({ column: c, row: r, value: left }).toStrictEqual({ column: c, row: r, value: right });
      if (typeof right === 'number') expect(Object.is(left, right)).toBe(true);
    }
  }
  expect(timeTexts(binary)).toEqual(timeTexts(rows));
  for (let r = 0; r < expectedRows; r++) expect(binary.orderTextAt(r)).toEqual(rows.orderTextAt(r));
  // And the archive object itself: the same Parquet bytes from both readings.
  const fromBinary = encodeParquetColumns(plan, binary.values, { compression: 'snappy' });
  const fromText = encodeParquetColumns(plan, rows.values, { compression: 'snappy' });
  expect(Buffer.from(fromBinary).equals(Buffer.from(fromText))).toBe(true);
}

describe('COPY binary chunk reading', () => {
  it('reads every type exactly as the row protocol does, edges included', async () => {
    await client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN positive_big AS bigint CHECK (VALUE > 0);
      CREATE TABLE public."Edge Rows" (
        "Id" positive_big PRIMARY KEY, at timestamptz NOT NULL, s smallint, i integer, b bigint, f4 real,
        f8 double precision, ok boolean, d date, ts timestamp, tz timestamptz, n numeric(12,4), free numeric,
        t text, v varchar(10), c char(5), ch "char", nm name, j json, jb jsonb, x xml, ip inet, net cidr,
        mac macaddr, u uuid, by bytea, iv interval, tm time, tt timetz, m mood, arr integer[], tarr text[],
        barr boolean[], carr char(3)[], bits bit(4), mon money, pt point, wide numeric(38,10),
        neg numeric(5,-2), frac numeric(3,5), tiny numeric(4,0))`);
    await client.query(`
      INSERT INTO public."Edge Rows" VALUES
      (1, '2020-01-01 00:00:00.000001+00', -32768, -2147483648, -9223372036854775808, 'NaN', '-0', true,
       '-infinity', '-infinity', '-infinity', -99999999.9999, 'NaN', E'tab\\there\\nnew \\\\ back ünï', 'v',
       'ab', 'é', 'nm', '{"a": [1, "x"]}', '{"b": {"c": null}}', '<a>é</a>', '10.0.0.1', '10.0.0.0/8',
       '08:00:2b:01:02:03', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff', '1 year 2 mons -3 days 04:05:06.789',
       '24:00:00', '23:59:59.999999+05:30', 'sad', '{1,NULL,-3}', '{"a,b","c\\"d",NULL,""}', '{t,f,NULL}',
       '{"x  ","y"}', B'1010', '12.34', '(1.5,-2)', '1234567890123456789012345678.0123456789', 9999900,
       0.00999, -9999),
      (2, '2020-01-01 00:00:00.000002+00', 32767, 2147483647, 9223372036854775807, 'Infinity', '-Infinity',
       false, 'infinity', 'infinity', 'infinity', 0, '1e-30', '', '', '', NULL, '', '[]', '[]', NULL,
       '::1', '::/0', NULL, NULL, '\\x', 'P0D', '00:00', '00:00+00', 'happy', '{}', '{}', '{}', '{}', NULL,
       '-0.01', NULL, '-0.0000000001', -100, -0.00001, 0),
      (3, '2020-01-01 00:00:00.000003+00', 0, 0, 0, '-Infinity', 1.7976931348623157e308, NULL,
       '4713-01-01 BC', '4713-01-01 00:00:00 BC', '0001-01-01 00:00:00+00 BC', NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (4, '2020-01-01 00:00:00.000004+00', NULL, NULL, NULL, 1.17549435e-38, 5e-324, true, '5874897-12-31',
       '294276-12-31 23:59:59.999999', NULL, 1.5, 12345678901234567890.123, 'x', 'y', 'z', 'a', 'b', 'null',
       '"s"', '<b/>', '192.168.1.1/24', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', '00000000-0000-0000-0000-000000000000',
       '\\xdeadbeef', '-178000000 years', '12:34:56', '12:34:56-12', 'ok', '{0}', '{"\\\\"}', '{f}', '{"   "}',
       B'0000', '-92233720368547758.08', '(0,0)', 0, 0, 0, 10000 - 1)`);
    // Row 4's timestamp is beyond Parquet's int64 microseconds: both readings refuse it, naming the column.
    await expectBothRefuse('public."Edge Rows"', UnrepresentableValueError);
    await client.query(`UPDATE public."Edge Rows" SET ts = '200000-01-01 00:00:00' WHERE "Id" = 4`);
    const { binary, rows, plan } = await bothPaths('public."Edge Rows"', 'at');
    expectSame(binary, rows, 4, plan);
    // char(n) keeps its padding (a cast to text would trim it); inet shows no /32 (its cast to text would).
    const names = (await resolveTable(client, 'public."Edge Rows"')).columns.map((c) => c.name);
    expect(plainValue(vectorToArray(binary.values[names.indexOf('c')] ?? [])[0])).toBe('ab   ');
    expect(plainValue(vectorToArray(binary.values[names.indexOf('ip')] ?? [])[0])).toBe('10.0.0.1');
    expect(vectorToArray(binary.values[names.indexOf('wide')] ?? []).slice(0, 2)).toEqual([
      12345678901234567890123456780123456789n,
      -1n,
    ]);
    expect(vectorToArray(binary.values[names.indexOf('frac')] ?? []).slice(0, 2)).toEqual([999n, -1n]);
    // NaN has no DECIMAL form: both readings refuse it.
    await client.query(`UPDATE public."Edge Rows" SET n = 'NaN' WHERE "Id" = 2`);
    await expectBothRefuse('public."Edge Rows"', /NaN has no DECIMAL/);
  });

  it('keeps the order terms as PostgreSQL prints them: composite text/timestamp keys, no key (ctid)', async () => {
    await client.query(`
      CREATE TABLE public.composite (region text, at timestamptz, seq numeric, payload text,
                                     PRIMARY KEY (region, at, seq));
      INSERT INTO public.composite
        SELECT 'r' || g % 3, timestamptz '2020-01-01' + g * interval '1.5 seconds', g / 7.0, repeat('p', g)
          FROM generate_series(1, 50) g;
      CREATE TABLE public.keyless (at timestamptz, note text);
      INSERT INTO public.keyless SELECT timestamptz '2020-01-01' + (g % 5) * interval '1 day', 'n' || g
          FROM generate_series(1, 40) g`);
    const composite = await bothPaths('public.composite', 'at');
    expectSame(composite.binary, composite.rows, 50, composite.plan);
    expect(composite.binary.orderTextAt(0)).toEqual([
      '2020-01-01 00:00:01.5+00',
      'r1',
      '2020-01-01 00:00:01.5+00',
      '0.14285714285714285714',
    ]);
    const keyless = await bothPaths('public.keyless', 'at');
    expectSame(keyless.binary, keyless.rows, 40, keyless.plan);
    expect(keyless.binary.orderTextAt(0)[1]).toMatch(/^\(\d+,\d+\)$/);
  });

  it.each([
    // Converted by the server to the client encoding (UTF-8), as on the row protocol.
    { encoding: 'LATIN1', stored: `'café ÿ'`, read: 'café ÿ' },
    // SQL_ASCII: the server checks the bytes it sends as UTF-8; text that is not fails the chunk (the row
    // protocol fails the same way), and nothing is deleted.
    { encoding: 'SQL_ASCII', stored: `E'a\\xffb'`, read: /invalid byte sequence for encoding "UTF8"/ },
  ])("reads a $encoding database's text as the row protocol does", async ({ encoding, stored, read }) => {
    const name = `${new URL(db.url).pathname.slice(1)}_${encoding.toLowerCase()}`;
    await client.query(
      `CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE template0 ENCODING '${encoding}' LC_COLLATE 'C' LC_CTYPE 'C'`,
    );
    const url = new URL(db.url);
    url.pathname = `/${name}`;
    const other = new pg.Client({
      connectionString: url.toString(),
      options: SESSION_OPTIONS,
      types: TEXT_TYPES,
    });
    try {
      await other.connect();
      await other.query(`CREATE TABLE t (id int PRIMARY KEY, at timestamptz NOT NULL, note text)`);
      await other.query(`INSERT INTO t VALUES (1, '2020-01-01', ${stored}), (2, '2020-01-02', NULL)`);
      const resolved = await resolveTable(other, 'public.t');
      const action = takingArchiveAction();
      await other.query('BEGIN');
      const taking = action.take(other, archiveTakeInput(resolved, null, 100, 'month'));
      if (read instanceof RegExp) {
        await expect(taking).rejects.toThrow(read);
        await other.query('ROLLBACK');
        expect((await other.query('SELECT count(*)::int AS n FROM t')).rows[0]).toEqual({ n: '2' });
        return;
      }
      const taken = await taking;
      await other.query('ROLLBACK');
      expect(taken?.rows).toBe(2);
      expect(vectorToArray(taken?.columns.values[2] ?? []).map(plainValue)).toEqual([read, null]);
    } finally {
      await other.end();
      await client.query(`DROP DATABASE ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    }
  });
});
