/**
 * Reads from pg_catalog everything a backup needs to recreate its tables (schema-definition.ts): their
 * schemas, the extensions they use, the enum, domain, composite and range types their columns use, columns,
 * constraints, indexes, the sequences they own or their defaults use and where those stand, partitioning
 * (a partitioned table comes with all its partitions), comments; and what a restore will not bring back
 * (not-included.ts, table-dependencies.ts).
 *
 * Expressions are printed by PostgreSQL with `search_path` set to the schemas of the backed-up objects,
 * so that references into those schemas come out unqualified and a restore can resolve them in the
 * schemas it maps them to. That is a session setting: `db` must be one connection (a client, not a
 * pool), and the previous settings are put back before returning. For one consistent view, call it in a
 * REPEATABLE READ transaction; sequences ignore snapshots, so read it after the snapshot the data is
 * copied under is taken: a sequence then stands at or past every value the copied rows hold.
 */
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError } from '../../core/errors.ts';
import { pgBool, pgJsonArray, pgOptional } from './catalog-values.ts';
import { readNotIncluded } from './not-included.ts';
import type {
  ColumnDefinition,
  IdentityDefinition,
  QualifiedName,
  SchemaDefinition,
  SequenceDefinition,
  TableDefinition,
} from './schema-definition.ts';
import {
  readOwnedSequences,
  readSequenceState,
  readSequences,
  sequenceOptions,
} from './sequence-definition.ts';
import { readTableConstraints } from './table-constraints.ts';
import { readTableDependencies } from './table-dependencies.ts';
import { describeTypes, readTypes, recreatedTypes, typeReference } from './type-definition.ts';

interface TableRow {
  oid: string;
  nspname: string;
  relname: string;
  relkind: string;
  persistence: string;
  parent_oid: string | null;
}

/** The tables of `tableOids` and, for partitioned ones, every partition below them, parents first. */
async function readTables(db: Queryable, tableOids: readonly string[]): Promise<TableRow[]> {
  const { rows } = await db.query<TableRow>(
    `WITH RECURSIVE tree(oid) AS (
       SELECT unnest($1::oid[])
       UNION
       SELECT h.inhrelid FROM tree JOIN pg_inherits h ON h.inhparent = tree.oid
         JOIN pg_class p ON p.oid = h.inhrelid WHERE p.relispartition)
     SELECT c.oid::text AS oid, n.nspname, c.relname, c.relkind::text AS relkind,
            c.relpersistence::text AS persistence,
            (SELECT h.inhparent::text FROM pg_inherits h WHERE h.inhrelid = c.oid AND c.relispartition) AS parent_oid
       FROM tree JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace n ON n.oid = c.relnamespace`,
    [tableOids],
  );
  const found = new Set(rows.map((r) => r.oid));
  const missing = tableOids.filter((oid) => !found.has(oid));
  if (missing.length > 0) throw new CatalogError(`no table with oid ${missing.join(', ')}`);
  for (const r of rows) {
    if (r.relkind !== 'r' && r.relkind !== 'p') {
      throw new CatalogError(
        `${quoteQualified(r.nspname, r.relname)} is not a table (relkind ${r.relkind})`,
        {
          table: `${r.nspname}.${r.relname}`,
        },
      );
    }
  }
  const byOid = new Map(rows.map((r) => [r.oid, r]));
  const depth = (row: TableRow): number => {
    const parent = row.parent_oid === null ? undefined : byOid.get(row.parent_oid);
    return parent ? depth(parent) + 1 : 0;
  };
  return rows
    .map((row) => ({ row, depth: depth(row) }))
    .sort(
      (a, b) =>
        a.depth - b.depth || compare(a.row.nspname, b.row.nspname) || compare(a.row.relname, b.row.relname),
    )
    .map((entry) => entry.row);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Settings that decide how PostgreSQL prints what is read here. DateStyle/IntervalStyle/TimeZone make
 * constants (partition bounds, defaults) print in the one form schema-sql.ts declares before using them.
 */
const PRINT_SETTINGS = [
  'search_path',
  'DateStyle',
  'IntervalStyle',
  'TimeZone',
  'extra_float_digits',
] as const;

async function withPrintSettings<T>(db: Queryable, searchPath: string, work: () => Promise<T>): Promise<T> {
  const { rows } = await db.query<Record<string, string>>(
    `SELECT ${PRINT_SETTINGS.map((name, i) => `current_setting('${name}') AS s${i}`).join(', ')}`,
  );
  const previous = PRINT_SETTINGS.map((_, i) => rows[0]?.[`s${i}`] ?? '');
  const set = (values: readonly string[]) =>
    db.query(
      `SELECT ${PRINT_SETTINGS.map((name, i) => `set_config('${name}', $${i + 1}, false)`).join(', ')}`,
      [...values],
    );
  await set([searchPath, 'ISO, YMD', 'postgres', 'UTC', '3']);
  try {
    return await work();
  } finally {
    await set(previous).catch(() => undefined);
  }
}

interface ColumnRow {
  table_oid: string;
  name: string;
  type_oid: string;
  element_oid: string;
  type_text: string;
  collation_schema: string | null;
  collation: string | null;
  not_null: unknown;
  default_expr: string | null;
  generated: string;
  identity: string;
  comment: string | null;
}

async function readColumns(db: Queryable, tableOids: readonly string[]): Promise<ColumnRow[]> {
  const { rows } = await db.query<ColumnRow>(
    `SELECT a.attrelid::text AS table_oid, a.attname AS name, a.atttypid::text AS type_oid,
            (CASE WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE t.oid END)::text AS element_oid,
            format_type(a.atttypid, a.atttypmod) AS type_text,
            cn.nspname AS collation_schema, co.collname AS collation, a.attnotnull AS not_null,
            pg_get_expr(ad.adbin, ad.adrelid) AS default_expr, a.attgenerated::text AS generated,
            a.attidentity::text AS identity, col_description(a.attrelid, a.attnum) AS comment
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
       LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> t.typcollation
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
      WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [tableOids],
  );
  return rows;
}

function toColumn(
  r: ColumnRow,
  backedUp: ReadonlyMap<string, QualifiedName>,
  identity: IdentityDefinition | undefined,
): ColumnDefinition {
  const expression = pgOptional(r.default_expr);
  // attgenerated: '' plain, 's' stored, 'v' virtual (PostgreSQL 18).
  const generated = r.generated === '' || expression === undefined ? undefined : r.generated;
  return {
    name: r.name,
    type: typeReference(r.type_oid, r.element_oid, r.type_text, backedUp),
    ...(r.collation !== null ? { collation: { schema: r.collation_schema ?? '', name: r.collation } } : {}),
    notNull: pgBool(r.not_null),
    ...(expression !== undefined && generated === undefined ? { default: expression } : {}),
    ...(generated !== undefined && expression !== undefined
      ? { generated: { expression, stored: generated === 's' } }
      : {}),
    ...(identity ? { identity } : {}),
    ...(r.comment !== null ? { comment: r.comment } : {}),
  };
}

interface TableExtrasRow {
  oid: string;
  partition_by: string | null;
  bound: string | null;
  options: unknown;
  comment: string | null;
}

async function readTableExtras(
  db: Queryable,
  tableOids: readonly string[],
): Promise<Map<string, TableExtrasRow>> {
  const { rows } = await db.query<TableExtrasRow>(
    `SELECT c.oid::text AS oid, pg_get_partkeydef(c.oid) AS partition_by,
            pg_get_expr(c.relpartbound, c.oid) AS bound, array_to_json(c.reloptions) AS options,
            obj_description(c.oid, 'pg_class') AS comment
       FROM pg_class c WHERE c.oid = ANY ($1::oid[])`,
    [tableOids],
  );
  return new Map(rows.map((r) => [r.oid, r]));
}

/**
 * The definition of the tables `tableOids` (resolve names with adapters/catalog.ts `resolveTable`) and of
 * what they need. See the module comment for the connection it needs.
 */
export async function readSchemaDefinition(
  db: Queryable,
  tableOids: readonly string[],
): Promise<SchemaDefinition> {
  const { rows: versionRows } = await db.query<{ v: string }>(
    `SELECT current_setting('server_version_num') AS v`,
  );
  const serverVersionNum = Number(versionRows[0]?.v ?? 0);
  const tables = await readTables(db, tableOids);
  const oids = tables.map((t) => t.oid);
  const types = await readTypes(db, oids, serverVersionNum);
  const backedUpTypes = recreatedTypes(types);
  const tableName = new Map(tables.map((t) => [t.oid, { schema: t.nspname, name: t.relname }]));
  const dependencies = await readTableDependencies(
    db,
    tables.map((t) => ({
      oid: t.oid,
      ...(t.parent_oid !== null && tableName.has(t.parent_oid) ? { parentOid: t.parent_oid } : {}),
    })),
    new Set(backedUpTypes.keys()),
  );
  const owned = await readOwnedSequences(db, oids);
  const ownedOids = new Set(owned.map((s) => s.oid));
  // A default's sequence no backed-up column owns: without it the restored default names nothing.
  const unowned = await readSequences(
    db,
    dependencies.sequenceOids.filter((oid) => !ownedOids.has(oid)),
  );
  const sequences = [...owned, ...unowned];
  const schemas = new Set([
    ...tables.map((t) => t.nspname),
    ...[...backedUpTypes.values()].map((t) => t.schema),
    ...sequences.map((s) => s.nspname),
  ]);
  const searchPath = [...schemas].sort(compare);
  return withPrintSettings(db, searchPath.map(quoteIdent).join(', '), async () => {
    const typeDefinitions = await describeTypes(db, types, backedUpTypes, serverVersionNum);
    const identities = new Map<string, IdentityDefinition>();
    const recreated: SequenceDefinition[] = [];
    for (const s of sequences) {
      const sequence = { schema: s.nspname, name: s.relname };
      const state = await readSequenceState(db, sequence);
      const options = sequenceOptions(s);
      if (s.deptype === 'i') {
        // attidentity says ALWAYS or BY DEFAULT; filled in with the column below.
        identities.set(`${s.table_oid}/${s.column_name}`, { generation: 'always', sequence, options, state });
      } else {
        const table = s.table_oid === null ? undefined : tableName.get(s.table_oid);
        const ownedBy = table && s.column_name !== null ? { ownedBy: { table, column: s.column_name } } : {};
        recreated.push({ ...sequence, options, state, ...ownedBy });
      }
    }
    const columns = await readColumns(db, oids);
    const extras = await readTableExtras(db, oids);
    const partitionOids = new Set(
      tables.filter((t) => t.parent_oid !== null && tableName.has(t.parent_oid)).map((t) => t.oid),
    );
    const constraints = await readTableConstraints(db, oids, partitionOids, serverVersionNum);
    const definitions = tables.map((t): TableDefinition => {
      const extra = extras.get(t.oid);
      const parent = t.parent_oid === null ? undefined : tableName.get(t.parent_oid);
      const own = constraints.get(t.oid);
      const comment = pgOptional(extra?.comment);
      return {
        oid: t.oid,
        schema: t.nspname,
        name: t.relname,
        unlogged: t.persistence === 'u',
        options: pgJsonArray<string>(extra?.options),
        ...(extra?.partition_by ? { partitionBy: extra.partition_by } : {}),
        ...(parent && extra?.bound ? { partitionOf: { parent, bound: extra.bound } } : {}),
        columns: columns
          .filter((c) => c.table_oid === t.oid)
          .map((c) => {
            const identity = identities.get(`${t.oid}/${c.name}`);
            const generation = c.identity === 'a' ? 'always' : 'by default';
            return toColumn(
              c,
              backedUpTypes,
              c.identity !== '' && identity ? { ...identity, generation } : undefined,
            );
          }),
        checks: own?.checks ?? [],
        keys: own?.keys ?? [],
        foreignKeys: own?.foreignKeys ?? [],
        indexes: own?.indexes ?? [],
        ...(comment !== undefined ? { comment } : {}),
      };
    });
    const notIncluded = await readNotIncluded(db, oids, dependencies);
    return {
      serverVersionNum,
      searchPath,
      extensions: dependencies.extensions,
      types: typeDefinitions,
      sequences: recreated,
      tables: definitions,
      notIncluded,
    };
  });
}
