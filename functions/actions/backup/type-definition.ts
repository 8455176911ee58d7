/**
 * The enum and domain types the backed-up columns use (directly, as array elements, or under a domain),
 * which the backup recreates before its tables. Other types (built-in, extension, composite, range) are
 * named as PostgreSQL prints them and must exist where the backup is restored.
 */
import type { Queryable } from '../../adapters/transactions.ts';
import { pgBool, pgJsonArray, pgOptional } from './catalog-values.ts';
import type { DomainDefinition, EnumDefinition, QualifiedName, TypeReference } from './schema-definition.ts';

export interface TypeRow {
  oid: string;
  nspname: string;
  typname: string;
  /** 'e' enum, 'd' domain. */
  typtype: string;
}

/** Enums and domains the columns of `tableOids` use; a domain's base domain or enum comes before it. */
export async function readTypes(db: Queryable, tableOids: readonly string[]): Promise<TypeRow[]> {
  const { rows } = await db.query<TypeRow>(
    `WITH RECURSIVE used(oid, depth) AS (
       SELECT DISTINCT a.atttypid, 0 FROM pg_attribute a
        WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
       UNION
       SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.typelem END, u.depth + 1
         FROM used u JOIN pg_type t ON t.oid = u.oid
        -- a domain's base type, a true array's element type (typlen -1 leaves out name, point, …)
        WHERE t.typtype = 'd' OR (t.typelem <> 0 AND t.typlen = -1))
     SELECT t.oid::text AS oid, n.nspname, t.typname, t.typtype::text AS typtype
       FROM used u JOIN pg_type t ON t.oid = u.oid JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE t.typtype IN ('e', 'd') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        -- An extension's types come with CREATE EXTENSION.
        AND NOT EXISTS (SELECT 1 FROM pg_depend d
                         WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
      GROUP BY t.oid, n.nspname, t.typname, t.typtype
      ORDER BY max(u.depth) DESC, n.nspname, t.typname`,
    [tableOids],
  );
  return rows;
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

export async function describeEnums(db: Queryable, types: readonly TypeRow[]): Promise<EnumDefinition[]> {
  const enums = types.filter((t) => t.typtype === 'e');
  const { rows } = await db.query<{ oid: string; labels: unknown }>(
    `SELECT e.enumtypid::text AS oid, json_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
       FROM pg_enum e WHERE e.enumtypid = ANY ($1::oid[]) GROUP BY e.enumtypid`,
    [enums.map((t) => t.oid)],
  );
  const labels = new Map(rows.map((r) => [r.oid, pgJsonArray<string>(r.labels)]));
  return enums.map((t) => ({ schema: t.nspname, name: t.typname, labels: labels.get(t.oid) ?? [] }));
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

/** Domains in `types` order (base domains first). Run under the printing search_path. */
export async function describeDomains(
  db: Queryable,
  types: readonly TypeRow[],
  backedUp: ReadonlyMap<string, QualifiedName>,
): Promise<DomainDefinition[]> {
  const domains = types.filter((t) => t.typtype === 'd');
  const { rows } = await db.query<DomainRow>(
    `SELECT t.oid::text AS oid, t.typbasetype::text AS base_oid,
            (CASE WHEN b.typelem <> 0 AND b.typlen = -1 THEN b.typelem ELSE b.oid END)::text AS base_element_oid,
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
    [domains.map((t) => t.oid)],
  );
  const byOid = new Map(rows.map((r) => [r.oid, r]));
  return domains.flatMap((t): DomainDefinition[] => {
    const r = byOid.get(t.oid);
    if (!r) return [];
    const defaultExpression = pgOptional(r.default_expr);
    return [
      {
        schema: t.nspname,
        name: t.typname,
        baseType: typeReference(r.base_oid, r.base_element_oid, r.base_text, backedUp),
        ...(r.collation !== null
          ? { collation: { schema: r.collation_schema ?? '', name: r.collation } }
          : {}),
        ...(defaultExpression !== undefined ? { default: defaultExpression } : {}),
        notNull: pgBool(r.not_null),
        checks: pgJsonArray<{ name: string; definition: string; validated: boolean }>(r.checks),
      },
    ];
  });
}
