/**
 * What the backed-up tables use beyond themselves, from pg_depend: the dependencies PostgreSQL records for
 * their columns (types, collations), defaults and generated columns (pg_attrdef), constraints, indexes and
 * partition keys, followed into the types the backup recreates (a domain's CHECKs and default, a
 * composite's attributes, a range's subtype and functions, an array's element). References to PostgreSQL's
 * own objects are not recorded (they are pinned) or sit in pg_catalog; everything else lands in one of:
 * - an extension, when the object is a member of one (deptype 'e'): schema.sql creates it;
 * - a sequence (a `nextval('s.seq'::regclass)` default): the backup recreates it;
 * - a type the backup recreates (type-definition.ts): walked into, not reported;
 * - anything else — a user function, operator, operator class, collation, text search configuration, a
 *   type the backup cannot recreate, a table outside the backup a foreign key references — is not created
 *   by the backup (function bodies are out of its scope) and is reported per table, so that the manifest
 *   says what to create before restoring instead of psql finding out.
 * Only what PostgreSQL recorded is seen: a name inside a function body, or `nextval('s.seq')` written with
 * a text argument, is not a dependency.
 */
import type { Queryable } from '../../adapters/transactions.ts';
import { pgBool, pgJsonArray } from './catalog-values.ts';
import type { ExtensionDefinition } from './schema-definition.ts';

export interface TableDependencies {
  /** Extensions to create, an extension after those it requires. */
  readonly extensions: ExtensionDefinition[];
  /** Sequences the tables' defaults (or their domains' defaults) use, owned or not. */
  readonly sequenceOids: string[];
  /** Per table oid: `<kind> <name> used by <where>`, sorted. */
  readonly requires: Map<string, string[]>;
}

export interface DependencyTable {
  readonly oid: string;
  /** The partitioned parent, when it is backed up too: what the partition has from it is said there. */
  readonly parentOid?: string;
}

interface Root {
  readonly table: string;
  readonly classid: string;
  readonly objid: string;
  /** 'constraint': a table it references is outside the backup; 'relation': dependencies per column. */
  readonly kind: 'table' | 'relation' | 'constraint' | 'other';
  /**
   * Where a dependency found from here is used (`column` when the dependency is on one column). Names are
   * written as PostgreSQL's quote_ident and pg_identify_object write them: quoted only when they must be.
   */
  readonly where: (column: string | null) => string;
}

interface RootRow {
  table_oid: string;
  classid: string;
  objid: string;
  kind: Root['kind'];
  what: string;
}

interface DependencyRow {
  i: number;
  column: string | null;
  ref_class: string;
  ref_oid: string;
  ref_type: string;
  ref_identity: string;
  ext_oid: string | null;
  relkind: string | null;
  typtype: string | null;
  typrelid: string | null;
  array_or_multirange: unknown;
  domain_checks: unknown;
}

/** Objects whose dependencies are the table's: its defaults, constraints and indexes (a parent's left out). */
async function firstRoots(db: Queryable, tableOids: readonly string[]): Promise<Root[]> {
  const { rows } = await db.query<RootRow>(
    `SELECT t.oid::text AS table_oid, 'pg_class'::regclass::oid::text AS classid, t.oid::text AS objid,
            'table' AS kind, '' AS what
       FROM unnest($1::oid[]) AS t(oid)
     UNION ALL
     SELECT ad.adrelid::text, 'pg_attrdef'::regclass::oid::text, ad.oid::text, 'other',
            CASE WHEN a.attgenerated <> '' THEN 'generated column ' ELSE 'the default of column ' END || quote_ident(a.attname)
       FROM pg_attrdef ad JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
      WHERE ad.adrelid = ANY ($1::oid[])
     UNION ALL
     SELECT con.conrelid::text, 'pg_constraint'::regclass::oid::text, con.oid::text, 'constraint',
            'constraint ' || quote_ident(con.conname)
       FROM pg_constraint con LEFT JOIN pg_constraint pc ON pc.oid = con.conparentid
      WHERE con.conrelid = ANY ($1::oid[]) AND (pc.oid IS NULL OR pc.conrelid <> ALL ($1::oid[]))
     UNION ALL
     -- A constraint's index (exclusion, unique) holds its operator classes: said as the constraint's.
     SELECT i.indrelid::text, 'pg_class'::regclass::oid::text, i.indexrelid::text, 'other',
            coalesce('constraint ' || quote_ident(con.conname), 'index ' || quote_ident(ic.relname))
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
      WHERE i.indrelid = ANY ($1::oid[])
        AND NOT EXISTS (SELECT 1 FROM pg_inherits h JOIN pg_index parent ON parent.indexrelid = h.inhparent
                         WHERE h.inhrelid = i.indexrelid AND parent.indrelid = ANY ($1::oid[]))`,
    [tableOids],
  );
  return rows.map((r) => ({
    table: r.table_oid,
    classid: r.classid,
    objid: r.objid,
    kind: r.kind,
    where:
      r.kind === 'table'
        ? (column) => (column === null ? 'the table definition' : `column ${column}`)
        : () => r.what,
  }));
}

/** What the roots depend on, with what decides where each dependency goes. */
async function dependenciesOf(db: Queryable, roots: readonly Root[]): Promise<DependencyRow[]> {
  const { rows } = await db.query<DependencyRow>(
    `SELECT r.i, quote_ident(a.attname) AS column, d.refclassid::regclass::text AS ref_class, d.refobjid::text AS ref_oid,
            o.type AS ref_type, e.refobjid::text AS ext_oid,
            -- A function by its argument types, written as SQL would call for them (pg_identify_object
            -- qualifies even pg_catalog's).
            coalesce((SELECT format('%I.%I(%s)', pn.nspname, p.proname, oidvectortypes(p.proargtypes))
                        FROM pg_proc p JOIN pg_namespace pn ON pn.oid = p.pronamespace
                       WHERE d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid),
                     o.identity) AS ref_identity,
            c.relkind::text AS relkind, t.typtype::text AS typtype, t.typrelid::text AS typrelid,
            (t.typtype = 'm' OR (t.typelem <> 0 AND t.typlen = -1)) AS array_or_multirange,
            array_to_json(ARRAY(SELECT dc.oid::text FROM pg_constraint dc WHERE dc.contypid = t.oid)) AS domain_checks
       FROM json_to_recordset($1::json) AS r(i int, classid oid, objid oid)
       JOIN pg_depend d ON d.classid = r.classid AND d.objid = r.objid AND d.deptype IN ('n', 'a', 'i')
       LEFT JOIN pg_attribute a ON r.classid = 'pg_class'::regclass AND a.attrelid = r.objid
            AND a.attnum = d.objsubid AND d.objsubid > 0
       CROSS JOIN LATERAL pg_identify_object(d.refclassid, d.refobjid, 0) AS o
       LEFT JOIN pg_depend e ON e.classid = d.refclassid AND e.objid = d.refobjid AND e.deptype = 'e'
       LEFT JOIN pg_class c ON d.refclassid = 'pg_class'::regclass AND c.oid = d.refobjid
       LEFT JOIN pg_type t ON d.refclassid = 'pg_type'::regclass AND t.oid = d.refobjid
      WHERE d.refclassid <> 'pg_namespace'::regclass
        AND (o.schema IS NULL OR o.schema NOT IN ('pg_catalog', 'information_schema'))`,
    [JSON.stringify(roots.map((r, i) => ({ i, classid: r.classid, objid: r.objid })))],
  );
  return rows;
}

/** Objects reported by what pg_identify_object calls them; other classes are the tables' own parts. */
const REPORTED = new Set([
  'pg_proc',
  'pg_operator',
  'pg_opclass',
  'pg_opfamily',
  'pg_collation',
  'pg_ts_config',
  'pg_ts_dict',
  'pg_ts_parser',
  'pg_ts_template',
  'pg_conversion',
]);

const TABLE_KINDS = new Set(['r', 'p', 'f', 'v', 'm']);

/** pg_identify_object calls every pg_type row a type; the kind says more. */
const TYPE_KINDS: Record<string, string> = {
  e: 'enum',
  d: 'domain',
  c: 'composite type',
  r: 'range type',
};

/**
 * Reads what `tables` (every table of the backup) depend on; `recreatedTypes` are the type oids the
 * backup recreates (type-definition.ts `recreatedTypes`).
 */
export async function readTableDependencies(
  db: Queryable,
  tables: readonly DependencyTable[],
  recreatedTypes: ReadonlySet<string>,
): Promise<TableDependencies> {
  const backedUp = new Set(tables.map((t) => t.oid));
  const extensions = new Set<string>();
  const sequences = new Set<string>();
  const requires = new Map<string, Set<string>>(tables.map((t) => [t.oid, new Set<string>()]));
  const visited = new Set<string>();
  const fresh = (roots: readonly Root[]) =>
    roots.filter((r) => {
      const key = `${r.table}/${r.classid}/${r.objid}`;
      if (visited.has(key)) return false;
      visited.add(key);
      return true;
    });
  const { rows: classes } = await db.query<{ t: string; c: string; k: string }>(
    `SELECT 'pg_type'::regclass::oid::text AS t, 'pg_class'::regclass::oid::text AS c,
            'pg_constraint'::regclass::oid::text AS k`,
  );
  const typeClass = classes[0] ?? { t: '', c: '', k: '' };
  let roots = fresh(await firstRoots(db, [...backedUp]));
  while (roots.length > 0) {
    const next: Root[] = [];
    for (const row of await dependenciesOf(db, roots)) {
      const root = roots[row.i];
      if (!root) continue;
      const where = root.where(row.column);
      if (row.ext_oid !== null || row.ref_class === 'pg_extension') {
        extensions.add(row.ext_oid ?? row.ref_oid);
      } else if (row.ref_class === 'pg_class') {
        if (row.relkind === 'S') sequences.add(row.ref_oid);
        else if (
          root.kind === 'constraint' &&
          TABLE_KINDS.has(row.relkind ?? '') &&
          !backedUp.has(row.ref_oid)
        )
          requires.get(root.table)?.add(`${row.ref_type} ${row.ref_identity} referenced by ${where}`);
      } else if (row.ref_class === 'pg_type') {
        const recreated = recreatedTypes.has(row.ref_oid);
        if (recreated || pgBool(row.array_or_multirange)) {
          // Walked into: what it is built from is this column's too. An array or multirange is made with
          // its element or range; the rest is what the backup recreates.
          const within = recreated
            ? `${TYPE_KINDS[row.typtype ?? ''] ?? 'type'} ${row.ref_identity} of ${where}`
            : where;
          const child = (
            classid: string,
            objid: string,
            kind: Root['kind'],
            text: (c: string | null) => string,
          ) => next.push({ table: root.table, classid, objid, kind, where: text });
          child(typeClass.t, row.ref_oid, 'other', () => within);
          if (row.typtype === 'c' && row.typrelid !== null && row.typrelid !== '0') {
            child(typeClass.c, row.typrelid, 'relation', (c) =>
              c === null ? within : `attribute ${c} of ${within}`,
            );
          }
          for (const check of pgJsonArray<string>(row.domain_checks)) {
            child(typeClass.k, check, 'other', () => `a CHECK of ${within}`);
          }
        } else if (!(row.typtype === 'c' && row.typrelid !== null && backedUp.has(row.typrelid))) {
          requires.get(root.table)?.add(`${describeType(row)} ${row.ref_identity} used by ${where}`);
        }
      } else if (REPORTED.has(row.ref_class)) {
        requires.get(root.table)?.add(`${row.ref_type} ${row.ref_identity} used by ${where}`);
      }
    }
    roots = fresh(next);
  }
  return {
    extensions: await readExtensions(db, [...extensions]),
    sequenceOids: [...sequences].sort(),
    requires: withoutInherited(tables, requires),
  };
}

function describeType(row: DependencyRow): string {
  if (row.typtype === 'r')
    return 'range type (with a canonical function, or a subtype_diff function or operator class of its own)';
  if (row.typtype === 'c') return 'row type of table';
  return row.ref_type;
}

/** A partition's columns and defaults come from its backed-up parent: said once, there. */
function withoutInherited(
  tables: readonly DependencyTable[],
  requires: ReadonlyMap<string, ReadonlySet<string>>,
): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const t of tables) {
    const parent = t.parentOid === undefined ? undefined : requires.get(t.parentOid);
    const own = [...(requires.get(t.oid) ?? [])].filter((line) => !parent?.has(line));
    result.set(t.oid, own.sort());
  }
  return result;
}

/** The extensions `oids` and those they require, required ones first. */
async function readExtensions(db: Queryable, oids: readonly string[]): Promise<ExtensionDefinition[]> {
  if (oids.length === 0) return [];
  const { rows } = await db.query<ExtensionDefinition>(
    `WITH RECURSIVE needed(oid, depth) AS (
       SELECT unnest($1::oid[]), 0
       UNION
       SELECT d.refobjid, n.depth + 1 FROM needed n
         JOIN pg_depend d ON d.classid = 'pg_extension'::regclass AND d.objid = n.oid
          AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'n')
     SELECT x.extname AS name, s.nspname AS schema, x.extversion AS version
       FROM needed JOIN pg_extension x ON x.oid = needed.oid JOIN pg_namespace s ON s.oid = x.extnamespace
      GROUP BY 1, 2, 3 ORDER BY max(needed.depth) DESC, 1`,
    [oids],
  );
  return rows;
}
