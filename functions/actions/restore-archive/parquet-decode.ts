/**
 * Reads an archive object (Parquet, as functions/core/parquet/encode.ts writes it) back into PostgreSQL text
 * rows, exactly. Pure: bytes in, text out.
 *
 * The column plan is read from the file, not guessed: each column's Parquet schema element (physical type
 * and annotations) says how its values were encoded, and the footer's `pg_lifecycle.columns` names the
 * PostgreSQL type each came from. hyparquet would turn DECIMAL into a float and timestamps into millisecond
 * `Date`s, so the annotations are stripped from the schema it reads with: it then hands over the stored
 * integers and bytes, and ./pg-text-out.ts formats them. Text-stored columns (unconstrained numeric incl. NaN,
 * interval, inet, time, enums, json, …) are the server's own output and pass through unchanged.
 */
import * as zlib from 'node:zlib';
import {
  type Compressors,
  type FileMetaData,
  parquetMetadata,
  parquetRead,
  type SchemaElement,
} from 'hyparquet';
import { COLUMNS_METADATA_KEY } from '../../core/parquet/encode.ts';
import { ArchivedObjectFormatError } from './errors.ts';
import {
  arrayText,
  bigIntFromBytes,
  byteaText,
  dateText,
  decimalText,
  float32Text,
  floatText,
  timestampText,
} from './pg-text-out.ts';

/** One archived column: its name, the PostgreSQL type it was archived from, and how it was stored. */
export interface ArchivedColumn {
  readonly name: string;
  /** `format_type` of the source column when the object was written (footer metadata). */
  readonly pgType: string;
  /** The archive's own summary, e.g. 'DECIMAL(12,4)', 'LIST<STRING>' (footer metadata). */
  readonly parquetType: string;
}

export interface DecodedObject {
  readonly columns: readonly ArchivedColumn[];
  /** The footer's row count. */
  readonly rowCount: number;
  /** Rows in column order, PostgreSQL text or null. */
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>;
}

type Formatter = (value: unknown) => string;

/** Parquet's GZIP is gzip (RFC 1952); ZSTD where node:zlib has it (Node >= 22.15, the Lambda runtime). */
export function decompressors(): Compressors {
  const zstd = (zlib as unknown as { zstdDecompressSync?: (input: Uint8Array) => Uint8Array })
    .zstdDecompressSync;
  return {
    GZIP: (input) => new Uint8Array(zlib.gunzipSync(input)),
    ...(typeof zstd === 'function' ? { ZSTD: (input: Uint8Array) => new Uint8Array(zstd(input)) } : {}),
  };
}

function fail(message: string): never {
  throw new ArchivedObjectFormatError(message);
}

/** How a stored primitive becomes text, decided from its (original, annotated) schema element. */
function leafFormatter(element: SchemaElement, column: string): Formatter {
  const logical = element.logical_type;
  const converted = element.converted_type;
  if (converted === 'DECIMAL' || logical?.type === 'DECIMAL') {
    const scale = element.scale ?? (logical?.type === 'DECIMAL' ? logical.scale : 0);
    return (value) => {
      if (typeof value === 'bigint') return decimalText(value, scale);
      if (typeof value === 'number') return decimalText(BigInt(value), scale);
      if (value instanceof Uint8Array) return decimalText(bigIntFromBytes(value), scale);
      return fail(`column ${column}: unexpected DECIMAL value`);
    };
  }
  if (converted === 'DATE' || logical?.type === 'DATE') {
    return (value) => dateText(Number(value));
  }
  if (logical?.type === 'TIMESTAMP' || converted === 'TIMESTAMP_MICROS') {
    const unit = logical?.type === 'TIMESTAMP' ? logical.unit : 'MICROS';
    if (unit !== 'MICROS') fail(`column ${column}: timestamps in ${unit}, the archive writes MICROS`);
    const withZone = logical?.type === 'TIMESTAMP' ? logical.isAdjustedToUTC : true;
    return (value) => timestampText(BigInt(value as bigint), withZone);
  }
  if (converted === 'UTF8' || logical?.type === 'STRING') {
    return (value) => {
      if (typeof value !== 'string') fail(`column ${column}: unexpected STRING value`);
      return value;
    };
  }
  switch (element.type) {
    case 'INT64':
    case 'INT32':
      return (value) => String(value);
    case 'FLOAT':
      return (value) => float32Text(value as number);
    case 'DOUBLE':
      return (value) => floatText(value as number);
    case 'BOOLEAN':
      return (value) => (value ? 't' : 'f');
    case 'BYTE_ARRAY':
      return (value) => {
        if (!(value instanceof Uint8Array)) fail(`column ${column}: unexpected BINARY value`);
        return byteaText(value);
      };
    default:
      return fail(`column ${column}: Parquet type ${String(element.type)} is not one the archive writes`);
  }
}

/** The element hyparquet reads with: annotations that would make it convert values removed. */
function rawElement(element: SchemaElement): SchemaElement {
  const converted = element.converted_type;
  const logical = element.logical_type?.type;
  const converting =
    converted === 'DECIMAL' ||
    converted === 'DATE' ||
    converted === 'TIMESTAMP_MICROS' ||
    converted === 'TIMESTAMP_MILLIS' ||
    logical === 'DECIMAL' ||
    logical === 'DATE' ||
    logical === 'TIMESTAMP';
  if (!converting) return element;
  const { converted_type: _c, logical_type: _l, scale: _s, precision: _p, ...rest } = element;
  return rest;
}

function isList(element: SchemaElement): boolean {
  return element.converted_type === 'LIST' || element.logical_type?.type === 'LIST';
}

/** One formatter per top-level column, from the pre-order schema (a primitive, or LIST → list → element). */
function columnFormatters(schema: readonly SchemaElement[]): { names: string[]; formatters: Formatter[] } {
  const root = schema[0];
  if (!root) fail('no schema');
  const names: string[] = [];
  const formatters: Formatter[] = [];
  let i = 1;
  for (let c = 0; c < (root.num_children ?? 0); c++) {
    const element = schema[i];
    if (!element) fail('schema ends early');
    names.push(element.name);
    if (isList(element)) {
      const leaf = schema[i + 2];
      if (element.num_children !== 1 || schema[i + 1]?.num_children !== 1 || !leaf || leaf.num_children) {
        fail(`column ${element.name}: a LIST the archive does not write`);
      }
      const format = leafFormatter(leaf, element.name);
      formatters.push((value) => {
        if (!Array.isArray(value)) return fail(`column ${element.name}: unexpected LIST value`);
        return arrayText(value.map((item) => (item === null || item === undefined ? null : format(item))));
      });
      i += 3;
    } else {
      if (element.num_children) fail(`column ${element.name}: nested groups are not written by the archive`);
      formatters.push(leafFormatter(element, element.name));
      i += 1;
    }
  }
  if (i !== schema.length) fail('schema has elements beyond its columns');
  return { names, formatters };
}

function archivedColumns(metadata: FileMetaData, names: readonly string[]): ArchivedColumn[] {
  const entry = metadata.key_value_metadata?.find((kv) => kv.key === COLUMNS_METADATA_KEY);
  if (!entry?.value) fail(`no ${COLUMNS_METADATA_KEY} footer entry: not an archive object of pg-lifecycle`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.value);
  } catch {
    fail(`${COLUMNS_METADATA_KEY} is not JSON`);
  }
  const columns = Array.isArray(parsed) ? (parsed as Array<Partial<ArchivedColumn>>) : [];
  const ok =
    columns.length === names.length &&
    columns.every(
      (c, i) => c.name === names[i] && typeof c.pgType === 'string' && typeof c.parquetType === 'string',
    );
  if (!ok) fail(`${COLUMNS_METADATA_KEY} does not describe the file's columns`);
  return columns as ArchivedColumn[];
}

/** Reads the footer only: columns and row count (to check before decoding anything). */
export function readArchivedSchema(body: Uint8Array): {
  columns: ArchivedColumn[];
  rowCount: number;
  metadata: FileMetaData;
} {
  let metadata: FileMetaData;
  try {
    metadata = parquetMetadata(body);
  } catch (error) {
    throw new ArchivedObjectFormatError(`unreadable Parquet footer: ${(error as Error).message}`);
  }
  const { names } = columnFormatters(metadata.schema);
  return { columns: archivedColumns(metadata, names), rowCount: Number(metadata.num_rows), metadata };
}

/** Decodes every row of an archive object to PostgreSQL text. */
export async function decodeArchiveObject(body: Uint8Array): Promise<DecodedObject> {
  const { columns, rowCount, metadata } = readArchivedSchema(body);
  const { formatters } = columnFormatters(metadata.schema);
  const raw: FileMetaData = { ...metadata, schema: metadata.schema.map(rawElement) };
  const file = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  let values: unknown[][] = [];
  await parquetRead({
    file,
    metadata: raw,
    utf8: false,
    compressors: decompressors(),
    // Unused once the annotations are gone; kept raw should a reader version convert on its own.
    parsers: { dateFromDays: (days) => days, timestampFromMicroseconds: (micros) => micros },
    onComplete: (rows: unknown[][]) => {
      values = rows;
    },
  });
  if (values.length !== rowCount) {
    throw new ArchivedObjectFormatError(`footer says ${rowCount} rows, ${values.length} decoded`);
  }
  const rows: Array<Array<string | null>> = new Array(values.length);
  for (let r = 0; r < values.length; r++) {
    const source = values[r] as unknown[];
    const row: Array<string | null> = new Array(formatters.length);
    for (let c = 0; c < formatters.length; c++) {
      const value = source[c];
      row[c] = value === null || value === undefined ? null : (formatters[c] as Formatter)(value);
    }
    rows[r] = row;
  }
  return { columns, rowCount, rows };
}
