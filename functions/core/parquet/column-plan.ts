/**
 * Decides, per column, how PostgreSQL text becomes a Parquet value: the Parquet schema elements, the
 * converter from text, and the Glue/Athena column type. Pure: no I/O, no data.
 *
 * Every mapping must read back exactly (DuckDB and hyparquet are the tests' judges). A type with no
 * exact typed mapping is stored as its PostgreSQL text, which is lossless and can be cast back.
 *
 * Choices beyond the obvious ones (see test/unit/parquet-*.test.ts):
 * - uuid is STRING: DuckDB reads the UUID logical type back fine, but Glue/Athena has no uuid type
 *   and would see the 16-byte FIXED_LEN_BYTE_ARRAY as binary.
 * - time / timetz are STRING: Glue/Athena tables have no TIME type, and PostgreSQL's '24:00:00'
 *   is not a time of day in most readers.
 * - date / timestamp 'infinity' are written as DuckDB's own infinity encodings (see ./pg-text.ts),
 *   so DuckDB reads 'infinity' back; other engines see a far-future/past instant.
 * - One-dimensional arrays are LISTs (NULL elements kept); values a LIST cannot hold (more
 *   dimensions, explicit bounds) fail the batch unless `arrays: 'text'` is chosen.
 */
import type { SchemaElement } from 'hyparquet';
import type { CatalogColumn } from '../catalog-column.ts';
import { parsePgArray } from './pg-array.ts';
import {
  parseBool,
  parseByteaHex,
  parseDateDays,
  parseDecimalUnscaled,
  parseFloat32,
  parseFloat64,
  parseInt32,
  parseInt64,
  parseTimestampMicros,
} from './pg-text.ts';

/** A non-null value as hyparquet-writer takes it for a primitive column. */
export type ParquetLeafValue = bigint | number | boolean | string | Uint8Array;
/** A non-null column value: a primitive, or for LIST columns the elements (null for SQL NULL). */
export type ParquetValue = ParquetLeafValue | Array<ParquetLeafValue | null>;

/** How one column is written. */
export interface ParquetColumnPlan {
  /** Column name, exactly as in PostgreSQL. */
  readonly name: string;
  /** The PostgreSQL type (`format_type`), kept for metadata and messages. */
  readonly pgType: string;
  /** Readable summary, e.g. 'INT64', 'DECIMAL(12,2)', 'TIMESTAMP(MICROS,UTC)', 'LIST<STRING>'. */
  readonly parquetType: string;
  /** Glue/Athena column type, e.g. 'bigint', 'decimal(12,2)', 'array<string>'. */
  readonly athenaType: string;
  /** This column's Parquet schema elements in pre-order: one for a primitive, three for a LIST. */
  readonly schema: readonly SchemaElement[];
  /** Converts the PostgreSQL text of a non-null value; throws the errors of ./errors.ts. */
  readonly fromText: (text: string) => ParquetValue;
}

/** Planning choices that are policy rather than type facts. */
export interface PlanOptions {
  /**
   * 'list' (default): one-dimensional arrays of mapped element types become Parquet LISTs, and a
   * multi-dimensional or offset-bounded value in such a column fails the batch. 'text': every array
   * is stored as its PostgreSQL text, which never fails.
   */
  readonly arrays?: 'list' | 'text';
}

/** How one primitive (a scalar column or a LIST element) is written. */
export interface LeafMapping {
  readonly element: Omit<SchemaElement, 'name' | 'repetition_type'>;
  readonly parquetType: string;
  readonly athenaType: string;
  readonly fromText: (text: string) => ParquetLeafValue;
}

const asText = (text: string): string => text;

/** The lossless fallback, and the natural mapping of the string types. */
export const TEXT: LeafMapping = {
  element: { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
  parquetType: 'STRING',
  athenaType: 'string',
  fromText: asText,
};

const FIXED_MAPPINGS: Readonly<Record<string, LeafMapping>> = {
  int8: { element: { type: 'INT64' }, parquetType: 'INT64', athenaType: 'bigint', fromText: parseInt64 },
  int4: {
    element: { type: 'INT32' },
    parquetType: 'INT32',
    athenaType: 'int',
    fromText: (t) => parseInt32(t, 32),
  },
  // Only the converted type: hyparquet-writer 0.17 writes the INTEGER logical type's bitWidth as a
  // thrift i32 instead of i8, and DuckDB then rejects the whole footer. Readers map INT_16 to
  // INTEGER(16, signed) anyway (DuckDB: SMALLINT).
  int2: {
    element: { type: 'INT32', converted_type: 'INT_16' },
    parquetType: 'INT32(INT_16)',
    athenaType: 'smallint',
    fromText: (t) => parseInt32(t, 16),
  },
  float4: { element: { type: 'FLOAT' }, parquetType: 'FLOAT', athenaType: 'float', fromText: parseFloat32 },
  float8: {
    element: { type: 'DOUBLE' },
    parquetType: 'DOUBLE',
    athenaType: 'double',
    fromText: parseFloat64,
  },
  bool: { element: { type: 'BOOLEAN' }, parquetType: 'BOOLEAN', athenaType: 'boolean', fromText: parseBool },
  bytea: {
    element: { type: 'BYTE_ARRAY' },
    parquetType: 'BINARY',
    athenaType: 'binary',
    fromText: parseByteaHex,
  },
  date: {
    element: { type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } },
    parquetType: 'DATE',
    athenaType: 'date',
    fromText: parseDateDays,
  },
  timestamptz: {
    element: {
      type: 'INT64',
      converted_type: 'TIMESTAMP_MICROS',
      logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
    },
    parquetType: 'TIMESTAMP(MICROS,UTC)',
    athenaType: 'timestamp',
    fromText: (t) => parseTimestampMicros(t, true),
  },
  // No converted type: TIMESTAMP_MICROS means UTC-adjusted, which a zone-less timestamp is not.
  timestamp: {
    element: { type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MICROS' } },
    parquetType: 'TIMESTAMP(MICROS,LOCAL)',
    athenaType: 'timestamp',
    fromText: (t) => parseTimestampMicros(t, false),
  },
};
// Looked up through a Map: on the object, a user type called 'constructor' would find a prototype member.
const FIXED: ReadonlyMap<string, LeafMapping> = new Map(Object.entries(FIXED_MAPPINGS));

/** The typed mapping of a base type ('int8', 'date', 'timestamptz', ...), or undefined if it has none. */
export function fixedLeafMapping(baseType: string): LeafMapping | undefined {
  return FIXED.get(baseType);
}

/**
 * Element types whose arrays become LISTs: known types whose array_out delimiter is ','. Arrays of
 * any other type (box uses ';', extensions choose their own) keep the whole array text.
 */
const LIST_ELEMENT_TYPES: ReadonlySet<string> = new Set([
  ...FIXED.keys(),
  'numeric',
  'text',
  'varchar',
  'bpchar',
  'char',
  'name',
  'citext',
  'uuid',
  'json',
  'jsonb',
  'xml',
  'time',
  'timetz',
  'interval',
  'inet',
  'cidr',
  'macaddr',
  'macaddr8',
  'money',
  'bit',
  'varbit',
]);

/** Maps each column; see {@link PlanOptions} for the array policy. */
export function planParquetColumns(
  columns: readonly CatalogColumn[],
  options: PlanOptions = {},
): ParquetColumnPlan[] {
  return columns.map((column) => planColumn(column, options));
}

function planColumn(column: CatalogColumn, options: PlanOptions): ParquetColumnPlan {
  if (!column.isArray) return primitivePlan(column, leafMapping(column));
  const listable =
    options.arrays !== 'text' && (column.arrayDims ?? 0) <= 1 && LIST_ELEMENT_TYPES.has(column.baseType);
  return listable ? listPlan(column, leafMapping(column)) : primitivePlan(column, TEXT);
}

function leafMapping(column: CatalogColumn): LeafMapping {
  if (column.baseType === 'numeric') return decimalMapping(column) ?? TEXT;
  return FIXED.get(column.baseType) ?? TEXT;
}

/**
 * numeric(p,s) to DECIMAL. Unconstrained numeric has a scale per value, so it stays text.
 * PostgreSQL 15 allows s < 0 (values rounded to tens, hundreds, ...) and s > p (fraction digits
 * only); Parquet needs 0 <= scale <= precision, so those widen to the digits their values can have.
 */
function decimalMapping(column: CatalogColumn): LeafMapping | undefined {
  const { numericPrecision: p, numericScale: s } = column;
  if (p === undefined || s === undefined) return undefined;
  const scale = Math.max(s, 0);
  const precision = s < 0 ? p - s : Math.max(p, s);
  if (precision > 38) return undefined; // beyond Athena's decimal(38)
  return decimalLeafMapping(precision, scale);
}

/** DECIMAL(precision, scale) with 0 <= scale <= precision <= 38, stored as the spec's physical type. */
export function decimalLeafMapping(precision: number, scale: number): LeafMapping {
  return {
    element: {
      ...decimalPhysicalType(precision),
      converted_type: 'DECIMAL',
      precision,
      scale,
      logical_type: { type: 'DECIMAL', precision, scale },
    },
    parquetType: `DECIMAL(${precision},${scale})`,
    athenaType: `decimal(${precision},${scale})`,
    // hyparquet-writer writes a bigint DECIMAL value as the unscaled integer, without float rounding.
    fromText: (t) => parseDecimalUnscaled(t, precision, scale),
  };
}

/** The Parquet spec's physical type for a precision: INT32 up to 9 digits, INT64 up to 18, else bytes. */
function decimalPhysicalType(precision: number): Pick<SchemaElement, 'type' | 'type_length'> {
  if (precision <= 9) return { type: 'INT32' };
  if (precision <= 18) return { type: 'INT64' };
  const largest = 10n ** BigInt(precision) - 1n;
  let bytes = 1;
  while (2n ** BigInt(8 * bytes - 1) - 1n < largest) bytes++;
  return { type: 'FIXED_LEN_BYTE_ARRAY', type_length: bytes };
}

function primitivePlan(column: CatalogColumn, leaf: LeafMapping): ParquetColumnPlan {
  return {
    name: column.name,
    pgType: column.typeName,
    parquetType: leaf.parquetType,
    athenaType: leaf.athenaType,
    // Always OPTIONAL: every object of a table then has the same schema even if NOT NULL changes,
    // and the definition levels of a column without NULLs compress to almost nothing.
    schema: [{ ...leaf.element, name: column.name, repetition_type: 'OPTIONAL' }],
    fromText: leaf.fromText,
  };
}

/** Standard three-level LIST (both converted and logical annotations, for older readers). */
function listPlan(column: CatalogColumn, leaf: LeafMapping): ParquetColumnPlan {
  return {
    name: column.name,
    pgType: column.typeName,
    parquetType: `LIST<${leaf.parquetType}>`,
    athenaType: `array<${leaf.athenaType}>`,
    schema: [
      {
        name: column.name,
        repetition_type: 'OPTIONAL',
        converted_type: 'LIST',
        logical_type: { type: 'LIST' },
        num_children: 1,
      },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      // PostgreSQL arrays may always hold NULL elements, whatever the column's constraints.
      { ...leaf.element, name: 'element', repetition_type: 'OPTIONAL' },
    ],
    fromText: listFromText(leaf.fromText),
  };
}

/** Converts a one-dimensional array's text to a LIST value: each element by `element`, NULLs kept. */
export function listFromText(element: (text: string) => ParquetLeafValue): (text: string) => ParquetValue {
  return (text) => {
    const items = parsePgArray(text);
    const values: Array<ParquetLeafValue | null> = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      values[i] = item === null || item === undefined ? null : element(item);
    }
    return values;
  };
}
