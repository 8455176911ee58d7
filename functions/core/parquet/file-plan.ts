/**
 * The column plan and encoding of an existing archive object, read from its own footer, so an erasure
 * (GDPR) can rewrite the object without some rows. Pure: footer in, plan out.
 *
 * A rewrite keeps the file's Parquet schema and physical types exactly, not what ./column-plan.ts would
 * map the table's columns to today (columns may have been altered, added or dropped since): the Glue
 * table and DuckDB read every object of a prefix with the schema it was written with, so a rewritten
 * object must not change type under them. Each converter is the exact inverse of restore-archive's
 * decoder for that schema element, taken from ./column-plan.ts's mappings; a shape the archive never
 * writes is refused rather than guessed.
 *
 * Re-encoding every decoded row with {@link planFromArchiveFile} and {@link encodingOfArchiveFile} gives
 * the original bytes (test/unit/parquet-file-plan.test.ts). With no rows left, encodeParquet writes a
 * valid object with the same schema and footer metadata and no row group, which the decoder reads as
 * zero rows; whether to keep such an object or delete it is the caller's choice.
 */
import type { FileMetaData, SchemaElement } from 'hyparquet';
import {
  decimalLeafMapping,
  fixedLeafMapping,
  type LeafMapping,
  listFromText,
  type ParquetColumnPlan,
  TEXT,
} from './column-plan.ts';
import { COLUMNS_METADATA_KEY, DEFAULT_ROW_GROUP_SIZE, type ParquetCompression } from './encode.ts';
import { ParquetInputError } from './errors.ts';

/** A column as the footer's `pg_lifecycle.columns` entry describes it (restore-archive's ArchivedColumn). */
export interface ArchivedColumnDescription {
  readonly name: string;
  readonly pgType: string;
  readonly parquetType: string;
}

/**
 * One plan entry per top-level column of the file: its own schema elements (copied), the footer's
 * name, pgType and parquetType, and the converter the decoder's output needs. Throws
 * `ParquetInputError` naming the column for anything the archive does not write.
 */
export function planFromArchiveFile(
  metadata: FileMetaData,
  columns: ReadonlyArray<ArchivedColumnDescription>,
): ParquetColumnPlan[] {
  const schema = metadata.schema;
  const count = schema[0]?.num_children ?? 0;
  if (count !== columns.length) {
    throw new ParquetInputError(`the file has ${count} columns, its footer describes ${columns.length}`);
  }
  const plan: ParquetColumnPlan[] = [];
  let i = 1;
  for (const column of columns) {
    const top = schema[i];
    if (top?.name !== column.name) {
      throw new ParquetInputError(`column ${JSON.stringify(column.name)} is not where the schema has it`);
    }
    const name = JSON.stringify(column.name);
    requireRepetition(top, 'OPTIONAL', name);
    let leaf: LeafMapping;
    let elements: SchemaElement[];
    if (top.converted_type === 'LIST' || top.logical_type?.type === 'LIST') {
      const [list, element] = [schema[i + 1], schema[i + 2]];
      if (!list || !element || top.num_children !== 1 || list.num_children !== 1 || element.num_children) {
        unsupported(name, 'a LIST that is not three-level');
      }
      requireAnnotation(top, 'LIST', 'LIST', name);
      if (list.type || list.converted_type || list.logical_type) unsupported(name, 'an annotated LIST group');
      requireRepetition(list, 'REPEATED', name);
      requireRepetition(element, 'OPTIONAL', name);
      leaf = leafMapping(element, name);
      elements = [top, list, element];
    } else {
      if (top.num_children || !top.type) unsupported(name, 'a nested group');
      leaf = leafMapping(top, name);
      elements = [top];
    }
    const isList = elements.length === 3;
    plan.push({
      name: column.name,
      pgType: column.pgType,
      parquetType: column.parquetType,
      athenaType: isList ? `array<${leaf.athenaType}>` : leaf.athenaType,
      schema: elements.map(copyElement),
      fromText: isList ? listFromText(leaf.fromText) : leaf.fromText,
    });
    i += elements.length;
  }
  if (i !== schema.length) throw new ParquetInputError('the schema has elements beyond its columns');
  return plan;
}

const CODECS: ReadonlyMap<string, ParquetCompression> = new Map([
  ['SNAPPY', 'snappy'],
  ['GZIP', 'gzip'],
  ['ZSTD', 'zstd'],
  ['UNCOMPRESSED', 'uncompressed'],
]);

/**
 * The codec, row group size and footer metadata (less `pg_lifecycle.columns`, which encodeParquet
 * writes itself) to re-encode the file with. A file without row groups (no rows) records no codec and
 * encodes to the same bytes under any, so it gets 'snappy' and {@link DEFAULT_ROW_GROUP_SIZE}.
 */
export function encodingOfArchiveFile(metadata: FileMetaData): {
  compression: ParquetCompression;
  rowGroupSize: number;
  metadata: Record<string, string>;
} {
  const codecs = new Set(
    metadata.row_groups.flatMap((group) => group.columns.map((c) => c.meta_data?.codec)),
  );
  if (codecs.size > 1) throw new ParquetInputError(`the file mixes codecs: ${[...codecs].join(', ')}`);
  const [codec] = codecs;
  const compression = codecs.size === 0 ? 'snappy' : CODECS.get(String(codec));
  if (!compression) throw new ParquetInputError(`codec ${String(codec)} is not one the archive writes`);
  const first = metadata.row_groups[0];
  const rowGroupSize = first ? Math.max(1, Number(first.num_rows)) : DEFAULT_ROW_GROUP_SIZE;
  const entries: Array<[string, string]> = [];
  for (const { key, value } of metadata.key_value_metadata ?? []) {
    if (key === COLUMNS_METADATA_KEY) continue;
    if (value === undefined) throw new ParquetInputError(`footer key ${JSON.stringify(key)} has no value`);
    if (entries.some(([seen]) => seen === key)) {
      throw new ParquetInputError(`footer key ${JSON.stringify(key)} appears twice`);
    }
    entries.push([key, value]);
  }
  // fromEntries, not assignment: a key '__proto__' stays a key.
  return { compression, rowGroupSize, metadata: Object.fromEntries(entries) };
}

function unsupported(column: string, what: string): never {
  throw new ParquetInputError(`column ${column}: ${what} is not something the archive writes`);
}

function requireRepetition(element: SchemaElement, repetition: string, column: string): void {
  if (element.repetition_type !== repetition) {
    unsupported(column, `${String(element.repetition_type)} element ${JSON.stringify(element.name)}`);
  }
}

/** Converted and logical annotations must each be absent or the expected one. */
function requireAnnotation(
  element: SchemaElement,
  converted: string | undefined,
  logical: string | undefined,
  column: string,
): void {
  const c = element.converted_type;
  const l = element.logical_type?.type;
  if ((c !== undefined && c !== converted) || (l !== undefined && l !== logical)) {
    unsupported(column, `${element.type ?? 'group'} annotated ${[c, l].filter(Boolean).join('/')}`);
  }
}

/**
 * The mapping whose converter inverts restore-archive's leafFormatter for this element, classified in
 * the decoder's order (DECIMAL, DATE, TIMESTAMP, STRING, then the physical type), provided the
 * element's physical type is the one that mapping writes.
 */
function leafMapping(element: SchemaElement, column: string): LeafMapping {
  const logical = element.logical_type;
  const converted = element.converted_type;
  let mapping: LeafMapping | undefined;
  if (converted === 'DECIMAL' || logical?.type === 'DECIMAL') {
    // hyparquet-writer takes a bigint as the unscaled integer only under the converted annotation.
    if (converted !== 'DECIMAL') unsupported(column, 'a DECIMAL without its converted type');
    requireAnnotation(element, 'DECIMAL', 'DECIMAL', column);
    const { precision = 0, scale = 0 } = element;
    if (logical?.type === 'DECIMAL' && (logical.precision !== precision || logical.scale !== scale)) {
      unsupported(column, 'a DECIMAL whose annotations disagree');
    }
    const valid = Number.isInteger(precision) && Number.isInteger(scale) && precision <= 38;
    if (!valid || precision < 1 || scale < 0 || scale > precision) {
      unsupported(column, `DECIMAL(${precision},${scale})`);
    }
    mapping = decimalLeafMapping(precision, scale);
  } else if (converted === 'DATE' || logical?.type === 'DATE') {
    requireAnnotation(element, 'DATE', 'DATE', column);
    mapping = fixedLeafMapping('date');
  } else if (logical?.type === 'TIMESTAMP' || converted === 'TIMESTAMP_MICROS') {
    requireAnnotation(element, 'TIMESTAMP_MICROS', 'TIMESTAMP', column);
    // The converted type alone means MICROS, adjusted to UTC.
    const unit = logical?.type === 'TIMESTAMP' ? logical.unit : 'MICROS';
    if (unit !== 'MICROS') unsupported(column, `a timestamp in ${unit}`);
    const utc = logical?.type === 'TIMESTAMP' ? logical.isAdjustedToUTC : true;
    mapping = fixedLeafMapping(utc ? 'timestamptz' : 'timestamp');
  } else if (converted === 'UTF8' || logical?.type === 'STRING') {
    requireAnnotation(element, 'UTF8', 'STRING', column);
    mapping = TEXT;
  } else if (converted === 'INT_16' && logical === undefined) {
    mapping = fixedLeafMapping('int2');
  } else {
    requireAnnotation(element, undefined, undefined, column);
    mapping = fixedLeafMapping(PHYSICAL_BASE_TYPES.get(String(element.type)) ?? '');
  }
  if (
    !mapping ||
    element.type !== mapping.element.type ||
    element.type_length !== mapping.element.type_length
  ) {
    unsupported(column, `Parquet type ${describe(element)}`);
  }
  return mapping;
}

/** Base types of column-plan's unannotated physical mappings. */
const PHYSICAL_BASE_TYPES: ReadonlyMap<string, string> = new Map([
  ['INT64', 'int8'],
  ['INT32', 'int4'],
  ['FLOAT', 'float4'],
  ['DOUBLE', 'float8'],
  ['BOOLEAN', 'bool'],
  ['BYTE_ARRAY', 'bytea'],
]);

function describe(element: SchemaElement): string {
  const annotation = element.logical_type?.type ?? element.converted_type;
  const length = element.type_length === undefined ? '' : `(${element.type_length})`;
  return `${String(element.type)}${length}${annotation ? ` ${annotation}` : ''}`;
}

/** A copy of the file's element without the fields the reader leaves undefined. */
function copyElement(element: SchemaElement): SchemaElement {
  const entries = Object.entries(structuredClone(element)).filter(([, value]) => value !== undefined);
  return Object.fromEntries(entries) as unknown as SchemaElement;
}
