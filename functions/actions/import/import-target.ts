/**
 * An import's tables as the catalog has them, and every check a run passes before it writes anything:
 * both tables exist (and are not the ledger's), the mapped target columns exist, the source key is unique
 * and NOT NULL (the walk order), the target key has a unique index (ON CONFLICT's arbiter: what makes a
 * re-run skip rows already imported), the role may read the source and insert into the target, every
 * expression calls only what a filter may (checked on PostgreSQL's parse tree, adapters/filter-references.ts)
 * and the whole INSERT parses and type-checks (EXPLAIN, never executed).
 */
import type pg from 'pg';
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { type ResolvedTable, resolveColumn, resolveTable } from '../../adapters/catalog.ts';
import {
  FilterCheckUnavailable,
  type FilterHazard,
  findFilterHazards,
} from '../../adapters/filter-references.ts';
import { resolveFilterFunctions } from '../../adapters/function-safety.ts';
import { type Queryable, readOnly } from '../../adapters/transactions.ts';
import { CatalogError, InsufficientPrivilegeError, InvalidFilterError } from '../../core/errors.ts';
import { describeError } from '../../core/redact-database-error.ts';
import { type ImportPolicy, sourceName } from './contract.ts';
import { explainInsertSql, type ImportShape, type KeyColumn } from './statements.ts';

const CHECK_TIMEOUT_MS = 10_000;

function nameOf(table: ResolvedTable): string {
  return quoteQualified(table.schema, table.table);
}

/**
 * Resolves the policy's tables, keys and columns; throws the error a run would stop with. `sourceTable`: the
 * quoted name of the table an object source was staged in (or its stand-in at Start); required for one.
 */
export async function resolveImportShape(
  db: Queryable,
  policy: ImportPolicy,
  sourceTable?: string,
): Promise<ImportShape> {
  const options = policy.import;
  const table = sourceTable ?? (typeof options.source === 'string' ? options.source : undefined);
  if (table === undefined)
    throw new CatalogError(`import source ${sourceName(options.source)}: not staged in a table yet`);
  const source = await resolveTable(db, table);
  const target = await resolveTable(db, options.target);
  if (source.oid === target.oid)
    throw new CatalogError(`import source and target are the same table ${nameOf(source)}`);
  const castTypes = await columnTypes(db, target.oid, { modifiers: false });
  const columns = Object.entries(options.columns).map(([column, expression]) => {
    const name = resolveColumn(target, column, 'import.columns').name;
    return { target: name, expression, castType: castTargetOf(castTypes.get(name) ?? 'text') };
  });
  const sourceKey = await resolveSourceKey(db, source, options.sourceKey);
  const targetKey = await resolveTargetKey(db, target, options.targetKey);
  // A key the mapping does not fill (a serial id) never conflicts: every re-run would insert every row again.
  const unmapped = targetKey.filter((k) => !columns.some((c) => c.target === k));
  if (unmapped.length > 0)
    throw new CatalogError(
      `import.targetKey column ${unmapped.join(', ')} of ${nameOf(target)} is not in import.columns: rows would never be found already imported, and every re-run would insert them again (map it, or name as targetKey a unique key the mapping fills)`,
    );
  return {
    source: { schema: source.schema, table: source.table, oid: source.oid },
    target: { schema: target.schema, table: target.table, oid: target.oid },
    sourceKey,
    targetKey,
    columns,
  };
}

/** The source's walk order: the given columns (unique and NOT NULL together) or its primary key. */
async function resolveSourceKey(
  db: Queryable,
  source: ResolvedTable,
  named: readonly string[] | undefined,
): Promise<KeyColumn[]> {
  if (!named) {
    if (source.primaryKey.length === 0) {
      throw new CatalogError(
        `import source ${nameOf(source)} has no primary key: name import.sourceKey, columns that are unique and NOT NULL together (the order the import walks and the key its rejects are recorded by)`,
      );
    }
    return source.primaryKey.map((k) => ({ name: k.name, typeName: k.typeName }));
  }
  const columns = named.map((name) => resolveColumn(source, name, 'import.sourceKey'));
  const nullable = columns.filter((c) => !c.notNull).map((c) => c.name);
  if (nullable.length > 0)
    throw new CatalogError(
      `import.sourceKey column ${nullable.join(', ')} of ${nameOf(source)} may be NULL: a keyset walk would skip those rows`,
    );
  if (
    !(await hasUniqueIndexOn(
      db,
      source.oid,
      columns.map((c) => c.name),
    ))
  ) {
    throw new CatalogError(
      `import.sourceKey (${columns.map((c) => c.name).join(', ')}) has no unique index on ${nameOf(source)}: the walk would skip or repeat rows with equal keys`,
    );
  }
  const types = await columnTypes(db, source.oid);
  return columns.map((c) => ({ name: c.name, typeName: types.get(c.name) ?? c.typeName }));
}

/** The target's "already imported" key: the given columns or its primary key, with a unique index on exactly them. */
async function resolveTargetKey(
  db: Queryable,
  target: ResolvedTable,
  named: readonly string[] | undefined,
): Promise<string[]> {
  const columns = named
    ? named.map((name) => resolveColumn(target, name, 'import.targetKey').name)
    : target.primaryKey.map((k) => k.name);
  if (columns.length === 0) {
    throw new CatalogError(
      `import target ${nameOf(target)} has no primary key: name import.targetKey, columns with a unique index (without one a re-run would import every row again)`,
    );
  }
  if (!(await hasUniqueIndexOn(db, target.oid, columns))) {
    throw new CatalogError(
      `import.targetKey (${columns.join(', ')}) has no unique index on ${nameOf(target)} (ON CONFLICT needs one on exactly these columns)`,
    );
  }
  const nullable = columns.filter((name) => !target.columns.find((c) => c.name === name)?.notNull);
  if (nullable.length > 0 && !(await hasUniqueIndexOn(db, target.oid, columns, { nullsNotDistinct: true }))) {
    throw new CatalogError(
      `import.targetKey column ${nullable.join(', ')} of ${nameOf(target)} may be NULL: a row with a NULL key never conflicts, so every re-run would insert it again (make the column NOT NULL, or the index UNIQUE NULLS NOT DISTINCT)`,
    );
  }
  return columns;
}

/** Whether a valid, non-partial unique index covers exactly `columns` (any order), no expressions. */
async function hasUniqueIndexOn(
  db: Queryable,
  tableOid: string,
  columns: readonly string[],
  options: { readonly nullsNotDistinct?: boolean } = {},
): Promise<boolean> {
  const { rows } = await db.query<{ found: string }>(
    `SELECT EXISTS (
       SELECT 1 FROM pg_index i
        WHERE i.indrelid = $1::oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
          ${options.nullsNotDistinct ? 'AND i.indnullsnotdistinct' : ''}
          AND i.indexprs IS NULL AND i.indnkeyatts = cardinality($2::text[])
          AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
                 FROM pg_attribute a
                WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey[0:i.indnkeyatts - 1]))
              = (SELECT array_agg(c ORDER BY c) FROM unnest($2::text[]) AS c)
     )::text AS found`,
    [tableOid, columns],
  );
  return rows[0]?.found === 'true';
}

/**
 * Each column's declared type (domains kept: a cast to a domain checks it), with or without its modifier
 * (`numeric(10,2)` or `numeric`).
 */
async function columnTypes(
  db: Queryable,
  tableOid: string,
  options: { readonly modifiers: boolean } = { modifiers: true },
): Promise<Map<string, string>> {
  const { rows } = await db.query<{ name: string; type_name: string }>(
    `SELECT attname AS name, format_type(atttypid, CASE WHEN $2 THEN atttypmod END) AS type_name
       FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped`,
    [tableOid, options.modifiers],
  );
  return new Map(rows.map((r) => [r.name, r.type_name]));
}

/** SELECT on the source and INSERT on the target: what every chunk does. */
export async function checkImportPrivileges(db: Queryable, shape: ImportShape): Promise<void> {
  const { rows } = await db.query<{ role: string; can_select: string; can_insert: string }>(
    `SELECT current_user::text AS role,
            has_table_privilege($1::oid, 'SELECT')::text AS can_select,
            has_table_privilege($2::oid, 'INSERT')::text AS can_insert`,
    [shape.source.oid, shape.target.oid],
  );
  const row = rows[0];
  if (!row) return;
  const missing = [];
  if (row.can_select !== 'true')
    missing.push({
      privilege: 'SELECT',
      object: quoteQualified(shape.source.schema, shape.source.table),
      reason: 'import reads the source rows',
    });
  if (row.can_insert !== 'true')
    missing.push({
      privilege: 'INSERT',
      object: quoteQualified(shape.target.schema, shape.target.table),
      reason: 'import inserts the mapped rows',
    });
  if (missing.length > 0) throw new InsufficientPrivilegeError(row.role, missing);
}

/**
 * Every column expression may call only what a filter may (PostgreSQL's own immutable/stable functions and
 * `import.functions`), read no foreign table and lock no row; then the INSERT as a whole parses and its
 * types fit the target (EXPLAIN, READ ONLY: never executed). Each expression is checked as the filter
 * `(<expression>) IS NULL` over the source, so the same parse-tree check as filters applies.
 * @throws InvalidFilterError naming the column and what is wrong
 */
export async function checkImportExpressions(
  db: pg.ClientBase,
  shape: ImportShape,
  functions: readonly string[] = [],
  /** Runs each check in a READ ONLY transaction; an object source's stand-in lives in the caller's own. */
  inTransaction: <T>(work: () => Promise<T>) => Promise<T> = (work) => readOnly(db, CHECK_TIMEOUT_MS, work),
): Promise<void> {
  const sourceName = quoteQualified(shape.source.schema, shape.source.table);
  for (const column of shape.columns) {
    const describe = `import.columns ${JSON.stringify(column.target)} = ${JSON.stringify(column.expression)}`;
    let hazards: FilterHazard[];
    try {
      hazards = await inTransaction(async () =>
        findFilterHazards(db, {
          qualifiedName: sourceName,
          tableOid: shape.source.oid,
          filter: `(${column.expression}) IS NULL`,
          allowed: await resolveFilterFunctions(db, functions),
        }),
      );
    } catch (error) {
      if (error instanceof FilterCheckUnavailable)
        throw new InvalidFilterError(
          `${describe} could not be checked: ${error.message}. Nothing was changed.`,
        );
      if ((error as { code?: string }).code?.startsWith('42'))
        throw new InvalidFilterError(
          `${describe} on ${sourceName}: ${describeError(error)}. Nothing was changed.`,
        );
      throw error;
    }
    if (hazards.length > 0) {
      throw new InvalidFilterError(
        `${describe} ${hazards.map((h) => `${h.kind}: ${h.what}`).join('; ')}: an import expression may call only immutable or stable functions (or those listed in import.functions), read no foreign table and lock no row. Nothing was changed.`,
      );
    }
  }
  try {
    await inTransaction(() => db.query(explainInsertSql(shape)));
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('42'))
      throw new InvalidFilterError(
        `import.columns do not fit ${quoteQualified(shape.target.schema, shape.target.table)}: ${describeError(error)}. Nothing was changed.`,
      );
    throw error;
  }
}

/**
 * The type an expression is cast to: the column's without its modifier, except `bit`, which without one means
 * bit(1) (every longer value would be refused): `bit varying` then, and the assignment checks the length.
 */
function castTargetOf(typeWithoutModifier: string): string {
  if (typeWithoutModifier === 'bit') return 'bit varying';
  if (typeWithoutModifier === 'bit[]') return 'bit varying[]';
  return typeWithoutModifier;
}
