import { describe, expect, it } from 'vitest';
import type { CatalogColumn } from '../../functions/core/catalog-column.ts';
import { planParquetColumns } from '../../functions/core/parquet/column-plan.ts';
import { describeParquetSchema } from '../../functions/core/parquet/encode.ts';
import {
  locateValueError,
  PgTextParseError,
  UnrepresentableValueError,
} from '../../functions/core/parquet/errors.ts';
import { parsePgArray } from '../../functions/core/parquet/pg-array.ts';
import {
  daysFromCivil,
  INT64_MAX,
  parseBool,
  parseByteaHex,
  parseDateDays,
  parseDecimalUnscaled,
  parseFloat32,
  parseFloat64,
  parseInt32,
  parseInt64,
  parseTimestampMicros,
} from '../../functions/core/parquet/pg-text.ts';

function column(baseType: string, extra: Partial<CatalogColumn> = {}): CatalogColumn {
  return { name: 'c', typeName: baseType, baseType, isArray: false, notNull: false, ...extra };
}
const numeric = (p: number, s: number, extra: Partial<CatalogColumn> = {}) =>
  column('numeric', { typeName: `numeric(${p},${s})`, numericPrecision: p, numericScale: s, ...extra });
const array = (baseType: string, extra: Partial<CatalogColumn> = {}) =>
  column(baseType, { typeName: `${baseType}[]`, isArray: true, arrayDims: 1, ...extra });

/** Microseconds of a UTC instant computed by Date (an independent oracle; exact to the millisecond). */
function utcMicros(year: number, month: number, day: number, h = 0, m = 0, s = 0): bigint {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // setUTCFullYear, unlike Date.UTC, takes years 0..99 as given
  date.setUTCHours(h, m, s, 0);
  return BigInt(date.getTime()) * 1000n;
}

/** The float32 whose bits are `bits`. */
function float32FromBits(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits);
  return view.getFloat32(0);
}

describe('planParquetColumns type mapping', () => {
  const STRING = { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
  const cases: Array<[string, CatalogColumn, string, string, Record<string, unknown>]> = [
    ['int8', column('int8'), 'INT64', 'bigint', { type: 'INT64' }],
    ['int4', column('int4'), 'INT32', 'int', { type: 'INT32' }],
    ['int2', column('int2'), 'INT32(INT_16)', 'smallint', { type: 'INT32', converted_type: 'INT_16' }],
    ['float4', column('float4'), 'FLOAT', 'float', { type: 'FLOAT' }],
    ['float8', column('float8'), 'DOUBLE', 'double', { type: 'DOUBLE' }],
    ['bool', column('bool'), 'BOOLEAN', 'boolean', { type: 'BOOLEAN' }],
    [
      'numeric(5,2)',
      numeric(5, 2),
      'DECIMAL(5,2)',
      'decimal(5,2)',
      { type: 'INT32', converted_type: 'DECIMAL', precision: 5, scale: 2 },
    ],
    [
      'numeric(12,2)',
      numeric(12, 2),
      'DECIMAL(12,2)',
      'decimal(12,2)',
      { type: 'INT64', converted_type: 'DECIMAL', precision: 12, scale: 2 },
    ],
    [
      'numeric(19,0)',
      numeric(19, 0),
      'DECIMAL(19,0)',
      'decimal(19,0)',
      { type: 'FIXED_LEN_BYTE_ARRAY', type_length: 9, converted_type: 'DECIMAL', precision: 19, scale: 0 },
    ],
    [
      'numeric(38,10)',
      numeric(38, 10),
      'DECIMAL(38,10)',
      'decimal(38,10)',
      { type: 'FIXED_LEN_BYTE_ARRAY', type_length: 16, converted_type: 'DECIMAL', precision: 38, scale: 10 },
    ],
    // PostgreSQL 15 scales outside 0..p widen to the digits their values can have.
    ['numeric(5,-2)', numeric(5, -2), 'DECIMAL(7,0)', 'decimal(7,0)', { precision: 7, scale: 0 }],
    ['numeric(3,5)', numeric(3, 5), 'DECIMAL(5,5)', 'decimal(5,5)', { precision: 5, scale: 5 }],
    ['numeric(39,2)', numeric(39, 2), 'STRING', 'string', STRING],
    ['numeric(37,-2)', numeric(37, -2), 'STRING', 'string', STRING],
    ['numeric', column('numeric'), 'STRING', 'string', STRING],
    ['text', column('text'), 'STRING', 'string', STRING],
    ['varchar', column('varchar', { typeName: 'character varying(20)' }), 'STRING', 'string', STRING],
    ['bpchar', column('bpchar', { typeName: 'character(3)' }), 'STRING', 'string', STRING],
    ['name', column('name'), 'STRING', 'string', STRING],
    ['citext', column('citext'), 'STRING', 'string', STRING],
    ['uuid', column('uuid'), 'STRING', 'string', STRING],
    ['json', column('json'), 'STRING', 'string', STRING],
    ['jsonb', column('jsonb'), 'STRING', 'string', STRING],
    ['bytea', column('bytea'), 'BINARY', 'binary', { type: 'BYTE_ARRAY' }],
    [
      'date',
      column('date'),
      'DATE',
      'date',
      { type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } },
    ],
    [
      'timestamptz',
      column('timestamptz'),
      'TIMESTAMP(MICROS,UTC)',
      'timestamp',
      {
        type: 'INT64',
        converted_type: 'TIMESTAMP_MICROS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
      },
    ],
    [
      'timestamp',
      column('timestamp'),
      'TIMESTAMP(MICROS,LOCAL)',
      'timestamp',
      { type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' } },
    ],
    ['time', column('time'), 'STRING', 'string', STRING],
    ['timetz', column('timetz'), 'STRING', 'string', STRING],
    ['interval', column('interval'), 'STRING', 'string', STRING],
    ['inet', column('inet'), 'STRING', 'string', STRING],
    ['cidr', column('cidr'), 'STRING', 'string', STRING],
    ['macaddr', column('macaddr'), 'STRING', 'string', STRING],
    ['money', column('money'), 'STRING', 'string', STRING],
    ['an enum', column('mood'), 'STRING', 'string', STRING],
    ['a type named like a prototype member', column('constructor'), 'STRING', 'string', STRING],
  ];

  it.each(cases)('%s', (_label, input, parquetType, athenaType, leaf) => {
    const [plan] = planParquetColumns([input]);
    expect(plan?.parquetType).toBe(parquetType);
    expect(plan?.athenaType).toBe(athenaType);
    expect(plan?.pgType).toBe(input.typeName);
    expect(plan?.schema).toHaveLength(1);
    expect(plan?.schema[0]).toMatchObject({ ...leaf, name: 'c', repetition_type: 'OPTIONAL' });
  });

  it('keeps the DECIMAL logical type in step with the converted type', () => {
    const [plan] = planParquetColumns([numeric(12, 2)]);
    expect(plan?.schema[0]?.logical_type).toEqual({ type: 'DECIMAL', precision: 12, scale: 2 });
  });

  it('makes a three-level LIST of the element mapping for one-dimensional arrays', () => {
    const [plan] = planParquetColumns([array('int8')]);
    expect(plan?.parquetType).toBe('LIST<INT64>');
    expect(plan?.athenaType).toBe('array<bigint>');
    expect(plan?.schema).toEqual([
      {
        name: 'c',
        repetition_type: 'OPTIONAL',
        converted_type: 'LIST',
        logical_type: { type: 'LIST' },
        num_children: 1,
      },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', type: 'INT64', repetition_type: 'OPTIONAL' },
    ]);
  });

  it.each([
    [array('text'), 'LIST<STRING>', 'array<string>'],
    [
      array('numeric', { numericPrecision: 12, numericScale: 2 }),
      'LIST<DECIMAL(12,2)>',
      'array<decimal(12,2)>',
    ],
    [array('numeric'), 'LIST<STRING>', 'array<string>'],
    [array('timestamptz'), 'LIST<TIMESTAMP(MICROS,UTC)>', 'array<timestamp>'],
    [array('bytea'), 'LIST<BINARY>', 'array<binary>'],
    [array('uuid'), 'LIST<STRING>', 'array<string>'],
    [array('float8', { arrayDims: 0 }), 'LIST<DOUBLE>', 'array<double>'],
  ])('maps %o arrays to %s', (input, parquetType, athenaType) => {
    const [plan] = planParquetColumns([input]);
    expect(plan?.parquetType).toBe(parquetType);
    expect(plan?.athenaType).toBe(athenaType);
  });

  it.each([
    ['declared multi-dimensional', array('int4', { arrayDims: 2 })],
    ['box (delimiter ;)', array('box')],
    ['an unknown element type', array('mood')],
  ])('stores %s arrays as their PostgreSQL text', (_label, input) => {
    const [plan] = planParquetColumns([input]);
    expect(plan?.parquetType).toBe('STRING');
    expect(plan?.athenaType).toBe('string');
    expect(plan?.fromText('{{1,2},{3,4}}')).toBe('{{1,2},{3,4}}');
  });

  it('stores every array as text with arrays: text', () => {
    const [plan] = planParquetColumns([array('int8')], { arrays: 'text' });
    expect(plan?.parquetType).toBe('STRING');
    expect(plan?.fromText('{1,NULL}')).toBe('{1,NULL}');
  });

  it('keeps column names exactly and describes the schema for Glue in order', () => {
    const plan = planParquetColumns([
      column('int8', { name: 'Mixed Case' }),
      column('text', { name: 'with space and "quote"' }),
      array('int4', { name: 'ids' }),
    ]);
    expect(plan.map((p) => p.schema[0]?.name)).toEqual(['Mixed Case', 'with space and "quote"', 'ids']);
    expect(describeParquetSchema(plan)).toEqual([
      { name: 'Mixed Case', athenaType: 'bigint' },
      { name: 'with space and "quote"', athenaType: 'string' },
      { name: 'ids', athenaType: 'array<int>' },
    ]);
  });
});

describe('converters through the plan', () => {
  const convert = (input: CatalogColumn, text: string) => planParquetColumns([input])[0]?.fromText(text);

  it('converts list elements with the element mapping, keeping NULL elements', () => {
    expect(convert(array('int8'), '{1,NULL,-9223372036854775808}')).toEqual([
      1n,
      null,
      -9223372036854775808n,
    ]);
    expect(convert(array('numeric', { numericPrecision: 5, numericScale: 2 }), '{1.50,-0.01}')).toEqual(
      [150, -1].map(BigInt),
    );
    expect(convert(array('bool'), '{t,f,NULL}')).toEqual([true, false, null]);
    expect(convert(array('bytea'), '{"\\\\x0102",NULL}')).toEqual([Uint8Array.from([1, 2]), null]);
    expect(convert(array('timestamptz'), '{"2024-01-01 00:00:00+00",infinity}')).toEqual([
      utcMicros(2024, 1, 1),
      INT64_MAX,
    ]);
    expect(convert(array('float8'), '{NaN,-Infinity,-0}')).toEqual([Number.NaN, -Infinity, -0]);
    expect(convert(array('int4'), '{}')).toEqual([]);
  });

  it('refuses array values a LIST cannot hold', () => {
    expect(() => convert(array('int4'), '{{1,2},{3,4}}')).toThrow(UnrepresentableValueError);
    expect(() => convert(array('int4'), '[0:1]={5,6}')).toThrow(UnrepresentableValueError);
    expect(() => convert(array('numeric', { numericPrecision: 5, numericScale: 2 }), '{1.50,NaN}')).toThrow(
      UnrepresentableValueError,
    );
  });

  it('passes text through unchanged, including empty and unicode strings', () => {
    for (const text of ['', ' padded ', 'ü 😀', '{"a": 1}', 'P1Y2M3DT4H5M6.7S', '12:34:56.789']) {
      expect(convert(column('text'), text)).toBe(text);
    }
  });
});

describe('parsePgArray', () => {
  it.each([
    ['{}', []],
    ['{1,NULL,3}', ['1', null, '3']],
    ['{NULL}', [null]],
    // Real array_out of ARRAY['a b','c"d','NULL',NULL,'','x,y','back\slash','{}','ü 😀']::text[]
    [
      '{"a b","c\\"d","NULL",NULL,"","x,y","back\\\\slash","{}","ü 😀"}',
      ['a b', 'c"d', 'NULL', null, '', 'x,y', 'back\\slash', '{}', 'ü 😀'],
    ],
    ['{" lead","trail "}', [' lead', 'trail ']],
    ['{"{\\"a\\": 1}"}', ['{"a": 1}']],
    ['{2024-01-01,infinity}', ['2024-01-01', 'infinity']],
  ])('%s', (text, expected) => {
    expect(parsePgArray(text)).toEqual(expected);
  });

  it('splits on the given delimiter', () => {
    expect(parsePgArray('{(1,1),(0,0);(2,2),(1,1)}', ';')).toEqual(['(1,1),(0,0)', '(2,2),(1,1)']);
  });

  it.each(['{{1,2},{3,4}}', '{{NULL}}', '[0:1]={5,6}', '[1:1][1:1]={{1}}'])('refuses %s', (text) => {
    expect(() => parsePgArray(text)).toThrow(UnrepresentableValueError);
  });

  it.each(['', '1,2', '{1,2', '{"a}', '{1,,2}', '{1}x', '{,}'])('rejects malformed %o', (text) => {
    expect(() => parsePgArray(text)).toThrow(PgTextParseError);
  });
});

describe('integer and float text', () => {
  it('parses int8 extremes exactly', () => {
    expect(parseInt64('-9223372036854775808')).toBe(-(2n ** 63n));
    expect(parseInt64('9223372036854775807')).toBe(2n ** 63n - 1n);
    expect(parseInt64('0')).toBe(0n);
    expect(() => parseInt64('9223372036854775808')).toThrow(UnrepresentableValueError);
    expect(() => parseInt64('1.5')).toThrow(PgTextParseError);
    expect(() => parseInt64('')).toThrow(PgTextParseError);
  });

  it('parses int4 and int2 within their ranges', () => {
    expect(parseInt32('-2147483648')).toBe(-2147483648);
    expect(parseInt32('2147483647')).toBe(2147483647);
    expect(parseInt32('-32768', 16)).toBe(-32768);
    expect(parseInt32('32767', 16)).toBe(32767);
    expect(() => parseInt32('32768', 16)).toThrow(UnrepresentableValueError);
    expect(() => parseInt32('2147483648')).toThrow(UnrepresentableValueError);
    expect(() => parseInt32(' 1')).toThrow(PgTextParseError);
  });

  it('restores float8 bit for bit, specials included', () => {
    expect(Object.is(parseFloat64('-0'), -0)).toBe(true);
    expect(parseFloat64('NaN')).toBeNaN();
    expect(parseFloat64('Infinity')).toBe(Infinity);
    expect(parseFloat64('-Infinity')).toBe(-Infinity);
    expect(parseFloat64('0.1')).toBe(0.1);
    expect(parseFloat64('1e+301')).toBe(1e301);
    expect(parseFloat64('1e-320')).toBe(1e-320); // subnormal
    expect(parseFloat64('1.7976931348623157e+308')).toBe(Number.MAX_VALUE);
    for (const bad of ['', ' ', '0x10', '1_0', 'nan', 'inf'])
      expect(() => parseFloat64(bad)).toThrow(PgTextParseError);
  });

  it('restores float4 to the exact float32', () => {
    expect(parseFloat32('1.1')).toBe(float32FromBits(0x3f8ccccd));
    expect(parseFloat32('3.4028235e+38')).toBe(float32FromBits(0x7f7fffff));
    expect(parseFloat32('1e-45')).toBe(float32FromBits(0x00000001));
    expect(Object.is(parseFloat32('-0'), -0)).toBe(true);
    expect(parseFloat32('NaN')).toBeNaN();
  });

  it('parses booleans', () => {
    expect(parseBool('t')).toBe(true);
    expect(parseBool('f')).toBe(false);
    expect(() => parseBool('true')).toThrow(PgTextParseError);
  });
});

describe('numeric text to unscaled DECIMAL', () => {
  it.each([
    ['12.30', 12, 2, 1230n],
    ['12.3', 12, 2, 1230n], // fewer fraction digits are padded
    ['12', 12, 2, 1200n],
    ['-0.50', 5, 2, -50n],
    ['-0', 5, 2, 0n],
    ['0.00', 5, 2, 0n],
    ['12.3400', 12, 2, 1234n], // extra zeros are harmless
    ['999.99', 5, 2, 99999n],
    ['-999.99', 5, 2, -99999n],
    ['1234600', 7, 0, 1234600n], // numeric(5,-2)
    ['0.00123', 5, 5, 123n], // numeric(3,5)
    ['9999999999999999999999999999.9999999999', 38, 10, 10n ** 38n - 1n],
    ['-9999999999999999999999999999.9999999999', 38, 10, -(10n ** 38n - 1n)],
    ['0000012.5', 4, 1, 125n], // leading zeros do not count as digits
  ])('%s as DECIMAL(%i,%i) is %s', (text, precision, scale, expected) => {
    expect(parseDecimalUnscaled(text, precision, scale)).toBe(expected);
  });

  it('refuses digits that would need rounding', () => {
    expect(() => parseDecimalUnscaled('12.345', 12, 2)).toThrow(UnrepresentableValueError);
    expect(() => parseDecimalUnscaled('0.001', 12, 2)).toThrow(UnrepresentableValueError);
  });

  it('refuses values beyond the precision', () => {
    expect(() => parseDecimalUnscaled('1000.00', 5, 2)).toThrow(UnrepresentableValueError);
    expect(() => parseDecimalUnscaled('100000000000000000000000000000', 38, 10)).toThrow(
      UnrepresentableValueError,
    );
  });

  it('refuses NaN and infinities (PostgreSQL allows NaN even in numeric(p,s))', () => {
    for (const special of ['NaN', 'Infinity', '-Infinity']) {
      expect(() => parseDecimalUnscaled(special, 5, 2)).toThrow(UnrepresentableValueError);
    }
  });

  it('rejects text that is not a plain decimal', () => {
    for (const bad of ['', '1e5', '+1', '1.', '.5', '1,5', ' 1']) {
      expect(() => parseDecimalUnscaled(bad, 10, 2)).toThrow(PgTextParseError);
    }
  });
});

describe('date and timestamp text', () => {
  it('counts days like the proleptic Gregorian calendar of Date', () => {
    for (let days = -800_000; days <= 800_000; days += 997) {
      const date = new Date(days * 86_400_000);
      expect(daysFromCivil(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate())).toBe(days);
    }
  });

  it.each([
    ['1970-01-01', 0],
    ['2024-03-01', 19783],
    ['2000-02-29', 11016],
    ['0001-01-01', -719162],
    ['0001-12-31 BC', -719163], // 1 BC is year 0
    // Expected days computed by PostgreSQL 15: d - '1970-01-01'::date.
    ['4713-11-24 BC', -2440222], // PostgreSQL's first date
    ['5874897-12-31', 2145042905], // PostgreSQL's last date
    ['infinity', 2147483647],
    ['-infinity', -2147483647],
  ])('date %s is day %i', (text, days) => {
    expect(parseDateDays(text)).toBe(days);
  });

  it('rejects impossible or foreign date text', () => {
    for (const bad of ['2023-02-29', '2024-13-01', '2024-00-10', '0000-01-01', '03/01/2024', '2024-3-1']) {
      expect(() => parseDateDays(bad)).toThrow(PgTextParseError);
    }
  });

  it.each([
    ['2024-03-01 12:34:56.123456+00', utcMicros(2024, 3, 1, 12, 34, 56) + 123456n],
    ['2024-03-01 12:34:56.5+00', utcMicros(2024, 3, 1, 12, 34, 56) + 500000n],
    ['2024-03-01 12:34:56.000001+00', utcMicros(2024, 3, 1, 12, 34, 56) + 1n],
    ['2024-03-01 12:34:56+00', utcMicros(2024, 3, 1, 12, 34, 56)],
    ['1969-12-31 23:59:59.999999+00', -1n],
    ['1970-01-01 00:00:00+00', 0n],
    ['2024-03-01 12:34:56+05:30', utcMicros(2024, 3, 1, 7, 4, 56)],
    ['1900-01-01 00:00:00-00:09:21', utcMicros(1900, 1, 1, 0, 9, 21)],
    ['0044-03-15 00:00:00+00 BC', utcMicros(-43, 3, 15)],
    ['9999-12-31 23:59:59.999999+00', utcMicros(9999, 12, 31, 23, 59, 59) + 999999n],
    ['10000-01-01 00:00:00+00', utcMicros(10000, 1, 1)],
    ['infinity', 2n ** 63n - 1n],
    ['-infinity', -(2n ** 63n - 1n)],
  ])('timestamptz %s', (text, micros) => {
    expect(parseTimestampMicros(text, true)).toBe(micros);
  });

  it.each([
    ['2024-03-01 12:34:56.5', utcMicros(2024, 3, 1, 12, 34, 56) + 500000n],
    ['2024-03-01 00:00:00', utcMicros(2024, 3, 1)],
    ['4713-11-24 00:00:00 BC', utcMicros(-4712, 11, 24)],
    ['0001-12-31 23:59:59.999999 BC', utcMicros(0, 12, 31, 23, 59, 59) + 999999n],
    ['294247-01-10 04:00:54.775806', 2n ** 63n - 2n], // the last instant below the infinity sentinel
  ])('timestamp %s', (text, micros) => {
    expect(parseTimestampMicros(text, false)).toBe(micros);
  });

  it('refuses timestamps beyond int64 microseconds (PostgreSQL goes to 294276 AD)', () => {
    expect(() => parseTimestampMicros('294247-01-10 04:00:54.775807', false)).toThrow(
      UnrepresentableValueError,
    );
    expect(() => parseTimestampMicros('294276-12-31 23:59:59.999999', false)).toThrow(
      UnrepresentableValueError,
    );
  });

  it('insists on the zone for timestamptz and its absence for timestamp', () => {
    expect(() => parseTimestampMicros('2024-03-01 12:34:56', true)).toThrow(PgTextParseError);
    expect(() => parseTimestampMicros('2024-03-01 12:34:56+00', false)).toThrow(PgTextParseError);
  });

  it('rejects other date styles and broken fields', () => {
    for (const bad of [
      '2024-03-01T12:34:56+00',
      'Fri Mar 01 12:34:56 2024 UTC',
      '2024-03-01 24:00:00+00',
      '2024-03-01 12:34:56.1234567+00',
      '2024-02-30 00:00:00+00',
    ]) {
      expect(() => parseTimestampMicros(bad, true)).toThrow(PgTextParseError);
    }
  });
});

describe('bytea text', () => {
  it('decodes hex format', () => {
    expect(parseByteaHex('\\x0a0b')).toEqual(Uint8Array.from([10, 11]));
    expect(parseByteaHex('\\xDEADbeef')).toEqual(Uint8Array.from([0xde, 0xad, 0xbe, 0xef]));
    expect(parseByteaHex('\\x')).toEqual(new Uint8Array());
  });

  it('rejects escape format and broken hex', () => {
    for (const bad of ['\\012', 'abc', '\\x0', '\\x0g', '\\x0a0']) {
      expect(() => parseByteaHex(bad)).toThrow(PgTextParseError);
    }
  });
});

describe('errors', () => {
  it('have stable names for Step Functions', () => {
    expect(new UnrepresentableValueError('x').name).toBe('UnrepresentableValueError');
    expect(new PgTextParseError('x').name).toBe('PgTextParseError');
  });

  it('name the column and row once located', () => {
    const error = new UnrepresentableValueError('NaN has no DECIMAL(5,2) representation');
    locateValueError(error, 'Amount Due', 7);
    locateValueError(error, 'other', 9); // the first location wins
    expect(error.message).toBe('column "Amount Due", row 7: NaN has no DECIMAL(5,2) representation');
    expect(error.location).toEqual({ column: 'Amount Due', row: 7 });
  });

  it('keep long values out of messages', () => {
    // The whole message: thrown, and shorter than 80 characters.
    expect(() => parseInt64('x'.repeat(500))).toThrow(/^.{1,79}$/s);
  });
});
