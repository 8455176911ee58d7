/**
 * An erasure rewrites an archive object from its own footer: the plan read back from a file written by
 * encodeParquet re-encodes the decoded rows to the very same bytes, a subset to a file with the same
 * schema, codec and footer metadata, and no rows to a valid empty object. Shapes the archive never writes
 * are refused, naming the column.
 */
import * as zlib from 'node:zlib';
import type { FileMetaData, SchemaElement } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import {
  decodeArchiveObject,
  readArchivedSchema,
} from '../../functions/actions/restore-archive/parquet-decode.ts';
import type { CatalogColumn } from '../../functions/core/catalog-column.ts';
import { type PlanOptions, planParquetColumns } from '../../functions/core/parquet/column-plan.ts';
import {
  COLUMNS_METADATA_KEY,
  DEFAULT_ROW_GROUP_SIZE,
  encodeParquet,
  type ParquetCompression,
} from '../../functions/core/parquet/encode.ts';
import { ParquetInputError } from '../../functions/core/parquet/errors.ts';
import { encodingOfArchiveFile, planFromArchiveFile } from '../../functions/core/parquet/file-plan.ts';
import { parseDecimalUnscaled, parseTimestampMicros } from '../../functions/core/parquet/pg-text.ts';

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

/** Each column and values exactly as PostgreSQL prints them; shorter lists are padded with NULL. */
const CASES: Array<{ column: CatalogColumn; values: Array<string | null> }> = [
  {
    column: scalar('id', 'int8', 'bigint'),
    values: ['-9223372036854775808', '9223372036854775807', '0', '42'],
  },
  { column: scalar('Int4 Col', 'int4', 'integer'), values: ['-2147483648', '2147483647', null, '7'] },
  { column: scalar('small', 'int2', 'smallint'), values: ['-32768', '32767', '0'] },
  { column: numeric('dec5_2', 5, 2), values: ['-999.99', '0.00', '12.30', '-0.50'] }, // INT32
  { column: numeric('Amount Due', 12, 2), values: ['9999999999.99', '-0.01', null, '0.10'] }, // INT64
  {
    column: numeric('dec38_10', 38, 10), // FIXED_LEN_BYTE_ARRAY(16)
    values: [
      '9999999999999999999999999999.9999999999',
      '-9999999999999999999999999999.9999999999',
      '0.0000000001',
      '-1.5000000000',
    ],
  },
  { column: numeric('dec20_0', 20, 0), values: ['-99999999999999999999', '18446744073709551616'] }, // FLBA(9)
  { column: numeric('rounded', 3, -2), values: ['12300', '-99900', '0'] }, // DECIMAL(5,0)
  {
    column: scalar('free numeric', 'numeric'),
    values: ['NaN', 'Infinity', '-1234567890.123456789012345678901234567890', '-0.000000000000000000001'],
  },
  {
    column: scalar('f4', 'float4', 'real'),
    values: ['NaN', '-Infinity', '0.33333334', '-0', '3.4028235e+38', '1e-45'],
  },
  {
    column: scalar('f8', 'float8', 'double precision'),
    values: ['Infinity', '-0', '3.141592653589793', '5e-324', 'NaN', '-1.7976931348623157e+308'],
  },
  { column: scalar('flag', 'bool', 'boolean'), values: ['t', 'f', null, 't'] },
  { column: scalar('blob', 'bytea'), values: ['\\x', '\\x00ff0a5c', null, '\\xdeadbeef'] },
  {
    column: scalar('day', 'date'),
    values: ['infinity', '-infinity', '0044-03-15 BC', '2024-02-29', '5874897-12-31', '1970-01-01'],
  },
  {
    column: scalar('local ts', 'timestamp', 'timestamp without time zone'),
    values: [
      '1969-12-31 23:59:59.999999',
      '0001-01-01 00:00:00 BC',
      'infinity',
      '200000-12-31 23:59:59.999999',
      '-infinity',
      '2024-03-01 12:34:56.000001',
    ],
  },
  {
    column: scalar('created at', 'timestamptz', 'timestamp with time zone'),
    values: [
      '2020-01-01 00:00:00.000001+00',
      '-infinity',
      'infinity',
      '1900-02-28 12:34:56.5+00',
      null,
      '0044-03-15 00:00:00+00 BC',
    ],
  },
  {
    column: scalar('CamelCase Text', 'text'),
    values: ['ü 😀 ñ 中文', '', 'tab\there\nnew "q" \\ é', 'NULL', 'x'.repeat(3000)],
  },
  { column: scalar('doc', 'jsonb'), values: ['{"a": 1, "b": [true, null]}', '"just a string"', 'null'] },
  { column: scalar('uid', 'uuid'), values: ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'] },
  { column: scalar('span', 'interval'), values: ['P1Y2M3DT4H5M6.000007S', 'PT0S', '-P1D'] },
  { column: scalar('addr', 'inet'), values: ['192.168.0.1/24', '::1/128'] },
  { column: array('ids', 'int8'), values: ['{1,NULL,-9223372036854775808}', '{}', '{NULL}'] },
  { column: array('shorts', 'int2'), values: ['{-32768,32767}', null, '{}'] },
  { column: array('ints', 'int4'), values: ['{1,NULL}'] },
  {
    column: array('tags', 'text'),
    values: ['{"a b","c\\"d","NULL",NULL,"","x,y","back\\\\slash","{}","ü 😀"}', '{}', '{NULL}'],
  },
  {
    column: array('prices', 'numeric', {
      typeName: 'numeric(12,2)[]',
      numericPrecision: 12,
      numericScale: 2,
    }),
    values: ['{1.50,NULL,-0.01}', '{}'],
  },
  {
    column: array('big prices', 'numeric', {
      typeName: 'numeric(25,3)[]',
      numericPrecision: 25,
      numericScale: 3,
    }),
    values: ['{1234567890123456789012.345,NULL,-0.001}'],
  },
  { column: array('free nums', 'numeric'), values: ['{NaN,1.5,NULL}'] }, // LIST<STRING>
  { column: array('stamps', 'timestamptz'), values: ['{"2024-01-01 00:00:00.000001+00",infinity,NULL}'] },
  { column: array('local stamps', 'timestamp'), values: ['{"2024-01-01 00:00:00",-infinity}'] },
  { column: array('days', 'date'), values: ['{2024-01-01,NULL,-infinity}'] },
  { column: array('flags', 'bool'), values: ['{t,f,NULL}'] },
  { column: array('measures', 'float8'), values: ['{NaN,-Infinity,-0,0.1}'] },
  { column: array('singles', 'float4'), values: ['{NaN,1.1,-0}'] },
  { column: array('blobs', 'bytea'), values: ['{"\\\\x0102",NULL,"\\\\x"}'] },
  { column: array('docs', 'jsonb'), values: ['{"{\\"a\\": 1}","\\"s\\""}'] },
  { column: array('uids', 'uuid'), values: ['{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'] },
  { column: array('grid', 'int4', { arrayDims: 2 }), values: ['{{1,2},{3,4}}'] }, // text
  { column: array('boxes', 'box'), values: ['{(1,1),(0,0);(2,2),(1,1)}'] }, // text (';' delimiter)
  { column: scalar('__proto__', 'text'), values: ['proto', null, 'x'] },
  { column: scalar('constructor', 'int8', 'bigint'), values: ['1', '2'] },
];

const COLUMNS = CASES.map((c) => c.column);
/** Case i's values down column i, NULL where a column has fewer values, then one all-NULL row. */
const ROW_COUNT = Math.max(...CASES.map((c) => c.values.length)) + 1;
const ROWS: Array<Array<string | null>> = Array.from({ length: ROW_COUNT }, (_, row) =>
  CASES.map((c) => c.values[row] ?? null),
);
/** Caller metadata, including a key that an object assignment would turn into a prototype. */
const METADATA: Record<string, string> = Object.fromEntries([
  ['run', 'r-1'],
  ['table', 'public.orders'],
  ['__proto__', 'kept'],
]);

const hasZstd =
  typeof (zlib as unknown as { zstdCompressSync?: unknown }).zstdCompressSync === 'function' &&
  typeof (zlib as unknown as { zstdDecompressSync?: unknown }).zstdDecompressSync === 'function';

interface Variant {
  readonly compression: ParquetCompression;
  readonly rowGroupSize?: number;
  readonly arrays?: PlanOptions['arrays'];
}
const VARIANTS: Variant[] = [
  { compression: 'snappy' },
  { compression: 'gzip', rowGroupSize: 3 }, // several row groups, the last one short
  { compression: 'uncompressed', rowGroupSize: 1 },
  { compression: 'snappy', arrays: 'text' },
];

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

function archive(variant: Variant, rows: ReadonlyArray<ReadonlyArray<string | null>> = ROWS): Uint8Array {
  const plan = planParquetColumns(COLUMNS, { arrays: variant.arrays ?? 'list' });
  return encodeParquet(plan, rows, {
    compression: variant.compression,
    metadata: METADATA,
    ...(variant.rowGroupSize === undefined ? {} : { rowGroupSize: variant.rowGroupSize }),
  });
}

/** What an erasure does: decode the object, keep some rows, encode them with the file's own plan. */
async function rewrite(body: Uint8Array, keep: (row: number) => boolean) {
  const { columns, metadata } = readArchivedSchema(body);
  const decoded = await decodeArchiveObject(body);
  const kept = decoded.rows.filter((_, r) => keep(r));
  const output = encodeParquet(planFromArchiveFile(metadata, columns), kept, encodingOfArchiveFile(metadata));
  return { decoded, kept, output };
}

describe('planFromArchiveFile + encodingOfArchiveFile', () => {
  describe.each<Variant>(VARIANTS)('a file written with %o', (variant) => {
    it('re-encodes all decoded rows to the original bytes', async () => {
      // Prepare
      const original = archive(variant);

      // Act
      const { decoded, output } = await rewrite(original, () => true);

      // Assess
      expect(decoded.rowCount).toBe(ROW_COUNT);
      expect(sameBytes(output, original)).toBe(true);
    });

    it('re-encodes a subset with the same schema, codec and metadata, and exactly those rows', async () => {
      // Prepare
      const original = archive(variant);
      const keep = (row: number) => row % 3 !== 1;

      // Act
      const { kept, output } = await rewrite(original, keep);

      // Assess
      const before = readArchivedSchema(original);
      const after = readArchivedSchema(output);
      expect(after.metadata.schema).toEqual(before.metadata.schema);
      expect(after.columns).toEqual(before.columns);
      expect(after.metadata.key_value_metadata).toEqual(before.metadata.key_value_metadata);
      const encoding = encodingOfArchiveFile(after.metadata);
      expect(encoding.compression).toBe(variant.compression);
      expect(encoding.metadata).toEqual(METADATA);
      const codecs = after.metadata.row_groups.flatMap((g) => g.columns.map((c) => c.meta_data?.codec));
      expect(new Set(codecs)).toEqual(new Set([before.metadata.row_groups[0]?.columns[0]?.meta_data?.codec]));
      const decoded = await decodeArchiveObject(output);
      expect(decoded.rowCount).toBe(kept.length);
      expect(decoded.rows).toEqual(kept);
      // The same bytes as archiving only those rows in the first place.
      expect(
        sameBytes(
          output,
          archive(
            variant,
            ROWS.filter((_, r) => keep(r)),
          ),
        ),
      ).toBe(true);
    });

    it('re-encodes no rows to a valid empty object with the same schema', async () => {
      // Prepare
      const original = archive(variant);

      // Act
      const { output } = await rewrite(original, () => false);

      // Assess
      const before = readArchivedSchema(original);
      const after = readArchivedSchema(output);
      expect(after.metadata.row_groups).toEqual([]);
      expect(after.metadata.schema).toEqual(before.metadata.schema);
      expect(after.columns).toEqual(before.columns);
      expect(after.metadata.key_value_metadata).toEqual(before.metadata.key_value_metadata);
      const decoded = await decodeArchiveObject(output);
      expect(decoded.rowCount).toBe(0);
      expect(decoded.rows).toEqual([]);
      expect(sameBytes(output, archive(variant, []))).toBe(true);
    });
  });

  it.skipIf(!hasZstd)(
    'round-trips a zstd file to the original bytes, and a subset with the same schema',
    async () => {
      const original = archive({ compression: 'zstd', rowGroupSize: 4 });
      expect(sameBytes((await rewrite(original, () => true)).output, original)).toBe(true);
      const { kept, output } = await rewrite(original, (row) => row > 2);
      expect(readArchivedSchema(output).metadata.schema).toEqual(
        readArchivedSchema(original).metadata.schema,
      );
      expect(encodingOfArchiveFile(readArchivedSchema(output).metadata).compression).toBe('zstd');
      expect((await decodeArchiveObject(output)).rows).toEqual(kept);
    },
  );

  it("plans each column as the archive did, whatever the table's columns are now", () => {
    // Prepare: the table has since widened or retyped columns, and gained one.
    const then = [numeric('amount', 9, 2), scalar('n', 'int4', 'integer'), array('tags', 'text')];
    const now = [
      numeric('amount', 20, 4),
      scalar('n', 'int8', 'bigint'),
      scalar('tags', 'text'),
      scalar('x', 'text'),
    ];
    const original = encodeParquet(planParquetColumns(then), [['1.50', '2', '{a}']], {
      compression: 'snappy',
    });
    const { columns, metadata } = readArchivedSchema(original);

    // Act
    const plan = planFromArchiveFile(metadata, columns);

    // Assess
    const summary = (p: ReturnType<typeof planParquetColumns>) =>
      p.map(({ name, pgType, parquetType, athenaType, schema }) => ({
        name,
        pgType,
        parquetType,
        athenaType,
        schema,
      }));
    expect(summary(plan)).toEqual(summary(planParquetColumns(then)));
    expect(summary(plan)).not.toEqual(summary(planParquetColumns(now).slice(0, 3)));
  });

  it.each<PlanOptions['arrays']>(['list', 'text'])(
    'gives the Glue types and schema elements planParquetColumns gave (arrays: %s)',
    (arrays) => {
      const plan = planParquetColumns(COLUMNS, { arrays });
      const { columns, metadata } = readArchivedSchema(encodeParquet(plan, ROWS, { compression: 'snappy' }));
      const fromFile = planFromArchiveFile(metadata, columns);
      expect(fromFile.map(({ fromText: _, ...rest }) => rest)).toEqual(
        plan.map(({ fromText: _, ...rest }) => rest),
      );
    },
  );

  it('re-encodes annotation variants the decoder reads but the archive does not write', async () => {
    // Prepare: converted-only and logical-only annotations, written through a hand-made plan.
    const leaf = (name: string, element: Omit<SchemaElement, 'name' | 'repetition_type'>) => ({
      name,
      pgType: 'x',
      parquetType: 'x',
      athenaType: 'x',
      schema: [{ ...element, name, repetition_type: 'OPTIONAL' as const }],
      fromText: (t: string) => t,
    });
    const handMade = [
      {
        ...leaf('utc micros', { type: 'INT64', converted_type: 'TIMESTAMP_MICROS' }),
        fromText: (t: string) => parseTimestampMicros(t, true),
      },
      {
        ...leaf('dec converted', { type: 'INT64', converted_type: 'DECIMAL', precision: 12, scale: 3 }),
        fromText: (t: string) => parseDecimalUnscaled(t, 12, 3),
      },
      {
        ...leaf('dec converted 32', { type: 'INT32', converted_type: 'DECIMAL', precision: 4, scale: 1 }),
        fromText: (t: string) => parseDecimalUnscaled(t, 4, 1),
      },
      {
        ...leaf('date converted', { type: 'INT32', converted_type: 'DATE' }),
        fromText: (t: string) => Number(t),
      },
      {
        ...leaf('date logical', { type: 'INT32', logical_type: { type: 'DATE' } }),
        fromText: (t: string) => Number(t),
      },
      {
        ...leaf('utc logical', {
          type: 'INT64',
          logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
        }),
        fromText: (t: string) => BigInt(t),
      },
      leaf('utf8 only', { type: 'BYTE_ARRAY', converted_type: 'UTF8' }),
      leaf('string only', { type: 'BYTE_ARRAY', logical_type: { type: 'STRING' } }),
    ];
    const original = encodeParquet(
      handMade,
      [
        ['2020-01-01 00:00:00.000001+00', '-123456789.123', '-999.9', '0', '-1', '1', 'é', ''],
        ['infinity', null, '0.0', '-1', null, '-1', null, 'x'],
      ],
      { compression: 'snappy' },
    );

    // Act
    const { decoded, output } = await rewrite(original, () => true);

    // Assess
    expect(decoded.rows[0]).toEqual([
      '2020-01-01 00:00:00.000001+00',
      '-123456789.123',
      '-999.9',
      '1970-01-01',
      '1969-12-31',
      '1970-01-01 00:00:00.000001+00',
      'é',
      '',
    ]);
    expect(sameBytes(output, original)).toBe(true);
  });

  it('takes the codec, first row group size and caller metadata from the footer', () => {
    const body = archive({ compression: 'gzip', rowGroupSize: 4 });
    const encoding = encodingOfArchiveFile(readArchivedSchema(body).metadata);
    expect(encoding).toEqual({ compression: 'gzip', rowGroupSize: 4, metadata: METADATA });
    expect(Object.hasOwn(encoding.metadata, '__proto__')).toBe(true);
    expect(encoding.metadata).not.toHaveProperty(COLUMNS_METADATA_KEY);
  });

  it('gives an empty file the default row group size; its bytes do not depend on the codec', () => {
    const empty = archive({ compression: 'gzip' }, []);
    const encoding = encodingOfArchiveFile(readArchivedSchema(empty).metadata);
    expect(encoding).toEqual({
      compression: 'snappy',
      rowGroupSize: DEFAULT_ROW_GROUP_SIZE,
      metadata: METADATA,
    });
    expect(sameBytes(empty, archive({ compression: 'uncompressed' }, []))).toBe(true);
  });
});

describe('what the archive never writes', () => {
  /** A real footer with column 'Weird Col' (a timestamptz) made into something else. */
  function footer(): { metadata: FileMetaData; columns: ReturnType<typeof readArchivedSchema>['columns'] } {
    const plan = planParquetColumns([
      scalar('id', 'int8'),
      scalar('Weird Col', 'timestamptz'),
      array('tags', 'text'),
    ]);
    const body = encodeParquet(plan, [['1', 'infinity', '{a}']], { compression: 'snappy' });
    const { metadata, columns } = readArchivedSchema(body);
    return { metadata: structuredClone(metadata), columns };
  }
  const weird = (metadata: FileMetaData) => metadata.schema[2] as SchemaElement;
  const tags = (metadata: FileMetaData) =>
    metadata.schema.slice(3) as [SchemaElement, SchemaElement, SchemaElement];

  it.each<[string, (metadata: FileMetaData) => void]>([
    [
      'INT96',
      (m) => Object.assign(weird(m), { type: 'INT96', converted_type: undefined, logical_type: undefined }),
    ],
    [
      'timestamps in MILLIS',
      (m) =>
        Object.assign(weird(m), {
          converted_type: undefined,
          logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
        }),
    ],
    [
      'TIMESTAMP_MILLIS',
      (m) => Object.assign(weird(m), { converted_type: 'TIMESTAMP_MILLIS', logical_type: undefined }),
    ],
    ['a TIMESTAMP on INT32', (m) => Object.assign(weird(m), { type: 'INT32' })],
    [
      'an INTEGER logical type',
      (m) =>
        Object.assign(weird(m), {
          type: 'INT32',
          converted_type: 'INT_16',
          logical_type: { type: 'INTEGER', bitWidth: 16, isSigned: true },
        }),
    ],
    [
      'a UUID',
      (m) =>
        Object.assign(weird(m), {
          type: 'FIXED_LEN_BYTE_ARRAY',
          type_length: 16,
          converted_type: undefined,
          logical_type: { type: 'UUID' },
        }),
    ],
    [
      'JSON',
      (m) =>
        Object.assign(weird(m), {
          type: 'BYTE_ARRAY',
          converted_type: 'JSON',
          logical_type: { type: 'JSON' },
        }),
    ],
    [
      'a plain FIXED_LEN_BYTE_ARRAY',
      (m) =>
        Object.assign(weird(m), {
          type: 'FIXED_LEN_BYTE_ARRAY',
          type_length: 4,
          converted_type: undefined,
          logical_type: undefined,
        }),
    ],
    [
      'a DECIMAL of the wrong width',
      (m) =>
        Object.assign(weird(m), {
          type: 'FIXED_LEN_BYTE_ARRAY',
          type_length: 4,
          converted_type: 'DECIMAL',
          precision: 20,
          scale: 2,
          logical_type: { type: 'DECIMAL', precision: 20, scale: 2 },
        }),
    ],
    [
      'a DECIMAL beyond 38 digits',
      (m) =>
        Object.assign(weird(m), {
          type: 'FIXED_LEN_BYTE_ARRAY',
          type_length: 18,
          converted_type: 'DECIMAL',
          precision: 40,
          scale: 0,
          logical_type: undefined,
        }),
    ],
    [
      'a DECIMAL with only the logical annotation',
      (m) =>
        Object.assign(weird(m), {
          type: 'INT32',
          converted_type: undefined,
          logical_type: { type: 'DECIMAL', precision: 4, scale: 1 },
        }),
    ],
    [
      'DECIMAL annotations that disagree',
      (m) =>
        Object.assign(weird(m), {
          converted_type: 'DECIMAL',
          precision: 12,
          scale: 2,
          logical_type: { type: 'DECIMAL', precision: 12, scale: 3 },
        }),
    ],
    [
      'a DECIMAL as BYTE_ARRAY',
      (m) =>
        Object.assign(weird(m), {
          type: 'BYTE_ARRAY',
          converted_type: 'DECIMAL',
          precision: 10,
          scale: 2,
          logical_type: undefined,
        }),
    ],
    ['disagreeing annotations', (m) => Object.assign(weird(m), { converted_type: 'DATE' })],
    ['a REQUIRED column', (m) => Object.assign(weird(m), { repetition_type: 'REQUIRED' })],
    [
      'a nested group',
      (m) => {
        Object.assign(weird(m), {
          type: undefined,
          converted_type: undefined,
          logical_type: undefined,
          num_children: 1,
        });
        m.schema.splice(3, 0, { name: 'inner', type: 'INT64', repetition_type: 'OPTIONAL' });
      },
    ],
  ])('refuses %s, naming the column', (_, mutate) => {
    const { metadata, columns } = footer();
    mutate(metadata);
    expect(() => planFromArchiveFile(metadata, columns)).toThrow(ParquetInputError);
    expect(() => planFromArchiveFile(metadata, columns)).toThrow(/column "Weird Col"/);
  });

  it.each<[string, (metadata: FileMetaData) => void]>([
    [
      'a two-level list',
      (m) => {
        m.schema.splice(4, 1);
        Object.assign(tags(m)[1], { repetition_type: 'REPEATED' });
      },
    ],
    ['a LIST of REQUIRED elements', (m) => Object.assign(tags(m)[2], { repetition_type: 'REQUIRED' })],
    ['a LIST with an annotated middle group', (m) => Object.assign(tags(m)[1], { converted_type: 'LIST' })],
    [
      'a LIST of structs',
      (m) => {
        Object.assign(tags(m)[2], {
          type: undefined,
          converted_type: undefined,
          logical_type: undefined,
          num_children: 1,
        });
        m.schema.push({ name: 'x', type: 'INT64', repetition_type: 'OPTIONAL' });
      },
    ],
    ['a MAP', (m) => Object.assign(tags(m)[0], { converted_type: 'MAP', logical_type: { type: 'MAP' } })],
    [
      'a LIST of INT96',
      (m) => Object.assign(tags(m)[2], { type: 'INT96', converted_type: undefined, logical_type: undefined }),
    ],
  ])('refuses %s, naming the column', (_, mutate) => {
    const { metadata, columns } = footer();
    mutate(metadata);
    expect(() => planFromArchiveFile(metadata, columns)).toThrow(ParquetInputError);
    expect(() => planFromArchiveFile(metadata, columns)).toThrow(/column "tags"/);
  });

  it('refuses a footer column list that does not describe the schema', () => {
    const { metadata, columns } = footer();
    expect(() => planFromArchiveFile(metadata, columns.slice(1))).toThrow(ParquetInputError);
    const renamed = columns.map((c, i) => (i === 1 ? { ...c, name: 'other' } : c));
    expect(() => planFromArchiveFile(metadata, renamed)).toThrow(/column "other"/);
  });

  it('refuses mixed and unknown codecs', () => {
    const body = archive({ compression: 'snappy', rowGroupSize: 2 });
    const mixed = structuredClone(readArchivedSchema(body).metadata);
    const chunk = mixed.row_groups[1]?.columns[3]?.meta_data;
    if (!chunk) throw new Error('fixture has no second row group');
    chunk.codec = 'GZIP';
    expect(() => encodingOfArchiveFile(mixed)).toThrow(ParquetInputError);
    expect(() => encodingOfArchiveFile(mixed)).toThrow(/SNAPPY, GZIP/);
    const lz4 = structuredClone(readArchivedSchema(body).metadata);
    for (const group of lz4.row_groups)
      for (const c of group.columns) if (c.meta_data) c.meta_data.codec = 'LZ4_RAW';
    expect(() => encodingOfArchiveFile(lz4)).toThrow(/codec LZ4_RAW/);
  });
});
