/**
 * What a table's constraints say about masking its columns, read from pg_catalog at Start, so that a policy
 * that would fail every run (or silently break references) is refused before any row is touched:
 *
 * - A unique index (pg_index.indisunique: a UNIQUE or PRIMARY KEY constraint, or a unique index, partial or
 *   on expressions; an EXCLUDE constraint is not covered) reading a masked column, when the
 *   strategy can map two values to one: everything but `hash` (distinct values, distinct pseudonyms, but for
 *   an HMAC collision) and `null` (NULLs are distinct, unless the index is NULLS NOT DISTINCT, PostgreSQL 15).
 *   Two rows masked to one value fail the chunk with 23505, and every later run fails on the same pair.
 *   A column counts when it is a key column (INCLUDE columns are not) or the index's expressions or predicate
 *   read it (pg_depend from the index to the column). Not seen: an INCLUDE column also read by the predicate,
 *   and a whole-row reference in an expression (pg_depend records it against the table, not a column).
 * - A foreign key of the table holding a masked column (pg_constraint contype 'f', conkey): a masked value
 *   references no row, the chunk fails with 23503. `null` is allowed unless the key is MATCH FULL (a NULL
 *   unlinks the row, which is what masking a reference means).
 * - A foreign key of another table (or of this one) referencing a masked column (confkey): masking fails on
 *   every referenced row, or, under ON UPDATE CASCADE / SET NULL / SET DEFAULT, rewrites or unlinks rows of
 *   the referencing table, which the policy does not name.
 *
 * The table's partitions and inheritance children (an UPDATE of the table reaches them) and its ancestors (a
 * key on a parent holds for its partitions) are read too, columns matched by name.
 */
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import { pgBool } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import type { MaskStrategy } from './contract.ts';
import type { MaskedColumn } from './masked-columns.ts';

/** The table, its descendants (partitions, inheritance children) and its ancestors. */
const RELATED_TABLES = `
  WITH RECURSIVE down AS (
    SELECT $1::oid AS oid
    UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN down ON i.inhparent = down.oid
  ), up AS (
    SELECT $1::oid AS oid
    UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.oid
  ), related AS (SELECT oid FROM down UNION SELECT oid FROM up)`;

const UNIQUE_INDEXES_SQL = `${RELATED_TABLES}
SELECT DISTINCT a.attname AS column_name, ic.relname AS index_name, con.conname AS constraint_name,
       -- indnullsnotdistinct exists from PostgreSQL 15; read through jsonb so older servers answer false.
       coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct
  FROM pg_catalog.pg_index i
  JOIN related r ON r.oid = i.indrelid
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE i.indisunique AND a.attname = ANY ($2::text[])
   -- A partition's index attached to a parent's is named once, by the parent's.
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits p WHERE p.inhrelid = i.indexrelid)
   AND (a.attnum IN (SELECT k.attnum FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                      WHERE k.n <= i.indnkeyatts)
        OR (NOT a.attnum = ANY (i.indkey::int2[])
            AND EXISTS (SELECT FROM pg_catalog.pg_depend d
                         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = i.indexrelid
                           AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = i.indrelid
                           AND d.refobjsubid = a.attnum)))
 ORDER BY 1, 2`;

const FOREIGN_KEYS_SQL = `${RELATED_TABLES}
SELECT DISTINCT a.attname AS column_name, c.conname AS constraint_name, 'references' AS direction,
       c.confrelid::regclass::text AS other_table, c.confmatchtype::text AS match_type
  FROM pg_catalog.pg_constraint c
  JOIN related r ON r.oid = c.conrelid
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
 WHERE c.contype = 'f' AND c.conparentid = 0 AND a.attname = ANY ($2::text[])
UNION
SELECT DISTINCT a.attname, c.conname, 'referenced', c.conrelid::regclass::text, c.confmatchtype::text
  FROM pg_catalog.pg_constraint c
  JOIN related r ON r.oid = c.confrelid
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = ANY (c.confkey)
 WHERE c.contype = 'f' AND c.conparentid = 0 AND a.attname = ANY ($2::text[])
 ORDER BY 1, 3, 2`;

interface UniqueRow {
  column_name: string;
  index_name: string;
  constraint_name: string | null;
  nulls_not_distinct: unknown;
}

interface ForeignKeyRow {
  column_name: string;
  constraint_name: string;
  direction: 'references' | 'referenced';
  other_table: string;
  match_type: string;
}

/** Whether `strategy` can give two rows of a unique index the same value. */
function canCollide(strategy: MaskStrategy, nullsNotDistinct: boolean): boolean {
  if (strategy.strategy === 'hash') return false;
  if (strategy.strategy === 'null') return nullsNotDistinct;
  return true;
}

/**
 * The problems the table's unique indexes and foreign keys make for the masked columns, one message per
 * column (naming the column, its type, the strategy, each index or constraint, and a fix); empty when none.
 * `tableOid` is the policy's table (pg_class oid, as text). Messages hold catalog names and config only.
 */
export async function columnConstraintProblems(
  db: Queryable,
  tableOid: string,
  masked: ReadonlyArray<{ column: MaskedColumn; strategy: MaskStrategy }>,
): Promise<string[]> {
  if (masked.length === 0) return [];
  const names = masked.map((m) => m.column.name);
  const { rows: unique } = await db.query<UniqueRow>(UNIQUE_INDEXES_SQL, [tableOid, names]);
  const { rows: foreign } = await db.query<ForeignKeyRow>(FOREIGN_KEYS_SQL, [tableOid, names]);
  const problems: string[] = [];
  for (const { column, strategy } of masked) {
    const reasons: string[] = [];
    const colliding = unique.filter(
      (row) => row.column_name === column.name && canCollide(strategy, pgBool(row.nulls_not_distinct)),
    );
    if (colliding.length > 0) {
      const indexes = [...new Set(colliding.map(describeIndex))].join(', ');
      reasons.push(
        strategy.strategy === 'null'
          ? `sets NULL in every row, and the unique index ${indexes} treats NULLs as equal (NULLS NOT DISTINCT), so ` +
              'a second masked row fails every run: drop the column from the policy, or use hash'
          : `can mask two rows to one value, which the unique index ${indexes} refuses: every run would fail on ` +
              'such a pair; use hash (distinct values get distinct pseudonyms), or drop the column from the policy',
      );
    }
    for (const row of foreign.filter((r) => r.column_name === column.name)) {
      if (row.direction === 'references') {
        if (strategy.strategy === 'null' && row.match_type !== 'f') continue;
        reasons.push(
          `is part of foreign key ${quoteIdent(row.constraint_name)} referencing ${row.other_table}: a masked value ` +
            'would reference no row and the chunk would fail; drop the column from the policy (or use null, ' +
            'which unlinks the row, on a nullable MATCH SIMPLE key)',
        );
      } else {
        reasons.push(
          `is referenced by foreign key ${quoteIdent(row.constraint_name)} of ${row.other_table}: masking it would ` +
            'fail on every referenced row, or (ON UPDATE CASCADE, SET NULL, SET DEFAULT) rewrite or orphan rows ' +
            `of ${row.other_table}, which the policy does not name; drop the column from the policy`,
        );
      }
    }
    if (reasons.length > 0)
      problems.push(
        `column ${quoteIdent(column.name)} (${column.typeName}): strategy ${strategy.strategy} ${reasons.join('; and it ')}`,
      );
  }
  return problems;
}

function describeIndex(row: UniqueRow): string {
  const index = quoteIdent(row.index_name);
  return row.constraint_name === null || row.constraint_name === row.index_name
    ? index
    : `${index} (constraint ${quoteIdent(row.constraint_name)})`;
}
