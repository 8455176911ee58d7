/**
 * Archive's Start check: a reference that makes PostgreSQL delete or change rows no archive holds
 * (ON DELETE CASCADE / SET NULL / SET DEFAULT) is refused before anything is written.
 */
import { listReferencingForeignKeys } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { ForeignKeyError } from '../../core/errors.ts';
import { decideForeignKeys, describeArchiveChangedChildren } from '../../core/foreign-keys.ts';
import type { PreparedTarget } from '../../run/prepare-target.ts';

/** @throws ForeignKeyError naming every CASCADE / SET NULL / SET DEFAULT reference to the archived table */
export async function checkForeignKeys(db: Queryable, prepared: PreparedTarget): Promise<void> {
  const references = await listReferencingForeignKeys(db, prepared.table.oid);
  const { changedByDatabase } = decideForeignKeys(prepared.table.oid, references, []);
  if (changedByDatabase.length > 0) {
    throw new ForeignKeyError(describeArchiveChangedChildren(prepared.qualifiedName, changedByDatabase), {
      table: `${prepared.table.schema}.${prepared.table.table}`,
    });
  }
}
