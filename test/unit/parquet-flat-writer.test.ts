/**
 * The flat writer's own edges, beyond the per-type round trip of parquet-roundtrip.test.ts: pages split at
 * ~1 MiB with NULLs across their boundaries, footer statistics DuckDB trusts (byte order, NaN, signed zero,
 * negative decimals), and a value its column cannot hold refused by name instead of written wrong.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogColumn } from '../../functions/core/catalog-column.ts';
import { type ParquetValue, planParquetColumns } from '../../functions/core/parquet/column-plan.ts';
import { ByteRanges, Int64Values, vectorToArray } from '../../functions/core/parquet/column-vector.ts';
import { encodeParquetColumns } from '../../functions/core/parquet/encode.ts';
import { ParquetInputError } from '../../functions/core/parquet/errors.ts';

const column = (name: string, baseType: string, extra: Partial<CatalogColumn> = {}): CatalogColumn => ({
  name,
  typeName: baseType,
  baseType,
  isArray: false,
  notNull: false,
  ...extra,
});

let dir: string;
let duck: DuckDBInstance;
let db: DuckDBConnection;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flat-writer-'));
  duck = await DuckDBInstance.create(':memory:');
  db = await duck.connect();
});

afterAll(() => {
  db?.closeSync();
  duck?.closeSync();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function writeTemp(body: Uint8Array): string {
  const file = join(dir, `f${files++}.parquet`);
  writeFileSync(file, body);
  return file;
}

async function query(sql: string): Promise<Array<Record<string, unknown>>> {
  return (await db.runAndReadAll(sql)).getRowObjectsJson() as Array<Record<string, unknown>>;
}

const arrayBufferOf = (body: Uint8Array) =>
  body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;

describe('flat Parquet writer', () => {
  it('splits large columns into pages and keeps every NULL in its row across page boundaries', async () => {
    const rows = 120_000;
    const plan = planParquetColumns([column('id', 'int8'), column('Note', 'text'), column('ok', 'bool')]);
    const ids: Array<bigint | null> = [];
    const notes: Array<Uint8Array | string | null> = [];
    const oks: Array<boolean | null> = [];
    for (let i = 0; i < rows; i++) {
      ids.push(i % 11 === 0 ? null : BigInt(i) * 1_000_003n - 7n);
      // Strings and bytes both (the COPY path gives bytes, the text path strings); 20-odd bytes each.
      notes.push(
        i % 13 === 0 ? null : i % 2 ? `note ${i} ✓ ${'x'.repeat(i % 7)}` : Buffer.from(`bytes ${i}`),
      );
      oks.push(i % 17 === 0 ? null : i % 3 === 0);
    }
    const body = encodeParquetColumns(plan, [ids, notes, oks], {
      compression: 'snappy',
      rowGroupSize: 200_000,
    });
    const file = writeTemp(body);

    // More than one page per text and id column (≈ 1 MiB each), one row group.
    const metadata = parquetMetadata(arrayBufferOf(body));
    expect(metadata.row_groups).toHaveLength(1);
    const pagesOf = (name: string) =>
      metadata.row_groups[0]?.columns.find((c) => c.meta_data?.path_in_schema[0] === name)?.meta_data
        ?.encoding_stats?.[0]?.count;
    expect(pagesOf('Note')).toBeGreaterThan(1);
    expect(pagesOf('id')).toBe(1); // 120 000 × 8 bytes < 1 MiB

    const back = await parquetReadObjects({ file: arrayBufferOf(body), utf8: true });
    expect(back).toHaveLength(rows);
    for (let i = 0; i < rows; i++) {
      const note = notes[i];
      const expected = note instanceof Uint8Array ? Buffer.from(note).toString() : note;
      expect(back[i]?.id ?? null, `id row ${i}`).toEqual(ids[i]);
      expect(back[i]?.Note ?? null, `Note row ${i}`).toEqual(expected);
      expect(back[i]?.ok ?? null, `ok row ${i}`).toEqual(oks[i]);
    }
    const counts = await query(
      `SELECT count(*) AS n, count(id) AS ids, count("Note") AS notes, count(ok) AS oks FROM '${file}'`,
    );
    expect(counts[0]).toEqual({
      n: String(rows),
      ids: String(ids.filter((v) => v !== null).length),
      notes: String(notes.filter((v) => v !== null).length),
      oks: String(oks.filter((v) => v !== null).length),
    });
  });

  it('writes byte ranges of one buffer exactly as it writes the same values as arrays', () => {
    // The COPY path's STRING columns arrive as ranges of its buffer (column-vector.ts); NULLs, empty values,
    // bytes above 0x7f and pages split at ~1 MiB must all come out the same as from Uint8Array values.
    const rows = 90_000;
    const parts: Buffer[] = [];
    const starts = new Float64Array(rows);
    const ends = new Float64Array(rows);
    let at = 0;
    for (let i = 0; i < rows; i++) {
      const value =
        i % 9 === 0
          ? null
          : Buffer.from(i % 5 === 0 ? '' : `välue ${(i * 7919) % 100_003} ${'z'.repeat(i % 11)}`);
      starts[i] = value === null ? -1 : at;
      ends[i] = value === null ? -1 : at + value.length;
      if (value) {
        parts.push(value);
        at += value.length;
      }
    }
    const ranges = new ByteRanges(Buffer.concat(parts), starts, ends);
    const plan = planParquetColumns([column('s', 'text')]);
    for (const compression of ['snappy', 'uncompressed'] as const) {
      const fromRanges = encodeParquetColumns(plan, [ranges], { compression });
      const fromArray = encodeParquetColumns(plan, [vectorToArray(ranges)], { compression });
      expect(Buffer.from(fromRanges).equals(Buffer.from(fromArray))).toBe(true);
      const sliced = encodeParquetColumns(plan, [ranges.slice(1000, 60_000)], { compression });
      const slicedArray = encodeParquetColumns(plan, [vectorToArray(ranges).slice(1000, 60_000)], {
        compression,
      });
      expect(Buffer.from(sliced).equals(Buffer.from(slicedArray))).toBe(true);
    }
    expect(vectorToArray(ranges).filter((v) => v === null)).toHaveLength(rows / 9);
  });

  it('writes 64-bit integers from a typed array exactly as it writes the same bigints from an array', () => {
    // The COPY path's int8, timestamp and DECIMAL(≤ 18) columns arrive as Int64Values (column-vector.ts): with
    // and without NULLs, at the int64 edges, as INT64 and as a DECIMAL(9)'s INT32, sliced and whole.
    const rows = 150_000; // more than one INT64 page (131 072 values)
    const make = (withNulls: boolean, edge: bigint) => {
      const values = new BigInt64Array(rows);
      const vector = new Int64Values(values, undefined);
      for (let i = 0; i < rows; i++) {
        if (withNulls && i % 7 === 3) vector.setNull(i);
        else values[i] = i === 5 ? edge : i === 6 ? -edge : BigInt(i) * 7_919n - 500_000_000n;
      }
      return vector;
    };
    const cases = [
      { column: column('big', 'int8'), edge: 2n ** 63n - 1n },
      { column: column('d', 'numeric', { numericPrecision: 9, numericScale: 2 }), edge: 999_999_999n },
      { column: column('d18', 'numeric', { numericPrecision: 18, numericScale: 0 }), edge: 10n ** 18n - 1n },
    ];
    for (const { column: c, edge } of cases) {
      const plan = planParquetColumns([c]);
      for (const withNulls of [false, true]) {
        const vector = make(withNulls, edge);
        for (const [from, to] of [
          [0, rows],
          [1_000, 140_000],
        ] as const) {
          const typed = encodeParquetColumns(plan, [vector.slice(from, to)], { compression: 'snappy' });
          const plain = encodeParquetColumns(plan, [vectorToArray(vector).slice(from, to)], {
            compression: 'snappy',
          });
          expect(Buffer.from(typed).equals(Buffer.from(plain)), `${c.name} nulls ${withNulls} ${from}`).toBe(
            true,
          );
        }
      }
    }
    // A DECIMAL(9)'s INT32 refuses a value beyond 32 bits rather than wrapping it.
    const wide = new Int64Values(BigInt64Array.of(1n, 2n ** 40n), undefined);
    const plan = planParquetColumns([column('d', 'numeric', { numericPrecision: 9, numericScale: 0 })]);
    expect(() => encodeParquetColumns(plan, [wide], { compression: 'snappy' })).toThrow(/column "d", row 1/);
  });

  it('writes footer statistics DuckDB reads as the true min and max', async () => {
    const plan = planParquetColumns([
      column('b', 'bytea'),
      column('f', 'float8'),
      column('z', 'float4'),
      column('d', 'numeric', { numericPrecision: 30, numericScale: 2 }),
      column('n', 'int4'),
    ]);
    const columns: Array<Array<ParquetValue | null>> = [
      // Unsigned byte order: 0xff sorts after 'a'; a string compare of code units would say otherwise.
      [Uint8Array.of(0x61), Uint8Array.of(0xff, 0x00), null, Uint8Array.of(0x00, 0x61)],
      [Number.NaN, -1.5, 2.25, null],
      [0, -0, 0, null],
      [-123456789012345678901234567n, 5n, null, 100n],
      [null, null, null, null],
    ];
    const file = writeTemp(encodeParquetColumns(plan, columns, { compression: 'uncompressed' }));
    const stats = await query(
      `SELECT path_in_schema AS c, stats_min_value AS lo, stats_max_value AS hi, stats_null_count AS nulls
       FROM parquet_metadata('${file}') ORDER BY column_id`,
    );
    expect(stats).toEqual([
      { c: 'b', lo: '\\x00a', hi: '\\xFF\\x00', nulls: '1' },
      { c: 'f', lo: '-1.5', hi: '2.25', nulls: '1' },
      { c: 'z', lo: '-0.0', hi: '0.0', nulls: '1' },
      { c: 'd', lo: '-1234567890123456789012345.67', hi: '1.00', nulls: '1' },
      { c: 'n', lo: null, hi: null, nulls: '4' },
    ]);
    // Filters that use the statistics still find the rows.
    const found = await query(`SELECT count(*) AS n FROM '${file}' WHERE d < -1e20 OR b > '\\xFE'::BLOB`);
    expect(found[0]?.n).toBe('2');
  });

  it('refuses a value its column cannot hold, naming column and row, instead of writing it wrong', () => {
    const plan = planParquetColumns([
      column('Small', 'int4'),
      column('big', 'int8'),
      column('d', 'numeric', {
        numericPrecision: 20,
        numericScale: 0,
      }),
    ]);
    const fine = [[1], [1n], [1n]] as Array<Array<ParquetValue | null>>;
    const cases: Array<[number, ParquetValue, RegExp]> = [
      [0, 2 ** 31, /column "Small", row 1/],
      [0, 1.5, /column "Small", row 1/],
      [0, 'x', /column "Small", row 1: a string value/],
      [1, 2n ** 63n, /column "big", row 1/],
      [1, 2 ** 60, /column "big", row 1/], // a number, not the bigint an INT64 column takes
      [0, 1n, /column "Small", row 1: a bigint value/],
      [2, 5, /column "d", row 1: a number value/], // a DECIMAL's value is its unscaled bigint, never a number
      [2, 10n ** 40n, /column "d", row 1/], // more than the 9 bytes of DECIMAL(20)
    ];
    for (const [index, value, message] of cases) {
      const columns = fine.map((vector, i) => [...vector, i === index ? value : (vector[0] ?? null)]);
      const encode = () => encodeParquetColumns(plan, columns, { compression: 'snappy' });
      expect(encode).toThrow(ParquetInputError);
      expect(encode).toThrow(message);
    }
  });
});
