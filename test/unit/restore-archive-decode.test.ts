/**
 * The archive's encoder and restore-archive's decoder are inverses: PostgreSQL text in canonical output
 * form (the session settings of functions/commons/database.ts) goes through encodeParquet and comes back as
 * the same text, for every mapping of functions/core/parquet/column-plan.ts and its edge values.
 */
import { describe, expect, it } from 'vitest';
import { decodeArchiveObject } from '../../functions/actions/restore-archive/parquet-decode.ts';
import { copyLine, decimalText, timestampText } from '../../functions/actions/restore-archive/pg-text-out.ts';
import type { CatalogColumn } from '../../functions/core/catalog-column.ts';
import { planParquetColumns } from '../../functions/core/parquet/column-plan.ts';
import { encodeParquet, type ParquetCompression } from '../../functions/core/parquet/encode.ts';

const column = (name: string, baseType: string, extra: Partial<CatalogColumn> = {}): CatalogColumn => ({
  name,
  typeName: extra.typeName ?? baseType,
  baseType,
  isArray: false,
  notNull: false,
  ...extra,
});

/** Each column and values exactly as PostgreSQL prints them (null: SQL NULL). */
const CASES: Array<{ column: CatalogColumn; values: Array<string | null> }> = [
  { column: column('i8', 'int8'), values: ['-9223372036854775808', '9223372036854775807', '0', null] },
  { column: column('i4', 'int4'), values: ['-2147483648', '2147483647', '7', null] },
  { column: column('i2', 'int2'), values: ['-32768', '32767', '0', null] },
  {
    column: column('d9', 'numeric', { numericPrecision: 9, numericScale: 2 }),
    values: ['-9999999.99', '0.00', '0.10', null],
  },
  {
    column: column('d18', 'numeric', { numericPrecision: 18, numericScale: 4 }),
    values: ['-99999999999999.9999', '12.3000', '-0.0001', null],
  },
  {
    column: column('d38', 'numeric', { numericPrecision: 38, numericScale: 10 }),
    values: [
      '-9999999999999999999999999999.9999999999',
      '12345678901234567890.0000000001',
      '0.0000000000',
      null,
    ],
  },
  {
    column: column('dneg', 'numeric', { numericPrecision: 3, numericScale: -2 }),
    values: ['12300', '-99900', null, '0'],
  },
  { column: column('free', 'numeric'), values: ['NaN', 'Infinity', '-0.000000000000000000001', null] },
  { column: column('f4', 'float4'), values: ['NaN', '-Infinity', '0.33333334', '-0'] },
  {
    column: column('f8', 'float8'),
    values: ['Infinity', '-0', '3.141592653589793', '5e-324'],
  },
  { column: column('b', 'bool'), values: ['t', 'f', null, 't'] },
  { column: column('by', 'bytea'), values: ['\\x', '\\x00ff0a5c', null, '\\xdeadbeef'] },
  { column: column('day', 'date'), values: ['infinity', '-infinity', '0044-03-15 BC', '2024-02-29'] },
  {
    column: column('ts', 'timestamp'),
    values: [
      '1969-12-31 23:59:59.999999',
      '0001-01-01 00:00:00.000000 BC',
      'infinity',
      '200000-12-31 23:59:59.999999',
    ],
  },
  {
    column: column('tz', 'timestamptz'),
    values: ['2020-01-01 00:00:00.000001+00', '-infinity', '1900-02-28 12:34:56.500000+00', null],
  },
  { column: column('t', 'text'), values: ['tab\there\nnew "q" \\ é', '', null, 'NULL'] },
  {
    column: column('iv', 'interval', { typeName: 'interval' }),
    values: ['P1Y2M3DT4H5M6.000007S', 'PT0S', null, '-P1D'],
  },
  {
    column: column('tags', 'text', { isArray: true, typeName: 'text[]' }),
    values: ['{}', '{NULL}', '{"a,b","c\\"d",NULL,"",x}', null],
  },
  {
    column: column('nums', 'numeric', {
      isArray: true,
      typeName: 'numeric(6,2)[]',
      numericPrecision: 6,
      numericScale: 2,
    }),
    values: ['{1.50,NULL,-2.00}', '{}', null, '{0.00}'],
  },
  {
    column: column('stamps', 'timestamptz', { isArray: true, typeName: 'timestamp with time zone[]' }),
    values: ['{"2020-01-01 00:00:00.000001+00",NULL}', null, '{}', '{infinity}'],
  },
];

/** What PostgreSQL's array_out would print for the decoder's always-quoted literal: compare elements. */
function canonical(text: string | null, isArray: boolean): unknown {
  if (text === null || !isArray) return text;
  const items: Array<string | null> = [];
  const body = text.slice(1, -1);
  const re = /"((?:[^"\\]|\\.)*)"|([^,]+)/g;
  for (const match of body.matchAll(re)) {
    if (match[1] !== undefined) items.push(match[1].replace(/\\(.)/g, '$1'));
    else items.push(match[2] === 'NULL' ? null : (match[2] as string));
  }
  return items;
}

describe('restore-archive decoder', () => {
  it.each<ParquetCompression>(['snappy', 'gzip', 'uncompressed'])(
    'reads back exactly what the archive encoded (%s)',
    async (compression) => {
      // Prepare
      const plan = planParquetColumns(CASES.map((c) => c.column));
      const rows = [0, 1, 2, 3].map((r) => CASES.map((c) => c.values[r] ?? null));
      const body = encodeParquet(plan, rows, { compression });

      // Act
      const decoded = await decodeArchiveObject(body);

      // Assess
      expect(decoded.columns.map((c) => c.name)).toEqual(CASES.map((c) => c.column.name));
      expect(decoded.rowCount).toBe(4);
      for (const [r, row] of rows.entries()) {
        for (const [c, item] of CASES.entries()) {
          const actual = decoded.rows[r]?.[c] ?? null;
          expect({ column: item.column.name, row: r, value: canonical(actual, item.column.isArray) }).toEqual(
            {
              column: item.column.name,
              row: r,
              value: canonical(row[c] ?? null, item.column.isArray),
            },
          );
        }
      }
    },
  );

  it('formats the numeric and temporal encodings exactly', () => {
    expect(decimalText(-1n, 4)).toBe('-0.0001');
    expect(decimalText(123000n, 4)).toBe('12.3000');
    expect(decimalText(0n, 0)).toBe('0');
    expect(timestampText(-1n, true)).toBe('1969-12-31 23:59:59.999999+00');
    expect(timestampText(0n, false)).toBe('1970-01-01 00:00:00.000000');
  });

  it('escapes COPY text fields', () => {
    expect(copyLine(['a\tb', null, 'c\\d\ne\r', ''])).toBe('a\\tb\t\\N\tc\\\\d\\ne\\r\t\n');
  });
});
