/**
 * No statement waits without a bound, and a timeout says what it waited for. Real PostgreSQL, real S3, the
 * synthesized state machine with the real handlers: another session holds a lock a run needs (the table
 * under ACCESS EXCLUSIVE, a table the filter reads, a row an ON DELETE trigger updates), and the run fails
 * within the policy's lock_timeout per attempt, naming the relation, the lock and the holder's pid, with no
 * backend of ours left waiting. A backend whose client vanished stops waiting on its own.
 */
import type pg from 'pg';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { silentLogger } from '../../functions/run/dependencies.ts';
import { testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { afterEach, beforeAll, describe, expect, it } from '../support/fixture.ts';
import { runBackendsWaitingOnLocks } from '../support/sessions.ts';

const LOCK_TIMEOUT_MS = 300;
/** One Start or Chunk attempt plus its Step Functions retries (LAMBDA_RETRY: 6). */
const ATTEMPTS = 7;
/**
 * What "waited N ms" may add to the lock_timeout: on a loaded machine (two cores shared with other test
 * files) the server's timer fires late.
 */
const WAIT_SLACK_MS = 3_000;
/**
 * A whole failed run (every attempt and retry) stays well below one default statement_timeout (60 s): no
 * wait ran to that bound instead of the lock_timeout. Step Functions' retry intervals are 0 here (and the
 * chunk loop's local backoff where a chunk retries), so the rest is work, not sleeping.
 */
const RUN_BOUND_MS = 30_000;

const policy = {
  name: 'locked',
  table: 'public.locked_events',
  action: 'archive' as const,
  timeColumn: 'created_at',
  retention: 'P30D',
  chunking: { initialRows: 50, minRows: 50, maxRows: 50, lockTimeoutMs: LOCK_TIMEOUT_MS },
};

/** A session of someone else's, named so that the message can be checked for it. */
let holder: pg.PoolClient | undefined;

async function holdWith(db: TestDatabase, ...statements: string[]): Promise<number> {
  holder = await db.pool.connect();
  await holder.query(`SET application_name = 'lock-holder'`);
  await holder.query('BEGIN');
  for (const statement of statements) await holder.query(statement);
  const { rows } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return Number(rows[0]?.pid);
}

async function tableDigest(db: TestDatabase): Promise<string | undefined> {
  const { rows } = await db.pool.query<{ digest: string }>(
    `SELECT md5(string_agg(t::text, '|' ORDER BY id)) AS digest FROM public.locked_events t`,
  );
  return rows[0]?.digest;
}

/** The elapsed time the message reports for one wait. */
function waitedMs(cause: string | undefined): number {
  return Number(/waited (\d+) ms/.exec(cause ?? '')?.[1] ?? Number.NaN);
}

beforeAll(async ({ database: db }) => {
  await db.pool.query(`
    CREATE TABLE public.allowed_cameras (id int PRIMARY KEY);
    INSERT INTO public.allowed_cameras SELECT g FROM generate_series(0, 9) g;
    CREATE TABLE public.camera_counters (camera_id int PRIMARY KEY, archived bigint NOT NULL DEFAULT 0);
    INSERT INTO public.camera_counters SELECT g, 0 FROM generate_series(0, 9) g;
    CREATE TABLE public.locked_events (
      id bigint PRIMARY KEY, created_at timestamptz NOT NULL, camera_id int NOT NULL, payload text NOT NULL);
    CREATE INDEX ON public.locked_events (created_at);
    INSERT INTO public.locked_events
    SELECT g, timestamptz '2026-01-01' + g * interval '1 minute', g % 10, md5(g::text)
      FROM generate_series(1, 200) g;`);
});

afterEach(async () => {
  await holder?.query('ROLLBACK').catch(() => undefined);
  holder?.release();
  holder = undefined;
});

describe('a run that needs a lock another session holds', () => {
  it('fails within lock_timeout per attempt when the table is under ACCESS EXCLUSIVE, naming it and the holder', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare
    const before = await tableDigest(db);
    const holderPid = await holdWith(db, 'LOCK TABLE public.locked_events IN ACCESS EXCLUSIVE MODE');
    // Act
    const started = performance.now();
    const result = await runPolicy(testConfig([policy]), policy.name, { definition });
    const durationMs = performance.now() - started;
    // Assess
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('TransientDatabaseError');
    expect(result.failure?.cause).toMatch(
      new RegExp(
        `^55P03: waited \\d+ ms \\(lock_timeout\\) for a lock on public\\.locked_events held by pid ${holderPid} ` +
          `\\(AccessExclusiveLock; application_name lock-holder; state idle in transaction\\)`,
      ),
    );
    expect(waitedMs(result.failure?.cause)).toBeGreaterThanOrEqual(LOCK_TIMEOUT_MS);
    expect(waitedMs(result.failure?.cause)).toBeLessThan(LOCK_TIMEOUT_MS + WAIT_SLACK_MS);
    expect(durationMs).toBeLessThan(RUN_BOUND_MS);
    expect(await runBackendsWaitingOnLocks(db)).toEqual([]);
    await holder?.query('ROLLBACK');
    expect(await tableDigest(db)).toBe(before);
  });

  it('names the table a filter reads when that table is under ACCESS EXCLUSIVE', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare
    const filtered = {
      ...policy,
      filter: 'EXISTS (SELECT 1 FROM public.allowed_cameras a WHERE a.id = camera_id)',
    };
    const holderPid = await holdWith(db, 'LOCK TABLE public.allowed_cameras IN ACCESS EXCLUSIVE MODE');
    // Act
    const result = await runPolicy(testConfig([filtered]), filtered.name, { definition });
    // Assess
    expect(result.failure?.error).toBe('TransientDatabaseError');
    expect(result.failure?.cause).toMatch(
      new RegExp(
        `^55P03: waited \\d+ ms \\(lock_timeout\\) for a lock on public\\.allowed_cameras held by pid ${holderPid} ` +
          '\\(AccessExclusiveLock; application_name lock-holder',
      ),
    );
    expect(waitedMs(result.failure?.cause)).toBeLessThan(LOCK_TIMEOUT_MS + WAIT_SLACK_MS);
    expect(await runBackendsWaitingOnLocks(db)).toEqual([]);
  });

  it('names the row lock and its holder when an ON DELETE trigger needs a row held FOR SHARE', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare: each archived event bumps its camera's counter; another session holds camera 1's counter
    // row FOR SHARE (so the trigger's UPDATE must wait), and a third only writes another row of that table.
    await db.pool.query(`
      CREATE FUNCTION public.count_archived() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE public.camera_counters SET archived = archived + 1 WHERE camera_id = OLD.camera_id;
          RETURN OLD;
        END $$;
      CREATE TRIGGER count_archived AFTER DELETE ON public.locked_events
        FOR EACH ROW EXECUTE FUNCTION public.count_archived();`);
    const bystander = await db.pool.connect();
    try {
      await bystander.query(`SET application_name = 'bystander'`);
      await bystander.query('BEGIN');
      await bystander.query('UPDATE public.camera_counters SET archived = 0 WHERE camera_id = 9');
      const holderPid = await holdWith(
        db,
        'SELECT * FROM public.camera_counters WHERE camera_id = 1 FOR SHARE',
      );
      // Shorter waits: each Chunk attempt retries its chunk locally 3 times, here without backing off.
      const lockTimeoutMs = 100;
      const quick = { ...policy, chunking: { ...policy.chunking, lockTimeoutMs } };
      const retries: Array<Record<string, unknown> | undefined> = [];
      const log = {
        ...silentLogger,
        warn: (message: string, fields?: Record<string, unknown>) => {
          if (message === 'chunk rolled back, retrying') retries.push(fields);
        },
      };
      // Act
      const started = performance.now();
      const result = await runPolicy(testConfig([quick]), quick.name, {
        definition,
        chunkRetryBackoffMs: 0,
        deps: { log },
      });
      const durationMs = performance.now() - started;
      // Assess: the holder of that very row, not every writer of the table.
      expect(result.failure?.error).toBe('TransientDatabaseError');
      expect(result.failure?.cause).toMatch(
        new RegExp(
          `^55P03: waited \\d+ ms \\(lock_timeout\\) for a row lock on public\\.camera_counters held by pid ${holderPid} ` +
            '\\(RowShareLock; application_name lock-holder; state idle in transaction\\)$',
        ),
      );
      expect(waitedMs(result.failure?.cause)).toBeGreaterThanOrEqual(lockTimeoutMs);
      expect(waitedMs(result.failure?.cause)).toBeLessThan(lockTimeoutMs + WAIT_SLACK_MS);
      // Every Chunk attempt retried its chunk 3 times, with the injected backoff (none), not 250/500/750 ms.
      expect(retries).toHaveLength(ATTEMPTS * 3);
      expect(retries.map((fields) => fields?.backoffMs)).toEqual(retries.map(() => 0));
      expect(durationMs).toBeLessThan(RUN_BOUND_MS);
      const { rows } = await db.pool.query<{ status: string; error_cause: string }>(
        `SELECT status, error_cause FROM lifecycle.runs WHERE run_id = $1`,
        [result.failure?.runId],
      );
      expect(rows[0]?.status).toBe('failed');
      expect(rows[0]?.error_cause).toBe(result.failure?.cause);
      expect(await runBackendsWaitingOnLocks(db)).toEqual([]);
    } finally {
      await bystander.query('ROLLBACK').catch(() => undefined);
      bystander.release();
      await db.pool.query(`DROP TRIGGER count_archived ON public.locked_events`);
    }
  });
});

describe('a connection of ours', () => {
  it('stops waiting for a lock soon after its client is gone, long before its lock_timeout', async ({
    database: db,
  }) => {
    // Prepare: a lock_timeout far beyond the test, so only the dead-client check can end the wait.
    await holdWith(db, 'LOCK TABLE public.allowed_cameras IN ACCESS EXCLUSIVE MODE');
    const client = await connect(
      await resolveClientConfig(
        { DATABASE_URL: db.url },
        { lockTimeoutMs: 60_000, statementTimeoutMs: 120_000 },
      ),
    );
    const pid = Number((client as unknown as { processID: number }).processID);
    const waiting = client.query('SELECT count(*) FROM public.allowed_cameras').catch(() => undefined);
    await expect.poll(() => backendWaitEvent(db, pid), { timeout: 5_000 }).toBe('Lock');
    // Act: the process dies (no Terminate message, the socket just closes).
    (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await waiting;
    const gone = performance.now();
    // Assess
    await expect.poll(() => backendWaitEvent(db, pid), { timeout: 10_000, interval: 200 }).toBe('gone');
    expect(performance.now() - gone).toBeLessThan(10_000);
  });
});

describe('the session bounds', () => {
  it("hold when DATABASE_URL carries libpq options of its own (which pg would let replace the session's)", async ({
    database: db,
  }) => {
    // Prepare
    const url = new URL(db.url);
    url.searchParams.set('options', '-c search_path=pg_catalog -c statement_timeout=0');
    // Act
    const client = await connect(
      await resolveClientConfig(
        { DATABASE_URL: url.toString() },
        { lockTimeoutMs: 700, statementTimeoutMs: 7_000 },
      ),
    );
    try {
      const { rows } = await client.query<Record<string, string>>(
        `SELECT current_setting('search_path') AS search_path, current_setting('lock_timeout') AS lock_timeout,
                current_setting('statement_timeout') AS statement_timeout, current_setting('TimeZone') AS zone,
                current_setting('client_connection_check_interval') AS check_interval`,
      );
      // Assess: the user's search_path, our bounds and canonical settings.
      expect(rows[0]).toEqual({
        search_path: 'pg_catalog',
        lock_timeout: '700ms',
        statement_timeout: '7s',
        zone: 'UTC',
        check_interval: '2s',
      });
    } finally {
      await client.end();
    }
  });
});

async function backendWaitEvent(db: TestDatabase, pid: number): Promise<string> {
  const { rows } = await db.pool.query<{ wait: string | null }>(
    'SELECT wait_event_type AS wait FROM pg_stat_activity WHERE pid = $1',
    [pid],
  );
  return rows.length === 0 ? 'gone' : (rows[0]?.wait ?? 'running');
}
