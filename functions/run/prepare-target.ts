import { functionCallNames, type Policy } from '../../lib/contracts/config.ts';
import { quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';
import {
  type Queryable,
  type ResolvedTable,
  resolveTable,
  resolveTimeColumn,
  toChunkTarget,
} from '../adapters/catalog.ts';
import { readOnly, readScanFacts } from '../adapters/plan-queries.ts';
import {
  buildPurgeWindowStatements,
  buildSelectChunkStatement,
  type ChunkTarget,
  eligibleWhere,
  orderTerms,
} from '../core/chunk-sql.ts';
import { InvalidFilterError } from '../core/errors.ts';
import { decideFullScan, type FullScanDecision, planHasSeqScan } from '../core/full-scan.ts';

export interface PreparedTarget {
  readonly table: ResolvedTable;
  readonly target: ChunkTarget;
  readonly qualifiedName: string;
}

/** Resolves the policy's table and time column from the catalog. */
export async function prepareTarget(db: Queryable, policy: Policy): Promise<PreparedTarget> {
  const table = await resolveTable(db, policy.table);
  const timeColumn = resolveTimeColumn(table, policy.timeColumn);
  const target = toChunkTarget(table, timeColumn, policy.filter);
  return { table, target, qualifiedName: quoteQualified(table.schema, table.table) };
}

/**
 * Plans the chunk query (with the filter) in a READ ONLY transaction: unknown columns, type errors and
 * non-boolean filters fail here, before any lease or row is touched. Returns the plan text: for a purge,
 * of the window probe (what finds each window's end; the window DELETE follows the same index), for an
 * archive, of the ordered selection its chunk DELETE locks.
 */
/**
 * EXPLAIN runs no function, but the plan's row counts and every chunk do, once per row: a filter may call
 * only functions that cannot change anything (immutable or stable), or a dry run could write through
 * dblink, end sessions or change settings. Names are looked up in every schema (overloads included).
 * @throws InvalidFilterError naming the volatile functions
 */
export async function checkFilterFunctions(db: Queryable, prepared: PreparedTarget): Promise<void> {
  const filter = prepared.target.filter;
  if (!filter) return;
  const names = functionCallNames(filter);
  if (names.length === 0) return;
  const { rows } = await db.query<{ name: string }>(
    `SELECT DISTINCT proname AS name FROM pg_proc WHERE proname = ANY ($1::text[]) AND provolatile = 'v' ORDER BY 1`,
    [names],
  );
  if (rows.length > 0) {
    throw new InvalidFilterError(
      `filter ${JSON.stringify(filter)} on ${prepared.qualifiedName} calls ${rows.map((r) => r.name).join(', ')}: ` +
        'a volatile function (it may change data or settings, or answer differently each time); ' +
        'use immutable or stable functions only. Nothing was changed.',
    );
  }
}

export async function explainChunkQuery(
  db: Queryable,
  prepared: PreparedTarget,
  cutoff: string,
  action: Policy['action'],
): Promise<string[]> {
  const statement =
    action === 'purge'
      ? buildPurgeWindowStatements(prepared.target, 'first').probe
      : buildSelectChunkStatement(prepared.target, false);
  try {
    return await readOnly(db, 10_000, async () => {
      const { rows } = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement}`, [cutoff, 1000]);
      return rows.map((r) => r['QUERY PLAN']);
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = (error as { code?: string }).code;
    // 42xxx: syntax / undefined column / datatype mismatch: the filter is at fault.
    if (prepared.target.filter && code?.startsWith('42')) {
      throw new InvalidFilterError(
        `filter ${JSON.stringify(prepared.target.filter)} on ${prepared.qualifiedName}: ${message}`,
        { cause: error },
      );
    }
    throw error;
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

/**
 * Average size of an eligible row as text (what a chunk holds in memory), from the first 100 eligible rows;
 * undefined when none is eligible. Bounds the first chunk by chunking.maxChunkBytes before any row is read.
 */
export async function sampleRowTextBytes(
  db: Queryable,
  prepared: PreparedTarget,
  cutoff: string,
): Promise<number | undefined> {
  const orderBy = orderTerms(prepared.target)
    .map((t) => t.expression)
    .join(', ');
  let rows: Array<{ avg: string | null }>;
  try {
    ({ rows } = await db.query<{ avg: string | null }>(
      // The whole row as text: a bare alias is a whole-row reference unless the table has a column of that
      // name, hence one no table is likely to have.
      `SELECT avg(octet_length(pg_lifecycle_sample::text))::float8::text AS avg
         FROM (SELECT * FROM ${prepared.qualifiedName} WHERE ${eligibleWhere(prepared.target, false)} ORDER BY ${orderBy} LIMIT 100) AS pg_lifecycle_sample`,
      [cutoff],
    ));
  } catch (error) {
    // 22xxx (data exception): the filter plans but fails on real rows, e.g. a cast of a text column.
    const code = (error as { code?: string }).code;
    if (prepared.target.filter && code?.startsWith('22')) {
      throw new InvalidFilterError(
        `filter ${JSON.stringify(prepared.target.filter)} on ${prepared.qualifiedName} fails on its rows: ${(error as Error).message}`,
        { cause: error },
      );
    }
    throw error;
  }
  const avg = rows[0]?.avg;
  return avg === null || avg === undefined ? undefined : Number(avg);
}
