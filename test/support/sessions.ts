/** Sessions beside a run's: another application's, and the run steps' own backends as the server sees them. */
import pg from 'pg';
import type { TestDatabase } from './database.ts';

/** A session of another application's on `db`; a server that ends it does not crash the test. */
export async function openSession(db: TestDatabase): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Pids of the run steps' backends (application_name pg-lifecycle) waiting on a lock in `db`. */
export async function runBackendsWaitingOnLocks(db: TestDatabase): Promise<number[]> {
  const { rows } = await db.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'pg-lifecycle' AND wait_event_type = 'Lock'`,
  );
  return rows.map((r) => r.pid);
}
