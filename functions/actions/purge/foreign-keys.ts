/**
 * Purge's Start check: a NO ACTION / RESTRICT reference no child policy (run first) covers is refused
 * before anything is written; CASCADE / SET NULL references are allowed and logged.
 */
import type { ExecutionInput } from '../../../lib/contracts/payloads.ts';
import { listReferencingForeignKeys, resolveTable } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { ForeignKeyError } from '../../core/errors.ts';
import {
  decideForeignKeys,
  describeBlockingReferences,
  type ForeignKeyDecision,
  type ResolvedChildPolicy,
} from '../../core/foreign-keys.ts';
import type { StepLogger } from '../../run/dependencies.ts';
import type { PreparedTarget } from '../../run/prepare-target.ts';

/**
 * @throws ForeignKeyError naming every uncovered referencing table and constraint
 * @throws CatalogError when a child policy's table does not exist
 */
export async function checkForeignKeys(
  db: Queryable,
  prepared: PreparedTarget,
  children: NonNullable<ExecutionInput['children']>,
  log: StepLogger,
): Promise<ForeignKeyDecision> {
  const references = await listReferencingForeignKeys(db, prepared.table.oid);
  const resolved: ResolvedChildPolicy[] = [];
  for (const child of children) {
    resolved.push({ name: child.name, tableOid: (await resolveTable(db, child.table)).oid });
  }
  const decision = decideForeignKeys(prepared.table.oid, references, resolved);
  if (decision.blocking.length > 0) {
    throw new ForeignKeyError(
      describeBlockingReferences(prepared.qualifiedName, prepared.table.oid, decision.blocking),
      { table: `${prepared.table.schema}.${prepared.table.table}` },
    );
  }
  if (references.length > 0) {
    log.info('foreign keys checked', {
      table: prepared.qualifiedName,
      coveredByChildPolicies: decision.covered.map((r) => `${r.referencingTable} (${r.childPolicy})`),
      changedByDatabase: decision.changedByDatabase.map(
        (r) => `${r.referencingTable} (${r.constraint}, ON DELETE ${r.onDelete.toUpperCase()})`,
      ),
    });
  }
  return decision;
}
