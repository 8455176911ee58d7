/**
 * The masked columns as pg_catalog describes them, read at Start: each column's own type and the base type
 * strategies are checked against (through nested domains), whether it is NOT NULL, its length or numeric(p,s)
 * bound, its collation when not the default (Start probes under it: mask-probes.ts). A column
 * an UPDATE cannot write (missing, system, generated, identity GENERATED ALWAYS) is refused here by name,
 * before any strategy is compiled (strategies.ts) or any row is touched.
 */
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import { pgBool } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError } from '../../core/errors.ts';

/** A masked column as pg_catalog describes it. */
export interface MaskedColumn {
  /** The catalog name (unquoted). */
  readonly name: string;
  /** The column's own type with its typmod, schema-qualified unless in pg_catalog: `character varying(40)`. */
  readonly typeName: string;
  /** The type strategies are checked against: a domain's base type (through nested domains), else `typeName`. */
  readonly baseTypeName: string;
  readonly baseTypeOid: number;
  /** pg_type.typcategory of the base type ('S' string, 'N' numeric, 'D' date/time, 'A' array…). */
  readonly category: string;
  readonly isDomain: boolean;
  readonly isArray: boolean;
  readonly isEnum: boolean;
  /** The column or one of its domains is NOT NULL. */
  readonly notNull: boolean;
  /** n of varchar(n) / char(n); undefined for unbounded text and other types. */
  readonly maxLength: number | undefined;
  /** p and s of numeric(p,s) (s may be negative since PostgreSQL 15); undefined for unconstrained numeric and other types. */
  readonly numeric?: { readonly precision: number; readonly scale: number } | undefined;
  /**
   * The column's collation, quoted and schema-qualified (`public.review_ci`), when it is not the database
   * default (attcollation other than 0 and `default`); undefined otherwise.
   */
  readonly collation?: string | undefined;
}

interface ColumnRow {
  name: string;
  attnum: string;
  generated: string;
  identity: string;
  type_name: string;
  base_type_name: string;
  base_oid: string;
  category: string;
  base_kind: string;
  base_typmod: string;
  not_null: unknown;
  is_domain: unknown;
  collation: string | null;
}

/** format_type, qualified when the type lives outside pg_catalog (Start and the chunks may differ in search_path). */
const qualifiedType = (type: string, oid: string, typmod: string) =>
  `CASE WHEN ${type}.typnamespace <> 'pg_catalog'::regnamespace AND pg_catalog.pg_type_is_visible(${oid})
        THEN pg_catalog.quote_ident((SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = ${type}.typnamespace))
             || '.' || pg_catalog.format_type(${oid}, ${typmod})
        ELSE pg_catalog.format_type(${oid}, ${typmod}) END`;

const READ_COLUMNS_SQL = `
WITH RECURSIVE chain AS (
  SELECT a.attname, a.atttypid AS type_oid, a.atttypmod AS typmod, a.attnotnull AS not_null, 0 AS depth
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = $1 AND a.attname = ANY($2::text[]) AND NOT a.attisdropped
  UNION ALL
  SELECT c.attname, t.typbasetype, t.typtypmod, c.not_null OR t.typnotnull, c.depth + 1
    FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.type_oid
   WHERE t.typtype = 'd'
)
SELECT a.attname AS name, a.attnum::text AS attnum, a.attgenerated::text AS generated,
       a.attidentity::text AS identity,
       ${qualifiedType('t', 'a.atttypid', 'a.atttypmod')} AS type_name,
       ${qualifiedType('bt', 'b.type_oid', 'b.typmod')} AS base_type_name,
       b.type_oid::text AS base_oid, bt.typcategory::text AS category, bt.typtype::text AS base_kind,
       b.typmod::text AS base_typmod, b.not_null, a.atttypid <> b.type_oid AS is_domain,
       (SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(co.collname)
          FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
         WHERE co.oid = a.attcollation AND a.attcollation <> 100 /* default */) AS collation
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  JOIN LATERAL (SELECT * FROM chain c WHERE c.attname = a.attname ORDER BY c.depth DESC LIMIT 1) b ON true
  JOIN pg_catalog.pg_type bt ON bt.oid = b.type_oid
 WHERE a.attrelid = $1 AND a.attname = ANY($2::text[]) AND NOT a.attisdropped`;

export const BPCHAR = 1042;
const VARCHAR = 1043;
const NUMERIC = 1700;

/** numeric(p,s) from its typmod (scale sign-extended from 11 bits, as PostgreSQL 15 stores it). */
function numericOf(baseTypeOid: number, typmod: number) {
  if (baseTypeOid !== NUMERIC || typmod < 4) return undefined;
  const bits = typmod - 4;
  return { precision: (bits >> 16) & 0xffff, scale: ((bits & 0x7ff) ^ 1024) - 1024 };
}

/**
 * The columns `names` (catalog names) of table `tableOid`, in the order given.
 *
 * @throws CatalogError naming every column that is missing (or dropped), a system column, generated, or an
 *   identity GENERATED ALWAYS (an UPDATE cannot write it)
 */
export async function readMaskedColumns(
  db: Queryable,
  tableOid: number,
  names: readonly string[],
): Promise<MaskedColumn[]> {
  const { rows } = await db.query<ColumnRow>(READ_COLUMNS_SQL, [tableOid, names]);
  const byName = new Map(rows.map((row) => [row.name, row]));
  const problems: string[] = [];
  const columns: MaskedColumn[] = [];
  for (const name of names) {
    const row = byName.get(name);
    const problem = !row
      ? 'does not exist'
      : Number(row.attnum) < 0
        ? 'is a system column'
        : row.generated !== ''
          ? 'is a generated column'
          : row.identity === 'a'
            ? 'is an identity column GENERATED ALWAYS'
            : undefined;
    if (problem || !row) problems.push(`column ${quoteIdent(name)} ${problem}`);
    else columns.push(maskedColumnOf(row));
  }
  if (problems.length > 0) {
    const { rows: tables } = await db.query<{ name: string }>('SELECT $1::oid::regclass::text AS name', [
      tableOid,
    ]);
    const table = tables[0]?.name ?? String(tableOid);
    throw new CatalogError(`table ${table}: ${problems.join('; ')}: it cannot be masked`, { table });
  }
  return columns;
}

function maskedColumnOf(row: ColumnRow): MaskedColumn {
  const baseTypeOid = Number(row.base_oid);
  const typmod = Number(row.base_typmod);
  return {
    name: row.name,
    typeName: row.type_name,
    baseTypeName: row.base_type_name,
    baseTypeOid,
    category: row.category,
    isDomain: pgBool(row.is_domain),
    isArray: row.category === 'A',
    isEnum: row.base_kind === 'e',
    notNull: pgBool(row.not_null),
    maxLength: (baseTypeOid === BPCHAR || baseTypeOid === VARCHAR) && typmod >= 4 ? typmod - 4 : undefined,
    numeric: numericOf(baseTypeOid, typmod),
    collation: row.collation ?? undefined,
  };
}
