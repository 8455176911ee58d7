/**
 * A column's values between reading and encoding: a plain array of Parquet values, or — for columns read from
 * COPY binary — {@link ByteRanges} (a STRING column: its values' places in the COPY buffer) or
 * {@link Int64Values} (64-bit integers in a typed array).
 *
 * Why ranges: an archive chunk's rows live until the chunk is encoded, past several young-generation
 * collections, so every object made per value is copied into the old generation and collected there. A
 * Buffer view per text value was the largest share of those objects, and garbage collection ≈ 1.4 CPU-s
 * per million archived rows (test/bench/README.md); two typed arrays per column make none per value.
 */
import type { ParquetValue } from './column-plan.ts';

/**
 * Values of a STRING column as [start, end) byte ranges of one buffer; start -1 is NULL. Offsets are doubles:
 * exact for any buffer, where 32-bit ones would wrap past 2 GiB (a chunk of large values can get there).
 */
export class ByteRanges {
  constructor(
    readonly data: Buffer,
    readonly starts: Float64Array,
    readonly ends: Float64Array,
  ) {}

  get length(): number {
    return this.starts.length;
  }

  /** The value's bytes (a view of the buffer), or null. */
  at(row: number): Uint8Array | null {
    const start = this.starts[row] as number;
    return start < 0 ? null : this.data.subarray(start, this.ends[row]);
  }

  /** Rows [start, end), sharing the buffer and the ranges' memory. */
  slice(start: number, end: number): ByteRanges {
    return new ByteRanges(this.data, this.starts.subarray(start, end), this.ends.subarray(start, end));
  }
}

/**
 * Values of a column stored as 64-bit integers (int8, timestamps, DECIMALs of up to 18 digits) in one
 * BigInt64Array, NULL marked apart: a BigInt per value, kept until the chunk is encoded, was most of what the
 * collector still had to move once STRING values became ranges.
 */
export class Int64Values {
  constructor(
    readonly values: BigInt64Array,
    /** 1 where the value is NULL; undefined when none is. */
    public nulls: Uint8Array | undefined,
  ) {}

  get length(): number {
    return this.values.length;
  }

  setNull(row: number): void {
    this.nulls ??= new Uint8Array(this.values.length);
    this.nulls[row] = 1;
  }

  at(row: number): bigint | null {
    return this.nulls?.[row] === 1 ? null : (this.values[row] as bigint);
  }

  slice(start: number, end: number): Int64Values {
    return new Int64Values(this.values.subarray(start, end), this.nulls?.subarray(start, end));
  }
}

export type ColumnVector = Array<ParquetValue | null> | ByteRanges | Int64Values;

export function valueAt(vector: ColumnVector, row: number): ParquetValue | null {
  return vector instanceof ByteRanges || vector instanceof Int64Values
    ? vector.at(row)
    : (vector[row] ?? null);
}

/** The values as an array (for writers and tests that take one). */
export function vectorToArray(vector: ColumnVector): Array<ParquetValue | null> {
  if (!(vector instanceof ByteRanges || vector instanceof Int64Values)) return vector;
  return Array.from({ length: vector.length }, (_, row) => vector.at(row));
}

/** The rows at `order`, in that order. */
export function pickRows(vector: ColumnVector, order: readonly number[]): ColumnVector {
  if (vector instanceof Int64Values) {
    const values = new BigInt64Array(order.length);
    const nulls = vector.nulls ? new Uint8Array(order.length) : undefined;
    order.forEach((row, i) => {
      values[i] = vector.values[row] as bigint;
      if (nulls) nulls[i] = vector.nulls?.[row] as number;
    });
    return new Int64Values(values, nulls);
  }
  if (!(vector instanceof ByteRanges)) return order.map((row) => vector[row] ?? null);
  const starts = new Float64Array(order.length);
  const ends = new Float64Array(order.length);
  order.forEach((row, i) => {
    starts[i] = vector.starts[row] as number;
    ends[i] = vector.ends[row] as number;
  });
  return new ByteRanges(vector.data, starts, ends);
}
