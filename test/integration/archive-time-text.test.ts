/**
 * The archive makes its time texts (cursor, ledger ranges, Hive partitions) from the binary values instead of
 * asking the server for `time::text` of every row (functions/core/parquet/pg-time-text.ts): they must be the
 * server's own text, byte for byte, in the product's session settings, and the day must be the text's date.
 */
import pg from 'pg';
import { copyOut } from '../../functions/adapters/copy-out.ts';
import { SESSION_OPTIONS } from '../../functions/commons/database.ts';
import { valueAt } from '../../functions/core/parquet/column-vector.ts';
import { decodeCopyBinary } from '../../functions/core/parquet/copy-binary.ts';
import { dayOf, pgTimeText, type TimeKind } from '../../functions/core/parquet/pg-time-text.ts';
import { TEXT_TYPES } from '../support/copy-binary.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('time_text');
  client = new pg.Client({ connectionString: db.url, options: SESSION_OPTIONS, types: TEXT_TYPES });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/** Edges of each type's range and of the text's shape (BC, five-digit years, leap days, fractions). */
const EDGES = [
  '4713-01-01 00:00:00 BC',
  '0044-03-15 12:00:00.5 BC',
  '0001-12-31 23:59:59.999999 BC',
  '0001-01-01 00:00:00',
  '1899-12-31 23:59:59.000001',
  '1969-12-31 23:59:59.999999',
  '1970-01-01 00:00:00',
  '2000-02-29 12:34:56.1',
  '2024-02-29 00:00:00.12',
  '2026-12-03 09:27:34.738458',
  '9999-12-31 23:59:59.999999',
  '10000-01-01 00:00:00',
  '200000-06-30 23:59:59.999999', // PostgreSQL's own maximum (294276 AD) has no int64 microseconds since 1970
];

describe('time texts made from binary values', () => {
  it("are the server's own text for every kind, edges and 20 000 random values included", async () => {
    await client.query(
      `
      CREATE TABLE times (tz timestamptz, ts timestamp, d date);
      INSERT INTO times SELECT v::timestamptz, v::timestamp, v::date
        FROM unnest($1::text[]) AS v;
      -- Random instants over ±3000 years, with random microseconds.
      INSERT INTO times SELECT t, t::timestamp, t::date
        FROM (SELECT timestamptz '2000-01-01' + (random() - 0.5) * interval '3000 years'
                     + floor(random() * 1e6) * interval '1 microsecond' AS t
                FROM generate_series(1, 20000)) AS r;
      INSERT INTO times VALUES ('infinity', 'infinity', 'infinity'), ('-infinity', '-infinity', '-infinity');
    `.replace('$1::text[]', `ARRAY[${EDGES.map((e) => `'${e}'`).join(', ')}]::text[]`),
    );
    const { data } = await copyOut(client, 'COPY (SELECT tz, ts, d FROM times) TO STDOUT (FORMAT binary)');
    const kinds: TimeKind[] = ['timestamptz', 'timestamp', 'date'];
    const decoded = decodeCopyBinary(
      data,
      kinds.map((kind) => ({ name: kind, kind })),
    );
    const { rows } = await client.query<{ tz: string; ts: string; d: string; days: string | null }>(
      `SELECT tz::text AS tz, ts::text AS ts, d::text AS d,
              CASE WHEN isfinite(tz) THEN (tz::date - date '1970-01-01')::text END AS days FROM times`,
    );
    expect(decoded.rows).toBe(rows.length);
    expect(rows.length).toBe(EDGES.length + 20_002);
    const mismatches: string[] = [];
    rows.forEach((row, r) => {
      kinds.forEach((kind, k) => {
        const value = valueAt(decoded.values[k] ?? [], r);
        const made = pgTimeText(kind, value as bigint | number);
        const server = row[kind === 'timestamptz' ? 'tz' : kind === 'timestamp' ? 'ts' : 'd'];
        if (made !== server) mismatches.push(`${kind} row ${r}: ${made} ≠ ${server}`);
      });
      const day = dayOf('timestamptz', valueAt(decoded.values[0] ?? [], r) as bigint);
      if (String(day ?? null) !== String(row.days)) mismatches.push(`day row ${r}: ${day} ≠ ${row.days}`);
    });
    expect(mismatches.slice(0, 10)).toEqual([]);
  });
});
