/**
 * Applies the ledger migrations in `sql/NNN_*.sql`, in order, once each, under an advisory lock so that
 * concurrent run starts do not race. Called by the start step and by the CLI. Bounded by the connection's
 * lock_timeout (functions/commons/database.ts): a migration's ACCESS EXCLUSIVE lock queued behind a running
 * chunk would otherwise hold up every later statement on that ledger table; it gives up and is retried.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pgBool } from './catalog.ts';
import type { Queryable } from './transactions.ts';

const MIGRATION_FILE = /^\d{3}_[a-z0-9_]+\.sql$/;

/** Source checkout: <repo>/sql; Lambda bundle: sql/ copied beside the bundled handler. */
export function findMigrationsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [process.env.LIFECYCLE_SQL_DIR, join(here, '../../sql'), join(here, 'sql')];
  for (const dir of candidates) {
    if (dir && existsSync(join(dir, '001_ledger.sql'))) return dir;
  }
  throw new Error(`ledger migrations not found (looked in ${candidates.filter(Boolean).join(', ')})`);
}

export function listMigrations(dir = findMigrationsDir()): Array<{ version: string; sql: string }> {
  return readdirSync(dir)
    .filter((f) => MIGRATION_FILE.test(f))
    .sort()
    .map((f) => ({ version: f.replace(/\.sql$/, ''), sql: readFileSync(join(dir, f), 'utf8') }));
}

/** Returns the versions applied by this call (empty when the ledger was already current). */
export async function applyMigrations(db: Queryable, dir?: string): Promise<string[]> {
  const migrations = listMigrations(dir);
  const applied: string[] = [];
  await db.query('BEGIN');
  try {
    await db.query(`SELECT pg_advisory_xact_lock(hashtext('pg-lifecycle:migrations'))`);
    // CREATE … IF NOT EXISTS checks CREATE on the database (schema) even when the object exists: skip it
    // then, so a role given only its ledger privileges (functions/run/check-privileges.ts) can run.
    const { rows: present } = await db.query<{ schema: string | boolean; tracked: string | boolean }>(
      `SELECT to_regnamespace('lifecycle') IS NOT NULL AS schema,
              to_regclass('lifecycle.schema_migrations') IS NOT NULL AS tracked`,
    );
    if (!pgBool(present[0]?.schema)) await db.query('CREATE SCHEMA IF NOT EXISTS lifecycle');
    if (!pgBool(present[0]?.tracked)) {
      await db.query(
        `CREATE TABLE IF NOT EXISTS lifecycle.schema_migrations (
           version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
      );
    }
    const { rows } = await db.query<{ version: string }>('SELECT version FROM lifecycle.schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await db.query(migration.sql);
      await db.query('INSERT INTO lifecycle.schema_migrations (version) VALUES ($1)', [migration.version]);
      applied.push(migration.version);
    }
    await db.query('COMMIT');
  } catch (error) {
    await db.query('ROLLBACK');
    throw error;
  }
  return applied;
}
