/**
 * Writes a Parquet file whose columns are all flat primitives — every plan ./column-plan.ts makes except
 * those with a LIST — straight from the column vectors: PLAIN values and definition levels in version-1 data
 * pages of about 1 MiB, no dictionary.
 *
 * Why not hyparquet-writer for these: it serves every shape a value at a time (a dictionary trial per
 * column, a size estimate per value, nested levels built per value, a copy per page). On the archive
 * benchmark's 50 000-row chunk it took ≈ 130 ms of Node's one thread, and that thread is what bounds an
 * archive (test/bench/README.md). The container — page headers, the footer's thrift, statistics bytes,
 * Snappy — is hyparquet-writer's own code, so the two writers' files differ only in their pages.
 *
 * No dictionary: Snappy takes most of what a dictionary saves on repetitive columns (the benchmark's chunk:
 * 1.54 MB PLAIN vs 1.51 MB with dictionaries), and a file is then one deterministic function of its values,
 * which the byte-exact re-encoding of an erasure relies on (./file-plan.ts).
 */
import type {
  ColumnChunk,
  CompressionCodec,
  FileMetaData,
  KeyValue,
  RowGroup,
  SchemaElement,
} from 'hyparquet';
import { ByteWriter } from 'hyparquet-writer';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';
import { writeMetadata } from 'hyparquet-writer/src/metadata.js';
import type { ParquetValue } from './column-plan.ts';
import { ByteRanges, type ColumnVector, Int64Values } from './column-vector.ts';
import { ParquetInputError } from './errors.ts';

/** Uncompressed bytes of values per data page, as hyparquet-writer's default page size. */
const PAGE_BYTES = 1 << 20;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT32_MIN_BIG = BigInt(INT32_MIN);
const INT32_MAX_BIG = BigInt(INT32_MAX);
const PAR1 = 0x31524150;
/** A BigInt64Array's memory is Parquet's INT64 bytes only on a little-endian machine. */
const LITTLE_ENDIAN = new Uint8Array(new BigInt64Array([1n]).buffer)[0] === 1;

export type Compressor = (input: Uint8Array) => Uint8Array;

export interface FlatFileOptions {
  readonly codec: CompressionCodec;
  /** Undefined for UNCOMPRESSED. */
  readonly compress: Compressor | undefined;
  readonly rowGroupSize: number;
  readonly kvMetadata: KeyValue[];
  readonly createdBy: string;
}

type FlatType = 'BOOLEAN' | 'INT32' | 'INT64' | 'FLOAT' | 'DOUBLE' | 'BYTE_ARRAY' | 'FIXED_LEN_BYTE_ARRAY';
const FLAT_TYPES: ReadonlySet<string> = new Set<FlatType>([
  'BOOLEAN',
  'INT32',
  'INT64',
  'FLOAT',
  'DOUBLE',
  'BYTE_ARRAY',
  'FIXED_LEN_BYTE_ARRAY',
]);

/**
 * True when every column is one OPTIONAL primitive leaf this writer handles (a FIXED_LEN_BYTE_ARRAY only
 * as a DECIMAL, the one use the column plans make of it).
 */
export function isFlatSchema(columns: ReadonlyArray<readonly SchemaElement[]>): boolean {
  return columns.every((elements) => {
    const [leaf] = elements;
    if (elements.length !== 1 || !leaf || leaf.repetition_type !== 'OPTIONAL') return false;
    if (!leaf.type || !FLAT_TYPES.has(leaf.type) || leaf.num_children) return false;
    if (leaf.type !== 'FIXED_LEN_BYTE_ARRAY') return true;
    return leaf.converted_type === 'DECIMAL' && (leaf.type_length ?? 0) > 0;
  });
}

/**
 * The whole file: `schema` is the root element followed by one leaf per column (see {@link isFlatSchema}),
 * `columns` one vector per leaf, null for SQL NULL. Throws `ParquetInputError` naming the column and row
 * of a value its column's physical type cannot hold (such a file would read back different values).
 */
export function writeFlatParquet(
  schema: SchemaElement[],
  columns: readonly ColumnVector[],
  options: FlatFileOptions,
): Uint8Array {
  const leaves = schema.slice(1);
  const rows = columns[0]?.length ?? 0;
  const writer = new PartsWriter();
  writer.append(magic());
  const rowGroups: RowGroup[] = [];
  for (let start = 0; start < rows; start += options.rowGroupSize) {
    const end = Math.min(rows, start + options.rowGroupSize);
    const groupOffset = writer.offset;
    const chunks: ColumnChunk[] = [];
    let uncompressed = 0n;
    leaves.forEach((element, index) => {
      const chunk = writeColumnChunk(writer, element, columns[index] ?? [], start, end, options);
      uncompressed += chunk.meta_data?.total_uncompressed_size ?? 0n;
      chunks.push(chunk);
    });
    rowGroups.push({
      columns: chunks,
      total_byte_size: uncompressed,
      num_rows: BigInt(end - start),
      total_compressed_size: BigInt(writer.offset - groupOffset),
    });
  }
  const metadata: Omit<FileMetaData, 'metadata_length'> = {
    version: 2,
    created_by: options.createdBy,
    schema,
    num_rows: BigInt(rows),
    row_groups: rowGroups,
    key_value_metadata: options.kvMetadata,
  };
  // The footer's thrift, then its length (writeMetadata writes both), then the closing magic.
  const footer = new ByteWriter(4096);
  writeMetadata(footer, metadata as FileMetaData);
  writer.append(footer.getBytes());
  writer.append(magic());
  return writer.concat();
}

/**
 * The file as a list of parts joined once at the end: pages are built whole, so copying them into a growing
 * buffer (hyparquet-writer's ByteWriter doubles and copies) would only add copies.
 */
class PartsWriter {
  offset = 0;
  private readonly parts: Uint8Array[] = [];

  append(part: Uint8Array): void {
    this.parts.push(part);
    this.offset += part.byteLength;
  }

  concat(): Uint8Array {
    const file = new Uint8Array(this.offset);
    let at = 0;
    for (const part of this.parts) {
      file.set(part, at);
      at += part.byteLength;
    }
    return file;
  }
}

function magic(): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, PAR1, true);
  return bytes;
}

/** What one column chunk's values add up to, for its footer statistics. */
interface ChunkStatistics {
  nulls: number;
  nans: number;
  min: ParquetValue | undefined;
  max: ParquetValue | undefined;
}

function writeColumnChunk(
  writer: PartsWriter,
  element: SchemaElement,
  values: ColumnVector,
  start: number,
  end: number,
  options: FlatFileOptions,
): ColumnChunk {
  const type = element.type as FlatType;
  const offset = writer.offset;
  const stats: ChunkStatistics = { nulls: 0, nans: 0, min: undefined, max: undefined };
  let uncompressedTotal = 0;
  let pages = 0;
  for (let pageStart = start; pageStart < end; ) {
    const page = encodePage(element, values, pageStart, end, stats);
    const compressed = options.compress ? options.compress(page.body) : page.body;
    const header = new ByteWriter(64);
    writePageHeader(header, {
      type: 'DATA_PAGE',
      uncompressed_page_size: page.body.byteLength,
      compressed_page_size: compressed.byteLength,
      data_page_header: {
        num_values: page.end - pageStart,
        encoding: 'PLAIN',
        definition_level_encoding: 'RLE',
        repetition_level_encoding: 'RLE',
      },
    });
    const headerBytes = header.getBytes();
    uncompressedTotal += headerBytes.byteLength + page.body.byteLength;
    writer.append(headerBytes);
    writer.append(compressed);
    pageStart = page.end;
    pages++;
  }
  return {
    file_offset: BigInt(offset),
    meta_data: {
      type,
      encodings: ['PLAIN', 'RLE'],
      path_in_schema: [element.name],
      codec: options.codec,
      num_values: BigInt(end - start),
      total_uncompressed_size: BigInt(uncompressedTotal),
      total_compressed_size: BigInt(writer.offset - offset),
      data_page_offset: BigInt(offset),
      statistics: footerStatistics(element, stats),
      encoding_stats: [{ page_type: 'DATA_PAGE', encoding: 'PLAIN', count: pages }],
    },
  };
}

/** Min/max as hyparquet-writer's footer writer takes them: a DECIMAL's as its unscaled bigint. */
function footerStatistics(
  element: SchemaElement,
  stats: ChunkStatistics,
): NonNullable<NonNullable<ColumnChunk['meta_data']>['statistics']> {
  const decimal = element.converted_type === 'DECIMAL';
  const asStatistic = (value: ParquetValue | undefined) =>
    value === undefined ? undefined : decimal ? BigInt(value as number | bigint) : value;
  let min = asStatistic(stats.min);
  let max = asStatistic(stats.max);
  // Parquet's rule for signed zero: min is -0, max is +0.
  if (min === 0) min = -0;
  if (max === 0) max = 0;
  const float = element.type === 'FLOAT' || element.type === 'DOUBLE';
  return {
    null_count: BigInt(stats.nulls),
    min_value: min as never,
    max_value: max as never,
    ...(float ? { nan_count: BigInt(stats.nans) } : {}),
  };
}

/**
 * One data page from `start`: 4-byte length + definition levels (RLE/bit-packed hybrid, bit width 1), then
 * the non-null values PLAIN. Ends where the values reach {@link PAGE_BYTES} (at least one row).
 */
function encodePage(
  element: SchemaElement,
  vector: ColumnVector,
  start: number,
  limit: number,
  stats: ChunkStatistics,
): { body: Uint8Array; end: number } {
  if (vector instanceof ByteRanges) return encodeRangesPage(vector, start, limit, stats);
  if (vector instanceof Int64Values) return encodeInt64Page(element, vector, start, limit, stats);
  const values = vector;
  const type = element.type as FlatType;
  const width = fixedWidth(element);
  // Byte arrays: their bytes (strings as UTF-8), found once and reused for size and copy.
  const bytes: Array<Uint8Array | null> | undefined = width === undefined ? [] : undefined;
  let end = start;
  let valueBytes = 0;
  let nonNull = 0;
  if (bytes) {
    while (end < limit && (valueBytes < PAGE_BYTES || end === start)) {
      const value = values[end] ?? null;
      const asBytes = value === null ? null : byteArrayOf(value, element, end);
      bytes.push(asBytes);
      if (asBytes) {
        valueBytes += 4 + asBytes.byteLength;
        nonNull++;
      }
      end++;
    }
  } else {
    const rowsPerPage = Math.max(1, Math.floor((PAGE_BYTES * 8) / (width as number)));
    end = Math.min(limit, start + rowsPerPage);
    for (let i = start; i < end; i++) if (values[i] !== null && values[i] !== undefined) nonNull++;
    valueBytes = type === 'BOOLEAN' ? Math.ceil(nonNull / 8) : (nonNull * (width as number)) / 8;
  }
  const nulls = end - start - nonNull;
  stats.nulls += nulls;
  const { body, view, at } = pageWithLevels(
    start,
    end,
    nulls,
    valueBytes,
    (row) => values[row] !== null && values[row] !== undefined,
  );
  if (bytes) writeByteArrays(body, view, at, bytes, stats);
  else writeFixed(element, body, view, at, values, start, end, stats);
  return { body, end };
}

/**
 * {@link encodePage} for 64-bit integers in a typed array: an INT64 page is their bytes as they lie in memory
 * (Parquet's PLAIN INT64 is little-endian, as every platform Node runs this on), a DECIMAL(≤ 9)'s INT32 page
 * their narrowing.
 */
function encodeInt64Page(
  element: SchemaElement,
  vector: Int64Values,
  start: number,
  limit: number,
  stats: ChunkStatistics,
): { body: Uint8Array; end: number } {
  const { values, nulls } = vector;
  const int32 = element.type === 'INT32';
  if (!int32 && element.type !== 'INT64') throw badValue(element, start, values[start]);
  const width = int32 ? 4 : 8;
  const end = Math.min(limit, start + Math.max(1, Math.floor(PAGE_BYTES / width)));
  const count = end - start;
  let nullCount = 0;
  if (nulls) for (let row = start; row < end; row++) nullCount += nulls[row] as number;
  stats.nulls += nullCount;
  const page = pageWithLevels(
    start,
    end,
    nullCount,
    (count - nullCount) * width,
    (row) => nulls?.[row] !== 1,
  );
  const { body, view } = page;
  let offset = page.at;
  let min = stats.min as bigint | undefined;
  let max = stats.max as bigint | undefined;
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const copied = !int32 && nullCount === 0 && LITTLE_ENDIAN;
  if (copied) body.set(bytes.subarray(start * 8, end * 8), offset);
  for (let row = start; row < end; row++) {
    if (nulls?.[row] === 1) continue;
    const value = values[row] as bigint;
    if (int32) {
      if (value < INT32_MIN_BIG || value > INT32_MAX_BIG) throw badValue(element, row, value);
      view.setInt32(offset, Number(value), true);
      offset += 4;
    } else if (!copied) {
      view.setBigInt64(offset, value, true);
      offset += 8;
    }
    if (min === undefined || value < min) min = value;
    if (max === undefined || value > max) max = value;
  }
  stats.min = min;
  stats.max = max;
  return { body, end };
}

/**
 * {@link encodePage} for a STRING column read as byte ranges: sizes, copies and min/max straight from the
 * COPY buffer, no object per value.
 */
function encodeRangesPage(
  vector: ByteRanges,
  start: number,
  limit: number,
  stats: ChunkStatistics,
): { body: Uint8Array; end: number } {
  const { data, starts, ends } = vector;
  let end = start;
  let valueBytes = 0;
  let nonNull = 0;
  while (end < limit && (valueBytes < PAGE_BYTES || end === start)) {
    const from = starts[end] as number;
    if (from >= 0) {
      valueBytes += 4 + (ends[end] as number) - from;
      nonNull++;
    }
    end++;
  }
  const nulls = end - start - nonNull;
  stats.nulls += nulls;
  const page = pageWithLevels(start, end, nulls, valueBytes, (row) => (starts[row] as number) >= 0);
  const { body, view } = page;
  let offset = page.at;
  let min = -1;
  let max = -1;
  for (let row = start; row < end; row++) {
    const from = starts[row] as number;
    if (from < 0) continue;
    const to = ends[row] as number;
    view.setUint32(offset, to - from, true);
    copyBytes(data, from, to, body, offset + 4);
    offset += 4 + to - from;
    if (min < 0) {
      min = row;
      max = row;
    } else if (compareBytes(data, from, to, starts[min] as number, ends[min] as number) < 0) min = row;
    else if (compareBytes(data, from, to, starts[max] as number, ends[max] as number) > 0) max = row;
  }
  if (min >= 0) {
    const low = vector.at(min) as Uint8Array;
    const high = vector.at(max) as Uint8Array;
    if (stats.min === undefined || Buffer.compare(low, stats.min as Uint8Array) < 0) stats.min = low;
    if (stats.max === undefined || Buffer.compare(high, stats.max as Uint8Array) > 0) stats.max = high;
  }
  return { body, end };
}

/**
 * Values shorter than this are copied byte by byte: a call into Buffer#copy (argument checks, then memcpy)
 * costs more than the loop for them.
 */
const SHORT_COPY_BYTES = 64;

function copyBytes(from: Buffer, start: number, end: number, to: Uint8Array, at: number): void {
  if (end - start < SHORT_COPY_BYTES) {
    for (let i = start; i < end; i++) to[at + i - start] = from[i] as number;
  } else from.copy(to, at, start, end);
}

/**
 * Two byte ranges of `data` in Parquet's order for byte arrays (unsigned bytes, then length), as Buffer#compare
 * orders them: in JS, since most comparisons end within a few bytes and a native call per value cost ≈ 0.2 s
 * per million rows of two string columns.
 */
function compareBytes(data: Buffer, aFrom: number, aTo: number, bFrom: number, bTo: number): number {
  const length = Math.min(aTo - aFrom, bTo - bFrom);
  for (let i = 0; i < length; i++) {
    const difference = (data[aFrom + i] as number) - (data[bFrom + i] as number);
    if (difference !== 0) return difference;
  }
  return aTo - aFrom - (bTo - bFrom);
}

/**
 * A page body of `count` rows with room for `valueBytes` of values: the definition levels' 4-byte length, then
 * the levels (one RLE run when no row is NULL, else bit-packed from `present`). Returns where the values start.
 */
function pageWithLevels(
  start: number,
  end: number,
  nulls: number,
  valueBytes: number,
  present: (row: number) => boolean,
): { body: Uint8Array; view: DataView; at: number } {
  const count = end - start;
  const levels = nulls === 0 ? rleRunSize(count) : bitPackedSize(count);
  const body = new Uint8Array(4 + levels + valueBytes);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  view.setUint32(0, levels, true);
  if (nulls === 0) writeRleRun(body, 4, count);
  else writeBitPackedLevels(body, 4, start, end, present);
  return { body, view, at: 4 + levels };
}

/** Bits per value of a fixed-width type; undefined for BYTE_ARRAY. */
function fixedWidth(element: SchemaElement): number | undefined {
  switch (element.type as FlatType) {
    case 'BOOLEAN':
      return 1;
    case 'INT32':
    case 'FLOAT':
      return 32;
    case 'INT64':
    case 'DOUBLE':
      return 64;
    case 'FIXED_LEN_BYTE_ARRAY':
      return (element.type_length ?? 0) * 8;
    default:
      return undefined;
  }
}

function byteArrayOf(value: ParquetValue, element: SchemaElement, row: number): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  throw badValue(element, row, value);
}

function writeByteArrays(
  body: Uint8Array,
  view: DataView,
  at: number,
  bytes: ReadonlyArray<Uint8Array | null>,
  stats: ChunkStatistics,
): void {
  let offset = at;
  let min = stats.min as Uint8Array | undefined;
  let max = stats.max as Uint8Array | undefined;
  for (const value of bytes) {
    if (value === null) continue;
    view.setUint32(offset, value.byteLength, true);
    body.set(value, offset + 4);
    offset += 4 + value.byteLength;
    // Parquet orders byte arrays as unsigned bytes, which Buffer.compare does.
    if (min === undefined || Buffer.compare(value, min) < 0) min = value;
    if (max === undefined || Buffer.compare(value, max) > 0) max = value;
  }
  stats.min = min;
  stats.max = max;
}

function writeFixed(
  element: SchemaElement,
  body: Uint8Array,
  view: DataView,
  at: number,
  values: ReadonlyArray<ParquetValue | null>,
  start: number,
  end: number,
  stats: ChunkStatistics,
): void {
  const type = element.type as FlatType;
  const decimal = element.converted_type === 'DECIMAL';
  let offset = at;
  let min = stats.min;
  let max = stats.max;
  let bit = 0;
  for (let row = start; row < end; row++) {
    const value = values[row];
    if (value === null || value === undefined) continue;
    switch (type) {
      case 'BOOLEAN': {
        if (typeof value !== 'boolean') throw badValue(element, row, value);
        if (value) body[offset + (bit >> 3)] = (body[offset + (bit >> 3)] as number) | (1 << (bit & 7));
        bit++;
        break;
      }
      case 'INT32': {
        // A DECIMAL's value is its unscaled bigint (as column-plan.ts makes it); a JS number there would be
        // ambiguous (hyparquet-writer scales one), so each kind of column takes one kind of value.
        const physical = decimal ? (typeof value === 'bigint' ? Number(value) : Number.NaN) : value;
        if (
          typeof physical !== 'number' ||
          !Number.isInteger(physical) ||
          physical < INT32_MIN ||
          physical > INT32_MAX
        ) {
          throw badValue(element, row, value);
        }
        view.setInt32(offset, physical, true);
        offset += 4;
        break;
      }
      case 'INT64': {
        const physical = value;
        if (typeof physical !== 'bigint' || physical < INT64_MIN || physical > INT64_MAX) {
          throw badValue(element, row, value);
        }
        view.setBigInt64(offset, physical, true);
        offset += 8;
        break;
      }
      case 'FLOAT':
      case 'DOUBLE': {
        if (typeof value !== 'number') throw badValue(element, row, value);
        if (type === 'FLOAT') view.setFloat32(offset, value, true);
        else view.setFloat64(offset, value, true);
        offset += type === 'FLOAT' ? 4 : 8;
        // NaN has no place in min/max (Parquet's rule); it is counted instead.
        if (Number.isNaN(value)) {
          stats.nans++;
          continue;
        }
        break;
      }
      case 'FIXED_LEN_BYTE_ARRAY': {
        writeFixedDecimal(element, body, offset, value, row);
        offset += element.type_length as number;
        break;
      }
      default:
        throw badValue(element, row, value);
    }
    // Booleans, numbers and bigints of one column compare with < as their physical order does.
    if (min === undefined || (value as number) < (min as number)) min = value;
    if (max === undefined || (value as number) > (max as number)) max = value;
  }
  stats.min = min;
  stats.max = max;
}

/** A DECIMAL's unscaled bigint as big-endian two's complement in the column's fixed width. */
function writeFixedDecimal(
  element: SchemaElement,
  body: Uint8Array,
  offset: number,
  value: ParquetValue,
  row: number,
): void {
  const length = element.type_length as number;
  if (typeof value !== 'bigint') throw badValue(element, row, value);
  const bits = BigInt(length * 8);
  if (BigInt.asIntN(Number(bits), value) !== value) throw badValue(element, row, value);
  let rest = BigInt.asUintN(Number(bits), value);
  for (let i = length - 1; i >= 0; i--) {
    body[offset + i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
}

function badValue(element: SchemaElement, row: number, value: unknown): ParquetInputError {
  const shown = typeof value === 'object' ? (value?.constructor?.name ?? 'object') : typeof value;
  return new ParquetInputError(
    `column ${JSON.stringify(element.name)}, row ${row}: a ${shown} value does not fit its Parquet type ${element.type}`,
  );
}

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

function writeVarint(body: Uint8Array, at: number, value: number): number {
  let offset = at;
  let rest = value;
  while (rest >= 0x80) {
    body[offset++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  body[offset++] = rest;
  return offset;
}

/** Every level 1 (no NULL): one RLE run, its header (count << 1) then the value in one byte. */
function rleRunSize(count: number): number {
  return varintSize(count * 2) + 1;
}

function writeRleRun(body: Uint8Array, at: number, count: number): void {
  const offset = writeVarint(body, at, count * 2);
  body[offset] = 1;
}

/** Levels with NULLs: one bit-packed run of ⌈count / 8⌉ groups of eight 1-bit levels. */
function bitPackedSize(count: number): number {
  const groups = Math.ceil(count / 8);
  return varintSize(groups * 2 + 1) + groups;
}

function writeBitPackedLevels(
  body: Uint8Array,
  at: number,
  start: number,
  end: number,
  present: (row: number) => boolean,
): void {
  const groups = Math.ceil((end - start) / 8);
  const offset = writeVarint(body, at, groups * 2 + 1);
  for (let row = start; row < end; row++) {
    if (!present(row)) continue;
    const bit = row - start;
    body[offset + (bit >> 3)] = (body[offset + (bit >> 3)] as number) | (1 << (bit & 7));
  }
}
