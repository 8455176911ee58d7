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
import { InvalidPayloadError } from './errors.ts';

/**
 * Aliases the statements give their own derived tables. A name that qualifies a column (`x.t`) resolves to
 * the innermost FROM item of that name first, and a user table named `locked` or `bound` would capture it
 * (or clash: "table name specified more than once"); these names are unlikely to be a table's.
 */
const LOCKED_ALIAS = 'pg_lifecycle_locked';
const BOUND_ALIAS = 'pg_lifecycle_bound';

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
   * Rows the action has not processed yet (anonymize: some masked column not yet in its masked form). Built
   * by pg-lifecycle from catalog names and escaped literals, never the user's text (which is `filter`, and
   * alone goes through the filter checks); every eligibility test ANDs it in.
   */
  readonly pending?: string | undefined;
  /**
   * Partitioned parents only: the leaf partition that holds the next eligible row. The chunk statement
   * then reads and deletes in that leaf alone, by ctid (a TID scan), instead of joining every partition on
   * (tableoid, ctid). The keyset order keeps its terms, so cursors stay valid across leaves.
   */
  readonly leaf?: { readonly schema: string; readonly table: string } | undefined;
  /**
   * A parallel run's worker: the inclusive lower time bound of its range (ISO-8601 UTC text of whole seconds,
   * fixed by Start from a sample, never a row's value; checked here to be that shape before it is spliced in as
   * a literal). Its exclusive upper bound is the chunk's cutoff parameter.
   */
  readonly lowerBound?: string | undefined;
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

/** The cutoff ($1, ISO UTC text) as a value of the time column's kind. */
export function cutoffValue(target: ChunkTarget, placeholder = '$1'): string {
  switch (target.timeColumn.kind) {
    case 'timestamptz':
      return `${placeholder}::timestamptz`;
    case 'timestamp':
      return `(${placeholder}::timestamptz AT TIME ZONE 'UTC')`;
    case 'date':
      // Conservative: the cutoff's own day is kept whole.
      return `(${placeholder}::timestamptz AT TIME ZONE 'UTC')::date`;
  }
}

/** `timeColumn < cutoff` with the cutoff ($1, ISO UTC text) cast to the column's kind. */
export function cutoffPredicate(target: ChunkTarget, placeholder = '$1'): string {
  return `${quoteIdent(target.timeColumn.name)} < ${cutoffValue(target, placeholder)}`;
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
  atTimeParam?: number,
  param: ParamReference = bindParam,
): string {
  // A setting read back (settingParams) is an expression PostgreSQL computes wherever it is reached: as a filter,
  // once per row, parsing the text again each time (a row comparison over a single-column time index is
  // rechecked as a filter on every row; it cost a quarter of an archive chunk's DELETE). Such values are
  // computed once, in scalar subqueries, except the cutoff and the upper bound on a partitioned parent: the
  // planner prunes its partitions before the scan only while they stay stable expressions.
  const once = (value: string) => (param.readsSetting ? `(SELECT ${value})` : value);
  const prunesPartitions = target.partitioned && target.leaf === undefined;
  const time = quoteIdent(target.timeColumn.name);
  const before = (n: number) => {
    const bound = cutoffValue(target, param(n));
    return `${time} < ${prunesPartitions ? bound : once(bound)}`;
  };
  const parts = [before(1)];
  if (target.lowerBound !== undefined) parts.push(lowerBoundPredicate(target, target.lowerBound));
  if (upperBoundParam !== undefined) parts.push(before(upperBoundParam));
  if (atTimeParam !== undefined)
    parts.push(`${time} = ${once(`${param(atTimeParam)}::${target.timeColumn.kind}`)}`);
  if (target.filter) parts.push(`(${target.filter})`);
  if (target.pending) parts.push(`(${target.pending})`);
  if (withCursor) {
    const terms = orderTerms(target);
    const left = terms.map((t) => t.expression).join(', ');
    const right = terms.map((t, i) => once(`${param(firstCursorParam + i)}::${t.cast}`)).join(', ');
    parts.push(`(${left}) > (${right})`);
  }
  return parts.join('\n    AND ');
}

const RANGE_BOUND = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/**
 * `timeColumn >= bound`, the bound cast to the column's kind as the cutoff is. A literal, after the shape check
 * (digits and fixed punctuation only: nothing else can be spliced in), so that the planner prunes a partitioned
 * table's partitions outside the range when it plans the statement (a parameter or a setting would leave every
 * partition below the cutoff planned and locked by every worker). The bound is a quantile of the table's times
 * truncated to the second, also in lifecycle.run_ranges and the plan: not a row's value, never a key.
 */
function lowerBoundPredicate(target: ChunkTarget, bound: string): string {
  if (!RANGE_BOUND.test(bound))
    throw new InvalidPayloadError(`range bound ${JSON.stringify(bound)} is not ISO-8601 UTC`);
  return `${quoteIdent(target.timeColumn.name)} >= ${cutoffValue(target, `'${bound}'`)}`;
}

/** How a statement refers to its n-th parameter: `$n` (bound), or where binding is impossible (COPY) a setting (settingParams). */
export interface ParamReference {
  (n: number): string;
  /** The reference is a setting read back, an expression PostgreSQL computes every time it is reached. */
  readonly readsSetting?: boolean;
}

const bindParam: ParamReference = (n) => `$${n}`;

/**
 * Parameters for a statement that takes no bind parameters (`COPY (…) TO STDOUT`): `prelude` (run first, in the
 * same transaction, with bound values) stores each string value as a transaction-local setting, and the
 * statement reads it back with `current_setting(…)`, cast as it would cast `$n`. The values never enter the
 * statement's text, which pg_stat_activity shows and the server logs on error (key values may be personal
 * data). Integers (the row limit) are written as they are.
 */
export function settingParams(values: ReadonlyArray<string | number | null>): {
  readonly prelude: { readonly text: string; readonly values: string[] };
  readonly param: ParamReference;
} {
  const settings: string[] = [];
  const bound: string[] = [];
  values.forEach((value, index) => {
    if (typeof value === 'string') {
      bound.push(value);
      settings.push(`pg_catalog.set_config('${settingName(index + 1)}', $${bound.length}, true)`);
    }
  });
  return {
    prelude: { text: `SELECT ${settings.length > 0 ? settings.join(', ') : 'NULL'}`, values: bound },
    param: Object.assign(
      (n: number) => {
        const value = values[n - 1];
        if (typeof value === 'number') {
          if (!Number.isSafeInteger(value)) throw new Error(`parameter $${n} is not an integer`);
          return String(value);
        }
        if (typeof value !== 'string') throw new Error(`parameter $${n} has no value`);
        return `pg_catalog.current_setting('${settingName(n)}')`;
      },
      { readsSetting: true },
    ),
  };
}

function settingName(n: number): string {
  return `pg_lifecycle.chunk_param_${n}`;
}

export interface ChunkStatement {
  readonly text: string;
  /** `WITH deleted AS (…)`: the statement without its final SELECT, to select from `deleted` otherwise. */
  readonly cte: string;
  /** Each returned value's name in `deleted` (a quoted column name, or ctid / tableoid), in result order. */
  readonly returnedNames: readonly string[];
  /** 0-based index in each result row of each order term's value (for the cursor and key ranges). */
  readonly orderPositions: readonly number[];
  /** Index of the table's first column in each result row (system columns come first, if any). */
  readonly firstColumnPosition: number;
  /**
   * The DELETE alone, without its RETURNING clause, and each returned value as an expression over the deleted
   * row (in result order): to return other expressions of the same rows, unordered, with no CTE around it.
   */
  readonly bareDelete: string;
  readonly returnedExpressions: readonly string[];
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
 * gone) or its new version is not visible to the DELETE's snapshot and is left alone. Without the lock
 * (`locking: 'none'`) the returned rows are still the versions deleted; a row updated and committed after the
 * statement's snapshot is rechecked on its new version: against `ctid = …` (PostgreSQL 13–18 minors from late 2025
 * on), so it stays for a later run, and always against the cutoff and the policy's filter, repeated outside the
 * subselect for that, so a row moved past the cutoff or out of the filter stays (on an older minor a row updated
 * within them is taken in its new version, which can move the cursor forward past rows the next run takes). A row
 * another session holds makes the DELETE wait, which the caller bounds.
 */
export function buildDeleteChunkStatement(
  target: ChunkTarget,
  withCursor: boolean,
  options: {
    upperBound?: boolean;
    atTime?: boolean;
    returning?: 'all' | 'order';
    param?: ParamReference;
    /**
     * 'skip' (default): the slice is chosen with FOR UPDATE SKIP LOCKED. 'none': chosen without locking and
     * deleted plainly, for a caller that bounds the DELETE's wait with lock_timeout and falls back to 'skip'
     * (locking each row first costs PostgreSQL a WAL record per row: ≈ a quarter of the statement).
     */
    locking?: 'skip' | 'none';
    /**
     * With locking 'none': a range DELETE of the eligible rows after the cursor that come before the time of the
     * (limit+1)-th one, instead of the ordered selection joined back by ctid (no sort, no TID array: an index range
     * scan, as purge's windows). For a time column with an index: without one the window reads the table twice.
     */
    window?: boolean;
  } = {},
): ChunkStatement {
  const param = options.param ?? bindParam;
  const lock = options.locking === 'none' ? '' : '\n    FOR UPDATE SKIP LOCKED';
  // A leaf is read under its parent's name, so a filter that qualifies columns with the table's name (the
  // name EXPLAIN and the plan checked it with) means the same there.
  const from = target.leaf
    ? `${quoteQualified(target.leaf.schema, target.leaf.table)} AS ${quoteIdent(target.table)}`
    : quoteQualified(target.schema, target.table);
  const table = target.leaf ? quoteIdent(target.table) : from;
  const terms = orderTerms(target);
  const orderBy = terms.map((t) => t.expression).join(', ');
  const afterCursor = 3 + (withCursor ? terms.length : 0);
  const upperBoundParam = options.upperBound ? afterCursor : undefined;
  const atTimeParam = options.atTime ? afterCursor + (options.upperBound ? 1 : 0) : undefined;
  const where = eligibleWhere(target, withCursor, 3, upperBoundParam, atTimeParam, param);
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
  const returnedExpressions = returnedColumns.map((c) => `${table}.${c}`);
  const resultOrder = orderPositions.map((p) => String(p + 1)).join(', ');

  // What a row must still satisfy when the DELETE reaches it (see the doc comment): under the cutoff, and the
  // policy's filter. The cutoff's cast is a scalar subquery, evaluated once: as a filter, `current_setting(…)
  // ::timestamptz` would be parsed again for every row (≈ 3 CPU-s per million rows, measured).
  const stillEligible = [
    `${quoteIdent(target.timeColumn.name)} < (SELECT ${cutoffValue(target, param(1))})`,
    ...(target.filter ? [`(${target.filter})`] : []),
    ...(target.pending ? [`(${target.pending})`] : []),
  ].join('\n    AND ');
  const time = quoteIdent(target.timeColumn.name);
  if (options.window && options.locking !== 'none') throw new Error('a window DELETE takes no row locks');
  const bareDelete = options.window
    ? // The window's end is read in the DELETE's own snapshot: it holds at most limit rows, whatever was inserted
      // meanwhile, and none when more than limit rows share the first time (the caller then takes a keyset slice).
      // No recheck needed: a row updated meanwhile is deleted only if its new version passes this whole WHERE.
      `DELETE FROM ${from}
  WHERE ${where}
    AND ${time} < coalesce((
      SELECT ${time} FROM ${from}
      WHERE ${where}
      ORDER BY ${time}
      OFFSET ${param(2)} LIMIT 1), 'infinity'::${target.timeColumn.kind})`
    : target.partitioned && !target.leaf
      ? // ctid is unique only within one partition: join on (tableoid, ctid).
        `DELETE FROM ${table}
  USING (
    SELECT tableoid AS lock_oid, ctid AS lock_tid FROM ${table}
    WHERE ${where}
    ORDER BY ${orderBy}
    LIMIT ${param(2)}${lock}
  ) AS ${LOCKED_ALIAS}
  WHERE ${table}.tableoid = ${LOCKED_ALIAS}.lock_oid AND ${table}.ctid = ${LOCKED_ALIAS}.lock_tid
    -- Repeated so that the DELETE prunes partitions; without it each row probes every partition.
    AND ${where}`
      : // ctid = ANY(ARRAY(...)) becomes a TID scan: the fastest way back to rows we just locked.
        `DELETE FROM ${from}
  WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM ${from}
    WHERE ${where}
    ORDER BY ${orderBy}
    LIMIT ${param(2)}${lock}
  ))
    -- Rechecked: a row updated after the subselect read it must still be eligible. PostgreSQL minors before
    -- late 2025 do not recheck ctid on the new version, and the unlocked form would delete it wherever it went.
    AND ${stillEligible}`;
  const deleteStatement = `${bareDelete}\n  ${returning}`;

  const cte = `WITH deleted AS (\n  ${deleteStatement}\n)`;
  return {
    text: `${cte}\nSELECT * FROM deleted ORDER BY ${resultOrder}`,
    cte,
    returnedNames:
      options.returning === 'order' ? returnedColumns.map((_, i) => `o${i + 1}`) : returnedColumns,
    orderPositions,
    firstColumnPosition: leading.length,
    bareDelete,
    returnedExpressions,
  };
}

/**
 * The keyset purge chunk (rows that share one time value, `atTime`, when more of them are eligible than
 * one chunk takes): the same locked, ordered, bounded DELETE, returning only the order terms (time, then
 * key columns or [tableoid,] ctid) summarized in SQL, so no row contents cross the wire. Params as for
 * {@link buildDeleteChunkStatement}, then the `atTime` value.
 */
export function buildPurgeChunkStatement(
  target: ChunkTarget,
  withCursor: boolean,
  options: { atTime?: boolean } = {},
): PurgeChunkStatement {
  const { text } = buildDeleteChunkStatement(target, withCursor, { ...options, returning: 'order' });
  const terms = orderTerms(target).map((_, i) => `o${i + 1}`);
  const cte = text.slice(0, text.lastIndexOf('\nSELECT * FROM deleted'));
  const asText = (alias: string) => terms.map((t) => `${alias}.${t}::text`).join(', ');
  // One summary row (count, first and last order values) instead of every deleted row's keys: shipping
  // and parsing 50 000 keys per chunk costs more than the DELETE itself. Sorted on the values' own types
  // (cast to text only outside the sort: text order puts id 9 after id 10).
  return {
    text: `${cte}
SELECT (SELECT count(*) FROM deleted)::text AS n, ${asText('first_row')}, ${asText('last_row')}
  FROM (SELECT ${terms.join(', ')} FROM deleted ORDER BY ${terms.join(', ')} LIMIT 1) AS first_row,
       (SELECT ${terms.join(', ')} FROM deleted ORDER BY ${terms.map((t) => `${t} DESC`).join(', ')} LIMIT 1) AS last_row`,
    terms: terms.length,
  };
}

/** Where a purge window starts: at the table's first eligible row, at a time (inclusive), or after one. */
export type WindowStart = 'first' | 'at' | 'after';

/**
 * The purge window statements. A window is the eligible rows with `start ≤ time < end`, where `end` is the
 * time of the (limit+1)-th eligible row (or the cutoff): a plain range DELETE of it runs as fast per row as
 * one big `DELETE … WHERE time < cutoff` (an index range scan, no sort, no per-row lock record, nothing
 * returned), which a locked, ordered, `RETURNING` keyset chunk cannot (about a third of that speed).
 */
export interface PurgeWindowStatements {
  /**
   * Params: $1 cutoff, $2 rows per window, $3 start (unless 'first'). One row: [bound (the (limit+1)-th
   * eligible row's time, or null), end (bound, else the cutoff as the column's kind), first row's order
   * values…, last row's (before end) order values…, span (last row's time − first row's, in seconds; null for
   * a `date` column or an infinite time)]; all text, first/last null when nothing is eligible.
   */
  readonly probe: string;
  /**
   * The window without the probe's scan of its rows: its end is the first eligible row's time plus $2 seconds
   * (text of a float8; 'timestamp'/'timestamptz' columns only). Params and row as `probe`'s; bound is null
   * when the first row's time is infinite (no end can be predicted from it: probe that window instead).
   */
  readonly predicted: string;
  /** Params: $1 cutoff, $2 end, $3 start (unless 'first'). Plain DELETE: the command's row count. */
  readonly remove: string;
  /** The same window with FOR UPDATE SKIP LOCKED (rows other sessions hold are left). One row: [count]. */
  readonly removeSkippingLocked: string;
  /** Number of order terms. */
  readonly terms: number;
}

export function buildPurgeWindowStatements(target: ChunkTarget, start: WindowStart): PurgeWindowStatements {
  const table = quoteQualified(target.schema, target.table);
  const time = quoteIdent(target.timeColumn.name);
  const kind = target.timeColumn.kind;
  const terms = orderTerms(target);
  // ORDER BY on qualified names: a bare name could resolve to an output column of the same name.
  const qualified = terms.map((t) => `${table}.${t.expression}`);
  const eligible = eligibleWhere(target, false);
  const lower = start === 'first' ? '' : `\n    AND ${time} ${start === 'at' ? '>=' : '>'} $3::${kind}`;
  const selectTerms = (prefix: string) =>
    qualified.map((q, i) => `${q}::text AS ${prefix}${i + 1}`).join(', ');
  const outputTerms = (alias: string, prefix: string) =>
    terms.map((_, i) => `${alias}.${prefix}${i + 1}`).join(', ');
  const end = `coalesce(${BOUND_ALIAS}.t, ${cutoffValue(target)})`;
  const span =
    kind === 'date'
      ? 'NULL::text'
      : `CASE WHEN isfinite(first_row.first_time) AND isfinite(last_row.last_time)
              THEN extract(epoch FROM last_row.last_time - first_row.first_time)::text END`;
  // MATERIALIZED: the bound is read three times; inlined, its OFFSET scan would run three times.
  const windowStatement = (bound: string) => `WITH ${BOUND_ALIAS} AS MATERIALIZED (
  SELECT ${bound} AS t
)
SELECT ${BOUND_ALIAS}.t::text AS bound, ${end}::text AS window_end,
       ${outputTerms('first_row', 'f')}, ${outputTerms('last_row', 'l')}, ${span} AS span_seconds
  FROM ${BOUND_ALIAS}
  LEFT JOIN LATERAL (
    SELECT ${selectTerms('f')}, ${table}.${time} AS first_time FROM ${table}
     WHERE ${eligible}${lower}
     ORDER BY ${qualified.join(', ')} LIMIT 1) AS first_row ON true
  LEFT JOIN LATERAL (
    SELECT ${selectTerms('l')}, ${table}.${time} AS last_time FROM ${table}
     WHERE ${eligible}${lower}
       AND ${time} < ${end}
     ORDER BY ${qualified.map((q) => `${q} DESC`).join(', ')} LIMIT 1) AS last_row ON true`;
  const probe = windowStatement(`(SELECT ${time} FROM ${table}
           WHERE ${eligible}${lower}
           ORDER BY ${table}.${time} OFFSET $2 LIMIT 1)`);
  const predicted = windowStatement(`(SELECT CASE WHEN isfinite(${BOUND_ALIAS}_first.t)
                  THEN ${BOUND_ALIAS}_first.t + make_interval(secs => $2::float8) END
             FROM (SELECT ${time} AS t FROM ${table}
                    WHERE ${eligible}${lower}
                    ORDER BY ${table}.${time} LIMIT 1) AS ${BOUND_ALIAS}_first)`);
  const window = `${eligible}\n    AND ${time} < $2::${kind}${lower}`;
  const remove = `DELETE FROM ${table}\n  WHERE ${window}`;
  const locked = `SELECT ${target.partitioned ? 'tableoid AS lock_oid, ' : ''}ctid AS lock_tid FROM ${table}
    WHERE ${window}
    FOR UPDATE SKIP LOCKED`;
  const removeSkippingLocked = `WITH deleted AS (
  DELETE FROM ${table}
${
  target.partitioned
    ? // ctid is unique only within one partition: join on (tableoid, ctid).
      `  USING (${locked}) AS ${LOCKED_ALIAS}
  WHERE ${table}.tableoid = ${LOCKED_ALIAS}.lock_oid AND ${table}.ctid = ${LOCKED_ALIAS}.lock_tid
    AND ${window}`
    : `  WHERE ctid = ANY (ARRAY(${locked}))`
}
  RETURNING 1
)
SELECT count(*)::text AS n FROM deleted`;
  return { probe, predicted, remove, removeSkippingLocked, terms: terms.length };
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
