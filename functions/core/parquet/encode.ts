/**
 * Encodes a batch of PostgreSQL text rows (or column vectors already converted) as one Parquet file in
 * memory, following a column plan: files of flat columns through ./flat-writer.ts, files with a LIST
 * through hyparquet-writer.
 */
import * as zlib from 'node:zlib';
import type { CompressionCodec, SchemaElement } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { ParquetColumnPlan, ParquetValue } from './column-plan.ts';
import { type ColumnVector, vectorToArray } from './column-vector.ts';
import { CompressionUnavailableError, locateValueError, ParquetInputError } from './errors.ts';
import { isFlatSchema, writeFlatParquet } from './flat-writer.ts';
import { snappyCompress } from './snappy.ts';

export type ParquetCompression = 'snappy' | 'zstd' | 'gzip' | 'uncompressed';

export interface EncodeParquetOptions {
  readonly compression: ParquetCompression;
  /** Rows per row group; default {@link DEFAULT_ROW_GROUP_SIZE}. */
  readonly rowGroupSize?: number;
  /** Extra footer key/value metadata (e.g. run id). */
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * Values to skip at the start of each row (e.g. ctid returned ahead of the columns), so callers need
   * not copy every row to drop them. Default 0.
   */
  readonly columnOffset?: number;
}

/**
 * One row group for any ordinary chunk: readers split work by row group, and hyparquet-writer's own
 * default would start every file with a 1,000-row group meant for previews.
 */
export const DEFAULT_ROW_GROUP_SIZE = 100_000;

const CREATED_BY = 'pg-lifecycle';

/** Footer key holding each column's PostgreSQL type, so text-stored columns can be cast back. */
export const COLUMNS_METADATA_KEY = 'pg_lifecycle.columns';

/**
 * Encodes `rows` (PostgreSQL text, `null` for NULL, in plan order) as a Parquet file.
 *
 * Converts one column at a time, so each pass runs a single converter. Throws
 * `UnrepresentableValueError` / `PgTextParseError` naming the column and row of a bad value,
 * `CompressionUnavailableError` for ZSTD before Node 22.15, `ParquetInputError` for rows that do not
 * fit the plan.
 */
export function encodeParquet(
  plan: readonly ParquetColumnPlan[],
  rows: ReadonlyArray<ReadonlyArray<string | null>>,
  options: EncodeParquetOptions,
): Uint8Array {
  const offset = options.columnOffset ?? 0;
  checkShape(plan, rows, offset);
  const columns = plan.map((column, index) => convertColumn(column, index + offset, rows));
  return encodeParquetColumns(plan, columns, options);
}

/**
 * Encodes values already converted (one array per plan column, e.g. from `decodeCopyBinary`) as a Parquet
 * file; `options.columnOffset` does not apply. Throws as {@link encodeParquet}.
 */
export function encodeParquetColumns(
  plan: readonly ParquetColumnPlan[],
  columns: readonly ColumnVector[],
  options: EncodeParquetOptions,
): Uint8Array {
  checkColumns(plan, columns);
  const rowGroupSize = options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE;
  // hyparquet-writer would loop forever on a zero step.
  if (!Number.isSafeInteger(rowGroupSize) || rowGroupSize < 1) {
    throw new ParquetInputError(`rowGroupSize must be a positive integer, got ${rowGroupSize}`);
  }
  const { codec, compressors } = resolveCompression(options.compression);
  const schema: SchemaElement[] = [{ name: 'root', num_children: plan.length }];
  for (const column of plan) schema.push(...column.schema);
  // Ours last: a caller's key cannot replace the column types.
  const metadata = { ...options.metadata, [COLUMNS_METADATA_KEY]: describeColumns(plan) };
  const kvMetadata = Object.entries(metadata).map(([key, value]) => ({ key, value }));
  if (isFlatSchema(plan.map((column) => column.schema))) {
    const compress = codec === 'UNCOMPRESSED' ? undefined : compressors[codec];
    // Pages labelled with a codec must be compressed by it.
    if (codec !== 'UNCOMPRESSED' && !compress) throw new ParquetInputError(`no compressor for ${codec}`);
    return writeFlatParquet(schema, columns, {
      codec,
      compress,
      rowGroupSize,
      kvMetadata,
      createdBy: CREATED_BY,
    });
  }
  const columnData = plan.map((column, index) => ({
    name: column.name,
    data: vectorToArray(columns[index] as ColumnVector),
  }));
  const buffer = parquetWriteBuffer({
    columnData,
    schema,
    codec,
    compressors,
    rowGroupSize,
    kvMetadata,
    createdBy: CREATED_BY,
  });
  return new Uint8Array(buffer);
}

/** Name and Glue/Athena type of each column, in file order, for a Glue table definition. */
export function describeParquetSchema(
  plan: readonly ParquetColumnPlan[],
): Array<{ name: string; athenaType: string }> {
  return plan.map(({ name, athenaType }) => ({ name, athenaType }));
}

function checkPlan(plan: readonly ParquetColumnPlan[]): void {
  if (plan.length === 0) throw new ParquetInputError('a Parquet file needs at least one column');
  const names = new Set(plan.map((column) => column.name));
  if (names.size !== plan.length) throw new ParquetInputError('column names must be unique');
}

function checkShape(
  plan: readonly ParquetColumnPlan[],
  rows: ReadonlyArray<ReadonlyArray<string | null>>,
  offset: number,
): void {
  checkPlan(plan);
  for (let r = 0; r < rows.length; r++) {
    const width = rows[r]?.length;
    if (width !== plan.length + offset) {
      throw new ParquetInputError(
        `row ${r} has ${width} values; the plan has ${plan.length} columns after ${offset} skipped`,
      );
    }
  }
}

function checkColumns(plan: readonly ParquetColumnPlan[], columns: readonly ColumnVector[]): void {
  checkPlan(plan);
  if (columns.length !== plan.length) {
    throw new ParquetInputError(`${columns.length} columns of values for a plan of ${plan.length}`);
  }
  const rows = columns[0]?.length ?? 0;
  if (columns.some((column) => column.length !== rows)) {
    throw new ParquetInputError('columns of values differ in length');
  }
}

function convertColumn(
  column: ParquetColumnPlan,
  index: number,
  rows: ReadonlyArray<ReadonlyArray<string | null>>,
): Array<ParquetValue | null> {
  const { fromText } = column;
  const data: Array<ParquetValue | null> = new Array(rows.length);
  let r = 0;
  try {
    for (; r < rows.length; r++) {
      const text = (rows[r] as ReadonlyArray<string | null>)[index];
      data[r] = text === null || text === undefined ? null : fromText(text);
    }
  } catch (error) {
    throw locateValueError(error, column.name, r);
  }
  return data;
}

function describeColumns(plan: readonly ParquetColumnPlan[]): string {
  return JSON.stringify(plan.map(({ name, pgType, parquetType }) => ({ name, pgType, parquetType })));
}

type Compressor = (input: Uint8Array) => Uint8Array;
type Compressors = Partial<Record<CompressionCodec, Compressor>>;
type ZstdCompressSync = Compressor;

/** node:zlib gained zstd in Node 22.15 (the Lambda runtime has it; Node 20 does not). */
function zstdCompressor(): ZstdCompressSync | undefined {
  const candidate = (zlib as unknown as { zstdCompressSync?: ZstdCompressSync }).zstdCompressSync;
  return typeof candidate === 'function' ? candidate : undefined;
}

function resolveCompression(compression: ParquetCompression): {
  codec: CompressionCodec;
  compressors: Compressors;
} {
  switch (compression) {
    case 'snappy':
      // hyparquet-writer has its own, twice as slow (see ./snappy.ts).
      return { codec: 'SNAPPY', compressors: { SNAPPY: snappyCompress } };
    case 'uncompressed':
      return { codec: 'UNCOMPRESSED', compressors: {} };
    case 'gzip':
      // Parquet's GZIP codec is the gzip (RFC 1952) format, which gzipSync produces.
      return { codec: 'GZIP', compressors: { GZIP: (input) => zlib.gzipSync(input) } };
    case 'zstd': {
      const zstd = zstdCompressor();
      if (!zstd) {
        throw new CompressionUnavailableError(
          `ZSTD needs node:zlib zstdCompressSync (Node >= 22.15; this is ${process.version}); use snappy or gzip here`,
        );
      }
      return { codec: 'ZSTD', compressors: { ZSTD: (input) => zstd(input) } };
    }
    default: {
      const unknown: never = compression;
      throw new ParquetInputError(`unknown compression ${String(unknown)}`);
    }
  }
}
