/**
 * The time-cutoff source: rows whose time column is older than `now - retention` (and that the filter
 * keeps), walked in time order by keyset (`{ kind: 'keyset' }` cursors) or by time windows
 * (`{ kind: 'window' }`). Archive and purge use it.
 */
import type { TimeCutoffPolicy } from '../../lib/contracts/policy.ts';
import type { Queryable } from '../adapters/transactions.ts';
import { eligibleWhere, orderTerms } from '../core/chunk-sql.ts';
import { computeCutoff } from '../core/cutoff.ts';
import { InvalidFilterError } from '../core/errors.ts';
import { describeError } from '../core/redact-database-error.ts';
import { type PreparedTarget, prepareTarget } from '../run/prepare-target.ts';
import type { TableWorkSource } from './work-source.ts';

/** The policies this source serves: those with a time column and a retention. */
export type { TimeCutoffPolicy };

export const timeCutoffSource: TableWorkSource<TimeCutoffPolicy> = {
  kind: 'time-cutoff',
  prepare: (db, policy) => prepareTarget(db, policy),
  bound: (now, policy) => computeCutoff(now, policy.retention),
};

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
      // Redacted, and not kept as the cause: PostgreSQL quotes the value that failed, i.e. row contents.
      throw new InvalidFilterError(
        `filter ${JSON.stringify(prepared.target.filter)} on ${prepared.qualifiedName} fails on its rows: ${describeError(error)}`,
      );
    }
    throw error;
  }
  const avg = rows[0]?.avg;
  return avg === null || avg === undefined ? undefined : Number(avg);
}
