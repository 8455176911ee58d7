/** Per-test-file PostgreSQL databases, so that files running in parallel never see each other's tables. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { applyMigrations } from '../../functions/adapters/migrations.ts';

/** A fresh database on the shared test server. */
export interface TestDatabase {
  /** Connection URL of this database (same server and credentials as the admin URL). */
  url: string;
  /** A pool on `url`; `drop()` ends it. */
  pool: pg.Pool;
  /** Ends the pool, disconnects every other session and drops the database. Safe to call more than once. */
  drop(): Promise<void>;
}

/**
 * Creates a uniquely named, empty database (from `template0`, UTF-8) on the server of
 * `inject('adminDatabaseUrl')`. Call `drop()` in `afterAll`.
 */
export async function createTestDatabase(prefix = 'test'): Promise<TestDatabase> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = uniqueDatabaseName(prefix);
  await withClient(adminUrl, (client) =>
    client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE template0 ENCODING 'UTF8'`),
  );
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 10 });
  // An idle pooled connection killed by drop() (or by a test) must not crash the worker.
  pool.on('error', (error: Error & { code?: string }) => {
    if (error.code !== '57P01') console.error(`test database ${name}: idle connection error`, error);
  });
  let dropping: Promise<void> | undefined;
  const drop = async () => {
    if (!pool.ended) await pool.end();
    // FORCE (PostgreSQL 13+) also disconnects clients the test opened on its own.
    await withClient(adminUrl, (client) =>
      client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`),
    );
  };
  return {
    url: url.toString(),
    pool,
    drop: () => {
      dropping ??= drop();
      return dropping;
    },
  };
}

/** Creates (or completes) the ledger schema of `db` as `pg-lifecycle migrate` does, from `dir` if given. */
export async function migrateLedger(db: TestDatabase, dir?: string): Promise<void> {
  // One connection: the migrations hold an advisory lock and run in transactions.
  const client = await db.pool.connect();
  try {
    await applyMigrations(client, dir);
  } finally {
    client.release();
  }
}

/** Lowercase `[a-z0-9_]`, at most 63 bytes (PostgreSQL truncates longer identifiers silently). */
function uniqueDatabaseName(prefix: string): string {
  const cleanPrefix = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 40);
  return `${cleanPrefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** A client of its own on `url`, ended after `use`. */
export async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
