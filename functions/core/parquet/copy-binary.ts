/**
 * Decodes the output of `COPY … TO STDOUT (FORMAT binary)` straight into column vectors of Parquet values.
 *
 * Why: the row protocol makes one JS array per row and one string per value, which the archive then converts
 * again. Here fixed-width types (integers, floats, booleans, dates, timestamps) and constrained numerics go
 * from their binary send format to the value Parquet stores with no string in between; text columns arrive as
 * their bytes (binary `text` is its UTF-8 bytes, no escaping) and are converted by the column plan's own
 * `fromText`, exactly as the row path does (the caller selects other types as their output function's text).
 *
 * The binary values are the ones the text parsers produce for the same datum
 * (test/integration/archive-copy-binary.test.ts compares both paths on every mapped type, edges included).
 * Binary `text` arrives in the client encoding (textsend converts, as the row protocol does): UTF-8 here.
 */

import { isUtf8 } from 'node:buffer';
import type { ParquetValue } from './column-plan.ts';
import { ByteRanges, type ColumnVector, Int64Values } from './column-vector.ts';
import { locateValueError, ParquetInputError, UnrepresentableValueError } from './errors.ts';
import { DATE_INFINITY, DATE_NEG_INFINITY, INT64_MAX, TIMESTAMP_NEG_INFINITY } from './pg-text.ts';

/** Types read from their binary form; every other column is selected as `::text`. */
export type BinaryKind =
  | 'int2'
  | 'int4'
  | 'int8'
  | 'float4'
  | 'float8'
  | 'bool'
  | 'date'
  | 'timestamp'
  | 'timestamptz';

const BINARY_KINDS: ReadonlySet<string> = new Set<BinaryKind>([
  'int2',
  'int4',
  'int8',
  'float4',
  'float8',
  'bool',
  'date',
  'timestamp',
  'timestamptz',
]);

/** How one selected column is read; `name` locates a bad value in errors. */
export type ColumnReader =
  | { readonly name: string; readonly kind: BinaryKind }
  /** numeric read as DECIMAL(precision, scale)'s unscaled integer, as parseDecimalUnscaled reads its text. */
  | { readonly name: string; readonly kind: 'decimal'; readonly precision: number; readonly scale: number }
  | {
      readonly name: string;
      /** 'jsonb': its binary form is a version byte (1), then the text jsonb_out prints. */
      readonly kind: 'text' | 'jsonb';
      /** Null to keep the text itself (system columns, a cursor's terms); else the plan's converter. */
      readonly fromText: ((text: string) => ParquetValue) | null;
      /** Keep each row's text too (the time column: Hive partitions and the ledger read it). */
      readonly keepText: boolean;
      /** A STRING column (fromText is the identity): keep its UTF-8 bytes, which the Parquet writer stores as they are. */
      readonly asBytes?: boolean;
    };

/** The binary reader for a scalar column of this base type, or undefined (then it is read as text). */
export function binaryKindOf(column: {
  readonly baseType: string;
  readonly isArray: boolean;
  readonly baseTypeBuiltin?: boolean;
}): BinaryKind | undefined {
  // Only pg_catalog's own types: a user enum called `bool` has another send format.
  return !column.isArray && column.baseTypeBuiltin === true && BINARY_KINDS.has(column.baseType)
    ? (column.baseType as BinaryKind)
    : undefined;
}

/** Bytes of each fixed-width kind's send format: a field of another length is not that type. */
const WIDTH: Readonly<Record<BinaryKind, number>> = {
  int2: 2,
  int4: 4,
  int8: 8,
  float4: 4,
  float8: 8,
  bool: 1,
  date: 4,
  timestamp: 8,
  timestamptz: 8,
};

export interface DecodedColumns {
  readonly rows: number;
  /**
   * Per selected column, one value per row (null for SQL NULL): a STRING column's as byte ranges of the data, a
   * 64-bit integer column's (int8, timestamps, DECIMAL(≤ 18)) in a typed array (./column-vector.ts).
   */
  readonly values: ColumnVector[];
  /** Per selected column, each row's text where the reader kept it (else undefined). */
  readonly texts: Array<Array<string | null> | undefined>;
}

/** Kinds whose values are 64-bit integers (DECIMAL(≤ 18) too): read into {@link Int64Values}. */
const INT64_KINDS: ReadonlySet<string> = new Set(['int8', 'timestamp', 'timestamptz']);

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Microseconds from 1970-01-01 (Parquet's epoch) to 2000-01-01 (PostgreSQL's). */
const POSTGRES_EPOCH_MICROS = 946_684_800_000_000n;
const POSTGRES_EPOCH_MICROS_NUMBER = 946_684_800_000_000;
/** Days from 1970-01-01 to 2000-01-01. */
const POSTGRES_EPOCH_DAYS = 10_957;
const INT64_MIN = -(2n ** 63n);
const INT32_MAX = 2 ** 31 - 1;
const INT32_MIN = -(2 ** 31);

/**
 * Decodes a whole COPY binary stream (header, tuples, trailer). Throws ParquetInputError for a stream that is
 * not COPY binary or has another column count, UnrepresentableValueError for a timestamp Parquet's int64
 * microseconds cannot hold (as the text parser does), and the converters' own errors for text columns.
 */
export function decodeCopyBinary(data: Buffer, readers: readonly ColumnReader[]): DecodedColumns {
  if (data.length < 19 || !data.subarray(0, 11).equals(SIGNATURE)) {
    throw new ParquetInputError('not a COPY binary stream');
  }
  // A first pass over the lengths alone: the stream's shape is checked before any value is read, and each
  // vector is allocated once at its size.
  const rows = countRows(data, 19 + data.readInt32BE(15), readers.length);
  return new CopyBinaryDecoder(readers, rows).finish(data);
}

/** A STRING column's ranges while rows arrive: the buffer they index is only final at the end. */
class RangeSlots {
  constructor(
    public starts: Float64Array,
    public ends: Float64Array,
  ) {}
}

type Slot = RangeSlots | Int64Values | Array<ParquetValue | null>;

/**
 * Decodes a COPY binary stream as it arrives: {@link feed} after each piece with the buffer that holds the
 * stream so far (it may be another, larger buffer each time, the same bytes at the same offsets), and
 * {@link finish} with the whole stream. The rows are decoded while the server still sends the rest, so little
 * is left to do when the statement ends. A value that cannot be read stops the decoding; {@link finish}
 * throws it (feed never throws: it runs inside the connection's data handler).
 */
export class CopyBinaryDecoder {
  private readonly width: number;
  private readonly slots: Slot[];
  private readonly texts: Array<Array<string | null> | undefined>;
  /** An int8 or timestamp column's 64-bit slots as 32-bit words (little-endian platforms), to write without a BigInt. */
  private readonly words: Array<Uint32Array | undefined>;
  private capacity: number;
  /** Where the next row starts; -1 before the header is read. */
  private offset = -1;
  private rows = 0;
  private ended = false;
  private failure: { error: unknown } | undefined;

  /** `expectedRows`: room allocated up front (the archive: about its last chunk's rows); more rows grow the vectors. */
  constructor(
    private readonly readers: readonly ColumnReader[],
    expectedRows: number,
  ) {
    this.width = readers.length;
    this.capacity = Math.max(1, Math.floor(expectedRows));
    const capacity = this.capacity;
    this.texts = readers.map((r) =>
      (r.kind === 'text' || r.kind === 'jsonb') && (r.keepText || r.fromText === null)
        ? new Array(capacity)
        : undefined,
    );
    this.slots = readers.map((r, i) => {
      if ((r.kind === 'text' || r.kind === 'jsonb') && r.asBytes && this.texts[i] === undefined) {
        return new RangeSlots(new Float64Array(capacity), new Float64Array(capacity));
      }
      if (INT64_KINDS.has(r.kind) || (r.kind === 'decimal' && r.precision <= 18)) {
        return new Int64Values(new BigInt64Array(capacity), undefined);
      }
      return new Array(capacity);
    });
    this.words = this.slots.map((slot, i) => wordsOf(slot, this.readers[i] as ColumnReader));
  }

  /** Decodes every whole row in `data[0, length)` not decoded yet. */
  feed(data: Buffer, length: number): void {
    if (this.failure || this.ended) return;
    try {
      this.decodeAvailable(data, length);
    } catch (error) {
      this.failure = { error };
    }
  }

  /** The columns of the whole stream `data`; throws what stopped the decoding, or a stream cut short. */
  finish(data: Buffer): DecodedColumns {
    this.feed(data, data.length);
    if (this.failure) throw this.failure.error;
    if (!this.ended) {
      if (this.offset < 0) throw new ParquetInputError('not a COPY binary stream');
      // What is left is not a whole row: say where the stream ends, as a shape check would.
      countRows(data, this.offset, this.width);
      throw new ParquetInputError('COPY binary stream ends without its trailer');
    }
    const rows = this.rows;
    // Views of the room allocated, or copies when most of it went unused (it lives until the chunk is encoded).
    const trim = <T extends Float64Array | BigInt64Array | Uint8Array>(array: T): T =>
      (rows < this.capacity / 2 ? array.slice(0, rows) : array.subarray(0, rows)) as T;
    const values: ColumnVector[] = this.slots.map((slot) => {
      if (slot instanceof RangeSlots) return new ByteRanges(data, trim(slot.starts), trim(slot.ends));
      if (slot instanceof Int64Values) {
        return new Int64Values(trim(slot.values), slot.nulls ? trim(slot.nulls) : undefined);
      }
      slot.length = rows;
      return slot;
    });
    for (const text of this.texts) if (text) text.length = rows;
    return { rows, values, texts: this.texts };
  }

  private decodeAvailable(data: Buffer, length: number): void {
    if (this.offset < 0) {
      if (length < 19) return;
      if (!data.subarray(0, 11).equals(SIGNATURE)) throw new ParquetInputError('not a COPY binary stream');
      const headerEnd = 19 + data.readInt32BE(15); // signature, flags, header extension
      if (length < headerEnd) return;
      this.offset = headerEnd;
    }
    const width = this.width;
    for (;;) {
      // The row's shape first: whole, with `width` fields, or wait for more.
      let offset = this.offset;
      if (offset + 2 > length) return;
      const fields = (((data[offset] as number) << 24) >> 16) | (data[offset + 1] as number);
      if (fields === -1) {
        this.offset = offset + 2;
        this.ended = true;
        return;
      }
      if (fields !== width) throw new ParquetInputError(`COPY row has ${fields} fields, expected ${width}`);
      offset += 2;
      for (let i = 0; i < width; i++) {
        if (offset + 4 > length) return;
        const size = int32At(data, offset);
        if (size < -1) throw new ParquetInputError('COPY binary stream ends inside a value');
        offset += 4 + Math.max(size, 0);
        if (offset > length) return;
      }
      if (this.rows === this.capacity) this.grow();
      this.decodeRow(data, this.offset + 2, this.rows);
      this.offset = offset;
      this.rows++;
    }
  }

  private decodeRow(data: Buffer, from: number, row: number): void {
    const readers = this.readers;
    let offset = from;
    let i = 0;
    try {
      for (; i < this.width; i++) {
        const length = int32At(data, offset);
        offset += 4;
        const slot = this.slots[i] as Slot;
        const reader = readers[i] as ColumnReader;
        if (slot instanceof Int64Values) {
          if (length === -1) slot.setNull(row);
          else {
            const words = this.words[i];
            if (!(words && length === 8 && writeInt64Words(reader.kind, data, offset, words, row))) {
              // The bigint readValue makes dies here, young: nothing per value outlives the decoding.
              slot.values[row] = readValue(reader, data, offset, length, undefined, row) as bigint;
            }
            offset += length;
          }
          continue;
        }
        if (slot instanceof RangeSlots) {
          const start = length === -1 ? -1 : utf8Start(reader, data, offset, length);
          if (start !== undefined) {
            slot.starts[row] = start;
            slot.ends[row] = offset + length;
            offset += Math.max(length, 0);
            continue;
          }
          // Not UTF-8 (a SQL_ASCII database): the column becomes values, read as the row path reads them.
          // Copies: `data` may be a buffer the stream outgrows, and views of it would outlive it.
          const earlier = new ByteRanges(data, slot.starts, slot.ends);
          this.slots[i] = Array.from({ length: this.capacity }, (_, r) => {
            const value = r < row ? earlier.at(r) : null;
            return value === null ? null : Buffer.from(value);
          });
        }
        const vector = this.slots[i] as Array<ParquetValue | null>;
        if (length === -1) {
          vector[row] = null;
          const text = this.texts[i];
          if (text) text[row] = null;
          continue;
        }
        vector[row] = readValue(reader, data, offset, length, this.texts[i], row);
        offset += length;
      }
    } catch (error) {
      throw locateValueError(error, readers[i]?.name ?? `#${i + 1}`, row);
    }
  }

  /** Twice the room, keeping what was read. */
  private grow(): void {
    const capacity = this.capacity * 2;
    this.slots.forEach((slot, i) => {
      if (slot instanceof RangeSlots) {
        const starts = new Float64Array(capacity);
        const ends = new Float64Array(capacity);
        starts.set(slot.starts);
        ends.set(slot.ends);
        this.slots[i] = new RangeSlots(starts, ends);
      } else if (slot instanceof Int64Values) {
        const values = new BigInt64Array(capacity);
        values.set(slot.values);
        let nulls: Uint8Array | undefined;
        if (slot.nulls) {
          nulls = new Uint8Array(capacity);
          nulls.set(slot.nulls);
        }
        this.slots[i] = new Int64Values(values, nulls);
      }
    });
    this.slots.forEach((slot, i) => {
      this.words[i] = wordsOf(slot, this.readers[i] as ColumnReader);
    });
    this.capacity = capacity;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** 2000-01-01 in microseconds from 1970 as two 32-bit words. */
const EPOCH_HIGH = Math.floor(POSTGRES_EPOCH_MICROS_NUMBER / 0x1_0000_0000);
const EPOCH_LOW = POSTGRES_EPOCH_MICROS_NUMBER % 0x1_0000_0000;

function wordsOf(slot: Slot, reader: ColumnReader): Uint32Array | undefined {
  if (!LITTLE_ENDIAN || !(slot instanceof Int64Values)) return undefined;
  if (reader.kind !== 'int8' && reader.kind !== 'timestamp' && reader.kind !== 'timestamptz')
    return undefined;
  return new Uint32Array(slot.values.buffer, slot.values.byteOffset, slot.values.length * 2);
}

/**
 * An int8, or a timestamp within ±142 years of 2000 (shifted to Parquet's epoch), written into its 64-bit slot
 * as two 32-bit words: no BigInt per value (≈ 2 per row of a typical table). False for what readValue must do
 * (infinities, far timestamps and their range checks).
 */
function writeInt64Words(
  kind: ColumnReader['kind'],
  data: Buffer,
  offset: number,
  words: Uint32Array,
  row: number,
): boolean {
  let high = int32At(data, offset);
  let low = int32At(data, offset + 4) >>> 0;
  if (kind !== 'int8') {
    if (high <= -0x100000 || high >= 0x100000) return false;
    low += EPOCH_LOW;
    high += EPOCH_HIGH;
    if (low >= 0x1_0000_0000) {
      low -= 0x1_0000_0000;
      high += 1;
    }
  }
  words[row * 2] = low;
  words[row * 2 + 1] = high >>> 0;
  return true;
}

/** Read by hand: Buffer's readInt32BE checks its arguments on every call. */
function int32At(data: Buffer, offset: number): number {
  return (
    ((data[offset] as number) << 24) |
    ((data[offset + 1] as number) << 16) |
    ((data[offset + 2] as number) << 8) |
    (data[offset + 3] as number)
  );
}

/** Rows in the stream, after checking every tuple has `width` fields inside the data and the trailer ends it. */
function countRows(data: Buffer, start: number, width: number): number {
  let offset = start;
  let rows = 0;
  for (;;) {
    if (offset + 2 > data.length) throw new ParquetInputError('COPY binary stream ends without its trailer');
    const fields = (((data[offset] as number) << 24) >> 16) | (data[offset + 1] as number);
    offset += 2;
    if (fields === -1) return rows;
    if (fields !== width) throw new ParquetInputError(`COPY row has ${fields} fields, expected ${width}`);
    for (let i = 0; i < width; i++) {
      if (offset + 4 > data.length) throw new ParquetInputError('COPY binary stream ends inside a row');
      const length = int32At(data, offset);
      offset += 4;
      if (length < -1 || offset + Math.max(length, 0) > data.length) {
        throw new ParquetInputError('COPY binary stream ends inside a value');
      }
      if (length > 0) offset += length;
    }
    rows++;
  }
}

/**
 * Where a STRING value's UTF-8 bytes start (after jsonb's version byte), or undefined if they are not UTF-8.
 */
function utf8Start(reader: ColumnReader, data: Buffer, offset: number, length: number): number | undefined {
  let start = offset;
  if (reader.kind === 'jsonb') {
    if (length < 1 || data[offset] !== 1) {
      throw new ParquetInputError(
        `unknown jsonb binary version ${length < 1 ? '(empty value)' : data[offset]}`,
      );
    }
    start++;
  }
  const end = offset + length;
  // ASCII is UTF-8: most values are read through here without a view and a native call each.
  let i = start;
  while (i < end && (data[i] as number) < 0x80) i++;
  if (i === end) return start;
  return isUtf8(new Uint8Array(data.buffer, data.byteOffset + i, end - i)) ? start : undefined;
}

function readValue(
  reader: ColumnReader,
  data: Buffer,
  offset: number,
  length: number,
  text: Array<string | null> | undefined,
  row: number,
): ParquetValue {
  if (reader.kind !== 'text' && reader.kind !== 'jsonb') {
    // A numeric's digit count is read from its header only once the header is there (past the field lie
    // another value's bytes, or an earlier chunk's).
    const expected =
      reader.kind === 'decimal' ? (length < 8 ? 8 : 8 + 2 * data.readInt16BE(offset)) : WIDTH[reader.kind];
    if (length !== expected) {
      throw new ParquetInputError(`a ${reader.kind} value of ${length} bytes (expected ${expected})`);
    }
  }
  switch (reader.kind) {
    case 'text':
    case 'jsonb': {
      let start = offset;
      if (reader.kind === 'jsonb') {
        if (length < 1 || data[offset] !== 1) {
          throw new ParquetInputError(
            `unknown jsonb binary version ${length < 1 ? '(empty value)' : data[offset]}`,
          );
        }
        start++;
      }
      if (reader.asBytes && text === undefined) {
        // A STRING column stored as it came, its UTF-8 bytes (no string made and encoded again): here, one that
        // left byte ranges at a byte sequence that is not UTF-8 (a SQL_ASCII database). Such bytes are read as
        // text instead, so they are replaced as the row path replaces them, and the file stays valid UTF-8.
        const view = data.subarray(start, offset + length);
        // A copy, not the view: `data` may be a buffer the stream outgrows.
        if (isUtf8(view)) return Buffer.from(view);
      }
      const value = data.toString('utf8', start, offset + length);
      if (text) text[row] = value;
      return reader.fromText === null ? value : reader.fromText(value);
    }
    case 'int2':
      return data.readInt16BE(offset);
    case 'int4':
      return data.readInt32BE(offset);
    case 'int8':
      return data.readBigInt64BE(offset);
    case 'float4':
      return data.readFloatBE(offset);
    case 'float8':
      return data.readDoubleBE(offset);
    case 'bool':
      return data[offset] !== 0;
    case 'date': {
      const days = data.readInt32BE(offset);
      if (days === INT32_MAX) return DATE_INFINITY;
      if (days === INT32_MIN) return DATE_NEG_INFINITY;
      return days + POSTGRES_EPOCH_DAYS;
    }
    case 'timestamp':
    case 'timestamptz': {
      // Within ±142 years of 2000 (|high word| < 2^20) the microseconds fit a double exactly: one BigInt, not
      // three.
      const high = data.readInt32BE(offset);
      if (high > -0x100000 && high < 0x100000) {
        return BigInt(high * 0x1_0000_0000 + data.readUInt32BE(offset + 4) + POSTGRES_EPOCH_MICROS_NUMBER);
      }
      const micros = data.readBigInt64BE(offset);
      if (micros === INT64_MAX) return INT64_MAX;
      if (micros === INT64_MIN) return TIMESTAMP_NEG_INFINITY;
      const value = micros + POSTGRES_EPOCH_MICROS;
      // Finite values must stay strictly inside the infinities (see parseTimestampMicros).
      if (value >= INT64_MAX || value <= TIMESTAMP_NEG_INFINITY) {
        throw new UnrepresentableValueError(`a ${reader.kind} is outside the int64 microsecond range`);
      }
      return value;
    }
    case 'decimal':
      return readDecimal(data, offset, reader.precision, reader.scale);
    default: {
      const unknown: never = reader;
      throw new ParquetInputError(`unknown column reader ${JSON.stringify(unknown)}`);
    }
  }
}

const NUMERIC_NEGATIVE = 0x4000;
const NUMERIC_NAN = 0xc000;
const NBASE_DIGITS = 4;
/** 10^0 … 10^15, exact doubles. */
const POWERS_OF_TEN: readonly number[] = Array.from({ length: 16 }, (_, i) => 10 ** i);

/**
 * numeric's binary form (ndigits, weight, sign, dscale, then base-10000 digits) as the unscaled integer of
 * DECIMAL(precision, scale): the same value, and the same refusals, as {@link parseDecimalUnscaled} on its text
 * (NaN/±Infinity, digits beyond the scale that are not zero, more digits than the precision).
 */
function readDecimal(data: Buffer, offset: number, precision: number, scale: number): bigint {
  const ndigits = data.readInt16BE(offset);
  const weight = data.readInt16BE(offset + 2);
  const sign = data.readUInt16BE(offset + 4);
  if (sign !== 0 && sign !== NUMERIC_NEGATIVE) {
    const what = sign === NUMERIC_NAN ? 'NaN' : 'an infinity';
    throw new UnrepresentableValueError(`${what} has no DECIMAL(${precision},${scale}) representation`);
  }
  let shift = NBASE_DIGITS * (weight - ndigits + 1) + scale;
  // Most values: every digit group and the scaling fit a double exactly (below 2^53), one BigInt at the end.
  if (ndigits <= 3 && shift >= 0 && shift <= 15) {
    let small = 0;
    for (let i = 0; i < ndigits; i++) small = small * 10_000 + data.readInt16BE(offset + 8 + 2 * i);
    const scaled = small * (POWERS_OF_TEN[shift] as number);
    if (Number.isSafeInteger(scaled) && scaled < (POWERS_OF_TEN[precision] ?? Number.POSITIVE_INFINITY)) {
      return BigInt(sign === NUMERIC_NEGATIVE ? -scaled : scaled);
    }
  }
  // The digits as one integer D; the value is D × 10^exponent.
  let digits = 0n;
  for (let i = 0; i < ndigits; i++) digits = digits * 10_000n + BigInt(data.readInt16BE(offset + 8 + 2 * i));
  let unscaled = digits;
  if (shift >= 0) unscaled = digits * 10n ** BigInt(shift);
  else {
    // Trailing zeros of the last base-10000 group are no fraction digit.
    while (shift < 0 && unscaled !== 0n && unscaled % 10n === 0n) {
      unscaled /= 10n;
      shift++;
    }
    if (shift < 0 && unscaled !== 0n) {
      throw new UnrepresentableValueError(`a numeric has more than ${scale} fraction digits`);
    }
  }
  if (unscaled >= 10n ** BigInt(precision)) {
    throw new UnrepresentableValueError(`a numeric does not fit DECIMAL(${precision},${scale})`);
  }
  return sign === NUMERIC_NEGATIVE ? -unscaled : unscaled;
}
