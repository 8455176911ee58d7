/**
 * Resolves config names against pg_catalog. Nothing from config reaches SQL as an identifier until it
 * has been found here; the exact catalog names are then quoted by the SQL builders.
 */
import { parseQualifiedName, quoteQualified } from '../../lib/contracts/identifiers.ts';
import type { CatalogColumn } from '../core/catalog-column.ts';
import type { ChunkTarget, TimeColumnKind } from '../core/chunk-sql.ts';
import { CatalogError } from '../core/errors.ts';
import { type ForeignKeyReference, onDeleteOf } from '../core/foreign-keys.ts';
import type { Queryable } from './transactions.ts';

/** A boolean column as it arrives: text ('t'/'f', or 'true') on the steps' connections, a boolean on a pool with type parsers. */
export function pgBool(value: unknown): boolean {
  return value === true || value === 't' || value === 'true';
}

export interface ResolvedTable {
  readonly oid: string;
  readonly schema: string;
  readonly table: string;
  /** 'r' ordinary, 'p' partitioned. */
  readonly kind: 'r' | 'p';
  readonly columns: CatalogColumn[];
  readonly primaryKey: ReadonlyArray<{ name: string; typeName: string }>;
}

interface NameMatch {
  oid: string;
  nspname: string;
  relname: string;
  relkind: string;
}

/**
 * Finds `table` or `schema.table`. Quoted parts match exactly. Unquoted parts match as written, then
 * folded to lower case like PostgreSQL does, then case-insensitively when that is unambiguous (so
 * `public.CameraEvents` finds a table created as "CameraEvents").
 */
export async function resolveTable(db: Queryable, qualifiedName: string): Promise<ResolvedTable> {
  const parts = parseQualifiedName(qualifiedName);
  if (parts.length > 2)
    throw new CatalogError(`table ${qualifiedName}: expected "table" or "schema.table"`, {
      table: qualifiedName,
    });
  const schemaPart = parts.length === 2 ? parts[0] : undefined;
  const tablePart = parts[parts.length - 1];
  if (!tablePart) throw new CatalogError(`table ${qualifiedName}: empty name`, { table: qualifiedName });

  const { rows } = await db.query<NameMatch>(
    `SELECT c.oid::text AS oid, n.nspname, c.relname, c.relkind::text AS relkind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE lower(c.relname) = lower($1)
        AND (CASE WHEN $2::text IS NULL THEN n.nspname = ANY (current_schemas(false))
                  ELSE lower(n.nspname) = lower($2) END)
        AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
    [tablePart.name, schemaPart?.name ?? null],
  );
  // Without a schema the query searched the session's search_path, like PostgreSQL.
  const visible = rows;
  const pick = (candidates: NameMatch[]): NameMatch[] => {
    const byPart = (value: string, part: { name: string; quoted: boolean }) => {
      if (part.quoted) return value === part.name;
      return value === part.name || value === part.name.toLowerCase();
    };
    const exact = candidates.filter(
      (r) => byPart(r.relname, tablePart) && (!schemaPart || byPart(r.nspname, schemaPart)),
    );
    if (exact.length > 0) return exact;
    const anyQuoted = tablePart.quoted || schemaPart?.quoted;
    return anyQuoted ? [] : candidates;
  };
  const matches = pick(visible);
  if (matches.length === 0) {
    const hint =
      rows.length > 0
        ? ` (did you mean ${rows.map((r) => quoteQualified(r.nspname, r.relname)).join(' or ')}?)`
        : '';
    throw new CatalogError(`table ${qualifiedName} does not exist${hint}`, { table: qualifiedName });
  }
  if (matches.length > 1) {
    throw new CatalogError(
      `table ${qualifiedName} is ambiguous: ${matches.map((r) => quoteQualified(r.nspname, r.relname)).join(', ')}; quote the name`,
      { table: qualifiedName },
    );
  }
  const match = matches[0] as NameMatch;
  if (match.relkind !== 'r' && match.relkind !== 'p') {
    throw new CatalogError(
      `${quoteQualified(match.nspname, match.relname)} is not a table (relkind ${match.relkind})`,
      { table: `${match.nspname}.${match.relname}` },
    );
  }
  const columns = await listColumns(db, match.oid);
  const primaryKey = await listPrimaryKey(db, match.oid);
  return {
    oid: match.oid,
    schema: match.nspname,
    table: match.relname,
    kind: match.relkind,
    columns,
    primaryKey,
  };
}

interface ColumnRow {
  name: string;
  type_name: string;
  base_type: string;
  base_builtin: string;
  /** 't' / 'f': the connection returns every value as text. */
  is_array: string;
  ndims: string;
  typmod: string;
  not_null: string;
}

/** Columns in attnum order; domains resolved to their base type (one level, which covers real schemas). */
export async function listColumns(db: Queryable, tableOid: string): Promise<CatalogColumn[]> {
  const { rows } = await db.query<ColumnRow>(
    `WITH cols AS (
       SELECT a.attnum, a.attname, a.attnotnull, a.attndims,
              CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END AS typid,
              CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped)
     SELECT c.attname AS name, format_type(c.typid, c.typmod) AS type_name,
            (t.typcategory = 'A' AND t.typelem <> 0) AS is_array,
            CASE WHEN t.typcategory = 'A' AND t.typelem <> 0
                 THEN (SELECT CASE WHEN e.typtype = 'd' THEN (SELECT b.typname FROM pg_type b WHERE b.oid = e.typbasetype)
                                   ELSE e.typname END FROM pg_type e WHERE e.oid = t.typelem)
                 ELSE t.typname END AS base_type,
            CASE WHEN t.typcategory = 'A' AND t.typelem <> 0
                 THEN (SELECT CASE WHEN e.typtype = 'd'
                                   THEN (SELECT b.typnamespace = 'pg_catalog'::regnamespace FROM pg_type b WHERE b.oid = e.typbasetype)
                                   ELSE e.typnamespace = 'pg_catalog'::regnamespace END
                         FROM pg_type e WHERE e.oid = t.typelem)
                 ELSE t.typnamespace = 'pg_catalog'::regnamespace END AS base_builtin,
            c.attndims::text AS ndims, c.typmod::text AS typmod, c.attnotnull AS not_null
       FROM cols c JOIN pg_type t ON t.oid = c.typid
      ORDER BY c.attnum`,
    [tableOid],
  );
  return rows.map((r) => {
    const typmod = Number(r.typmod);
    const column: CatalogColumn = {
      name: r.name,
      typeName: r.type_name,
      baseType: r.base_type,
      baseTypeBuiltin: r.base_builtin === 't',
      isArray: r.is_array === 't',
      arrayDims: Number(r.ndims),
      notNull: r.not_null === 't',
      ...numericPrecision(r.base_type, typmod),
    };
    return column;
  });
}

/** numeric(p,s) typmod: ((p << 16) | s) + 4; scale is a signed 16-bit value since PostgreSQL 15. */
function numericPrecision(
  baseType: string,
  typmod: number,
): { numericPrecision?: number; numericScale?: number } {
  if (baseType !== 'numeric' || typmod < 4) return {};
  const packed = typmod - 4;
  const precision = (packed >> 16) & 0xffff;
  const rawScale = packed & 0xffff;
  const scale = rawScale > 0x7fff ? rawScale - 0x10000 : rawScale;
  return { numericPrecision: precision, numericScale: scale };
}

async function listPrimaryKey(
  db: Queryable,
  tableOid: string,
): Promise<Array<{ name: string; typeName: string }>> {
  const { rows } = await db.query<{ name: string; type_name: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type_name
       FROM pg_index i
       JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1::oid AND i.indisprimary
      ORDER BY k.ord`,
    [tableOid],
  );
  return rows.map((r) => ({ name: r.name, typeName: r.type_name }));
}

const TIME_KINDS: Record<string, TimeColumnKind> = {
  timestamptz: 'timestamptz',
  timestamp: 'timestamp',
  date: 'date',
};

/** Finds the policy's time column (same matching rules as tables) and checks it is a time type. */
export function resolveTimeColumn(
  table: ResolvedTable,
  columnName: string,
): { name: string; kind: TimeColumnKind } {
  const column = resolveColumn(table, columnName, 'timeColumn');
  const qualified = quoteQualified(table.schema, table.table);
  const kind = column.isArray ? undefined : TIME_KINDS[column.baseType];
  if (!kind) {
    throw new CatalogError(
      `column ${qualified}.${column.name} is ${column.typeName}; timeColumn must be timestamptz, timestamp or date`,
      { table: `${table.schema}.${table.table}` },
    );
  }
  return { name: column.name, kind };
}

/**
 * A column named in a policy (`role` says where: timeColumn, anonymize.columns…) as the catalog has it: quoted
 * names match exactly; unquoted ones as written, folded to lower case, then case-insensitively when unambiguous.
 */
export function resolveColumn(table: ResolvedTable, columnName: string, role: string): CatalogColumn {
  const [part] = parseQualifiedName(columnName);
  if (!part) throw new CatalogError(`${role} is empty`, { table: `${table.schema}.${table.table}` });
  const exact = table.columns.filter(
    (c) => c.name === part.name || (!part.quoted && c.name === part.name.toLowerCase()),
  );
  const loose = part.quoted
    ? []
    : table.columns.filter((c) => c.name.toLowerCase() === part.name.toLowerCase());
  const matches = exact.length > 0 ? exact : loose;
  const qualified = quoteQualified(table.schema, table.table);
  if (matches.length !== 1) {
    const known = table.columns.map((c) => c.name).join(', ');
    throw new CatalogError(
      matches.length === 0
        ? `column ${columnName} does not exist in ${qualified} (columns: ${known})`
        : `column ${columnName} is ambiguous in ${qualified}; quote it`,
      { table: `${table.schema}.${table.table}` },
    );
  }
  return matches[0] as CatalogColumn;
}

/** Everything the chunk SQL builders need, from a resolved table and a policy. */
export function toChunkTarget(
  table: ResolvedTable,
  timeColumn: { name: string; kind: TimeColumnKind },
  filter: string | undefined,
): ChunkTarget {
  return {
    schema: table.schema,
    table: table.table,
    partitioned: table.kind === 'p',
    timeColumn,
    keyColumns: table.primaryKey,
    columnNames: table.columns.map((c) => c.name),
    filter,
  };
}

/**
 * Foreign keys that reference the table (the constraint on a partitioned referencing table once, not its
 * per-partition clones), ordered by referencing table and constraint name.
 */
export async function listReferencingForeignKeys(
  db: Queryable,
  tableOid: string,
): Promise<ForeignKeyReference[]> {
  const { rows } = await db.query<{
    conname: string;
    nspname: string;
    relname: string;
    oid: string;
    deltype: string;
  }>(
    `SELECT con.conname, n.nspname, c.relname, c.oid::text AS oid, con.confdeltype::text AS deltype
       FROM pg_constraint con
       JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      -- References to the table or to any of its partitions (a foreign key may name a leaf directly);
      -- conparentid = 0 keeps the declared constraints, not the per-partition clones PostgreSQL adds.
      WHERE con.contype = 'f' AND con.conparentid = 0
        -- pg_partition_tree lists nothing for a table that is not partitioned: the table itself comes too.
        AND con.confrelid IN (SELECT relid FROM pg_partition_tree($1::oid::regclass) UNION SELECT $1::oid)
      ORDER BY n.nspname, c.relname, con.conname`,
    [tableOid],
  );
  return rows.map((r) => ({
    constraint: r.conname,
    referencingTable: quoteQualified(r.nspname, r.relname),
    referencingOid: r.oid,
    onDelete: onDeleteOf(r.deltype),
  }));
}
