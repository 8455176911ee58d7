/**
 * The constraints and indexes of backed-up tables, from pg_catalog. Part of table-definition.ts: run with
 * its `search_path`, so that expressions and definitions print the way schema-sql.ts expects.
 *
 * What a partitioned parent's constraint or index creates on its partitions (conparentid, index
 * partitions) is left out when that parent is backed up too: recreating it on the parent recreates them.
 */
import type { Queryable } from '../../adapters/transactions.ts';
import { pgBool, pgJsonArray, pgOptional } from './catalog-values.ts';
import type {
  CheckDefinition,
  ForeignKeyDefinition,
  IndexDefinition,
  IndexKey,
  KeyDefinition,
  ReferentialAction,
} from './schema-definition.ts';

export interface TableConstraints {
  checks: CheckDefinition[];
  keys: KeyDefinition[];
  foreignKeys: ForeignKeyDefinition[];
  indexes: IndexDefinition[];
}

const ACTIONS: Record<string, ReferentialAction> = {
  a: 'no action',
  r: 'restrict',
  c: 'cascade',
  n: 'set null',
  d: 'set default',
};

function actionOf(code: string): ReferentialAction {
  const action = ACTIONS[code];
  if (!action) throw new Error(`unknown foreign key action ${JSON.stringify(code)}`);
  return action;
}

const KEY_KINDS: Record<string, KeyDefinition['kind']> = { p: 'primary key', u: 'unique', x: 'exclude' };

interface ConstraintRow {
  table_oid: string;
  conname: string;
  contype: string;
  definition: string;
  validated: unknown;
  deferrable: unknown;
  deferred: unknown;
  inherited_count: string;
  parent_backed_up: unknown;
  ref_schema: string | null;
  ref_table: string | null;
  upd: string;
  del: string;
  match: string;
  columns: unknown;
  ref_columns: unknown;
  set_columns: unknown;
}

/**
 * Reads the constraints and indexes of `tableOids` (every table of the backup), grouped by table oid.
 * `partitionOids` are the tables whose partitioned parent is backed up: their inherited CHECKs come back
 * with the parent.
 */
export async function readTableConstraints(
  db: Queryable,
  tableOids: readonly string[],
  partitionOids: ReadonlySet<string>,
  serverVersionNum: number,
): Promise<Map<string, TableConstraints>> {
  const byTable = new Map<string, TableConstraints>();
  const of = (oid: string): TableConstraints => {
    let entry = byTable.get(oid);
    if (!entry) {
      entry = { checks: [], keys: [], foreignKeys: [], indexes: [] };
      byTable.set(oid, entry);
    }
    return entry;
  };
  const attnames = (table: string, keys: string) =>
    `array_to_json(ARRAY(SELECT a.attname FROM unnest(${keys}) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = ${table} AND a.attnum = k.attnum ORDER BY k.ord))`;
  // confdelsetcols (ON DELETE SET NULL (columns)) exists from PostgreSQL 15.
  const setColumns = serverVersionNum >= 150000 ? attnames('con.conrelid', 'con.confdelsetcols') : 'NULL';
  const { rows } = await db.query<ConstraintRow>(
    `SELECT con.conrelid::text AS table_oid, con.conname, con.contype::text AS contype,
            pg_get_constraintdef(con.oid) AS definition, con.convalidated AS validated,
            con.condeferrable AS deferrable, con.condeferred AS deferred, con.coninhcount::text AS inherited_count,
            (pc.conrelid = ANY ($1::oid[])) AS parent_backed_up,
            fn.nspname AS ref_schema, fc.relname AS ref_table,
            con.confupdtype::text AS upd, con.confdeltype::text AS del, con.confmatchtype::text AS match,
            ${attnames('con.conrelid', 'con.conkey')} AS columns,
            ${attnames('con.confrelid', 'con.confkey')} AS ref_columns,
            ${setColumns} AS set_columns
       FROM pg_constraint con
       LEFT JOIN pg_constraint pc ON pc.oid = con.conparentid
       LEFT JOIN pg_class fc ON fc.oid = con.confrelid
       LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
      WHERE con.conrelid = ANY ($1::oid[]) AND con.contype IN ('c', 'p', 'u', 'x', 'f')
      ORDER BY con.conrelid, con.conname`,
    [tableOids],
  );
  for (const r of rows) {
    const entry = of(r.table_oid);
    // Created on the backed-up parent, PostgreSQL creates it here again (and for a foreign key that
    // references a partitioned table, once per referenced partition).
    if (pgBool(r.parent_backed_up)) continue;
    if (r.contype === 'c') {
      if (partitionOids.has(r.table_oid) && Number(r.inherited_count) > 0) continue;
      entry.checks.push({ name: r.conname, definition: r.definition, validated: pgBool(r.validated) });
    } else if (r.contype === 'f') {
      entry.foreignKeys.push({
        name: r.conname,
        columns: pgJsonArray<string>(r.columns),
        references: { schema: r.ref_schema ?? '', name: r.ref_table ?? '' },
        referencedColumns: pgJsonArray<string>(r.ref_columns),
        matchFull: r.match === 'f',
        onUpdate: actionOf(r.upd),
        onDelete: actionOf(r.del),
        onDeleteColumns: pgJsonArray<string>(r.set_columns),
        deferrable: pgBool(r.deferrable),
        initiallyDeferred: pgBool(r.deferred),
        validated: pgBool(r.validated),
      });
    } else {
      const kind = KEY_KINDS[r.contype];
      if (kind) entry.keys.push({ name: r.conname, kind, definition: r.definition });
    }
  }
  for (const [oid, indexes] of await readIndexes(db, tableOids, serverVersionNum)) of(oid).indexes = indexes;
  return byTable;
}

interface IndexRow {
  table_oid: string;
  name: string;
  unique: unknown;
  nulls_not_distinct: unknown;
  method: string;
  predicate: string | null;
  options: unknown;
  keys: unknown;
  include: unknown;
}

interface KeyRow {
  column: string | null;
  expression: string | null;
  collation_schema: string | null;
  collation: string | null;
  opclass_schema: string | null;
  opclass: string | null;
  option: number | string;
}

async function readIndexes(
  db: Queryable,
  tableOids: readonly string[],
  serverVersionNum: number,
): Promise<Map<string, IndexDefinition[]>> {
  const nullsNotDistinct = serverVersionNum >= 150000 ? 'i.indnullsnotdistinct' : 'false';
  const { rows } = await db.query<IndexRow>(
    `SELECT i.indrelid::text AS table_oid, ic.relname AS name, i.indisunique AS unique,
            ${nullsNotDistinct} AS nulls_not_distinct, am.amname AS method,
            pg_get_expr(i.indpred, i.indrelid) AS predicate, array_to_json(ic.reloptions) AS options,
            (SELECT json_agg(json_build_object(
                      'column', a.attname,
                      'expression', CASE WHEN (i.indkey)[k - 1] = 0 THEN pg_get_indexdef(i.indexrelid, k, true) END,
                      'collation_schema', cn.nspname, 'collation', co.collname,
                      'opclass_schema', CASE WHEN NOT opc.opcdefault THEN opn.nspname END,
                      'opclass', CASE WHEN NOT opc.opcdefault THEN opc.opcname END,
                      'option', (i.indoption)[k - 1]) ORDER BY k)
               FROM generate_series(1, i.indnkeyatts) AS k
               LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = (i.indkey)[k - 1]
               LEFT JOIN pg_opclass opc ON opc.oid = (i.indclass)[k - 1]
               LEFT JOIN pg_namespace opn ON opn.oid = opc.opcnamespace
               -- Said only when it is not the collation the column (or the expression's type) has anyway.
               LEFT JOIN pg_collation co ON co.oid = (i.indcollation)[k - 1]
                    AND co.oid <> coalesce(a.attcollation,
                          (SELECT t.typcollation FROM pg_attribute ia JOIN pg_type t ON t.oid = ia.atttypid
                            WHERE ia.attrelid = i.indexrelid AND ia.attnum = k))
               LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace) AS keys,
            array_to_json(ARRAY(
              SELECT a.attname FROM generate_series(i.indnkeyatts + 1, i.indnatts) AS k
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = (i.indkey)[k - 1]
               ORDER BY k)) AS include
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_am am ON am.oid = ic.relam
      WHERE i.indrelid = ANY ($1::oid[])
        -- A failed CREATE INDEX CONCURRENTLY leaves an invalid index: not part of the schema.
        AND (i.indisvalid OR ic.relkind = 'I')
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                         WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x'))
        AND NOT EXISTS (SELECT 1 FROM pg_inherits h JOIN pg_index parent ON parent.indexrelid = h.inhparent
                         WHERE h.inhrelid = i.indexrelid AND parent.indrelid = ANY ($1::oid[]))
      ORDER BY i.indrelid, ic.relname`,
    [tableOids],
  );
  const byTable = new Map<string, IndexDefinition[]>();
  for (const r of rows) {
    const keys = pgJsonArray<KeyRow>(r.keys).map((k): IndexKey => {
      const option = Number(k.option);
      return {
        ...(k.expression !== null ? { expression: k.expression } : { column: k.column ?? '' }),
        ...(k.collation !== null
          ? { collation: { schema: k.collation_schema ?? '', name: k.collation } }
          : {}),
        ...(k.opclass !== null ? { opclass: { schema: k.opclass_schema ?? '', name: k.opclass } } : {}),
        // indoption bits: INDOPTION_DESC 1, INDOPTION_NULLS_FIRST 2.
        descending: (option & 1) !== 0,
        nullsFirst: (option & 2) !== 0,
      };
    });
    const predicate = pgOptional(r.predicate);
    const index: IndexDefinition = {
      name: r.name,
      unique: pgBool(r.unique),
      nullsNotDistinct: pgBool(r.nulls_not_distinct),
      method: r.method,
      keys,
      include: pgJsonArray<string>(r.include),
      ...(predicate !== undefined ? { predicate } : {}),
      options: pgJsonArray<string>(r.options),
    };
    const list = byTable.get(r.table_oid) ?? [];
    list.push(index);
    byTable.set(r.table_oid, list);
  }
  return byTable;
}
