/**
 * Every common column type, from a real PostgreSQL table through a real archive run into Parquet, read
 * back by DuckDB (an independent reader) and compared value by value with what PostgreSQL itself said
 * about the source rows before they were deleted.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { ledgerObjects, readObject, testConfig } from '../support/archive.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgl-types-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Each column: how PostgreSQL renders a source value as comparable text, and how DuckDB renders the
 * archived value the same way. Both sides are computed by the databases, not by our code.
 */
const COLUMNS: Array<{ name: string; type: string; pg: (c: string) => string; duck: (c: string) => string }> =
  [
    { name: 'small', type: 'smallint', pg: (c) => `${c}::text`, duck: (c) => `CAST(${c} AS VARCHAR)` },
    { name: 'int', type: 'integer', pg: (c) => `${c}::text`, duck: (c) => `CAST(${c} AS VARCHAR)` },
    { name: 'big', type: 'bigint', pg: (c) => `${c}::text`, duck: (c) => `CAST(${c} AS VARCHAR)` },
    {
      name: 'money_ish',
      type: 'numeric(12,4)',
      pg: (c) => `${c}::text`,
      duck: (c) => `CAST(${c} AS VARCHAR)`,
    },
    { name: 'wide', type: 'numeric(38,10)', pg: (c) => `${c}::text`, duck: (c) => `CAST(${c} AS VARCHAR)` },
    { name: 'free', type: 'numeric', pg: (c) => `${c}::text`, duck: (c) => `CAST(${c} AS VARCHAR)` },
    {
      name: 'f4',
      type: 'real',
      pg: (c) => `${c}::float8::text`,
      duck: (c) => `CAST(CAST(${c} AS DOUBLE) AS VARCHAR)`,
    },
    { name: 'f8', type: 'double precision', pg: (c) => `${c}::text`, duck: (c) => `CAST(${c} AS VARCHAR)` },
    { name: 'flag', type: 'boolean', pg: (c) => `${c}::text`, duck: (c) => `CAST(${c} AS VARCHAR)` },
    { name: 'note', type: 'text', pg: (c) => c, duck: (c) => c },
    { name: 'code', type: 'varchar(20)', pg: (c) => `${c}::text`, duck: (c) => c },
    { name: 'fixed', type: 'char(5)', pg: (c) => `${c}::text`, duck: (c) => `rtrim(${c})` },
    { name: 'uid', type: 'uuid', pg: (c) => `${c}::text`, duck: (c) => c },
    { name: 'doc', type: 'jsonb', pg: (c) => `${c}::text`, duck: (c) => c },
    { name: 'raw_json', type: 'json', pg: (c) => `${c}::text`, duck: (c) => c },
    { name: 'blob', type: 'bytea', pg: (c) => `encode(${c}, 'hex')`, duck: (c) => `lower(hex(${c}))` },
    { name: 'day', type: 'date', pg: (c) => `${c}::text`, duck: (c) => `CAST(${c} AS VARCHAR)` },
    {
      name: 'local_ts',
      type: 'timestamp',
      pg: (c) => `to_char(${c}, 'YYYY-MM-DD HH24:MI:SS.US')`,
      duck: (c) => `strftime(${c}, '%Y-%m-%d %H:%M:%S.%f')`,
    },
    {
      name: 'CreatedAt',
      type: 'timestamptz',
      pg: (c) => `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`,
      duck: (c) => `strftime(timezone('UTC', ${c}), '%Y-%m-%d %H:%M:%S.%f')`,
    },
    { name: 'at_time', type: 'time', pg: (c) => `${c}::text`, duck: (c) => c },
    { name: 'span', type: 'interval', pg: (c) => `${c}::text`, duck: (c) => c },
    // inet::text adds /32; format() gives the output function's text, which is what is archived.
    {
      name: 'addr',
      type: 'inet',
      pg: (c) => `CASE WHEN ${c} IS NOT NULL THEN format('%s', ${c}) END`,
      duck: (c) => c,
    },
    {
      name: 'tags',
      type: 'text[]',
      pg: (c) => `array_to_json(${c})::text`,
      duck: (c) => `CAST(to_json(${c}) AS VARCHAR)`,
    },
    {
      name: 'counts',
      type: 'integer[]',
      pg: (c) => `array_to_json(${c})::text`,
      duck: (c) => `CAST(to_json(${c}) AS VARCHAR)`,
    },
  ];

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

describe('archive type round trip', () => {
  it('archives every common type exactly: DuckDB reads back what PostgreSQL held', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare
    await db.pool.query(`SET TimeZone = 'UTC'; SET IntervalStyle = 'iso_8601'`);
    await db.pool.query(
      `CREATE TABLE public."Typed Rows" (id bigint PRIMARY KEY, ${COLUMNS.map((c) => `${q(c.name)} ${c.type}`).join(', ')})`,
    );
    await db.pool.query(`
      INSERT INTO public."Typed Rows"
      SELECT g,
        (g % 32000 - 16000)::smallint, g * 7919 - 2000000000, g::bigint * 3002399751580331 + 1,
        round((g * 12.3457 - 5000)::numeric, 4), ('12345678901234567890.' || lpad(g::text, 10, '0'))::numeric(38,10),
        ('-0.000' || g || '1234567890123456789')::numeric,
        (g / 3.0)::real, g * pi() * 1e10, g % 3 = 0,
        'O''Brien – Nguyễn ' || g || E' \\t "quoted" ' || repeat('x', g % 50), 'code-' || g, left('ab' || g, 5),
        md5(g::text)::uuid, jsonb_build_object('g', g, 'nested', jsonb_build_array(1, 'two', null), 's', 'x"y'),
        ('{"b": 1,  "a": [' || g || ']}')::json, decode(lpad(to_hex(g), 8, '0') || '00ff', 'hex'),
        date '2020-02-29' + g, timestamp '2019-12-31 23:59:59.999999' + g * interval '1 hour 1.000001 second',
        timestamptz '2020-01-01 00:00:00.000001+00' + g * interval '17 minutes 3.123457 seconds',
        time '00:00:00.000001' + g * interval '13 seconds', make_interval(years => g % 3, days => g, secs => g / 7.0),
        ('10.0.' || g % 256 || '.1/32')::inet, ARRAY['a,b', 'c"d', NULL, g::text, ''], ARRAY[g, NULL, -g]
      FROM generate_series(1, 3000) AS g`);
    // Edge row: NULL in every column.
    await db.pool.query(
      `INSERT INTO public."Typed Rows" (id, "CreatedAt") VALUES (0, timestamptz '2020-06-01 00:00:00.5+00')`,
    );
    // Extremes.
    await db.pool.query(`
      INSERT INTO public."Typed Rows" (id, small, "int", big, money_ish, f8, "CreatedAt", day, tags, counts, note)
      VALUES (-1, -32768, -2147483648, -9223372036854775808, -99999999.9999, 'Infinity', '2000-01-01 00:00:00+00', '0001-01-01', '{}', '{}', ''),
             (-2, 32767, 2147483647, 9223372036854775807, 99999999.9999, '-0', '2000-01-01 00:00:00+00', '9999-12-31', '{NULL}', '{NULL}', repeat('é', 10000))`);
    const select = (where: string) =>
      `SELECT id::text, ${COLUMNS.map((c) => `${c.pg(q(c.name))} AS ${q(c.name)}`).join(', ')} FROM public."Typed Rows" ${where} ORDER BY public."Typed Rows".id`;
    const source = await db.pool.query(select(`WHERE "CreatedAt" < timestamptz '2024-11-23 12:00:00+00'`));
    expect(source.rowCount).toBeGreaterThan(1000);
    const config = testConfig([
      {
        name: 'typed',
        table: 'public."Typed Rows"',
        action: 'archive',
        timeColumn: '"CreatedAt"',
        retention: 'P2Y',
        archive: { verify: 'read-back' },
        chunking: { initialRows: 400, minRows: 100, maxRows: 800 },
      },
    ]);

    // Act
    const result = await runPolicy(config, 'typed');

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(source.rowCount);
    const objects = await ledgerObjects(db.pool, result.summary?.runId);
    const files: string[] = [];
    for (const [i, object] of objects.entries()) {
      const file = join(dir, `${i}.parquet`);
      writeFileSync(file, await readObject(s3, bucket, object.key));
      files.push(file);
    }
    const duck = await (await DuckDBInstance.create()).connect();
    await duck.run(`SET TimeZone = 'UTC'`);
    const archived = (
      await duck.runAndReadAll(
        `SELECT CAST(id AS VARCHAR) AS id, ${COLUMNS.map((c) => `${c.duck(q(c.name))} AS ${q(c.name)}`).join(', ')}
           FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}]) ORDER BY id::BIGINT`,
      )
    ).getRowObjectsJson() as Array<Record<string, string | null>>;
    expect(archived).toHaveLength(source.rowCount ?? 0);
    const normalize = (name: string, value: unknown): unknown => {
      if (value === null || value === undefined) return null;
      const text = String(value);
      // JSON renderings differ in spacing only; compare structures.
      if (['tags', 'counts'].includes(name)) return JSON.parse(text);
      if (['f4', 'f8'].includes(name))
        return Number(text.replace(/^inf$/, 'Infinity').replace(/^-inf$/, '-Infinity'));
      return text;
    };
    for (const [i, expectedRow] of source.rows.entries()) {
      const actualRow = archived[i] as Record<string, unknown>;
      expect(actualRow.id).toBe(expectedRow.id);
      for (const column of COLUMNS) {
        expect({
          id: expectedRow.id,
          column: column.name,
          value: normalize(column.name, actualRow[column.name]),
        }).toEqual({
          id: expectedRow.id,
          column: column.name,
          value: normalize(column.name, expectedRow[column.name]),
        });
      }
    }
    // DuckDB sees the exact types, not strings, where Parquet has them.
    const types = (
      await duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${files[0]}')`)
    ).getRowObjectsJson();
    const typeOf = (name: string) => types.find((t) => t.column_name === name)?.column_type;
    expect(typeOf('big')).toBe('BIGINT');
    expect(typeOf('money_ish')).toBe('DECIMAL(12,4)');
    expect(typeOf('CreatedAt')).toBe('TIMESTAMP WITH TIME ZONE');
    expect(typeOf('local_ts')).toBe('TIMESTAMP');
    expect(typeOf('day')).toBe('DATE');
    expect(typeOf('blob')).toBe('BLOB');
    expect(typeOf('counts')).toBe('INTEGER[]');
    duck.closeSync();
  });
});
