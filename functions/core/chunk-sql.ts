/**
 * SQL text for the chunk loop. Pure: identifiers arrive already resolved from the catalog and are
 * quoted here; the only non-identifier text spliced in is the policy filter, which was screened
 * (config schema) and planned with EXPLAIN when the run started.
 *
 * Keyset order is (timeColumn, primary key...) or, without a primary key, (timeColumn, [tableoid,] ctid).
 * The cursor is the last processed row's order values as text, cast back with the column's own type,
 * so no value ever passes through a lossy JS type (timestamptz microseconds, numeric, int8).
 */
import { quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';

export type TimeColumnKind = 'timestamptz' | 'timestamp' | 'date';

export interface ChunkTarget {
  readonly schema: string;
  readonly table: string;
  /** Range/list/hash partitioned parent: ctid alone is not unique, tableoid joins it. */
  readonly partitioned: boolean;
  readonly timeColumn: { readonly name: string; readonly kind: TimeColumnKind };
  /** Primary key columns with their `format_type` (a catalog-produced, safe SQL type name); empty: use ctid. */
  readonly keyColumns: ReadonlyArray<{ readonly name: string; readonly typeName: string }>;
  /** All columns in attnum order (what the Parquet object holds). */
  readonly columnNames: readonly string[];
  readonly filter?: string | undefined;
  /**
   * Partitioned parents only: the leaf partition that holds the next eligible row. The chunk statement
   * then reads and deletes in that leaf alone, by ctid (a TID scan), instead of joining every partition on
   * (tableoid, ctid). The keyset order keeps its terms, so cursors stay valid across leaves.
   */
  readonly leaf?: { readonly schema: string; readonly table: string } | undefined;
}

/** One element of the keyset order: how to select it and how to cast a cursor value back. */
interface OrderTerm {
  readonly expression: string;
  readonly cast: string;
}

export function orderTerms(target: ChunkTarget): OrderTerm[] {
  const terms: OrderTerm[] = [
    { expression: quoteIdent(target.timeColumn.name), cast: target.timeColumn.kind },
  ];
  if (target.keyColumns.length > 0) {
    for (const key of target.keyColumns) terms.push({ expression: quoteIdent(key.name), cast: key.typeName });
  } else {
    if (target.partitioned) terms.push({ expression: 'tableoid', cast: 'oid' });
    terms.push({ expression: 'ctid', cast: 'tid' });
  }
  return terms;
}

/** `timeColumn < cutoff` with the cutoff ($1, ISO UTC text) cast to the column's kind. */
export function cutoffPredicate(target: ChunkTarget, placeholder = '$1'): string {
  const column = quoteIdent(target.timeColumn.name);
  switch (target.timeColumn.kind) {
    case 'timestamptz':
      return `${column} < ${placeholder}::timestamptz`;
    case 'timestamp':
      return `${column} < (${placeholder}::timestamptz AT TIME ZONE 'UTC')`;
    case 'date':
      // Conservative: the cutoff's own day is kept whole.
      return `${column} < (${placeholder}::timestamptz AT TIME ZONE 'UTC')::date`;
  }
}

/**
 * WHERE clause of eligible rows after the cursor. Params: $1 cutoff, then cursor values from
 * $firstCursorParam, then (with `upperBoundParam`) an extra exclusive upper time bound.
 */
export function eligibleWhere(
  target: ChunkTarget,
  withCursor: boolean,
  firstCursorParam = 3,
  upperBoundParam?: number,
): string {
  const parts = [cutoffPredicate(target)];
  if (upperBoundParam !== undefined) parts.push(cutoffPredicate(target, `$${upperBoundParam}`));
  if (target.filter) parts.push(`(${target.filter})`);
  if (withCursor) {
    const terms = orderTerms(target);
    const left = terms.map((t) => t.expression).join(', ');
    const right = terms.map((t, i) => `$${firstCursorParam + i}::${t.cast}`).join(', ');
    parts.push(`(${left}) > (${right})`);
  }
  return parts.join('\n    AND ');
}

export interface ChunkStatement {
  readonly text: string;
  /** 0-based index in each result row of each order term's value (for the cursor and key ranges). */
  readonly orderPositions: readonly number[];
  /** Index of the table's first column in each result row (system columns come first, if any). */
  readonly firstColumnPosition: number;
}

/**
 * One statement that locks, deletes and returns a bounded, ordered slice of eligible rows.
 * Params: $1 cutoff, $2 row limit, $3.. cursor, then the optional upper time bound (archive keeps each
 * chunk inside one Hive partition with it). Rows come back ordered by the keyset, as arrays:
 * [tableoid, ctid (only without a primary key)..., columns...].
 *
 * FOR UPDATE SKIP LOCKED: rows another session holds are passed over (the cursor moves past them; the
 * next run picks them up) so the run never waits on hot rows. The rows returned are exactly the versions
 * deleted: a row updated concurrently is either locked by us first (then the update waits and finds it
 * gone) or its new version is not visible to the DELETE's snapshot and is left alone.
 */
export function buildDeleteChunkStatement(
  target: ChunkTarget,
  withCursor: boolean,
  options: { upperBound?: boolean; returning?: 'all' | 'order' } = {},
): ChunkStatement {
  const table = target.leaf
    ? quoteQualified(target.leaf.schema, target.leaf.table)
    : quoteQualified(target.schema, target.table);
  const terms = orderTerms(target);
  const orderBy = terms.map((t) => t.expression).join(', ');
  const upperBoundParam = options.upperBound ? 3 + (withCursor ? terms.length : 0) : undefined;
  const where = eligibleWhere(target, withCursor, 3, upperBoundParam);
  let returnedColumns: string[];
  let orderPositions: number[];
  let leading: string[];
  if (options.returning === 'order') {
    // Only what the cursor and the ledger's ranges need: the order terms, in order.
    leading = [];
    returnedColumns = terms.map((t) => t.expression);
    orderPositions = terms.map((_, i) => i);
  } else {
    // Order terms that are columns are read from the returned columns; only system columns (tableoid,
    // ctid) are returned ahead of them.
    leading = target.keyColumns.length > 0 ? [] : terms.slice(1).map((t) => t.expression);
    const leadingCount = leading.length;
    orderPositions = terms.map((_, i) => {
      if (i > 0 && target.keyColumns.length === 0) return i - 1;
      const column = i === 0 ? target.timeColumn.name : (target.keyColumns[i - 1]?.name as string);
      return leadingCount + target.columnNames.indexOf(column);
    });
    returnedColumns = [...leading, ...target.columnNames.map(quoteIdent)];
  }
  // Aliased o1, o2, … so the purge summary can order by them whatever the column names are.
  const returned = returnedColumns
    .map((c, i) => (options.returning === 'order' ? `${table}.${c} AS o${i + 1}` : `${table}.${c}`))
    .join(', ');
  const returning = `RETURNING ${returned}`;
  const resultOrder = orderPositions.map((p) => String(p + 1)).join(', ');

  const deleteStatement =
    target.partitioned && !target.leaf
      ? // ctid is unique only within one partition: join on (tableoid, ctid).
        `DELETE FROM ${table}
  USING (
    SELECT tableoid AS lock_oid, ctid AS lock_tid FROM ${table}
    WHERE ${where}
    ORDER BY ${orderBy}
    LIMIT $2
    FOR UPDATE SKIP LOCKED
  ) AS locked
  WHERE ${table}.tableoid = locked.lock_oid AND ${table}.ctid = locked.lock_tid
  ${returning}`
      : // ctid = ANY(ARRAY(...)) becomes a TID scan: the fastest way back to rows we just locked.
        `DELETE FROM ${table}
  WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM ${table}
    WHERE ${where}
    ORDER BY ${orderBy}
    LIMIT $2
    FOR UPDATE SKIP LOCKED
  ))
  ${returning}`;

  return {
    text: `WITH deleted AS (\n  ${deleteStatement}\n)\nSELECT * FROM deleted ORDER BY ${resultOrder}`,
    orderPositions,
    firstColumnPosition: leading.length,
  };
}

/**
 * The purge chunk: the same locked, ordered, bounded DELETE, returning only the order terms (time, then
 * key columns or [tableoid,] ctid) summarized in SQL, so no row contents cross the wire. Params as for
 * {@link buildDeleteChunkStatement}.
 */
export function buildPurgeChunkStatement(target: ChunkTarget, withCursor: boolean): PurgeChunkStatement {
  const { text } = buildDeleteChunkStatement(target, withCursor, { returning: 'order' });
  const terms = orderTerms(target).map((_, i) => `o${i + 1}`);
  const cte = text.slice(0, text.lastIndexOf('\nSELECT * FROM deleted'));
  const asText = terms.map((t) => `${t}::text`).join(', ');
  // One summary row (count, first and last order values) instead of every deleted row's keys: shipping
  // and parsing 50 000 keys per chunk costs more than the DELETE itself.
  return {
    text: `${cte}
SELECT (SELECT count(*) FROM deleted)::text AS n, first_row.*, last_row.*
  FROM (SELECT ${asText} FROM deleted ORDER BY ${terms.join(', ')} LIMIT 1) AS first_row,
       (SELECT ${asText} FROM deleted ORDER BY ${terms.map((t) => `${t} DESC`).join(', ')} LIMIT 1) AS last_row`,
    terms: terms.length,
  };
}

/** One row: [count, first row's order values…, last row's order values…]; no row when nothing was deleted. */
export interface PurgeChunkStatement {
  readonly text: string;
  /** Number of order terms (time, then key columns or [tableoid,] ctid). */
  readonly terms: number;
}

/** The read-only twin of the chunk selection, for EXPLAIN in plans and the run-start check. */
export function buildSelectChunkStatement(target: ChunkTarget, withCursor: boolean): string {
  const table = quoteQualified(target.schema, target.table);
  const orderBy = orderTerms(target)
    .map((t) => t.expression)
    .join(', ');
  return `SELECT ${orderBy} FROM ${table}\nWHERE ${eligibleWhere(target, withCursor)}\nORDER BY ${orderBy}\nLIMIT $2`;
}

/**
 * The time value (as text) of the next eligible row after the cursor, or no row. Params: $1 cutoff,
 * $3.. cursor ($2 unused, so the parameter numbering matches the chunk statement).
 */
export function buildNextEligibleTimeStatement(target: ChunkTarget, withCursor: boolean): string {
  const table = quoteQualified(target.schema, target.table);
  const orderBy = orderTerms(target)
    .map((t) => t.expression)
    .join(', ');
  return `SELECT ${quoteIdent(target.timeColumn.name)}::text AS next_time, tableoid::oid::text AS leaf_oid, $2::int AS unused FROM ${table}\nWHERE ${eligibleWhere(target, withCursor)}\nORDER BY ${orderBy}\nLIMIT 1`;
}

/** Rows a run would process now (dry run / plan). Param: $1 cutoff. */
export function buildCountEligibleStatement(target: ChunkTarget): string {
  return `SELECT count(*) AS rows, min(${quoteIdent(target.timeColumn.name)})::text AS oldest FROM ${quoteQualified(
    target.schema,
    target.table,
  )}\nWHERE ${eligibleWhere(target, false)}`;
}
