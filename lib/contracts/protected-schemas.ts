/**
 * Schemas no policy may archive from, purge or move partitions into: pg-lifecycle's own ledger (a purge
 * of `lifecycle.runs` would delete the record of what it archived) and PostgreSQL's system schemas.
 * Checked on the config (`validate`) and again on the table the catalog resolved at run start, since an
 * unqualified name is found through the search_path.
 */

/** The ledger's schema (sql/001_ledger.sql). */
export const LEDGER_SCHEMA = 'lifecycle';

/** Why no policy may touch `schema` (a catalog name, exact case), or undefined when it may. */
export function protectedSchemaReason(schema: string): string | undefined {
  if (schema === LEDGER_SCHEMA) return `schema ${LEDGER_SCHEMA} holds pg-lifecycle's own ledger`;
  if (schema === 'information_schema') return 'information_schema is a PostgreSQL system schema';
  // PostgreSQL reserves every schema name starting with pg_ (pg_catalog, pg_toast, pg_temp_N, pg_toast_temp_N).
  if (schema.startsWith('pg_')) return `${schema} is a PostgreSQL system schema`;
  return undefined;
}
