/**
 * The demo database: an "AI camera" product's tables (sql/demo/schema.sql) and about 945,000 rows of
 * deterministic data from 2021-01-01 up to now (sql/demo/seed.sql).
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';

/** A pool, or one connection (then the seed runs as a single transaction, on one core). */
export type Queryable = pg.Pool | pg.ClientBase;

const SCHEMA_SQL = new URL('../../sql/demo/schema.sql', import.meta.url);
const SEED_SQL = new URL('../../sql/demo/seed.sql', import.meta.url);
const PARALLEL_PARTS = 2;

/** Drops and recreates the demo tables in `public` (camera_events gets monthly partitions up to now + 2 months). */
export async function applyDemoSchema(db: Queryable): Promise<void> {
  await db.query(await readFile(SCHEMA_SQL, 'utf8'));
}

/**
 * Replaces the demo tables' rows with the seed data and analyzes them. Needs the schema from
 * {@link applyDemoSchema} applied this month or last (camera_events has no partition beyond that).
 *
 * Given a pool, two tables are seeded at a time, each in its own transaction: about twice as fast on two
 * cores, but a failure leaves the other tables seeded (seeding again starts over).
 */
export async function seedDemoData(db: Queryable): Promise<void> {
  const script = await readFile(SEED_SQL, 'utf8');
  if (!(db instanceof pg.Pool)) {
    await db.query(script);
    return;
  }
  const { helpers, tables } = splitParts(script);
  const queue = [...tables];
  const errors: unknown[] = [];
  const worker = async () => {
    for (let part = queue.shift(); part !== undefined && errors.length === 0; part = queue.shift()) {
      const client = await db.connect();
      try {
        await client.query(helpers + part);
      } catch (error) {
        errors.push(error);
      } finally {
        // Destroying the session also drops the pg_temp helper functions.
        client.release(true);
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_PARTS }, worker));
  if (errors.length > 0) throw errors[0];
}

/** Splits seed.sql at its `-- @part <name>` lines; a part's text starts after its marker line. */
function splitParts(script: string): { helpers: string; tables: string[] } {
  const parts = script
    .split(/^-- @part /m)
    .slice(1)
    .map((part) => ({ name: part.slice(0, part.indexOf('\n')), sql: part.slice(part.indexOf('\n') + 1) }));
  const helpers = parts.find((part) => part.name === 'helpers')?.sql;
  const tables = parts.filter((part) => part.name.startsWith('table ')).map((part) => part.sql);
  if (helpers === undefined || tables.length === 0) {
    throw new Error(`${SEED_SQL.pathname}: expected "-- @part helpers" and "-- @part table <name>" sections`);
  }
  return { helpers, tables };
}
