/**
 * What a backup of these tables does not bring back, read from pg_catalog so that the manifest says it
 * rather than a restore finding out: triggers, row level security, rules, ownership and grants, views and
 * functions built on the tables, foreign keys of other tables that point at them, INHERITS parents, the
 * database's large objects; and, from table-dependencies.ts, what the tables use that the backup does not
 * create and the extensions schema.sql creates when missing.
 */
import type { Queryable } from '../../adapters/transactions.ts';
import { pgBool, pgJsonArray } from './catalog-values.ts';
import type { NotIncluded, QualifiedName, TableNotIncluded } from './schema-definition.ts';
import type { TableDependencies } from './table-dependencies.ts';

interface TableRow {
  oid: string;
  nspname: string;
  relname: string;
  owner: string;
  rls: unknown;
  rls_forced: unknown;
  grants: unknown;
  triggers: unknown;
  policies: unknown;
  rules: unknown;
  views: unknown;
  functions: unknown;
  referenced_by: unknown;
  inherits_from: unknown;
}

/** Per table of `tableOids` (every table of the backup), in the order given, and the large-object count. */
export async function readNotIncluded(
  db: Queryable,
  tableOids: readonly string[],
  dependencies: Pick<TableDependencies, 'extensions' | 'requires'>,
): Promise<NotIncluded> {
  const { rows } = await db.query<TableRow>(
    `SELECT c.oid::text AS oid, n.nspname, c.relname, pg_get_userbyid(c.relowner) AS owner,
            c.relrowsecurity AS rls, c.relforcerowsecurity AS rls_forced,
            array_to_json(ARRAY(
              SELECT acl::text FROM unnest(c.relacl) AS acl
              UNION ALL
              SELECT quote_ident(a.attname) || ': ' || acl::text
                FROM pg_attribute a, unnest(a.attacl) AS acl
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)) AS grants,
            array_to_json(ARRAY(SELECT t.tgname FROM pg_trigger t
                                 WHERE t.tgrelid = c.oid AND NOT t.tgisinternal ORDER BY t.tgname)) AS triggers,
            array_to_json(ARRAY(SELECT p.polname FROM pg_policy p
                                 WHERE p.polrelid = c.oid ORDER BY p.polname)) AS policies,
            array_to_json(ARRAY(SELECT r.rulename FROM pg_rewrite r
                                 WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN' ORDER BY r.rulename)) AS rules,
            (SELECT json_agg(DISTINCT jsonb_build_object('schema', vn.nspname, 'name', v.relname))
               FROM pg_depend d
               JOIN pg_rewrite r ON r.oid = d.objid
               JOIN pg_class v ON v.oid = r.ev_class
               JOIN pg_namespace vn ON vn.oid = v.relnamespace
              WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
                AND d.refobjid = c.oid AND v.oid <> c.oid) AS views,
            -- SQL-standard function bodies (BEGIN ATOMIC) depend on the table; any function taking or
            -- returning its row type depends on that type.
            (SELECT json_agg(DISTINCT format('%I.%I(%s)', pn.nspname, p.proname,
                                             pg_get_function_identity_arguments(p.oid)))
               FROM pg_depend d
               JOIN pg_proc p ON p.oid = d.objid
               JOIN pg_namespace pn ON pn.oid = p.pronamespace
              WHERE d.classid = 'pg_proc'::regclass
                AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid)
                  OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = c.reltype))) AS functions,
            (SELECT json_agg(jsonb_build_object('constraint', f.conname, 'schema', fn.nspname, 'name', fc.relname)
                             ORDER BY fn.nspname, fc.relname, f.conname)
               FROM pg_constraint f
               JOIN pg_class fc ON fc.oid = f.conrelid
               JOIN pg_namespace fn ON fn.oid = fc.relnamespace
              WHERE f.contype = 'f' AND f.confrelid = c.oid AND f.conparentid = 0
                AND f.conrelid <> ALL ($1::oid[])) AS referenced_by,
            (SELECT json_agg(jsonb_build_object('schema', pn.nspname, 'name', p.relname) ORDER BY h.inhseqno)
               FROM pg_inherits h
               JOIN pg_class p ON p.oid = h.inhparent
               JOIN pg_namespace pn ON pn.oid = p.relnamespace
              WHERE h.inhrelid = c.oid AND NOT c.relispartition) AS inherits_from
       FROM unnest($1::oid[]) WITH ORDINALITY AS given(oid, ord)
       JOIN pg_class c ON c.oid = given.oid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      ORDER BY given.ord`,
    [tableOids],
  );
  const tables = rows.map(
    (r): TableNotIncluded => ({
      schema: r.nspname,
      name: r.relname,
      triggers: pgJsonArray<string>(r.triggers),
      rowSecurity: { enabled: pgBool(r.rls), forced: pgBool(r.rls_forced) },
      policies: pgJsonArray<string>(r.policies),
      rules: pgJsonArray<string>(r.rules),
      owner: r.owner,
      grants: pgJsonArray<string>(r.grants),
      dependentViews: sortNames(pgJsonArray<QualifiedName>(r.views)),
      dependentFunctions: pgJsonArray<string>(r.functions).sort(),
      referencedBy: pgJsonArray<{ constraint: string; schema: string; name: string }>(r.referenced_by).map(
        (f) => ({ constraint: f.constraint, table: { schema: f.schema, name: f.name } }),
      ),
      inheritsFrom: pgJsonArray<QualifiedName>(r.inherits_from),
      requires: dependencies.requires.get(r.oid) ?? [],
    }),
  );
  const { rows: counts } = await db.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM pg_largeobject_metadata`,
  );
  return { tables, largeObjects: Number(counts[0]?.n ?? 0), extensions: dependencies.extensions };
}

function sortNames(names: QualifiedName[]): QualifiedName[] {
  const key = (n: QualifiedName) => `${n.schema}\u0000${n.name}`;
  return names.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
