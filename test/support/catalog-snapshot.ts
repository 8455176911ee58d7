/**
 * A schema's tables as pg_catalog describes them, for comparing a restored schema with its original
 * without comparing SQL text. Printed with search_path set to the schemas compared, so that references
 * inside them come out unqualified in both (and a restored object that still points into the original
 * schema comes out qualified, and differs); schemas are named by their position in that list.
 */
import type pg from 'pg';
import { quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';

export interface SchemaSnapshot {
  tables: Record<string, unknown>[];
  columns: Record<string, unknown>[];
  constraints: Record<string, unknown>[];
  indexes: Record<string, unknown>[];
  sequences: Record<string, unknown>[];
  enums: Record<string, unknown>[];
  domains: Record<string, unknown>[];
  composites: Record<string, unknown>[];
  ranges: Record<string, unknown>[];
}

const IN_SCHEMAS = `n.nspname = ANY ($1::text[])`;
const SCHEMA = `array_position($1::text[], n.nspname::text) AS schema`;

/** Everything about the tables, types (enum, domain, composite, range) and sequences of `schemas` a restore must bring back. */
export async function snapshotSchemas(
  client: pg.ClientBase,
  schemas: readonly string[],
): Promise<SchemaSnapshot> {
  await client.query(`SELECT set_config('search_path', $1, false)`, [schemas.map(quoteIdent).join(', ')]);
  const query = async (sql: string) => (await client.query(sql, [schemas])).rows as Record<string, unknown>[];
  const tables = await query(
    `SELECT ${SCHEMA}, c.relname, c.relkind::text, c.relpersistence::text, c.reloptions::text AS options,
            pg_get_partkeydef(c.oid) AS partition_by, pg_get_expr(c.relpartbound, c.oid) AS bound,
            (SELECT p.relname FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent WHERE h.inhrelid = c.oid) AS parent,
            obj_description(c.oid, 'pg_class') AS comment
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${IN_SCHEMAS} AND c.relkind IN ('r', 'p') ORDER BY 1, 2`,
  );
  const columns = await query(
    `SELECT ${SCHEMA}, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
            a.attnotnull, a.attidentity::text, a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid) AS default,
            co.collname AS collation, col_description(c.oid, a.attnum) AS comment
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
       LEFT JOIN pg_collation co ON co.oid = a.attcollation
      WHERE ${IN_SCHEMAS} AND c.relkind IN ('r', 'p') ORDER BY 1, 2, 3`,
  );
  const constraints = await query(
    `SELECT ${SCHEMA}, c.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid) AS definition,
            con.conislocal, con.coninhcount, con.conparentid <> 0 AS from_parent, con.convalidated
       FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${IN_SCHEMAS} ORDER BY 1, 2, 3, 5`,
  );
  const indexes = await query(
    `SELECT ${SCHEMA}, c.relname, ic.relname AS index,
            replace(pg_get_indexdef(i.indexrelid), quote_ident(n.nspname) || '.', '') AS definition,
            EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) AS attached, i.indisvalid
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${IN_SCHEMAS} ORDER BY 1, 2, 3`,
  );
  const sequenceRows = await query(
    `SELECT ${SCHEMA}, n.nspname, s.relname, format_type(q.seqtypid, NULL) AS type, q.seqstart, q.seqincrement,
            q.seqmin, q.seqmax, q.seqcache, q.seqcycle, t.relname AS owner_table, a.attname AS owner_column,
            d.deptype::text AS dependency
       FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace JOIN pg_sequence q ON q.seqrelid = s.oid
       LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       LEFT JOIN pg_class t ON t.oid = d.refobjid
       LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE ${IN_SCHEMAS} AND s.relkind = 'S' ORDER BY 1, 3`,
  );
  const sequences: Record<string, unknown>[] = [];
  for (const { nspname, ...row } of sequenceRows) {
    const position = await client.query(
      `SELECT last_value::text, is_called FROM ${quoteQualified(String(nspname), String(row.relname))}`,
    );
    sequences.push({ ...row, ...position.rows[0] });
  }
  const enums = await query(
    `SELECT ${SCHEMA}, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text AS labels
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
      WHERE ${IN_SCHEMAS} GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  const domains = await query(
    `SELECT ${SCHEMA}, t.typname, format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull,
            pg_get_expr(t.typdefaultbin, 'pg_type'::regclass) AS default, co.collname AS collation,
            (SELECT array_agg(c.conname || ': ' || pg_get_constraintdef(c.oid) ORDER BY c.conname)::text
               FROM pg_constraint c WHERE c.contypid = t.oid) AS checks
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       LEFT JOIN pg_collation co ON co.oid = t.typcollation
      WHERE ${IN_SCHEMAS} AND t.typtype = 'd' ORDER BY 1, 2`,
  );
  const composites = await query(
    `SELECT ${SCHEMA}, t.typname,
            (SELECT array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || coalesce(' ' || co.collname, '')
                              ORDER BY a.attnum)::text
               FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation
              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attributes
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
       JOIN pg_class c ON c.oid = t.typrelid AND c.relkind = 'c'
      WHERE ${IN_SCHEMAS} ORDER BY 1, 2`,
  );
  const ranges = await query(
    `SELECT ${SCHEMA}, t.typname, format_type(r.rngsubtype, NULL) AS subtype, o.opcname AS opclass,
            co.collname AS collation, r.rngsubdiff::text AS subtype_diff, r.rngcanonical::text AS canonical,
            format_type(r.rngmultitypid, NULL) AS multirange
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_range r ON r.rngtypid = t.oid
       JOIN pg_opclass o ON o.oid = r.rngsubopc LEFT JOIN pg_collation co ON co.oid = r.rngcollation
      WHERE ${IN_SCHEMAS} ORDER BY 1, 2`,
  );
  return { tables, columns, constraints, indexes, sequences, enums, domains, composites, ranges };
}
