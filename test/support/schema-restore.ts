/**
 * How the backup-schema tests take a backup's schema and restore it: the definition read as a backup reads
 * it, the generated files run as psql runs them, the result compared through the catalog.
 */
import type pg from 'pg';
import type { SchemaDefinition } from '../../functions/actions/backup/schema-definition.ts';
import { generateSchemaSql, type SchemaMapping } from '../../functions/actions/backup/schema-sql.ts';
import { readSchemaDefinition } from '../../functions/actions/backup/table-definition.ts';
import { resolveTable } from '../../functions/adapters/catalog.ts';
import { snapshotSchemas } from './catalog-snapshot.ts';
import { withClient } from './database.ts';

/** The definition as a backup reads it: names resolved, then one REPEATABLE READ transaction. */
export async function readDefinition(url: string, tables: readonly string[]): Promise<SchemaDefinition> {
  return withClient(url, async (client) => {
    const oids: string[] = [];
    for (const table of tables) oids.push((await resolveTable(client, table)).oid);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      return await readSchemaDefinition(client, oids);
    } finally {
      await client.query('ROLLBACK');
    }
  });
}

/** Pre-data, then `between` (the data load), then post-data, each as one multi-statement text like psql -f. */
export async function restore(
  url: string,
  definition: SchemaDefinition,
  mapping: SchemaMapping,
  between: (client: pg.Client) => Promise<void> = async () => undefined,
): Promise<void> {
  const sql = generateSchemaSql(definition, mapping);
  await withClient(url, async (client) => {
    await client.query(sql.preData);
    await between(client);
    await client.query(sql.postData);
  });
}

/** The catalog snapshot of `schemas` in the database at `url`. */
export const snapshot = (url: string, schemas: readonly string[]) =>
  withClient(url, (client) => snapshotSchemas(client, schemas));
