/**
 * The anonymize chunk statement: lock the next `limit` pending rows in keyset order (FOR UPDATE SKIP LOCKED:
 * a row another session holds is passed over and left for the next run, so the run never waits on hot rows),
 * set every masked column to its masked form, and return one summary row (count, first and last order values)
 * for the cursor and the ledger's ranges — never a row's values.
 *
 * The rows are found by the order terms (time column, then the key or ctid) among the eligible rows
 * (`eligibleWhere`: cutoff, the policy's filter, the pending predicate) after the cursor. A row once masked is
 * no longer pending, so neither this run (the cursor moved past it) nor a later one updates it again.
 */
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { type ChunkTarget, eligibleWhere, orderTerms } from '../../core/chunk-sql.ts';
import { InvalidPayloadError } from '../../core/errors.ts';
import { type ChunkInput, summarizeTakenRows, type TakenChunk, targetOf } from '../chunk-action.ts';
import { ParamList } from './param-list.ts';

/** A masked column's assignment: `"col" = set`. */
export interface ColumnAssignment {
  readonly column: string;
  /** SQL of the new value (the column's own value referenced as `value` was passed to the compiler). */
  readonly set: string;
}

export interface AnonymizeStatement {
  /** Params: $1 cutoff, $2 limit, $3… cursor values (withCursor), then the masks' own parameters. */
  readonly text: string;
  /**
   * Number of order terms: the result row is [updated, picked, first row's terms…, last row's terms…]. Rows
   * picked but not updated (a BEFORE UPDATE trigger returning NULL; a row changed by another session after the
   * statement's snapshot, which the lock then sees but the UPDATE does not) are not the end of the work: only a
   * chunk that picks nothing is.
   */
  readonly terms: number;
}

const PICKED = 'pg_lifecycle_picked';

/** The SQL by which a mask refers to the column's current value in the UPDATE. */
/** The table a mask's column belongs to (a chunk target, or a subject request's table). */
export type TableName = Pick<ChunkTarget, 'schema' | 'table'>;

export function columnValue(target: TableName, column: string): string {
  return `${quoteQualified(target.schema, target.table)}.${quoteIdent(column)}`;
}

/** Number of parameters before the masks' own: $1 cutoff, $2 limit, the cursor's values. */
export function firstMaskParameter(target: ChunkTarget, withCursor: boolean): number {
  return 3 + (withCursor ? orderTerms(target).length : 0);
}

/** The SELECT a chunk locks its rows with (also what Start EXPLAINs, with $1 cutoff and $2 limit). */
export function pickStatement(target: ChunkTarget, withCursor: boolean): string {
  const table = quoteQualified(target.schema, target.table);
  const terms = orderTerms(target);
  // Qualified: a bare name could resolve to an output column of the same name.
  const qualified = terms.map((t) => `${table}.${t.expression}`);
  const ids = target.partitioned
    ? `${table}.tableoid AS pgl_oid, ${table}.ctid AS pgl_tid`
    : `${table}.ctid AS pgl_tid`;
  return `SELECT ${ids}, ${qualified.map((q, i) => `${q} AS o${i + 1}`).join(', ')}
    FROM ${table}
    WHERE ${eligibleWhere(target, withCursor)}
    ORDER BY ${qualified.join(', ')}
    LIMIT $2
    FOR UPDATE SKIP LOCKED`;
}

export function buildAnonymizeStatement(
  target: ChunkTarget,
  withCursor: boolean,
  assignments: readonly ColumnAssignment[],
): AnonymizeStatement {
  if (assignments.length === 0) throw new RangeError('an anonymize chunk needs at least one assignment');
  const table = quoteQualified(target.schema, target.table);
  const terms = orderTerms(target).map((_, i) => `o${i + 1}`);
  const set = assignments.map((a) => `${quoteIdent(a.column)} = ${a.set}`).join(',\n      ');
  const match = target.partitioned
    ? // ctid is unique only within one partition: join on (tableoid, ctid).
      `FROM ${PICKED} WHERE ${table}.tableoid = ${PICKED}.pgl_oid AND ${table}.ctid = ${PICKED}.pgl_tid`
    : // ctid = ANY(ARRAY(...)) becomes a TID scan: the fastest way back to rows just locked.
      `WHERE ${table}.ctid = ANY (ARRAY(SELECT pgl_tid FROM ${PICKED}))`;
  const asText = (alias: string) => terms.map((t) => `${alias}.${t}::text`).join(', ');
  // Sorted on the values' own types, cast to text only outside the sort (text order puts id 9 after id 10).
  const text = `WITH ${PICKED} AS MATERIALIZED (
  ${pickStatement(target, withCursor)}
), updated AS (
  UPDATE ${table} SET ${set}
  ${match}
  RETURNING 1
)
SELECT (SELECT count(*) FROM updated)::text AS n, (SELECT count(*) FROM ${PICKED})::text AS picked,
       ${asText('first_row')}, ${asText('last_row')}
  FROM (SELECT ${terms.join(', ')} FROM ${PICKED} ORDER BY ${terms.join(', ')} LIMIT 1) AS first_row,
       (SELECT ${terms.join(', ')} FROM ${PICKED} ORDER BY ${terms.map((t) => `${t} DESC`).join(', ')} LIMIT 1) AS last_row`;
  return { text, terms: terms.length };
}

/**
 * One UPDATE chunk (anonymize, purge's soft delete): the assignments `assign` builds with the statement's own
 * parameters numbered after $1 cutoff, $2 limit and the cursor's values; undefined once a chunk picks no row.
 */
export async function takeUpdateChunk(
  tx: Queryable,
  input: ChunkInput,
  assign: (params: ParamList) => ColumnAssignment[],
): Promise<TakenChunk | undefined> {
  const { target } = targetOf(input);
  const cursor = input.cursor;
  if (cursor !== null && cursor.kind !== 'keyset')
    throw new InvalidPayloadError(`an UPDATE chunk cannot resume from a ${cursor.kind} cursor`);
  const withCursor = cursor !== null;
  const params = new ParamList(firstMaskParameter(target, withCursor));
  const statement = buildAnonymizeStatement(target, withCursor, assign(params));
  const { rows } = await tx.query<Array<string | null>>({
    text: statement.text,
    values: [input.cutoff, input.limit, ...(cursor?.values ?? []), ...params.values],
    rowMode: 'array',
  });
  const summary = rows[0];
  // Only a chunk that picks no row is the end: picked rows may all have been left unchanged (see
  // AnonymizeStatement), and the cursor still moves past them.
  if (!summary || Number(summary[1]) === 0) return undefined;
  const first = summary.slice(2, 2 + statement.terms);
  const last = summary.slice(2 + statement.terms);
  return { ...summarizeTakenRows([first, last], [...first.keys()]), rows: Number(summary[0]) };
}
