/**
 * A subjects policy's tables resolved from the catalog, in the order erasure must touch them: a table that
 * references another mapped table comes before it (children first), so deleting a subject's parent rows never
 * meets their children. Every foreign key that references a table erasure deletes from must come from a mapped
 * table: a reference the mapping does not cover would make the delete fail (NO ACTION, RESTRICT), delete rows the
 * proof does not list (CASCADE) or leave the subject's rows behind (SET NULL) — refused before anything changes.
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import {
  listReferencingForeignKeys,
  type ResolvedTable,
  resolveColumn,
  resolveTable,
} from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import type { CatalogColumn } from '../../core/catalog-column.ts';
import { CatalogError } from '../../core/errors.ts';
import { type ResolvedMasks, resolveMasks } from '../anonymize/masks.ts';
import type { SubjectsPolicy, SubjectTable } from './contract.ts';

export interface ResolvedSubjectTable {
  readonly table: ResolvedTable;
  /** `"schema"."table"`. */
  readonly qualified: string;
  readonly keyColumn: CatalogColumn;
  readonly action: SubjectTable['action'];
  /** With action anonymize. */
  readonly masks?: ResolvedMasks | undefined;
}

/**
 * The mapped tables, children first.
 * @throws CatalogError for an unknown table or column, a table mapped twice, an uncovered reference
 */
export async function resolveSubjectTables(
  db: Queryable,
  policy: SubjectsPolicy,
): Promise<ResolvedSubjectTable[]> {
  const resolved: ResolvedSubjectTable[] = [];
  for (const entry of policy.subjects.tables) {
    const table = await resolveTable(db, entry.table);
    const qualified = quoteQualified(table.schema, table.table);
    if (resolved.some((r) => r.table.oid === table.oid))
      throw new CatalogError(`${qualified} is mapped twice in subjects.tables`, { policy: policy.name });
    const keyColumn = resolveColumn(table, entry.keyColumn, 'subjects.tables[].keyColumn');
    const masks = entry.anonymize
      ? await resolveMasks(db, table, { name: policy.name, anonymize: entry.anonymize })
      : undefined;
    resolved.push({ table, qualified, keyColumn, action: entry.action, masks });
  }
  const mapped = new Map(resolved.map((r) => [r.table.oid, r]));
  /** oid → the oids of mapped tables that reference it. */
  const children = new Map<string, Set<string>>();
  const uncovered: string[] = [];
  for (const r of resolved) {
    const references = await listReferencingForeignKeys(db, r.table.oid);
    const referencing = new Set<string>();
    for (const fk of references) {
      if (fk.referencingOid === r.table.oid) continue;
      if (mapped.has(fk.referencingOid)) referencing.add(fk.referencingOid);
      else if (r.action === 'delete')
        uncovered.push(
          `${fk.referencingTable} references ${r.qualified} (${fk.constraint}, ON DELETE ${fk.onDelete.toUpperCase()})`,
        );
    }
    children.set(r.table.oid, referencing);
  }
  if (uncovered.length > 0)
    throw new CatalogError(
      `subjects policy ${policy.name}: erasure deletes from tables that unmapped tables reference — map them ` +
        `(with their key column) or the subject's rows there would block, vanish unrecorded or stay: ${uncovered.join('; ')}`,
      { policy: policy.name },
    );
  return childrenFirst(resolved, children);
}

/** Depth-first: each table after every mapped table that references it; a cycle keeps the config's order. */
function childrenFirst(
  tables: readonly ResolvedSubjectTable[],
  children: ReadonlyMap<string, ReadonlySet<string>>,
): ResolvedSubjectTable[] {
  const byOid = new Map(tables.map((t) => [t.table.oid, t]));
  const ordered: ResolvedSubjectTable[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (oid: string) => {
    if (state.get(oid)) return;
    state.set(oid, 'visiting');
    for (const child of children.get(oid) ?? []) visit(child);
    state.set(oid, 'done');
    ordered.push(byOid.get(oid) as ResolvedSubjectTable);
  };
  for (const t of tables) visit(t.table.oid);
  return ordered;
}
