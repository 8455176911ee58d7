/**
 * Start step: refuse before anything is written when foreign keys referencing the table would make the run
 * unsafe. Purge: a NO ACTION / RESTRICT reference no child policy (run first) covers. Archive: a reference
 * that makes PostgreSQL delete or change rows no archive holds (CASCADE / SET NULL / SET DEFAULT).
 */
import type { ExecutionInput } from '../../lib/contracts/payloads.ts';
import { listReferencingForeignKeys, type Queryable, resolveTable } from '../adapters/catalog.ts';
import { ForeignKeyError } from '../core/errors.ts';
import {
  decideForeignKeys,
  describeArchiveChangedChildren,
  describeBlockingReferences,
  type ForeignKeyDecision,
  type ResolvedChildPolicy,
} from '../core/foreign-keys.ts';
import type { StepLogger } from './dependencies.ts';
import type { PreparedTarget } from './prepare-target.ts';

/**
 * @throws ForeignKeyError naming every uncovered referencing table and constraint
 * @throws CatalogError when a child policy's table does not exist
 */
export async function checkPurgeForeignKeys(
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

/** @throws ForeignKeyError naming every CASCADE / SET NULL / SET DEFAULT reference to the archived table */
export async function checkArchiveForeignKeys(db: Queryable, prepared: PreparedTarget): Promise<void> {
  const references = await listReferencingForeignKeys(db, prepared.table.oid);
  const { changedByDatabase } = decideForeignKeys(prepared.table.oid, references, []);
  if (changedByDatabase.length > 0) {
    throw new ForeignKeyError(describeArchiveChangedChildren(prepared.qualifiedName, changedByDatabase));
  }
}
