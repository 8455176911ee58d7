/**
 * Soft delete (purge's `softDelete`): instead of deleting the rows past retention, set their soft-delete column
 * to the run's time, in the same short, SKIP LOCKED chunk transactions and keyset walk as anonymize (one UPDATE
 * statement per chunk: anonymize/update-statement.ts). A row is due while the column is NULL: a re-run updates
 * nothing, and a hard purge of the column (its own policy) deletes the rows past their own retention.
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { PurgePolicy } from '../../../lib/contracts/policy.ts';
import { resolveColumn } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError } from '../../core/errors.ts';
import { type PreparedTarget, prepareTarget } from '../../run/prepare-target.ts';
import { columnValue, takeUpdateChunk } from '../anonymize/update-statement.ts';
import { type ChunkInput, type TakenChunk, targetOf } from '../chunk-action.ts';

const NOW_OF_KIND: Readonly<Record<string, string>> = {
  timestamptz: 'now()',
  // The project's sessions run in UTC (functions/commons/database.ts): the run's time as UTC wall time.
  timestamp: "(now() AT TIME ZONE 'UTC')",
  date: "(now() AT TIME ZONE 'UTC')::date",
};

/** The purge's table, and for a soft delete its column resolved and every due row's test `column IS NULL`. */
export async function preparePurgeTarget(db: Queryable, policy: PurgePolicy): Promise<PreparedTarget> {
  const prepared = await prepareTarget(db, policy);
  if (!policy.softDelete) return prepared;
  const column = resolveColumn(prepared.table, policy.softDelete.column, 'softDelete.column');
  const qualified = quoteQualified(prepared.table.schema, prepared.table.table);
  if (column.isArray || !NOW_OF_KIND[column.baseType])
    throw new CatalogError(
      `${qualified}.${column.name} is ${column.typeName}; softDelete.column must be timestamptz, timestamp or date`,
      { policy: policy.name },
    );
  if (column.notNull)
    throw new CatalogError(`${qualified}.${column.name} is NOT NULL; softDelete.column must start NULL`, {
      policy: policy.name,
    });
  if (column.name === prepared.target.timeColumn.name)
    throw new CatalogError('the soft-delete column cannot be the time column', { policy: policy.name });
  return {
    ...prepared,
    target: { ...prepared.target, pending: `${columnValue(prepared.target, column.name)} IS NULL` },
  };
}

/** One soft-delete chunk; undefined when no due row is left that no other session holds. */
export async function softDeleteChunk(tx: Queryable, input: ChunkInput): Promise<TakenChunk | undefined> {
  const { table } = targetOf(input);
  const policy = input.policy as PurgePolicy;
  const column = resolveColumn(table, policy.softDelete?.column ?? '', 'softDelete.column');
  return takeUpdateChunk(tx, input, () => [
    { column: column.name, set: NOW_OF_KIND[column.baseType] ?? 'now()' },
  ]);
}
