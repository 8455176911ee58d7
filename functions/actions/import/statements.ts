/**
 * The SQL of an import chunk, built from the resolved tables (import-target.ts): pure, no I/O. Every
 * identifier is quoted; the only SQL text from the config is the column expressions, screened by the
 * config schema and checked by PostgreSQL at Start (import-target.ts).
 */
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';

/** A key column: its exact name and type as `format_type` prints it (the bind parameters' cast). */
export interface KeyColumn {
  readonly name: string;
  readonly typeName: string;
}

/** A table as the catalog has it. */
export interface TableRef {
  readonly schema: string;
  readonly table: string;
  readonly oid: string;
}

/** What the statements are built from. */
export interface ImportShape {
  readonly source: TableRef;
  readonly target: TableRef;
  /** Walk order of the source (unique, NOT NULL). */
  readonly sourceKey: readonly KeyColumn[];
  /** The target's unique key that means "already imported" (ON CONFLICT arbiter). */
  readonly targetKey: readonly string[];
  /**
   * Target column (exact name) → expression over the source row, cast to the column's type without its
   * modifier (`character varying`, not `character varying(12)`).
   */
  readonly columns: ReadonlyArray<{
    readonly target: string;
    readonly expression: string;
    readonly castType: string;
  }>;
}

const SOURCE_ALIAS = 'import_source';

function keyRow(shape: ImportShape): string {
  return `ROW(${shape.sourceKey.map((k) => `${SOURCE_ALIAS}.${quoteIdent(k.name)}`).join(', ')})`;
}

/** `ROW($n::type, …)` for the key values bound from parameter `first` on. */
function paramRow(shape: ImportShape, first: number): string {
  return `ROW(${shape.sourceKey.map((k, i) => `$${first + i}::${k.typeName}`).join(', ')})`;
}

/**
 * The next `$limit` source keys after the cursor (`$1…$k` the cursor's values; without a cursor, from the
 * start), as text, in walk order: the chunk's batch. `limit` is the last parameter.
 */
export function nextKeysSql(shape: ImportShape, afterCursor: boolean): string {
  const keys = shape.sourceKey.map((k) => `${SOURCE_ALIAS}.${quoteIdent(k.name)}::text`).join(', ');
  const order = shape.sourceKey.map((k) => `${SOURCE_ALIAS}.${quoteIdent(k.name)}`).join(', ');
  const limitParam = afterCursor ? shape.sourceKey.length + 1 : 1;
  return `SELECT ${keys}
            FROM ${quoteQualified(shape.source.schema, shape.source.table)} AS ${SOURCE_ALIAS}
           ${afterCursor ? `WHERE ${keyRow(shape)} > ${paramRow(shape, 1)}` : ''}
           ORDER BY ${order}
           LIMIT $${limitParam}`;
}

/**
 * Each expression explicitly cast to its column's type: legacy text ('42', '2024-01-31') becomes the target's
 * int or date, and a value that does not convert fails that row (a reject), where an assignment alone would
 * refuse the whole mapping (text is not assignable to int). The modifier is left to the assignment: an
 * explicit cast to varchar(12) would cut a longer value silently, the assignment refuses it (22001).
 */
function mappedValues(shape: ImportShape): string {
  return shape.columns.map((c) => `CAST((${c.expression}) AS ${c.castType})`).join(', ');
}

/**
 * Inserts the source rows whose key lies in [$lo, $hi] (parameters: the low key's values, then the high
 * key's), mapped by the column expressions; rows whose target key is already there are skipped. One
 * statement: a row the target refuses fails all of it (the chunk narrows the range down to that row).
 */
export function insertRangeSql(shape: ImportShape): string {
  const k = shape.sourceKey.length;
  const targetColumns = shape.columns.map((c) => quoteIdent(c.target)).join(', ');
  const values = mappedValues(shape);
  return `INSERT INTO ${quoteQualified(shape.target.schema, shape.target.table)} (${targetColumns})
          SELECT ${values}
            FROM ${quoteQualified(shape.source.schema, shape.source.table)} AS ${SOURCE_ALIAS}
           WHERE ${keyRow(shape)} >= ${paramRow(shape, 1)} AND ${keyRow(shape)} <= ${paramRow(shape, k + 1)}
          ON CONFLICT (${shape.targetKey.map(quoteIdent).join(', ')}) DO NOTHING`;
}

/** The insert with no row (a WHERE that is false), for Start to have PostgreSQL check the mapping's types. */
export function explainInsertSql(shape: ImportShape): string {
  const targetColumns = shape.columns.map((c) => quoteIdent(c.target)).join(', ');
  const values = mappedValues(shape);
  return `EXPLAIN INSERT INTO ${quoteQualified(shape.target.schema, shape.target.table)} (${targetColumns})
          SELECT ${values}
            FROM ${quoteQualified(shape.source.schema, shape.source.table)} AS ${SOURCE_ALIAS}
          ON CONFLICT (${shape.targetKey.map(quoteIdent).join(', ')}) DO NOTHING`;
}

/** Rows of the source (exact; for plans). */
export function countSourceSql(shape: ImportShape): string {
  return `SELECT count(*)::text AS n FROM ${quoteQualified(shape.source.schema, shape.source.table)}`;
}

/**
 * Whether the target already holds the row the source row with key $1…$k maps to (its target key, computed by
 * the mapping): a refused row that is already imported is a skip, not a reject (NOT NULL, CHECK and BEFORE
 * triggers run before ON CONFLICT looks, so a row imported before a constraint tightened fails again).
 */
export function alreadyImportedSql(shape: ImportShape): string {
  const keyColumns = shape.targetKey.map((name) => {
    const column = shape.columns.find((c) => c.target === name);
    if (!column) throw new RangeError(`target key column ${name} is not mapped`);
    return { name, value: `CAST((${column.expression}) AS ${column.castType})` };
  });
  const mapped = keyColumns.map((k, i) => `${k.value} AS k${i}`).join(', ');
  const match = keyColumns.map((k, i) => `t.${quoteIdent(k.name)} = m.k${i}`).join(' AND ');
  return `SELECT EXISTS (
            SELECT 1 FROM ${quoteQualified(shape.target.schema, shape.target.table)} AS t,
                   (SELECT ${mapped}
                      FROM ${quoteQualified(shape.source.schema, shape.source.table)} AS ${SOURCE_ALIAS}
                     WHERE ${keyRow(shape)} = ${paramRow(shape, 1)}) AS m
             WHERE ${match})::text AS found`;
}
