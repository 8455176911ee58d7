/**
 * What the session's role may do, read from the catalog (has_*_privilege, pg_has_role): the facts the
 * privilege check (functions/run/check-privileges.ts) decides on. Read only; names come back quoted the
 * way PostgreSQL quotes them (`public.events`, `"Sales"."Orders"`) for messages.
 */
import { LEDGER_SCHEMA } from '../../lib/contracts/protected-schemas.ts';
import type { LedgerPrivileges, TablePrivileges } from '../core/privileges.ts';
import { pgBool } from './catalog.ts';
import type { Queryable } from './transactions.ts';

export async function readTablePrivileges(db: Queryable, tableOid: string): Promise<TablePrivileges> {
  const { rows: version } = await db.query<{ v: string }>(
    `SELECT current_setting('server_version_num') AS v`,
  );
  // MAINTAIN (VACUUM without owning the table) exists from PostgreSQL 17; naming it earlier is an error.
  const maintain = Number(version[0]?.v ?? 0) >= 170_000 ? `OR has_table_privilege(c.oid, 'MAINTAIN')` : '';
  const { rows } = await db.query<Record<string, string | boolean>>(
    `SELECT current_user::text AS role,
            quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
            NOT EXISTS (SELECT 1 FROM pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                           AND NOT has_column_privilege(c.oid, a.attnum, 'SELECT')) AS can_select,
            has_any_column_privilege(c.oid, 'UPDATE') AS can_update,
            has_table_privilege(c.oid, 'DELETE') AS can_delete,
            pg_has_role(c.relowner, 'USAGE') AS owner,
            (pg_has_role(c.relowner, 'USAGE')
              OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE')
              OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
              ${maintain}) AS can_vacuum,
            (pg_has_role('pg_monitor', 'USAGE') OR pg_has_role('pg_read_all_stats', 'USAGE')) AS read_all_stats
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = $1::oid`,
    [tableOid],
  );
  const row = rows[0];
  if (!row) throw new Error(`table ${tableOid} disappeared from pg_class`);
  return {
    role: String(row.role),
    table: String(row.name),
    select: pgBool(row.can_select),
    update: pgBool(row.can_update),
    delete: pgBool(row.can_delete),
    owner: pgBool(row.owner),
    vacuum: pgBool(row.can_vacuum),
    readAllStats: pgBool(row.read_all_stats),
  };
}

/** The relations among `oids` the role does not own, quoted; none when it owns them all. */
export async function listNotOwned(db: Queryable, oids: readonly string[]): Promise<string[]> {
  if (oids.length === 0) return [];
  const { rows } = await db.query<{ name: string }>(
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = ANY ($1::oid[]) AND NOT pg_has_role(c.relowner, 'USAGE')
      ORDER BY 1`,
    [oids],
  );
  return rows.map((r) => r.name);
}

/** Whether the role may create objects in the schema named exactly `schema` (false when it does not exist). */
export async function canCreateIn(db: Queryable, schema: string): Promise<boolean> {
  const { rows } = await db.query<{ ok: string | boolean }>(
    `SELECT coalesce((SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = $1), false) AS ok`,
    [schema],
  );
  return pgBool(rows[0]?.ok);
}

export async function readLedgerPrivileges(db: Queryable): Promise<LedgerPrivileges> {
  const { rows } = await db.query<Record<string, string | boolean | null>>(
    `SELECT quote_ident(current_database()) AS database,
            has_database_privilege(current_database(), 'CREATE') AS create_on_database,
            n.oid IS NOT NULL AS schema_exists,
            n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE') AS schema_usage,
            n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'CREATE') AS schema_create
       FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = $1`,
    [LEDGER_SCHEMA],
  );
  const row = rows[0] ?? {};
  const schemaExists = pgBool(row.schema_exists);
  const schemaUsage = pgBool(row.schema_usage);
  const { rows: relations } = schemaExists
    ? await db.query<Record<string, string | boolean>>(
        `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, c.relkind::text AS kind,
                CASE WHEN c.relkind = 'S' THEN false ELSE has_table_privilege(c.oid, 'SELECT') END AS s,
                CASE WHEN c.relkind = 'S' THEN false ELSE has_table_privilege(c.oid, 'INSERT') END AS i,
                CASE WHEN c.relkind = 'S' THEN false ELSE has_table_privilege(c.oid, 'UPDATE') END AS u,
                CASE WHEN c.relkind = 'S' THEN false ELSE has_table_privilege(c.oid, 'DELETE') END AS d,
                CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'USAGE') ELSE false END AS usage,
                pg_has_role(c.relowner, 'USAGE') AS owner
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'S')
          ORDER BY c.relname`,
        [LEDGER_SCHEMA],
      )
    : { rows: [] };
  const ledgerRelations = relations.map((r) => ({
    name: String(r.name),
    kind: String(r.kind),
    select: pgBool(r.s),
    insert: pgBool(r.i),
    update: pgBool(r.u),
    delete: pgBool(r.d),
    usage: pgBool(r.usage),
    owner: pgBool(r.owner),
  }));
  const migrations = ledgerRelations.find((r) => r.name === `${LEDGER_SCHEMA}.schema_migrations`);
  const appliedMigrations =
    schemaUsage && migrations?.select
      ? (
          await db.query<{ version: string }>(`SELECT version FROM ${LEDGER_SCHEMA}.schema_migrations`)
        ).rows.map((r) => r.version)
      : undefined;
  return {
    database: String(row.database ?? ''),
    createOnDatabase: pgBool(row.create_on_database),
    schemaExists,
    schemaUsage,
    schemaCreate: pgBool(row.schema_create),
    relations: ledgerRelations,
    appliedMigrations: migrations ? appliedMigrations : [],
  };
}
