/**
 * A subjects policy's tables resolved from the catalog, in the order erasure must touch them: a table that
 * references another mapped table comes before it (children first), so deleting a subject's parent rows never
 * meets their children. Every foreign key that references a table erasure deletes from must come from a mapped
 * table: a reference the mapping does not cover would make the delete fail (NO ACTION, RESTRICT), delete rows the
 * proof does not list (CASCADE) or leave the subject's rows behind (SET NULL) — refused before anything changes.
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { type ResolvedTable, resolveColumn, resolveTable } from '../../adapters/catalog.ts';
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
  const cascading: string[] = [];
  for (const r of resolved) {
    const referencing = new Set<string>();
    for (const fk of await readReferences(db, r.table.oid)) {
      const child = mapped.get(fk.referencingOid);
      if (child && fk.referencingOid !== r.table.oid) referencing.add(fk.referencingOid);
      if (r.action !== 'delete') continue;
      const describe = `${fk.referencingTable} references ${r.qualified} (${fk.constraint} on ${fk.columns.join(', ')}, ON DELETE ${ON_DELETE[fk.onDelete] ?? fk.onDelete})`;
      if (!child) {
        uncovered.push(describe);
        continue;
      }
      // Keyed the same way (child's key column → this table's key column): erased children first, nothing left
      // to reach. Any other reference (another column, a self-reference) reaches rows of other subjects: a
      // cascade would delete or change them; NO ACTION / RESTRICT only makes such a request fail, safely.
      const sameKey =
        fk.referencingOid !== r.table.oid &&
        fk.columns.length === 1 &&
        fk.columns[0] === child.keyColumn.name &&
        fk.referencedColumns[0] === r.keyColumn.name;
      if (!sameKey && fk.onDelete !== 'a' && fk.onDelete !== 'r') cascading.push(describe);
    }
    children.set(r.table.oid, referencing);
  }
  if (cascading.length > 0)
    throw new CatalogError(
      `subjects policy ${policy.name}: deleting a subject's rows would cascade into rows of other subjects through ` +
        `references not made by the key column: ${cascading.join('; ')}`,
      { policy: policy.name },
    );
  if (uncovered.length > 0)
    throw new CatalogError(
      `subjects policy ${policy.name}: erasure deletes from tables that unmapped tables reference — map them ` +
        `(with their key column) or the subject's rows there would block, vanish unrecorded or stay: ${uncovered.join('; ')}`,
      { policy: policy.name },
    );
  return childrenFirst(resolved, children);
}

const ON_DELETE: Readonly<Record<string, string>> = {
  a: 'NO ACTION',
  r: 'RESTRICT',
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
};

interface Reference {
  readonly constraint: string;
  /** Quoted "schema"."table". */
  readonly referencingTable: string;
  readonly referencingOid: string;
  /** pg_constraint.confdeltype: a, r, c, n, d. */
  readonly onDelete: string;
  readonly columns: readonly string[];
  readonly referencedColumns: readonly string[];
}

/** Foreign keys into `oid` (self-references included; a partitioned table's once, not its partitions' clones). */
async function readReferences(db: Queryable, oid: string): Promise<Reference[]> {
  const { rows } = await db.query<{
    constraint: string;
    referencing_schema: string;
    referencing_table: string;
    referencing_oid: string;
    on_delete: string;
    columns: string;
    referenced_columns: string;
  }>(
    `SELECT c.conname AS constraint, n.nspname AS referencing_schema, r.relname AS referencing_table,
            c.conrelid::text AS referencing_oid, c.confdeltype::text AS on_delete,
            to_json(ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord))::text AS columns,
            to_json(ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k (attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord))::text AS referenced_columns
       FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
      WHERE c.contype = 'f' AND c.confrelid = $1::oid AND c.conparentid = 0
      ORDER BY 2, 3, 1`,
    [oid],
  );
  return rows.map((row) => ({
    constraint: row.constraint,
    referencingTable: quoteQualified(row.referencing_schema, row.referencing_table),
    referencingOid: row.referencing_oid,
    onDelete: row.on_delete,
    // JSON text: the project's connections read every type as text (functions/commons/database.ts).
    columns: JSON.parse(row.columns) as string[],
    referencedColumns: JSON.parse(row.referenced_columns) as string[],
  }));
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
