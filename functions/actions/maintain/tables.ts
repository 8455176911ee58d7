/**
 * The tables a maintain policy works on, from the catalog: what `tables` names minus what `exclude` names,
 * with the patterns of backups (table-pattern.ts: `schema.*`, exact names, quoted parts keep case). Storage is
 * what gets vacuumed and rebuilt, so a partitioned table brings its leaf partitions (the parent holds no rows; it
 * is only analyzed) and `schema.*` takes every table, partitions included. Refused before anything runs: an exact name
 * that does not exist or is not a table, a pattern or an exclusion matching nothing, nothing left.
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { protectedSchemaReason } from '../../../lib/contracts/protected-schemas.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError } from '../../core/errors.ts';
import { matchesTablePattern, parseTablePattern } from '../backup/table-pattern.ts';

export interface MaintainedTable {
  readonly oid: string;
  /** Quoted "schema"."table" as selected (the run checks the oid still has this name). */
  readonly table: string;
}

interface Relation {
  readonly oid: string;
  readonly schema: string;
  readonly table: string;
  readonly kind: string;
  /** For a partitioned table: its leaf partitions' oids. */
  readonly leaves: readonly string[];
}

const NOT_A_TABLE: Readonly<Record<string, string>> = {
  v: 'a view',
  m: 'a materialized view',
  f: 'a foreign table',
  S: 'a sequence',
  c: 'a composite type',
};

/** @throws CatalogError naming every pattern at fault (`maintain.tables`, `maintain.exclude`) */
export async function selectMaintainedTables(
  db: Queryable,
  options: { readonly tables: readonly string[]; readonly exclude: readonly string[] },
): Promise<MaintainedTable[]> {
  const relations = await readRelations(db);
  const byOid = new Map(relations.map((r) => [r.oid, r]));
  const problems: string[] = [];
  const selected = new Set<string>();
  // A partitioned table itself too: autovacuum never analyzes one, and the planner's estimates for queries on
  // it come from its own (inherited) statistics.
  const addStorage = (relation: Relation) => {
    selected.add(relation.oid);
    for (const leaf of relation.leaves) selected.add(leaf);
  };
  options.tables.forEach((text, index) => {
    const pattern = parseTablePattern(text);
    const matched = relations.filter((r) => matchesTablePattern(pattern, r));
    if (pattern.kind === 'table') {
      const relation = matched[0];
      if (!relation) problems.push(`maintain.tables[${index}] ${text}: no such table`);
      else if (relation.kind !== 'r' && relation.kind !== 'p')
        problems.push(
          `maintain.tables[${index}] ${text} is ${NOT_A_TABLE[relation.kind] ?? `a relation of kind ${relation.kind}`}: maintain works on tables`,
        );
      else addStorage(relation);
      return;
    }
    const tables = matched.filter((r) => r.kind === 'r' || r.kind === 'p');
    if (tables.length === 0) problems.push(`maintain.tables[${index}] ${text}: the schema has no tables`);
    for (const table of tables) addStorage(table);
  });
  const excluded = new Set<string>();
  options.exclude.forEach((text, index) => {
    const pattern = parseTablePattern(text);
    const matched = relations.filter((r) => matchesTablePattern(pattern, r));
    if (matched.length === 0) problems.push(`maintain.exclude[${index}] ${text}: no such table`);
    for (const relation of matched) {
      excluded.add(relation.oid);
      for (const leaf of relation.leaves) excluded.add(leaf);
    }
  });
  const result = [...selected]
    .filter((oid) => !excluded.has(oid))
    .map((oid) => byOid.get(oid))
    .filter((r): r is Relation => r !== undefined);
  if (problems.length === 0 && result.length === 0)
    problems.push('maintain.exclude leaves no table to maintain');
  if (problems.length > 0) throw new CatalogError(problems.join('; '));
  return (
    result
      // By code point, not locale: the same order (and cursor positions) on every machine.
      .sort((a, b) => compare(a.schema, b.schema) || compare(a.table, b.table))
      .map((r) => ({ oid: r.oid, table: quoteQualified(r.schema, r.table) }))
  );
}

async function readRelations(db: Queryable): Promise<Relation[]> {
  const { rows } = await db.query<{
    oid: string;
    schema: string;
    table: string;
    kind: string;
    leaves: string | null;
  }>(
    `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS table, c.relkind::text AS kind,
            CASE WHEN c.relkind = 'p' THEN
              -- Leaves with storage: a foreign-table partition has none here.
              (SELECT string_agg(t.relid::oid::text, ',') FROM pg_partition_tree(c.oid) t
                 JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf AND l.relkind = 'r')
            END AS leaves
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') AND c.relpersistence <> 't'
        AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'`,
  );
  return rows
    .filter((r) => protectedSchemaReason(r.schema) === undefined)
    .map((r) => ({
      oid: r.oid,
      schema: r.schema,
      table: r.table,
      kind: r.kind,
      leaves: r.leaves ? r.leaves.split(',') : [],
    }));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
