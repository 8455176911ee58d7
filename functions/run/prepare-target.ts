import type pg from 'pg';
import { quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';
import type { TimeCutoffPolicy } from '../../lib/contracts/policy.ts';
import { type ResolvedTable, resolveTable, resolveTimeColumn, toChunkTarget } from '../adapters/catalog.ts';
import {
  FilterCheckUnavailable,
  type FilterHazard,
  findFilterHazards,
} from '../adapters/filter-references.ts';
import { resolveFilterFunctions } from '../adapters/function-safety.ts';
import { readScanFacts } from '../adapters/plan-queries.ts';
import { type Queryable, readOnly } from '../adapters/transactions.ts';
import type { ChunkTarget } from '../core/chunk-sql.ts';
import { CatalogError, InvalidFilterError } from '../core/errors.ts';
import { decideFullScan, type FullScanDecision, planHasSeqScan } from '../core/full-scan.ts';
import { carriesRowValues, describeError, isPostgresError } from '../core/redact-database-error.ts';

export interface PreparedTarget {
  readonly table: ResolvedTable;
  readonly target: ChunkTarget;
  readonly qualifiedName: string;
}

/** Resolves the policy's table and time column from the catalog. */
export async function prepareTarget(db: Queryable, policy: TimeCutoffPolicy): Promise<PreparedTarget> {
  const table = await resolveTable(db, policy.table);
  await refuseInheritanceParent(db, table);
  const timeColumn = resolveTimeColumn(table, policy.timeColumn);
  const target = toChunkTarget(table, timeColumn, policy.filter);
  return { table, target, qualifiedName: quoteQualified(table.schema, table.table) };
}

/**
 * A plain table with INHERITS children is refused: reading it reads its children too, and chunks find their
 * rows again by ctid, which is unique only within one table — a chunk would change rows of another table that
 * merely share a ctid. (A partitioned table is walked by (tableoid, ctid) instead.)
 */
async function refuseInheritanceParent(db: Queryable, table: ResolvedTable): Promise<void> {
  if (table.kind !== 'r') return;
  const { rows } = await db.query<{ child: string }>(
    `SELECT inhrelid::regclass::text AS child FROM pg_inherits WHERE inhparent = $1::oid ORDER BY 1 LIMIT 5`,
    [table.oid],
  );
  if (rows.length === 0) return;
  throw new CatalogError(
    `${quoteQualified(table.schema, table.table)} has tables that inherit from it (${rows.map((r) => r.child).join(', ')}): ` +
      'its rows cannot be told apart from theirs by ctid; give each child table a policy of its own',
    { table: `${table.schema}.${table.table}` },
  );
}

/**
 * EXPLAIN runs no function, but the plan's row counts and every chunk do, once per row: a filter may call
 * only functions that cannot change anything (immutable or stable), or a dry run could write through
 * dblink, end sessions or change settings. What is checked is what PostgreSQL resolved from the filter
 * (functions and operators by OID, views, policies and domain checks it reaches), not the filter's text:
 * see adapters/filter-references.ts. Runs before any statement evaluates the filter on a row.
 * @throws InvalidFilterError naming each volatile function or operator, foreign table or row lock
 */
export async function checkFilterCalls(
  db: pg.ClientBase,
  prepared: PreparedTarget,
  filterFunctions: readonly string[] = [],
): Promise<void> {
  const filter = prepared.target.filter;
  if (!filter) return;
  const describe = `filter ${JSON.stringify(filter)} on ${prepared.qualifiedName}`;
  let hazards: FilterHazard[];
  try {
    hazards = await readOnly(db, 10_000, async () =>
      findFilterHazards(db, {
        qualifiedName: prepared.qualifiedName,
        tableOid: prepared.table.oid,
        filter,
        allowed: await resolveFilterFunctions(db, filterFunctions),
      }),
    );
  } catch (error) {
    if (error instanceof FilterCheckUnavailable) {
      throw new InvalidFilterError(
        `${describe} could not be checked: ${error.message}. Nothing was changed.`,
      );
    }
    throw filterError(prepared, error);
  }
  if (hazards.length === 0) return;
  throw new InvalidFilterError(`${describe} ${describeHazards(hazards)}. Nothing was changed.`);
}

/** One sentence per kind of hazard, naming what PostgreSQL resolved. */
function describeHazards(hazards: readonly FilterHazard[]): string {
  const of = (kind: FilterHazard['kind']) => hazards.filter((h) => h.kind === kind).map((h) => h.what);
  const parts: string[] = [];
  const calls = of('unsafe-call');
  if (calls.length > 0) {
    parts.push(
      `calls ${calls.join(', ')}: a volatile function may change data or settings (through dblink even in ` +
        'a read-only plan), end sessions or answer differently each time; use immutable or stable functions only',
    );
  }
  const types = of('unsafe-type');
  if (types.length > 0) {
    parts.push(
      `makes values of ${types.join(', ')}: making them runs a domain CHECK that a filter may not call`,
    );
  }
  const literalTypes = of('literal-with-unsafe-types');
  if (literalTypes.length > 0) {
    parts.push(
      `has string literals, and this database has types whose domain CHECK calls what a filter may not ` +
        `(${literalTypes.join(', ')}): PostgreSQL runs such a check while parsing a row or array literal, so ` +
        'the filter cannot even be parsed safely; list those CHECK functions in filterFunctions if they only ' +
        'read (volatile ones cannot be listed), or write the filter without string literals',
    );
  }
  const foreign = of('foreign-table');
  if (foreign.length > 0) {
    parts.push(
      `reads foreign table ${foreign.join(', ')} (its server runs queries beyond this run's timeouts)`,
    );
  }
  if (of('row-lock').length > 0) parts.push('locks rows (FOR UPDATE / FOR SHARE): a filter must only read');
  const deep = of('too-deep');
  if (deep.length > 0) parts.push(`reaches ${deep.join(', ')}`);
  return parts.join('; ');
}

/** A server error caused by the filter (42xxx: syntax, unknown column, type mismatch) as InvalidFilterError. */
function filterError(prepared: PreparedTarget, error: unknown): unknown {
  const code = (error as { code?: string }).code;
  if (prepared.target.filter && code?.startsWith('42')) {
    // Through the redaction like every database error: a 42xxx raised while running may quote a value.
    const dataBearing = isPostgresError(error) && carriesRowValues(error);
    return new InvalidFilterError(
      `filter ${JSON.stringify(prepared.target.filter)} on ${prepared.qualifiedName}: ${describeError(error)}`,
      dataBearing ? {} : { cause: error },
    );
  }
  return error;
}

/**
 * Plans the chunk query (with the filter) in a READ ONLY transaction: unknown columns, type errors and
 * non-boolean filters fail here, before any lease or row is touched. Returns the plan text of `statement`,
 * the action's own ($1 cutoff, $2 limit: see ActionModule.explainStatement).
 */
export async function explainChunkQuery(
  db: Queryable,
  prepared: PreparedTarget,
  cutoff: string,
  statement: string,
): Promise<string[]> {
  try {
    return await readOnly(db, 10_000, async () => {
      const { rows } = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement}`, [cutoff, 1000]);
      return rows.map((r) => r['QUERY PLAN']);
    });
  } catch (error) {
    throw filterError(prepared, error);
  }
}

/**
 * Whether the chunk query (its EXPLAIN) reads the whole table for want of an index leading with the time
 * column, and whether a real run must refuse for it (`refusal`: MissingIndexError).
 */
export async function checkFullTableScan(
  db: Queryable,
  prepared: PreparedTarget,
  explain: readonly string[],
  overrides: { allowSeqScan: boolean; force: boolean },
): Promise<FullScanDecision> {
  const facts = await readScanFacts(db, prepared.table.oid, prepared.target.timeColumn.name);
  return decideFullScan({
    qualifiedName: prepared.qualifiedName,
    timeColumn: quoteIdent(prepared.target.timeColumn.name),
    seqScan: planHasSeqScan(explain, facts.relations),
    timeIndexed: facts.timeIndexed,
    tableBytes: facts.tableBytes,
    ...overrides,
  });
}
