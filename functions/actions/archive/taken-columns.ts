/**
 * An archive chunk's deleted rows as column vectors of Parquet values, read from
 * `COPY (WITH deleted AS (DELETE … RETURNING …) SELECT …) TO STDOUT (FORMAT binary)`: every table column
 * converted as the column plan says, and the order terms' text (time column, key columns, ctid) as
 * PostgreSQL prints them, for the cursor, the ledger's ranges and the Hive partitions. The values are the
 * ones the row protocol's text gives (test/integration/archive-copy-binary.test.ts compares both).
 */
import type { CatalogColumn } from '../../core/catalog-column.ts';
import type { ChunkStatement } from '../../core/chunk-sql.ts';
import { type ParquetColumnPlan, TEXT } from '../../core/parquet/column-plan.ts';
import { type ColumnVector, Int64Values, pickRows, valueAt } from '../../core/parquet/column-vector.ts';
import { binaryKindOf, type ColumnReader, type DecodedColumns } from '../../core/parquet/copy-binary.ts';
import { dayOf, pgTimeText, type TimeKind } from '../../core/parquet/pg-time-text.ts';

/** Deleted rows, column by column. */
export interface TakenColumns {
  readonly rows: number;
  /** One vector per table column (plan order). */
  readonly values: readonly ColumnVector[];
  /** A row's time column text as PostgreSQL prints it (Hive partition, ledger times). */
  timeTextAt(row: number): string | null;
  /**
   * The day (since 1970-01-01) of a row's time, undefined for ±infinity or a time read as text: rows of one day
   * share their Hive partition, so the partition's text is only made where the day changes.
   */
  dayAt(row: number): number | undefined;
  /** The order terms' text of one row (time, then key columns or [tableoid,] ctid): cursor and ledger keys. */
  orderTextAt(row: number): Array<string | null>;
}

/** Base types whose binary send format is their text output, byte for byte (converted to the client encoding). */
const SENT_AS_TEXT: ReadonlySet<string> = new Set(['text', 'varchar', 'bpchar', 'json']);

/** What to SELECT from `deleted` and how to read each value. */
export interface CopySelection {
  readonly text: string;
  readonly readers: readonly ColumnReader[];
  /** Table columns start here in each row (system columns come first). */
  readonly firstColumnAt: number;
  readonly columnCount: number;
  /**
   * Where the time column's text is selected (after the table columns), or undefined when it is made in Node
   * from the column's binary value (./pg-time-text.ts) — every time column this product takes.
   */
  readonly timeTextAt: number | undefined;
  /** The time column's kind when it is read in binary. */
  readonly timeKind: TimeKind | undefined;
  /**
   * The rows come back in the DELETE's own order and {@link fromDecoded} puts them in keyset order: every order
   * term is one Node compares exactly as PostgreSQL orders it (see {@link copySelection}).
   */
  readonly ordersInNode: boolean;
}

const TIME_KINDS: ReadonlySet<string> = new Set<TimeKind>(['timestamptz', 'timestamp', 'date']);

/** Integer and time kinds: their binary values (numbers, bigints) order as PostgreSQL orders the datums. */
const NODE_ORDERED_KINDS: ReadonlySet<string> = new Set([
  'int2',
  'int4',
  'int8',
  'date',
  'timestamp',
  'timestamptz',
]);

/**
 * The COPY statement for a chunk statement. Fixed-width types and constrained numerics are sent in binary;
 * text types as they are; every other type as its output function's text (`format('%s', v)`: a cast to text
 * is not always the output function — bpchar trims, inet shows the mask, boolean spells true); key columns
 * other than integers as text too, since the cursor needs their text. The time column's text is selected
 * once more at the end (Hive partitions, ledger times): printing it costs PostgreSQL less than parsing it
 * costs Node.
 */
export function copySelection(
  statement: ChunkStatement,
  columns: readonly CatalogColumn[],
  plan: readonly ParquetColumnPlan[],
): CopySelection {
  const leading = statement.firstColumnPosition;
  const [timeAt = 0, ...keyAt] = statement.orderPositions;
  // Ordering 50 000 deleted rows by the keyset cost PostgreSQL a third of the chunk statement (a sort of whole
  // rows, spilled at the default work_mem, after the CTE's own materialisation); Node orders them for nearly
  // nothing when they already come in keyset order (an append-only table's rows lie in time order) and at
  // worst with one sort of row numbers. Only for terms Node compares exactly: integer and time values, and
  // the system columns of a table without a key (tableoid, ctid). Text, uuid, numeric keys keep the ORDER BY.
  const ordersInNode = statement.orderPositions.every((position) => {
    if (position < leading) return true;
    const kind = binaryKindOf(columns[position - leading] as CatalogColumn);
    return kind !== undefined && NODE_ORDERED_KINDS.has(kind);
  });
  const select: string[] = [];
  const readers: ColumnReader[] = [];
  statement.returnedNames.forEach((name, position) => {
    const source = ordersInNode ? (statement.returnedExpressions[position] as string) : `deleted.${name}`;
    if (position < leading) {
      // tableoid / ctid: only their text is used (cursor, ledger).
      select.push(`${source}::text`);
      readers.push({ name, kind: 'text', fromText: null, keepText: true });
      return;
    }
    const column = columns[position - leading] as CatalogColumn;
    const fromText = (plan[position - leading] as ParquetColumnPlan).fromText;
    const binary = binaryKindOf(column);
    const isKey = keyAt.includes(position);
    const isString = fromText === TEXT.fromText;
    const decimal = (plan[position - leading] as ParquetColumnPlan).schema[0];
    if (binary && (!isKey || binary === 'int2' || binary === 'int4' || binary === 'int8')) {
      select.push(source);
      readers.push({ name: column.name, kind: binary });
    } else if (
      column.baseType === 'numeric' &&
      column.baseTypeBuiltin === true &&
      !isKey &&
      decimal?.converted_type === 'DECIMAL' &&
      decimal.precision !== undefined &&
      decimal.scale !== undefined
    ) {
      select.push(source);
      readers.push({
        name: column.name,
        kind: 'decimal',
        precision: decimal.precision,
        scale: decimal.scale,
      });
    } else if (
      !column.isArray &&
      column.baseTypeBuiltin === true &&
      (SENT_AS_TEXT.has(column.baseType) || column.baseType === 'jsonb')
    ) {
      select.push(source);
      readers.push({
        name: column.name,
        kind: column.baseType === 'jsonb' ? 'jsonb' : 'text',
        fromText,
        keepText: isKey,
        asBytes: isString,
      });
    } else {
      select.push(outputText(source));
      readers.push({ name: column.name, kind: 'text', fromText, keepText: isKey, asBytes: isString });
    }
  });
  const timeReader = readers[timeAt];
  const timeKind = timeReader && TIME_KINDS.has(timeReader.kind) ? (timeReader.kind as TimeKind) : undefined;
  if (timeKind === undefined) {
    const time = ordersInNode
      ? (statement.returnedExpressions[timeAt] as string)
      : `deleted.${statement.returnedNames[timeAt]}`;
    // A time column is timestamptz, timestamp or date (or a domain over one): its cast to text is its output.
    select.push(`${time}::text`);
    readers.push({ name: 'time', kind: 'text', fromText: null, keepText: true });
  }
  const order = statement.orderPositions.map((p) => `deleted.${statement.returnedNames[p]}`).join(', ');
  return {
    text: ordersInNode
      ? `COPY (${statement.bareDelete}\n  RETURNING ${select.join(', ')}) TO STDOUT (FORMAT binary)`
      : `COPY (${statement.cte}\nSELECT ${select.join(', ')}\n  FROM deleted ORDER BY ${order}) TO STDOUT (FORMAT binary)`,
    readers,
    firstColumnAt: leading,
    columnCount: columns.length,
    timeTextAt: timeKind === undefined ? readers.length - 1 : undefined,
    timeKind,
    ordersInNode,
  };
}

/**
 * A value as its type's output function prints it, NULL kept. pg_catalog-qualified: a `format(text, <type>)` in
 * a schema on the search_path would otherwise be chosen (and run with the archiver's rights). IS DISTINCT FROM,
 * not IS NULL, which is true for a composite value whose fields are all NULL.
 */
function outputText(source: string): string {
  return `CASE WHEN ${source} IS DISTINCT FROM NULL THEN pg_catalog.format('%s', ${source}) END`;
}

/** The decoded COPY output as taken columns. */
export function fromDecoded(
  unordered: DecodedColumns,
  statement: ChunkStatement,
  selection: CopySelection,
): TakenColumns {
  const decoded = selection.ordersInNode ? inKeysetOrder(unordered, statement) : unordered;
  const [timePosition = 0] = statement.orderPositions;
  const timeValues = decoded.values[timePosition] as ColumnVector;
  const { timeKind } = selection;
  const timeTexts = selection.timeTextAt === undefined ? undefined : decoded.texts[selection.timeTextAt];
  const timeTextAt = (row: number): string | null => {
    if (timeTexts) return timeTexts[row] ?? null;
    const value = valueAt(timeValues, row);
    return value === null || value === undefined ? null : pgTimeText(timeKind as TimeKind, value);
  };
  const dayAt = (row: number): number | undefined => {
    const value = valueAt(timeValues, row);
    return timeKind === undefined || value === null || value === undefined
      ? undefined
      : dayOf(timeKind, value);
  };
  const termText = statement.orderPositions.map((p, term) => {
    if (term === 0) return timeTextAt;
    const texts = decoded.texts[p];
    if (texts) return (row: number) => texts[row] ?? null;
    // An integer key read in binary: its decimal text is PostgreSQL's.
    const values = decoded.values[p] as ColumnVector;
    return (row: number) => {
      const value = valueAt(values, row);
      return value === null || value === undefined ? null : String(value);
    };
  });
  return {
    rows: decoded.rows,
    values: decoded.values.slice(selection.firstColumnAt, selection.firstColumnAt + selection.columnCount),
    timeTextAt,
    dayAt,
    orderTextAt: (row) => termText.map((text) => text(row)),
  };
}

/**
 * The rows in keyset order (time, then the key terms), as PostgreSQL's ORDER BY would give them: unchanged when
 * they already are (one pass), else permuted by a stable sort of row numbers.
 */
function inKeysetOrder(decoded: DecodedColumns, statement: ChunkStatement): DecodedColumns {
  const terms = statement.orderPositions.map((position) => termValues(decoded, statement, position));
  const compare = (a: number, b: number): number => {
    for (const values of terms) {
      const x = values[a] as number | bigint;
      const y = values[b] as number | bigint;
      if (x < y) return -1;
      if (x > y) return 1;
    }
    return 0;
  };
  let ordered = true;
  for (let row = 1; row < decoded.rows && ordered; row++) ordered = compare(row - 1, row) <= 0;
  if (ordered) return decoded;
  const order = Array.from({ length: decoded.rows }, (_, row) => row).sort(compare);
  return {
    rows: decoded.rows,
    values: decoded.values.map((vector) => pickRows(vector, order)),
    texts: decoded.texts.map((texts) => (texts ? order.map((row) => texts[row] ?? null) : undefined)),
  };
}

/**
 * One order term's comparable values: integers and times as decoded (none is NULL: keys are NOT NULL and the
 * time column is below the cutoff), tableoid and ctid from their text — a tid orders by block, then line.
 */
function termValues(
  decoded: DecodedColumns,
  statement: ChunkStatement,
  position: number,
): ArrayLike<number | bigint> {
  if (position >= statement.firstColumnPosition) {
    const vector = decoded.values[position] as ColumnVector;
    // An Int64Values' typed array indexes as its values (none NULL here); a plain array as it is.
    return vector instanceof Int64Values ? vector.values : (vector as ReadonlyArray<number | bigint>);
  }
  const texts = decoded.texts[position] ?? [];
  return texts.map((text) => {
    const tid = /^\((\d+),(\d+)\)$/.exec(text ?? '');
    // Block < 2^32 and line < 2^16: block × 65 536 + line is exact in a double.
    return tid ? Number(tid[1]) * 65_536 + Number(tid[2]) : Number(text);
  });
}
