/**
 * The table archived rows go back into, and the operator's `--where`, checked before any object is read.
 *
 * The predicate goes through what the archive's `filter` goes through (reused, not re-implemented): the
 * static screen of lib/contracts/filter-screen.ts, then the server's own parse tree of it on the target
 * (functions/run/prepare-target.ts `checkFilterCalls`: PostgreSQL's stable/immutable functions only, no
 * foreign tables, no row locks), then EXPLAIN in a READ ONLY transaction (unknown columns, non-boolean).
 */
import type pg from 'pg';
import { screenFilterExpression } from '../../../lib/contracts/filter-screen.ts';
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { protectedSchemaReason } from '../../../lib/contracts/protected-schemas.ts';
import { type ResolvedTable, resolveTable, toChunkTarget } from '../../adapters/catalog.ts';
import { type Queryable, readOnly } from '../../adapters/transactions.ts';
import { CatalogError, InvalidFilterError } from '../../core/errors.ts';
import { describeError, isPostgresError } from '../../core/redact-database-error.ts';
import { checkFilterCalls } from '../../run/prepare-target.ts';
import { RestoreArchiveTargetError, UnsafePredicateError } from './errors.ts';

export interface RestoreTarget {
  readonly table: ResolvedTable;
  /** `"schema"."table"`. */
  readonly qualifiedName: string;
  /** Columns a value can be inserted into (not GENERATED ALWAYS AS … STORED). */
  readonly insertable: ReadonlySet<string>;
}

/** Resolves the target; refuses a missing table, the ledger or a system schema, a table without a key. */
export async function resolveRestoreTarget(
  db: Queryable,
  name: string,
  options: { allowNoKey: boolean },
): Promise<RestoreTarget> {
  let table: ResolvedTable;
  try {
    table = await resolveTable(db, name);
  } catch (error) {
    if (error instanceof CatalogError) throw new RestoreArchiveTargetError(`target ${error.message}`);
    throw error;
  }
  const qualifiedName = quoteQualified(table.schema, table.table);
  const protectedReason = protectedSchemaReason(table.schema);
  if (protectedReason) throw new RestoreArchiveTargetError(`${qualifiedName}: ${protectedReason}`);
  if (table.primaryKey.length === 0 && !options.allowNoKey) {
    throw new RestoreArchiveTargetError(
      `${qualifiedName} has no primary key: ON CONFLICT cannot tell a row restored before from a new one, so ` +
        'only the ledger (per object) keeps a second run from inserting rows twice. Pass --allow-no-key to restore anyway',
    );
  }
  const { rows } = await db.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute
      WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped AND attgenerated = ''`,
    [table.oid],
  );
  return { table, qualifiedName, insertable: new Set(rows.map((r) => r.name)) };
}

/** Archived columns the target lacks (by exact name): such an object cannot be restored there. */
export function missingColumns(target: RestoreTarget, archived: readonly string[]): string[] {
  const present = new Set(target.table.columns.map((c) => c.name));
  return archived.filter((name) => !present.has(name));
}

/** Checks `--where` on the target; throws UnsafePredicateError saying why it is refused. */
export async function checkPredicate(
  db: pg.ClientBase,
  target: RestoreTarget,
  predicate: string,
  timeColumn: string,
): Promise<void> {
  const screened = screenFilterExpression(predicate);
  if (screened) throw new UnsafePredicateError(`--where ${screened}`);
  // checkFilterCalls reads the filter, the table's oid and name; the time column only completes the shape.
  const prepared = {
    table: target.table,
    target: toChunkTarget(target.table, { name: timeColumn, kind: 'timestamptz' }, predicate),
    qualifiedName: target.qualifiedName,
  };
  try {
    await checkFilterCalls(db, prepared);
    await readOnly(db, 10_000, () =>
      db.query(`EXPLAIN SELECT 1 FROM ${target.qualifiedName} WHERE (${predicate})`),
    );
  } catch (error) {
    if (error instanceof InvalidFilterError) throw new UnsafePredicateError(`--where: ${error.message}`);
    if (isPostgresError(error) && (error as { code?: string }).code?.startsWith('42')) {
      throw new UnsafePredicateError(`--where on ${target.qualifiedName}: ${describeError(error)}`);
    }
    throw error;
  }
}
