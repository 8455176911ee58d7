/**
 * The types the backed-up columns use that the backup recreates before its tables: enums, domains,
 * stand-alone composite types and range types (with their multiranges), found through domains' base types,
 * arrays' elements, composites' attributes and ranges' subtypes. Built-in and extension types are there
 * once the extensions are (table-dependencies.ts); any other type (a table's row type, a base type with C
 * functions, a range with a canonical function) is named as PostgreSQL prints it and listed in the
 * manifest's notIncluded as something the target must have.
 */
import type { Queryable } from '../../adapters/transactions.ts';
import { pgBool, pgJsonArray, pgOptional } from './catalog-values.ts';
import type {
  CompositeDefinition,
  DomainDefinition,
  QualifiedName,
  RangeDefinition,
  TypeDefinition,
  TypeReference,
} from './schema-definition.ts';

export interface TypeRow {
  oid: string;
  nspname: string;
  typname: string;
  /** 'e' enum, 'd' domain, 'c' composite, 'r' range. */
  typtype: string;
  /** A range's multirange (PostgreSQL 14+), which comes with it. */
  multi_oid: string | null;
  multi_schema: string | null;
  multi_name: string | null;
}

/** `classid` object `oid` belongs to an extension: CREATE EXTENSION brings it. */
export const extensionMember = (classid: string, oid: string) =>
  `EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${classid}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

/** PostgreSQL's own or an extension's: there on the target once the extensions are. */
const provided = (classid: string, oid: string, namespace: string) =>
  `(${namespace} = 'pg_catalog'::regnamespace OR ${extensionMember(classid, oid)})`;

/**
 * A range the backup can write as CREATE TYPE … AS RANGE: a canonical function is a C function of its own,
 * and a subtype_diff function or operator class of the user's would not exist before it.
 */
const SIMPLE_RANGE = `EXISTS (
  SELECT 1 FROM pg_range r JOIN pg_opclass o ON o.oid = r.rngsubopc LEFT JOIN pg_proc p ON p.oid = r.rngsubdiff
   WHERE r.rngtypid = t.oid AND r.rngcanonical::oid = 0
     AND (r.rngsubdiff::oid = 0 OR ${provided('pg_proc', 'p.oid', 'p.pronamespace')})
     AND ${provided('pg_opclass', 'o.oid', 'o.opcnamespace')})`;

/** The types to recreate that the columns of `tableOids` use; each after the types it is built from. */
export async function readTypes(
  db: Queryable,
  tableOids: readonly string[],
  serverVersionNum: number,
): Promise<TypeRow[]> {
  const multirange = serverVersionNum >= 140000;
  const { rows } = await db.query<TypeRow>(
    `WITH RECURSIVE used(oid, depth) AS (
       SELECT DISTINCT a.atttypid, 0 FROM pg_attribute a
        WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
       UNION
       SELECT inner_type.oid, u.depth + 1
         FROM used u JOIN pg_type t ON t.oid = u.oid
        CROSS JOIN LATERAL (
          SELECT t.typbasetype WHERE t.typtype = 'd'
          -- a true array's element type (typlen -1 leaves out name, point, …)
          UNION ALL SELECT t.typelem WHERE t.typtype <> 'd' AND t.typelem <> 0 AND t.typlen = -1
          UNION ALL SELECT a.atttypid FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           WHERE t.typtype = 'c' AND c.oid = t.typrelid AND c.relkind = 'c' AND a.attnum > 0 AND NOT a.attisdropped
          UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE t.typtype = 'r' AND r.rngtypid = t.oid
          ${multirange ? `UNION ALL SELECT r.rngtypid FROM pg_range r WHERE t.typtype = 'm' AND r.rngmultitypid = t.oid` : ''}
        ) AS inner_type(oid)
        -- What PostgreSQL's own and an extension's types are built from is there with them.
        WHERE t.typnamespace <> 'pg_catalog'::regnamespace AND NOT ${extensionMember('pg_type', 't.oid')})
     SELECT t.oid::text AS oid, n.nspname, t.typname, t.typtype::text AS typtype,
            ${multirange ? 'm.oid::text' : 'NULL'} AS multi_oid, ${multirange ? 'mn.nspname' : 'NULL'} AS multi_schema,
            ${multirange ? 'm.typname' : 'NULL'} AS multi_name
       FROM used u JOIN pg_type t ON t.oid = u.oid JOIN pg_namespace n ON n.oid = t.typnamespace
       ${
         multirange
           ? `LEFT JOIN pg_range r ON r.rngtypid = t.oid LEFT JOIN pg_type m ON m.oid = r.rngmultitypid
              LEFT JOIN pg_namespace mn ON mn.oid = m.typnamespace`
           : ''
       }
      WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'r' AND ${SIMPLE_RANGE})
             -- a stand-alone composite type, not a table's row type
             OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND NOT ${extensionMember('pg_type', 't.oid')}
      GROUP BY 1, 2, 3, 4, 5, 6, 7
      ORDER BY max(u.depth) DESC, n.nspname, t.typname`,
    [tableOids],
  );
  return rows;
}

/** The types the backup recreates (and ranges' multiranges) by oid, as its SQL names them. */
export function recreatedTypes(types: readonly TypeRow[]): Map<string, QualifiedName> {
  const names = new Map<string, QualifiedName>();
  for (const t of types) {
    names.set(t.oid, { schema: t.nspname, name: t.typname });
    if (t.multi_oid !== null)
      names.set(t.multi_oid, { schema: t.multi_schema ?? '', name: t.multi_name ?? '' });
  }
  return names;
}

/** A type as the backup refers to it: by name when it recreates the type, else as PostgreSQL printed it. */
export function typeReference(
  typeOid: string,
  elementOid: string,
  printed: string,
  backedUp: ReadonlyMap<string, QualifiedName>,
): TypeReference {
  const type = backedUp.get(elementOid);
  return type
    ? { kind: 'backed-up', type, array: elementOid !== typeOid }
    : { kind: 'printed', text: printed };
}

/** SQL: the element type of an array type `t` (a true one), else `t` itself. */
const ELEMENT = (t: string) =>
  `(CASE WHEN ${t}.typelem <> 0 AND ${t}.typlen = -1 THEN ${t}.typelem ELSE ${t}.oid END)`;

const optionalName = (schema: string | null, name: string | null): QualifiedName | undefined =>
  name === null ? undefined : { schema: schema ?? '', name };

/**
 * The definitions of `types` (readTypes), in that order. Run under the printing search_path: defaults,
 * CHECKs and type names are printed here.
 */
export async function describeTypes(
  db: Queryable,
  types: readonly TypeRow[],
  backedUp: ReadonlyMap<string, QualifiedName>,
  serverVersionNum: number,
): Promise<TypeDefinition[]> {
  const ofKind = (kind: string) => types.filter((t) => t.typtype === kind).map((t) => t.oid);
  const enums = await describeEnums(db, ofKind('e'));
  const domains = await describeDomains(db, ofKind('d'), backedUp);
  const composites = await describeComposites(db, ofKind('c'), backedUp);
  const ranges = await describeRanges(db, ofKind('r'), backedUp, serverVersionNum >= 140000);
  return types.flatMap((t): TypeDefinition[] => {
    const name = { schema: t.nspname, name: t.typname };
    const enumLabels = enums.get(t.oid);
    if (enumLabels) return [{ kind: 'enum', ...name, labels: enumLabels }];
    const found = domains.get(t.oid) ?? composites.get(t.oid) ?? ranges.get(t.oid);
    return found ? [{ ...found, ...name } as TypeDefinition] : [];
  });
}

type Described<T> = Map<string, Omit<T, 'schema' | 'name'>>;

async function describeEnums(db: Queryable, oids: readonly string[]): Promise<Map<string, string[]>> {
  const { rows } = await db.query<{ oid: string; labels: unknown }>(
    `SELECT e.enumtypid::text AS oid, json_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
       FROM pg_enum e WHERE e.enumtypid = ANY ($1::oid[]) GROUP BY e.enumtypid`,
    [oids],
  );
  // An enum without labels has no pg_enum row.
  const labels = new Map<string, string[]>(oids.map((oid) => [oid, []]));
  for (const r of rows) labels.set(r.oid, pgJsonArray<string>(r.labels));
  return labels;
}

interface DomainRow {
  oid: string;
  base_oid: string;
  base_element_oid: string;
  base_text: string;
  collation_schema: string | null;
  collation: string | null;
  default_expr: string | null;
  not_null: unknown;
  checks: unknown;
}

async function describeDomains(
  db: Queryable,
  oids: readonly string[],
  backedUp: ReadonlyMap<string, QualifiedName>,
): Promise<Described<DomainDefinition>> {
  const { rows } = await db.query<DomainRow>(
    `SELECT t.oid::text AS oid, t.typbasetype::text AS base_oid, ${ELEMENT('b')}::text AS base_element_oid,
            format_type(t.typbasetype, t.typtypmod) AS base_text,
            cn.nspname AS collation_schema, co.collname AS collation,
            pg_get_expr(t.typdefaultbin, 'pg_type'::regclass) AS default_expr, t.typnotnull AS not_null,
            (SELECT json_agg(json_build_object('name', c.conname, 'definition', pg_get_constraintdef(c.oid), 'validated', c.convalidated)
                             ORDER BY c.conname)
               FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c') AS checks
       FROM pg_type t
       JOIN pg_type b ON b.oid = t.typbasetype
       LEFT JOIN pg_collation co ON co.oid = t.typcollation AND t.typcollation <> b.typcollation
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
      WHERE t.oid = ANY ($1::oid[])`,
    [oids],
  );
  return new Map(
    rows.map((r) => {
      const defaultExpression = pgOptional(r.default_expr);
      const collation = optionalName(r.collation_schema, r.collation);
      return [
        r.oid,
        {
          kind: 'domain',
          baseType: typeReference(r.base_oid, r.base_element_oid, r.base_text, backedUp),
          ...(collation ? { collation } : {}),
          ...(defaultExpression !== undefined ? { default: defaultExpression } : {}),
          notNull: pgBool(r.not_null),
          checks: pgJsonArray<{ name: string; definition: string; validated: boolean }>(r.checks),
        },
      ];
    }),
  );
}

interface AttributeRow {
  name: string;
  type_oid: string;
  element_oid: string;
  type_text: string;
  collation_schema: string | null;
  collation: string | null;
}

async function describeComposites(
  db: Queryable,
  oids: readonly string[],
  backedUp: ReadonlyMap<string, QualifiedName>,
): Promise<Described<CompositeDefinition>> {
  const { rows } = await db.query<{ oid: string; attributes: unknown }>(
    `SELECT t.oid::text AS oid,
            (SELECT json_agg(json_build_object(
                      'name', a.attname, 'type_oid', a.atttypid::text, 'element_oid', ${ELEMENT('at')}::text,
                      'type_text', format_type(a.atttypid, a.atttypmod),
                      'collation_schema', cn.nspname, 'collation', co.collname) ORDER BY a.attnum)
               FROM pg_attribute a
               JOIN pg_type at ON at.oid = a.atttypid
               LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> at.typcollation
               LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attributes
       FROM pg_type t WHERE t.oid = ANY ($1::oid[])`,
    [oids],
  );
  return new Map(
    rows.map((r) => [
      r.oid,
      {
        kind: 'composite',
        attributes: pgJsonArray<AttributeRow>(r.attributes).map((a) => {
          const collation = optionalName(a.collation_schema, a.collation);
          return {
            name: a.name,
            type: typeReference(a.type_oid, a.element_oid, a.type_text, backedUp),
            ...(collation ? { collation } : {}),
          };
        }),
      },
    ]),
  );
}

interface RangeRow {
  oid: string;
  subtype_oid: string;
  subtype_element_oid: string;
  subtype_text: string;
  opclass_schema: string | null;
  opclass: string | null;
  collation_schema: string | null;
  collation: string | null;
  diff_schema: string | null;
  diff: string | null;
  multi_schema: string | null;
  multi: string | null;
}

async function describeRanges(
  db: Queryable,
  oids: readonly string[],
  backedUp: ReadonlyMap<string, QualifiedName>,
  multirange: boolean,
): Promise<Described<RangeDefinition>> {
  if (oids.length === 0) return new Map();
  const { rows } = await db.query<RangeRow>(
    `SELECT r.rngtypid::text AS oid, r.rngsubtype::text AS subtype_oid, ${ELEMENT('s')}::text AS subtype_element_oid,
            format_type(r.rngsubtype, NULL) AS subtype_text,
            CASE WHEN NOT o.opcdefault THEN opn.nspname END AS opclass_schema,
            CASE WHEN NOT o.opcdefault THEN o.opcname END AS opclass,
            cn.nspname AS collation_schema, co.collname AS collation,
            pn.nspname AS diff_schema, p.proname AS diff, mn.nspname AS multi_schema, m.typname AS multi
       FROM pg_range r
       JOIN pg_type s ON s.oid = r.rngsubtype
       JOIN pg_opclass o ON o.oid = r.rngsubopc
       JOIN pg_namespace opn ON opn.oid = o.opcnamespace
       LEFT JOIN pg_collation co ON co.oid = r.rngcollation AND r.rngcollation <> s.typcollation
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
       LEFT JOIN pg_proc p ON p.oid = r.rngsubdiff
       LEFT JOIN pg_namespace pn ON pn.oid = p.pronamespace
       LEFT JOIN pg_type m ON ${multirange ? 'm.oid = r.rngmultitypid' : 'false'}
       LEFT JOIN pg_namespace mn ON mn.oid = m.typnamespace
      WHERE r.rngtypid = ANY ($1::oid[])`,
    [oids],
  );
  return new Map(
    rows.map((r) => {
      const opclass = optionalName(r.opclass_schema, r.opclass);
      const collation = optionalName(r.collation_schema, r.collation);
      const subtypeDiff = optionalName(r.diff_schema, r.diff);
      const multirange = optionalName(r.multi_schema, r.multi);
      return [
        r.oid,
        {
          kind: 'range',
          subtype: typeReference(r.subtype_oid, r.subtype_element_oid, r.subtype_text, backedUp),
          ...(opclass ? { opclass } : {}),
          ...(collation ? { collation } : {}),
          ...(subtypeDiff ? { subtypeDiff } : {}),
          ...(multirange ? { multirange } : {}),
        },
      ];
    }),
  );
}
