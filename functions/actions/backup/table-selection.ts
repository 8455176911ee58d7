/**
 * The tables a backup takes, from the catalog: what `tables` names, minus what `exclude` names. A
 * partitioned table comes with its partitions (they are not listed on their own); a partition named
 * exactly is backed up as a table. Views, foreign tables and sequences hold no data a backup exports: a
 * pattern naming one exactly is an error, `schema.*` passes over them. Everything is refused before
 * anything is written: an exact name that does not exist, a pattern matching nothing, nothing left.
 */
import { protectedSchemaReason } from '../../../lib/contracts/protected-schemas.ts';
import { pgBool } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError } from '../../core/errors.ts';
import { matchesTablePattern, parseTablePattern, type TablePattern } from './table-pattern.ts';

export interface SelectedTable {
  readonly oid: string;
  readonly schema: string;
  readonly table: string;
  /** `r` a table, `p` a partitioned table (its partitions are backed up with it). */
  readonly kind: 'r' | 'p';
  /**
   * Read with `FROM ONLY`: a plain table's own rows, never its inheritance children's (each child is a
   * table of its own, backed up if selected). A partitioned table's rows are all in its partitions.
   */
  readonly only: boolean;
}

interface CatalogRelation {
  readonly oid: string;
  readonly schema: string;
  readonly table: string;
  readonly kind: string;
  readonly isPartition: boolean;
  /** The partitioned tables above a partition, nearest first (none for anything else). */
  readonly ancestorOids: readonly string[];
}

const NO_DATA: Readonly<Record<string, string>> = {
  v: 'a view',
  m: 'a materialized view',
  f: 'a foreign table',
  S: 'a sequence',
  i: 'an index',
  I: 'a partitioned index',
  c: 'a composite type',
};

/** @throws CatalogError naming every pattern at fault, before anything is read or written */
export async function selectBackupTables(
  db: Queryable,
  options: { readonly tables: readonly string[]; readonly exclude: readonly string[] },
): Promise<SelectedTable[]> {
  const relations = await readRelations(db);
  const problems: string[] = [];
  const selected = new Map<string, CatalogRelation>();
  for (const text of options.tables) {
    const pattern = parseTablePattern(text);
    const matched = relations.filter((r) => matchesTablePattern(pattern, r));
    if (pattern.kind === 'table') {
      const relation = matched[0];
      if (!relation) problems.push(`${text}: no such table`);
      else if (relation.kind !== 'r' && relation.kind !== 'p')
        problems.push(
          `${text} is ${NO_DATA[relation.kind] ?? `a relation of kind ${relation.kind}`}: backups export tables' data only`,
        );
      else selected.set(relation.oid, relation);
      continue;
    }
    // schema.*: its tables and partitioned tables; partitions come with their parent.
    const tables = matched.filter((r) => (r.kind === 'r' || r.kind === 'p') && !r.isPartition);
    if (tables.length === 0) problems.push(`${text}: the schema has no tables`);
    for (const table of tables) selected.set(table.oid, table);
  }
  const excluded = options.exclude.map(parseTablePattern);
  const isExcluded = (r: CatalogRelation) =>
    excluded.some((pattern: TablePattern) => matchesTablePattern(pattern, r));
  const byOid = new Map(relations.map((r) => [r.oid, r]));
  // An exclusion must leave something out: one matching nothing is a typo, and one naming a partition of a
  // table backed up whole would leave nothing out (the partition's rows are read through its parent).
  options.exclude.forEach((text, index) => {
    const pattern = excluded[index] as TablePattern;
    const matched = relations.filter((r) => matchesTablePattern(pattern, r));
    if (matched.length === 0) {
      problems.push(`exclude ${text}: no such table`);
      return;
    }
    for (const partition of matched) {
      const parent = partition.ancestorOids
        .map((oid) => byOid.get(oid))
        .find((a) => a !== undefined && selected.has(a.oid) && !isExcluded(a));
      if (parent)
        problems.push(
          `exclude ${text}: ${partition.schema}.${partition.table} is a partition of ${parent.schema}.${parent.table}, which is backed up with all its partitions (exclude the parent instead)`,
        );
    }
  });
  const result = [...selected.values()].filter((r) => {
    const ancestors = r.ancestorOids.flatMap((oid) => byOid.get(oid) ?? []);
    // A partition whose partitioned ancestor is selected is in that ancestor's parts already: taking it
    // again would restore its rows twice. Excluding an ancestor excludes the partition, even named exactly.
    return !isExcluded(r) && !ancestors.some((a) => selected.has(a.oid) || isExcluded(a));
  });
  if (problems.length === 0 && result.length === 0) problems.push('exclude leaves no table to back up');
  if (problems.length > 0) throw new CatalogError(`backup tables: ${problems.join('; ')}`);
  return (
    result
      .map((r) => ({
        oid: r.oid,
        schema: r.schema,
        table: r.table,
        kind: r.kind as 'r' | 'p',
        only: r.kind === 'r',
      }))
      // By code point, not locale: the same order (and part numbering) on every machine.
      .sort((a, b) => compare(a.schema, b.schema) || compare(a.table, b.table))
  );
}

async function readRelations(db: Queryable): Promise<CatalogRelation[]> {
  const { rows } = await db.query<{
    oid: string;
    schema: string;
    table: string;
    kind: string;
    is_partition: string | boolean;
  }>(
    `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS table, c.relkind::text AS kind,
            c.relispartition AS is_partition
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
        AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'`,
  );
  const relations = rows
    .filter((r) => protectedSchemaReason(r.schema) === undefined)
    .map((r) => ({
      oid: r.oid,
      schema: r.schema,
      table: r.table,
      kind: r.kind,
      isPartition: pgBool(r.is_partition),
      ancestorOids: [] as string[],
    }));
  const ancestors = await readPartitionAncestors(db);
  return relations.map((r) => ({ ...r, ancestorOids: ancestors.get(r.oid) ?? [] }));
}

/** Each partition's partitioned ancestors, nearest first (pg_partition_ancestors, PostgreSQL 12+). */
async function readPartitionAncestors(db: Queryable): Promise<Map<string, string[]>> {
  const { rows } = await db.query<{ oid: string; ancestors: string }>(
    `SELECT c.oid::text AS oid,
            (SELECT string_agg(a.relid::oid::text, ',' ORDER BY a.depth)
               FROM (SELECT relid, row_number() OVER () AS depth FROM pg_partition_ancestors(c.oid)) a
              WHERE a.relid <> c.oid) AS ancestors
       FROM pg_class c WHERE c.relispartition`,
  );
  return new Map(rows.map((r) => [r.oid, r.ancestors ? r.ancestors.split(',') : []]));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
