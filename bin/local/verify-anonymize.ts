/**
 * Independent verification of an anonymize run, as the demo reports it: the rows whose version changed are
 * exactly as many as the run reports and all of them were due (time column before the run's cutoff); no due
 * row is still pending; and a second run changes not one row version (xmin), proving the run idempotent.
 */
import type pg from 'pg';
import { anonymizeModule } from '../../functions/actions/anonymize/index.ts';
import { resolveTable } from '../../functions/adapters/catalog.ts';
import { buildCountEligibleStatement, cutoffPredicate } from '../../functions/core/chunk-sql.ts';
import type { AnonymizePolicy } from '../../lib/contracts/config.ts';
import { quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';

/** Each row's version (xmin), by primary key. */
export type RowVersions = Map<string, string>;

export interface AnonymizeVerification {
  readonly ok: boolean;
  readonly problems: string[];
  readonly rowsChanged: number;
  readonly pendingLeft: number;
}

/** xmin of every row, by its primary key as text (the demo's tables all have one). */
export async function readRowVersions(db: pg.Client, policy: AnonymizePolicy): Promise<RowVersions> {
  const table = await resolveTable(db, policy.table);
  const key = `ROW(${table.primaryKey.map((k) => quoteIdent(k.name)).join(', ')})::text`;
  const { rows } = await db.query<{ key: string; xmin: string }>(
    `SELECT ${key} AS key, xmin::text AS xmin FROM ${quoteQualified(table.schema, table.table)}`,
  );
  return new Map(rows.map((r) => [r.key, r.xmin]));
}

export async function verifyAnonymizeRun(
  db: pg.Client,
  policy: AnonymizePolicy,
  run: {
    cutoff: string;
    rowsUpdated: number;
    before: RowVersions;
    after: RowVersions;
    rerunRows: number;
    afterRerun: RowVersions;
  },
): Promise<AnonymizeVerification> {
  const problems: string[] = [];
  const table = await resolveTable(db, policy.table);
  const key = `ROW(${table.primaryKey.map((k) => quoteIdent(k.name)).join(', ')})::text`;
  const changed = [...run.after].filter(([k, xmin]) => run.before.get(k) !== xmin).map(([k]) => k);
  if (changed.length !== run.rowsUpdated)
    problems.push(`${changed.length} rows changed version, the run reports ${run.rowsUpdated}`);
  const prepared = await anonymizeModule.source.prepare(db, policy);
  const { rows: due } = await db.query<{ key: string }>(
    `SELECT ${key} AS key FROM ${quoteQualified(table.schema, table.table)}
      WHERE ${cutoffPredicate(prepared.target)} AND ${key} = ANY ($2::text[])`,
    [run.cutoff, changed],
  );
  if (due.length !== changed.length)
    problems.push(`${changed.length - due.length} changed rows were not due`);
  const { rows } = await db.query<{ rows: string }>(buildCountEligibleStatement(prepared.target), [
    run.cutoff,
  ]);
  const pendingLeft = Number(rows[0]?.rows ?? 0);
  if (pendingLeft > 0) problems.push(`${pendingLeft} due rows are still not anonymized`);
  if (run.rerunRows !== 0) problems.push(`a second run updated ${run.rerunRows} rows`);
  const moved = [...run.afterRerun].filter(([k, xmin]) => run.after.get(k) !== xmin).length;
  if (moved !== 0) problems.push(`a second run changed ${moved} row versions`);
  return { ok: problems.length === 0, problems, rowsChanged: changed.length, pendingLeft };
}
