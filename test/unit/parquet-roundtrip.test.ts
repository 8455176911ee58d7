/**
 * Encodes every mapped type with its edge values, then reads the file back with DuckDB and hyparquet
 * and compares with what the PostgreSQL text means. DuckDB is the stricter reader (it rejects bad
 * footers and checks logical types); hyparquet shows the raw stored values.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { type FileMetaData, parquetMetadata, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogColumn } from '../../functions/core/catalog-column.ts';
import { planParquetColumns } from '../../functions/core/parquet/column-plan.ts';
import {
  COLUMNS_METADATA_KEY,
  type EncodeParquetOptions,
  encodeParquet,
} from '../../functions/core/parquet/encode.ts';
import {
  CompressionUnavailableError,
  ParquetInputError,
  UnrepresentableValueError,
} from '../../functions/core/parquet/errors.ts';

const I64_MAX = 2n ** 63n - 1n;

/** One column: its PostgreSQL text values and what each must read back as. */
interface Case {
  readonly column: CatalogColumn;
  /** DuckDB's DESCRIBE type. */
  readonly duckType: string;
  /** SQL turning the quoted column into comparable text; default CAST AS VARCHAR. */
  readonly duckSql?: (quoted: string) => string;
  /** [PostgreSQL text, DuckDB text (a string array for lists), hyparquet value]. */
  readonly values: ReadonlyArray<readonly [string, unknown, unknown]>;
}

const scalar = (name: string, baseType: string, typeName = baseType, extra: Partial<CatalogColumn> = {}) => ({
  name,
  typeName,
  baseType,
  isArray: false,
  notNull: false,
  ...extra,
});
const numeric = (name: string, p: number, s: number) =>
  scalar(name, 'numeric', `numeric(${p},${s})`, { numericPrecision: p, numericScale: s });
const array = (name: string, baseType: string, extra: Partial<CatalogColumn> = {}) =>
  scalar(name, baseType, `${baseType}[]`, { isArray: true, arrayDims: 1, ...extra });

/** Lists come back from DuckDB as JSON arrays of element text. */
const listAsText = (q: string) => `CAST(to_json(CAST(${q} AS VARCHAR[])) AS VARCHAR)`;
const bytes = (...values: number[]) => Uint8Array.from(values);
/** Microseconds since the epoch computed by Date, an oracle independent of the parser. */
const utcMicros = (year: number, month: number, day: number, h = 0, m = 0, s = 0): bigint => {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(h, m, s, 0);
  return BigInt(date.getTime()) * 1000n;
};

const CASES: Case[] = [
  {
    column: scalar('id', 'int8', 'bigint', { notNull: true }),
    duckType: 'BIGINT',
    values: [
      ['-9223372036854775808', '-9223372036854775808', -(2n ** 63n)],
      ['9223372036854775807', '9223372036854775807', I64_MAX],
      ['0', '0', 0n],
    ],
  },
  {
    column: scalar('Int4 Col', 'int4', 'integer'),
    duckType: 'INTEGER',
    values: [
      ['-2147483648', '-2147483648', -2147483648],
      ['2147483647', '2147483647', 2147483647],
    ],
  },
  {
    column: scalar('small', 'int2', 'smallint'),
    duckType: 'SMALLINT',
    values: [
      ['-32768', '-32768', -32768],
      ['32767', '32767', 32767],
    ],
  },
  {
    column: numeric('dec5_2', 5, 2), // INT32 storage
    duckType: 'DECIMAL(5,2)',
    values: [
      ['-999.99', '-999.99', -99999n],
      ['0.00', '0.00', 0n],
      ['12.3', '12.30', 1230n],
      ['-0.50', '-0.50', -50n],
    ],
  },
  {
    column: numeric('Amount Due', 12, 2), // INT64 storage
    duckType: 'DECIMAL(12,2)',
    values: [
      ['9999999999.99', '9999999999.99', 999999999999n],
      ['-0.01', '-0.01', -1n],
    ],
  },
  {
    column: numeric('dec38_10', 38, 10), // FIXED_LEN_BYTE_ARRAY(16) storage
    duckType: 'DECIMAL(38,10)',
    values: [
      ['9999999999999999999999999999.9999999999', '9999999999999999999999999999.9999999999', 10n ** 38n - 1n],
      [
        '-9999999999999999999999999999.9999999999',
        '-9999999999999999999999999999.9999999999',
        -(10n ** 38n - 1n),
      ],
      ['0.0000000001', '0.0000000001', 1n],
      ['-1.5', '-1.5000000000', -15000000000n],
    ],
  },
  {
    column: numeric('dec20_0', 20, 0), // FIXED_LEN_BYTE_ARRAY(9) storage
    duckType: 'DECIMAL(20,0)',
    values: [
      ['-99999999999999999999', '-99999999999999999999', -(10n ** 20n - 1n)],
      ['18446744073709551616', '18446744073709551616', 2n ** 64n],
    ],
  },
  {
    column: numeric('rounded', 5, -2), // numeric(5,-2) widens to DECIMAL(7,0)
    duckType: 'DECIMAL(7,0)',
    values: [['1234600', '1234600', 1234600n]],
  },
  {
    column: scalar('free numeric', 'numeric'),
    duckType: 'VARCHAR',
    values: [
      ['NaN', 'NaN', 'NaN'],
      ['-Infinity', '-Infinity', '-Infinity'],
      [
        '-1234567890.123456789012345678901234567890',
        '-1234567890.123456789012345678901234567890',
        '-1234567890.123456789012345678901234567890',
      ],
    ],
  },
  {
    column: scalar('f4', 'float4', 'real'),
    duckType: 'FLOAT',
    values: [
      ['1.1', '1.1', Math.fround(1.1)],
      ['3.4028235e+38', '3.4028235e+38', Math.fround(3.4028235e38)],
      ['1e-45', '1e-45', Math.fround(1e-45)],
      ['-0', '-0.0', -0],
      ['NaN', 'nan', Number.NaN],
      ['-Infinity', '-inf', -Infinity],
    ],
  },
  {
    column: scalar('f8', 'float8', 'double precision'),
    duckType: 'DOUBLE',
    values: [
      ['0.1', '0.1', 0.1],
      ['-0', '-0.0', -0],
      ['NaN', 'nan', Number.NaN],
      ['Infinity', 'inf', Infinity],
      ['1e+301', '1e+301', 1e301],
      ['1e-320', '1e-320', 1e-320],
      ['-1.7976931348623157e+308', '-1.7976931348623157e+308', -Number.MAX_VALUE],
    ],
  },
  {
    column: scalar('flag', 'bool', 'boolean'),
    duckType: 'BOOLEAN',
    values: [
      ['t', 'true', true],
      ['f', 'false', false],
    ],
  },
  {
    column: scalar('CamelCase Text', 'text'),
    duckType: 'VARCHAR',
    values: [
      ['', '', ''],
      ['ü 😀 ñ 中文', 'ü 😀 ñ 中文', 'ü 😀 ñ 中文'],
      ['line\nbreak\ttab', 'line\nbreak\ttab', 'line\nbreak\ttab'],
      [`quote ' and " and \\ backslash`, `quote ' and " and \\ backslash`, `quote ' and " and \\ backslash`],
      ['x'.repeat(5000), 'x'.repeat(5000), 'x'.repeat(5000)],
    ],
  },
  {
    column: scalar('padded', 'bpchar', 'character(4)'),
    duckType: 'VARCHAR',
    values: [['ab  ', 'ab  ', 'ab  ']],
  },
  {
    column: scalar('uid', 'uuid'),
    duckType: 'VARCHAR',
    values: [
      [
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      ],
    ],
  },
  {
    column: scalar('doc', 'jsonb'),
    duckType: 'VARCHAR',
    values: [
      ['{"a": 1, "b": [true, null]}', '{"a": 1, "b": [true, null]}', '{"a": 1, "b": [true, null]}'],
      ['"just a string"', '"just a string"', '"just a string"'], // not double-encoded
      ['null', 'null', 'null'], // JSON null is a value, not SQL NULL
    ],
  },
  {
    column: scalar('blob', 'bytea'),
    duckType: 'BLOB',
    duckSql: (q) => `hex(${q})`,
    values: [
      ['\\x', '', bytes()],
      ['\\x00ff10', '00FF10', bytes(0, 255, 16)],
    ],
  },
  {
    column: scalar('day', 'date'),
    duckType: 'DATE',
    values: [
      ['2024-03-01', '2024-03-01', 19783],
      ['1970-01-01', '1970-01-01', 0],
      ['0044-03-15 BC', '0044-03-15 (BC)', -735160], // days as computed by PostgreSQL 15
      ['5874897-12-31', '5874897-12-31', 2145042905],
      ['infinity', 'infinity', 2147483647],
      ['-infinity', '-infinity', -2147483647],
    ],
  },
  {
    column: scalar('created at', 'timestamptz', 'timestamp with time zone'),
    duckType: 'TIMESTAMP WITH TIME ZONE',
    values: [
      [
        '2024-03-01 12:34:56.123456+00',
        '2024-03-01 12:34:56.123456+00',
        utcMicros(2024, 3, 1, 12, 34, 56) + 123456n,
      ],
      ['2024-03-01 12:34:56.5+00', '2024-03-01 12:34:56.5+00', utcMicros(2024, 3, 1, 12, 34, 56) + 500000n],
      ['2024-03-01 12:34:56+00', '2024-03-01 12:34:56+00', utcMicros(2024, 3, 1, 12, 34, 56)],
      ['1969-12-31 23:59:59.999999+00', '1969-12-31 23:59:59.999999+00', -1n],
      ['0044-03-15 00:00:00+00 BC', '0044-03-15 (BC) 00:00:00+00', utcMicros(-43, 3, 15)],
      [
        '9999-12-31 23:59:59.999999+00',
        '9999-12-31 23:59:59.999999+00',
        utcMicros(9999, 12, 31, 23, 59, 59) + 999999n,
      ],
      ['infinity', 'infinity', I64_MAX],
      ['-infinity', '-infinity', -I64_MAX],
    ],
  },
  {
    column: scalar('local ts', 'timestamp', 'timestamp without time zone'),
    duckType: 'TIMESTAMP',
    values: [
      ['2024-03-01 12:34:56.000001', '2024-03-01 12:34:56.000001', utcMicros(2024, 3, 1, 12, 34, 56) + 1n],
      ['4713-11-24 00:00:00 BC', '4713-11-24 (BC) 00:00:00', utcMicros(-4712, 11, 24)],
      ['infinity', 'infinity', I64_MAX],
    ],
  },
  {
    column: scalar('at time', 'time', 'time without time zone'),
    duckType: 'VARCHAR',
    values: [
      ['24:00:00', '24:00:00', '24:00:00'],
      ['12:34:56.789', '12:34:56.789', '12:34:56.789'],
    ],
  },
  {
    column: scalar('tz time', 'timetz', 'time with time zone'),
    duckType: 'VARCHAR',
    values: [['12:00:00.5+05:30', '12:00:00.5+05:30', '12:00:00.5+05:30']],
  },
  {
    column: scalar('span', 'interval'),
    duckType: 'VARCHAR',
    values: [
      ['P1Y2M3DT4H5M6.7S', 'P1Y2M3DT4H5M6.7S', 'P1Y2M3DT4H5M6.7S'],
      ['P-1Y', 'P-1Y', 'P-1Y'],
    ],
  },
  {
    column: scalar('addr', 'inet'),
    duckType: 'VARCHAR',
    values: [['192.168.0.1/24', '192.168.0.1/24', '192.168.0.1/24']],
  },
  {
    column: scalar('mood', 'mood'), // an enum
    duckType: 'VARCHAR',
    values: [['happy', 'happy', 'happy']],
  },
  {
    column: array('ids', 'int8'),
    duckType: 'BIGINT[]',
    duckSql: listAsText,
    values: [
      ['{1,NULL,-9223372036854775808}', ['1', null, '-9223372036854775808'], [1n, null, -(2n ** 63n)]],
      ['{}', [], []],
      ['{NULL}', [null], [null]],
    ],
  },
  {
    column: array('tags', 'text'),
    duckType: 'VARCHAR[]',
    duckSql: listAsText,
    values: [
      [
        '{"a b","c\\"d","NULL",NULL,"","x,y","back\\\\slash","{}","ü 😀"}',
        ['a b', 'c"d', 'NULL', null, '', 'x,y', 'back\\slash', '{}', 'ü 😀'],
        ['a b', 'c"d', 'NULL', null, '', 'x,y', 'back\\slash', '{}', 'ü 😀'],
      ],
      ['{}', [], []],
    ],
  },
  {
    column: array('prices', 'numeric', { numericPrecision: 12, numericScale: 2 }),
    duckType: 'DECIMAL(12,2)[]',
    duckSql: listAsText,
    values: [['{1.50,NULL,-0.01}', ['1.50', null, '-0.01'], [150n, null, -1n]]],
  },
  {
    column: array('stamps', 'timestamptz'),
    duckType: 'TIMESTAMP WITH TIME ZONE[]',
    duckSql: listAsText,
    values: [
      [
        '{"2024-01-01 00:00:00.000001+00",infinity,NULL}',
        ['2024-01-01 00:00:00.000001+00', 'infinity', null],
        [utcMicros(2024, 1, 1) + 1n, I64_MAX, null],
      ],
    ],
  },
  {
    column: array('days', 'date'),
    duckType: 'DATE[]',
    duckSql: listAsText,
    values: [['{2024-01-01,NULL,-infinity}', ['2024-01-01', null, '-infinity'], [19723, null, -2147483647]]],
  },
  {
    column: array('flags', 'bool'),
    duckType: 'BOOLEAN[]',
    duckSql: listAsText,
    values: [['{t,f,NULL}', ['true', 'false', null], [true, false, null]]],
  },
  {
    column: array('measures', 'float8'),
    duckType: 'DOUBLE[]',
    duckSql: listAsText,
    values: [['{NaN,-Infinity,-0,0.1}', ['nan', '-inf', '-0.0', '0.1'], [Number.NaN, -Infinity, -0, 0.1]]],
  },
  {
    column: array('blobs', 'bytea'),
    duckType: 'BLOB[]',
    duckSql: (q) => `CAST(to_json(list_transform(${q}, x -> hex(x))) AS VARCHAR)`,
    values: [['{"\\\\x0102",NULL,"\\\\x"}', ['0102', null, ''], [bytes(1, 2), null, bytes()]]],
  },
  {
    column: array('docs', 'jsonb'),
    duckType: 'VARCHAR[]',
    duckSql: listAsText,
    values: [['{"{\\"a\\": 1}","\\"s\\""}', ['{"a": 1}', '"s"'], ['{"a": 1}', '"s"']]],
  },
  {
    column: array('grid', 'int4', { arrayDims: 2 }), // declared int[][]: kept as text
    duckType: 'VARCHAR',
    values: [['{{1,2},{3,4}}', '{{1,2},{3,4}}', '{{1,2},{3,4}}']],
  },
  {
    column: array('boxes', 'box'), // ';' delimiter: kept as text
    duckType: 'VARCHAR',
    values: [['{(1,1),(0,0);(2,2),(1,1)}', '{(1,1),(0,0);(2,2),(1,1)}', '{(1,1),(0,0);(2,2),(1,1)}']],
  },
];

const PLAN = planParquetColumns(CASES.map((c) => c.column));
/** Rows: case i's values down column i, NULL where a column has fewer values, then one all-NULL row. */
const ROW_COUNT = Math.max(...CASES.map((c) => c.values.length)) + 1;
const cell = (c: Case, row: number) => c.values[row] ?? null;
const rowsOf = (cases: readonly Case[]): Array<Array<string | null>> =>
  Array.from({ length: ROW_COUNT }, (_, row) => cases.map((c) => cell(c, row)?.[0] ?? null));
const ROWS = rowsOf(CASES);
/**
 * The cases without a LIST: a file of only these goes through the flat writer (./flat-writer.ts), the whole
 * set through hyparquet-writer, so each writer reads back every value it can be given.
 */
const FLAT_CASES = CASES.filter((_, i) => PLAN[i]?.schema.length === 1);

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;

let dir: string;
let duck: DuckDBInstance;
let db: DuckDBConnection;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'parquet-roundtrip-'));
  duck = await DuckDBInstance.create();
  db = await duck.connect();
  await db.run("SET TimeZone = 'UTC'");
});

afterAll(() => {
  db?.closeSync();
  duck?.closeSync();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let fileCounter = 0;
function writeTemp(body: Uint8Array): string {
  const file = join(dir, `f${fileCounter++}.parquet`);
  writeFileSync(file, body);
  return file;
}

async function query(sql: string): Promise<Array<Record<string, unknown>>> {
  return (await db.runAndReadAll(sql)).getRowObjectsJson() as Array<Record<string, unknown>>;
}

/** Node 22.15+ only; undefined on Node 20. */
const zlibZstd = zlib as unknown as {
  zstdCompressSync?: (input: Uint8Array) => Uint8Array;
  zstdDecompressSync?: (input: Uint8Array) => Uint8Array;
};

/** Reads with hyparquet, DECIMAL annotations stripped so the unscaled integers come back exactly. */
async function readWithHyparquet(body: Uint8Array): Promise<Array<Record<string, unknown>>> {
  const file = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  const metadata: FileMetaData = parquetMetadata(file);
  const raw: FileMetaData = {
    ...metadata,
    schema: metadata.schema.map((element) => {
      if (element.converted_type !== 'DECIMAL') return element;
      const { converted_type: _c, logical_type: _l, ...rest } = element;
      return rest;
    }),
  };
  return parquetReadObjects({
    file,
    metadata: raw,
    utf8: false, // keep BINARY as bytes; UTF8-annotated columns still decode
    parsers: { timestampFromMicroseconds: (micros) => micros, dateFromDays: (days) => days },
    compressors: {
      GZIP: (input) => zlib.gunzipSync(input),
      ...(zlibZstd.zstdDecompressSync ? { ZSTD: zlibZstd.zstdDecompressSync } : {}),
    },
  });
}

/** Normalises hyparquet output: undefined → null, raw DECIMAL storage → unscaled bigint. */
function normalise(value: unknown, decimal: boolean): unknown {
  if (value === undefined || value === null) return null;
  if (Array.isArray(value)) return value.map((v) => normalise(v, decimal));
  if (!decimal) return value;
  if (typeof value === 'number') return BigInt(value);
  if (value instanceof Uint8Array) {
    let unscaled = 0n;
    for (const byte of value) unscaled = (unscaled << 8n) | BigInt(byte);
    const bits = BigInt(value.length * 8);
    return unscaled >= 1n << (bits - 1n) ? unscaled - (1n << bits) : unscaled;
  }
  return value;
}

async function expectRoundTrip(options: EncodeParquetOptions, codec: string, cases: readonly Case[] = CASES) {
  const plan = planParquetColumns(cases.map((c) => c.column));
  const body = encodeParquet(plan, rowsOf(cases), options);
  const file = writeTemp(body);

  const described = await query(`DESCRIBE SELECT * FROM read_parquet('${file}')`);
  expect(described.map((d) => [d.column_name, d.column_type])).toEqual(
    cases.map((c) => [c.column.name, c.duckType]),
  );

  const codecs = await query(`SELECT DISTINCT compression FROM parquet_metadata('${file}')`);
  expect(codecs.map((r) => r.compression)).toEqual([codec]);

  const select = cases.map(
    (c, i) => `${(c.duckSql ?? ((q) => `CAST(${q} AS VARCHAR)`))(quote(c.column.name))} AS c${i}`,
  );
  const duckRows = await query(
    `SELECT ${select.join(', ')} FROM read_parquet('${file}', file_row_number = true) ORDER BY file_row_number`,
  );
  const hyRows = await readWithHyparquet(body);
  expect(duckRows).toHaveLength(ROW_COUNT);
  expect(hyRows).toHaveLength(ROW_COUNT);

  cases.forEach((c, i) => {
    const isList = c.duckSql === listAsText || c.column.name === 'blobs';
    const decimal = c.column.baseType === 'numeric' && plan[i]?.parquetType.includes('DECIMAL') === true;
    for (let row = 0; row < ROW_COUNT; row++) {
      const [, duckExpected = null, hyExpected = null] = cell(c, row) ?? [];
      const duckText = duckRows[row]?.[`c${i}`] ?? null;
      const duckActual = isList && typeof duckText === 'string' ? JSON.parse(duckText) : duckText;
      const where = `${c.column.name} row ${row}`;
      expect(duckActual, `DuckDB ${where}`).toEqual(duckExpected);
      expect(normalise(hyRows[row]?.[c.column.name], decimal), `hyparquet ${where}`).toEqual(hyExpected);
    }
  });
  return file;
}

describe('encodeParquet round trip', () => {
  it('reads back every type exactly (snappy, one row group)', async () => {
    const file = await expectRoundTrip({ compression: 'snappy' }, 'SNAPPY');
    const groups = await query(`SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata('${file}')`);
    expect(Number(groups[0]?.n)).toBe(1);
  });

  it('reads back every type exactly (gzip, several row groups)', async () => {
    const file = await expectRoundTrip({ compression: 'gzip', rowGroupSize: 3 }, 'GZIP');
    const groups = await query(`SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata('${file}')`);
    expect(Number(groups[0]?.n)).toBe(Math.ceil(ROW_COUNT / 3));
  });

  it('reads back every type exactly (uncompressed, one row per group)', async () => {
    await expectRoundTrip({ compression: 'uncompressed', rowGroupSize: 1 }, 'UNCOMPRESSED');
  });

  it('reads back every flat type exactly from the flat writer (snappy, gzip in row groups, uncompressed)', async () => {
    expect(FLAT_CASES.length).toBeGreaterThan(20);
    for (const [options, codec] of [
      [{ compression: 'snappy' }, 'SNAPPY'],
      [{ compression: 'gzip', rowGroupSize: 3 }, 'GZIP'],
      [{ compression: 'uncompressed', rowGroupSize: 1 }, 'UNCOMPRESSED'],
    ] as const) {
      const file = await expectRoundTrip(options, codec, FLAT_CASES);
      // The flat writer's pages: PLAIN values, RLE/bit-packed levels, no dictionary (hyparquet-writer's have one).
      const encodings = await query(`SELECT DISTINCT encodings FROM parquet_metadata('${file}')`);
      expect(encodings.map((r) => r.encodings)).toEqual(['PLAIN, RLE']);
    }
  });

  it.runIf(zlibZstd.zstdCompressSync !== undefined)('reads back every type exactly (zstd)', async () => {
    await expectRoundTrip({ compression: 'zstd' }, 'ZSTD');
  });

  it.runIf(zlibZstd.zstdCompressSync === undefined)('explains that zstd needs Node 22.15+', () => {
    expect(() => encodeParquet(PLAN, ROWS, { compression: 'zstd' })).toThrow(CompressionUnavailableError);
    expect(() => encodeParquet(PLAN, ROWS, { compression: 'zstd' })).toThrow(/Node >= 22\.15/);
  });

  it('writes a readable file with the schema and no rows for an empty batch', async () => {
    const file = writeTemp(encodeParquet(PLAN, [], { compression: 'snappy' }));
    const described = await query(`DESCRIBE SELECT * FROM read_parquet('${file}')`);
    expect(described.map((d) => d.column_type)).toEqual(CASES.map((c) => c.duckType));
    const count = await query(`SELECT count(*) AS n FROM read_parquet('${file}')`);
    expect(Number(count[0]?.n)).toBe(0);
  });

  it("records each column's PostgreSQL type and the caller's metadata in the footer", async () => {
    const file = writeTemp(encodeParquet(PLAN, ROWS, { compression: 'snappy', metadata: { run: 'r-1' } }));
    const rows = await query(
      `SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata('${file}') ORDER BY key`,
    );
    expect(rows.map((r) => r.key)).toEqual([COLUMNS_METADATA_KEY, 'run']);
    const columns = JSON.parse(String(rows[0]?.value)) as Array<{ name: string; pgType: string }>;
    expect(columns.find((c) => c.name === 'span')).toEqual({
      name: 'span',
      pgType: 'interval',
      parquetType: 'STRING',
    });
    expect(rows[1]?.value).toBe('r-1');
  });

  it('names the column and row of a value that cannot be stored', () => {
    const plan = planParquetColumns([scalar('id', 'int8'), numeric('Amount Due', 5, 2)]);
    const rows = [
      ['1', '1.00'],
      ['2', 'NaN'], // PostgreSQL accepts NaN in numeric(5,2)
    ];
    expect(() => encodeParquet(plan, rows, { compression: 'snappy' })).toThrow(
      expect.objectContaining({
        name: 'UnrepresentableValueError',
        message: expect.stringContaining('column "Amount Due", row 1'),
      }),
    );
    expect(() => encodeParquet(plan, rows, { compression: 'snappy' })).toThrow(UnrepresentableValueError);
  });

  it('rejects rows that do not match the plan', () => {
    const plan = planParquetColumns([scalar('id', 'int8')]);
    expect(() => encodeParquet(plan, [['1', 'extra']], { compression: 'snappy' })).toThrow(ParquetInputError);
    expect(() => encodeParquet([], [], { compression: 'snappy' })).toThrow(ParquetInputError);
    expect(() => encodeParquet(plan, [['1']], { compression: 'snappy', rowGroupSize: 0 })).toThrow(
      ParquetInputError,
    );
  });
});
