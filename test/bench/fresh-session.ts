/**
 * Baselines in a fresh session. A PostgreSQL backend maps the server's shared buffers page by page as it first
 * touches them: the session that just filled a table has every page mapped, a new one (as `psql -c` opens, as
 * each Chunk step opens) takes a minor page fault per 4 KiB it reads first. Where faults are expensive (this
 * sandbox: ≈ 30–40 µs each, 8–12 k faults for a 1 M-row DELETE, +350 ms) the filling session's statement runs
 * twice as fast as the same statement in any other session; with huge pages (RDS's default) the difference is
 * small. The benchmarks time their baselines both ways and compare the product with the fresh one.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';

/**
 * Minor page faults of the connection's backend so far, when its /proc entry is readable and is a PostgreSQL
 * process (a local server: with a remote DATABASE_URL the backend's pid may name an unrelated local process).
 */
export async function backendMinorFaults(db: pg.Client): Promise<() => number | undefined> {
  const { rows } = await db.query<{ pid: string }>('SELECT pg_backend_pid()::text AS pid');
  const path = `/proc/${rows[0]?.pid}/stat`;
  return () => {
    try {
      // Field 10 (minflt); the command name in field 2 may hold spaces, so count after its closing parenthesis.
      const stat = readFileSync(path, 'utf8');
      if (!/^\d+ \(postgres\) /.test(stat)) return undefined;
      const fields = stat.split(') ')[1]?.split(' ');
      const value = Number(fields?.[7]);
      return Number.isFinite(value) ? value : undefined;
    } catch {
      return undefined;
    }
  };
}

export interface SessionTiming<T> {
  readonly result: T;
  readonly seconds: number;
  /** Minor page faults the backend took during `work`; undefined when the server's /proc is not readable. */
  readonly minorFaults: number | undefined;
}

/** Times `work` on `db` (the connection is opened and ready before the clock starts), with its backend's faults. */
export async function timeInSession<T>(
  db: pg.Client,
  work: (db: pg.Client) => Promise<T>,
): Promise<SessionTiming<T>> {
  const faults = await backendMinorFaults(db);
  const before = faults();
  const started = performance.now();
  const result = await work(db);
  const seconds = (performance.now() - started) / 1000;
  const after = faults();
  return {
    result,
    seconds,
    minorFaults: before === undefined || after === undefined ? undefined : after - before,
  };
}

/**
 * Times `work` in a new session on `databaseUrl` (connecting is not timed), then closes it. `beforeClose` runs while
 * the session's backend still exists (a CPU sample of the server's processes must see it).
 */
export async function timeInFreshSession<T>(
  databaseUrl: string,
  work: (db: pg.Client) => Promise<T>,
  beforeClose?: () => void,
): Promise<SessionTiming<T>> {
  const db = await connect(
    await resolveClientConfig(
      { DATABASE_URL: databaseUrl },
      { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
    ),
  );
  try {
    const timing = await timeInSession(db, work);
    beforeClose?.();
    return timing;
  } finally {
    await db.end().catch(() => undefined);
  }
}
