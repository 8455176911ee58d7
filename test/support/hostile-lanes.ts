/**
 * The world the hostile-input cases run against. A lane is one isolated copy of it: two databases (one with
 * a ledger and history, one bare: no `lifecycle` schema), one bucket holding the history's objects, a
 * role without DELETE, and a bystander session in each database. Cases in different lanes may run at the
 * same time; a lane runs one case at a time, so each case's before/after snapshots see only its own doing.
 *
 * The fixtures make side effects visible: `public.hostile_touch()` inserts a row into `public.side_effects`
 * through dblink (its own connection: it survives READ ONLY transactions and rollbacks), and every hostile
 * function, operator, cast, view and domain goes through it.
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { inject } from 'vitest';
import type { AslDefinition } from '../../functions/local-runner/synthesize.ts';
import { runLocally, testConfig } from './archive.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { createTestBucket } from './s3.ts';

/** The CLI's sessions (functions/commons/database.ts). */
export const CLI_APPLICATION_NAME = 'pg-lifecycle';

/** Rows of `public.events` (and `public.dup_events`): all older than any retention the cases use. */
const EVENT_ROWS = 400;

const seedEventsSql = (table: string) => `
  INSERT INTO public.${table} (id, created_at, payload, amount)
  SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour', 'payload-' || g, g * 1.5
    FROM generate_series(1, ${EVENT_ROWS}) g`;

/**
 * A domain whose CHECK calls a volatile function, and a row type holding it: PostgreSQL runs that CHECK
 * even while parsing a row literal, so in a database with such types every filter with a string literal
 * is refused before it is parsed. Only the `bare` database has them, so that the other filter cases are
 * refused for what they call, by name.
 */
const UNSAFE_TYPES_SQL = `
  CREATE DOMAIN public.hostile_positive AS bigint CHECK (public.hostile_touch() AND VALUE > 0);
  -- A row type with a field of that domain: reading a value of it (record_in, jsonb_populate_record)
  -- checks the domain inside a stable function.
  CREATE TYPE public.hostile_row AS (v public.hostile_positive);`;

/** Everything a case may reach, in one database. `connstr` lets dblink reach this same database. */
function fixtureSql(connstr: string, unsafeTypes: boolean): string {
  const literal = pg.escapeLiteral(connstr);
  return `
  CREATE EXTENSION dblink;
  CREATE TABLE public.events (
    id bigint PRIMARY KEY, created_at timestamptz NOT NULL, payload text NOT NULL, amount numeric NOT NULL);
  CREATE INDEX events_created_at_idx ON public.events (created_at);
  ${seedEventsSql('events')};
  CREATE TABLE public.dup_events (LIKE public.events INCLUDING ALL);
  ${seedEventsSql('dup_events')};
  CREATE TABLE public.victim (id int PRIMARY KEY, note text NOT NULL);
  INSERT INTO public.victim VALUES (1, 'must survive'), (2, 'must survive too');
  CREATE TABLE public.side_effects (id bigserial PRIMARY KEY, what text NOT NULL);
  CREATE SEQUENCE public.hostile_seq;

  CREATE FUNCTION public.hostile_touch() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
  BEGIN
    PERFORM dblink_exec(${literal}, 'INSERT INTO public.side_effects (what) VALUES (''touched'')');
    RETURN true;
  END $f$;
  CREATE FUNCTION public.hostile_eq(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
  BEGIN RETURN public.hostile_touch() AND a = b; END $f$;
  CREATE OPERATOR public.=== (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.hostile_eq);
  CREATE TYPE public.hostile_mood AS ENUM ('ok');
  CREATE FUNCTION public.hostile_to_mood(bigint) RETURNS public.hostile_mood LANGUAGE plpgsql VOLATILE AS $f$
  BEGIN PERFORM public.hostile_touch(); RETURN 'ok'; END $f$;
  CREATE CAST (bigint AS public.hostile_mood) WITH FUNCTION public.hostile_to_mood(bigint);
  CREATE VIEW public.hostile_view AS SELECT id FROM public.events WHERE public.hostile_touch();
  ${unsafeTypes ? UNSAFE_TYPES_SQL : ''}
  -- Called as events.hostile_flag (attribute notation): no parenthesis for a text screen to see.
  CREATE FUNCTION public.hostile_flag(public.events) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
  BEGIN RETURN public.hostile_touch(); END $f$;
  ANALYZE;`;
}

/** A session of another user of the database: a filter ending it would show. */
export class Bystander {
  private client: pg.Client | undefined;
  private alive = false;
  pid = 0;

  constructor(private readonly url: string) {}

  /** Connects (again, when a case ended the session) and learns its pid. */
  async ensureAlive(): Promise<void> {
    if (this.client && this.alive && (await this.isAlive())) return;
    await this.client?.end().catch(() => undefined);
    const client = new pg.Client({ connectionString: this.url, application_name: 'hostile-bystander' });
    // A terminated session emits 'error' on the idle client: that is the observation, not a crash.
    client.on('error', () => {
      this.alive = false;
    });
    await client.connect();
    this.client = client;
    this.alive = true;
    this.pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
  }

  /** The session still answers (an ended backend makes the query fail). */
  async isAlive(): Promise<boolean> {
    if (!this.client || !this.alive) return false;
    try {
      await this.client.query('SELECT 1');
      return true;
    } catch {
      this.alive = false;
      return false;
    }
  }

  async end(): Promise<void> {
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}

export interface LaneDatabase {
  readonly db: TestDatabase;
  readonly name: string;
  readonly url: string;
  readonly bystander: Bystander;
  /** Reaches this database from inside it (dblink). */
  readonly connstr: string;
}

export interface Lane {
  readonly index: number;
  /** A database with a ledger: two archive runs of earlier policies, their objects in `bucket`. */
  readonly ledger: LaneDatabase;
  /** A database that never had a ledger (no `lifecycle` schema). */
  readonly bare: LaneDatabase;
  readonly bucket: string;
  /** Roles of this lane start with it (the snapshot reads them). */
  readonly rolePrefix: string;
  /** LOGIN role on `bare` with SELECT on public.events but no DELETE, and CREATE on the database. */
  readonly readOnlyUrl: string;
  /** Run ids of the history in `ledger`, by policy. */
  readonly runIds: { readonly earlier: string; readonly second: string };
}

/** The policies of the ledger database's history (archive runs before any case). */
export const HISTORY_POLICIES = [
  {
    name: 'earlier',
    action: 'archive' as const,
    table: 'public.earlier_events',
    timeColumn: 'created_at',
    retention: 'P30D',
    chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
  },
  {
    name: 'second',
    action: 'archive' as const,
    table: 'public.second_events',
    timeColumn: 'created_at',
    retention: 'P30D',
    chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
  },
];

export const historyConfig = () => testConfig(HISTORY_POLICIES);

async function createLaneDatabase(prefix: string, unsafeTypes: boolean): Promise<LaneDatabase> {
  const db = await createTestDatabase(prefix);
  const url = new URL(db.url);
  const name = decodeURIComponent(url.pathname.slice(1));
  const connstr = [
    `host=${url.hostname}`,
    `port=${url.port || '5432'}`,
    `user=${decodeURIComponent(url.username)}`,
    `password=${decodeURIComponent(url.password)}`,
    `dbname=${name}`,
  ].join(' ');
  await db.pool.query(fixtureSql(connstr, unsafeTypes));
  const bystander = new Bystander(db.url);
  await bystander.ensureAlive();
  return { db, name, url: db.url, bystander, connstr };
}

async function withAdmin<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

export async function createLane(index: number, s3: S3Client, definition: AslDefinition): Promise<Lane> {
  const rolePrefix = `hostile_${randomBytes(3).toString('hex')}_`;
  const [ledger, bare, bucket] = await Promise.all([
    createLaneDatabase(`hostile_ledger_${index}`, false),
    createLaneDatabase(`hostile_bare_${index}`, true),
    createTestBucket(`hostile-${index}`),
  ]);
  const runIds: Record<string, string> = {};
  for (const policy of HISTORY_POLICIES) {
    const table = policy.table.replace('public.', '');
    await ledger.db.pool.query(
      `CREATE TABLE public.${table} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, body text NOT NULL);
       CREATE INDEX ON public.${table} (created_at);
       INSERT INTO public.${table}
       SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 day', 'body-' || g FROM generate_series(1, 300) g`,
    );
    const result = await runLocally({
      config: historyConfig(),
      policyName: policy.name,
      definition,
      deps: { databaseUrl: ledger.url, bucket, s3 },
    });
    if (result.status !== 'succeeded' || !result.summary)
      throw new Error(`history run of ${policy.name}: ${result.status} ${result.failure?.cause ?? ''}`);
    runIds[policy.name] = result.summary.runId;
  }
  const role = `${rolePrefix}reader`;
  const password = randomBytes(12).toString('hex');
  await withAdmin(async (client) => {
    await client.query(`CREATE ROLE ${role} LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
    // CREATE on the database: enough to create the ledger schema, which a run it cannot finish must not do.
    await client.query(`GRANT CONNECT, CREATE ON DATABASE ${pg.escapeIdentifier(bare.name)} TO ${role}`);
  });
  await bare.db.pool.query(
    `GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON public.events TO ${role}`,
  );
  const readOnly = new URL(bare.url);
  readOnly.username = role;
  readOnly.password = password;
  return {
    index,
    ledger,
    bare,
    bucket,
    rolePrefix,
    readOnlyUrl: readOnly.toString(),
    runIds: { earlier: runIds.earlier ?? '', second: runIds.second ?? '' },
  };
}

export async function dropLane(lane: Lane): Promise<void> {
  await Promise.all([lane.ledger.bystander.end(), lane.bare.bystander.end()]);
  await Promise.all([lane.ledger.db.drop(), lane.bare.db.drop()]);
  await withAdmin(async (client) => {
    const { rows } = await client.query<{ rolname: string }>(
      'SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)',
      [lane.rolePrefix],
    );
    for (const { rolname } of rows) await client.query(`DROP ROLE ${pg.escapeIdentifier(rolname)}`);
  });
}

const tableDigest = async (pool: pg.Pool, table: string) =>
  (
    await pool.query<{ d: string | null }>(
      `SELECT md5(string_agg(t::text, '|' ORDER BY id)) AS d FROM public.${table} t`,
    )
  ).rows[0]?.d ?? null;

/**
 * Puts back what an earlier case (one whose fix is not in yet) may have broken, so that each case starts
 * from the same world: the victim table, the events a filter needs to be evaluated on, a live bystander,
 * no ledger in the bare database. Whatever a case changes is caught by its own snapshots, not here.
 */
export async function repairLane(lane: Lane, expectedEvents: string): Promise<void> {
  for (const database of [lane.ledger, lane.bare]) {
    const { pool } = database.db;
    await pool.query(`CREATE TABLE IF NOT EXISTS public.victim (id int PRIMARY KEY, note text NOT NULL)`);
    await pool.query(
      `INSERT INTO public.victim VALUES (1, 'must survive'), (2, 'must survive too') ON CONFLICT DO NOTHING`,
    );
    for (const table of ['events', 'dup_events']) {
      if ((await tableDigest(pool, table)) !== expectedEvents) {
        await pool.query(`TRUNCATE public.${table}`);
        await pool.query(seedEventsSql(table));
      }
    }
    await pool.query('TRUNCATE public.side_effects');
    await database.bystander.ensureAlive();
  }
  await lane.bare.db.pool.query('DROP SCHEMA IF EXISTS lifecycle CASCADE');
}

/** The digest `repairLane` restores `public.events` to. */
export const seededEventsDigest = (lane: Lane) => tableDigest(lane.ledger.db.pool, 'events');

/** Another session holding a lock (taken by `sql` in an open transaction) until `release()`. */
export async function holdLock(url: string, sql: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: url, application_name: 'hostile-blocker' });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('BEGIN');
  await client.query(sql);
  return async () => {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end().catch(() => undefined);
  };
}

export interface Leftover {
  readonly datname: string;
  readonly state: string | null;
  readonly wait: string | null;
  readonly query: string;
}

/**
 * Backends of the CLI still connected to the lane's databases, polled until none is left or `graceMs` ran
 * out. A CLI that closed its connections may leave them for a moment (the server ends a backend after its
 * client's Terminate, later on a loaded machine); a killed one whose backend waits on a lock leaves them
 * for good.
 */
export async function cliBackendsLeft(lane: Lane, graceMs = 15_000): Promise<Leftover[]> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const rows = await withAdmin(async (client) => {
      const result = await client.query<Leftover>(
        `SELECT datname, state, wait_event_type || ':' || wait_event AS wait, left(query, 160) AS query
           FROM pg_stat_activity WHERE application_name = $1 AND datname = ANY ($2::text[])`,
        [CLI_APPLICATION_NAME, [lane.ledger.name, lane.bare.name]],
      );
      return result.rows;
    });
    if (rows.length === 0 || Date.now() > deadline) return rows;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Ends the CLI's leftover backends and waits until they are gone, so that none can act after the case
 * (e.g. once a lock it waited for is released) or change what the after-snapshot reads.
 */
export async function endCliBackends(lane: Lane): Promise<void> {
  await withAdmin((client) =>
    client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = ANY ($2::text[])`,
      [CLI_APPLICATION_NAME, [lane.ledger.name, lane.bare.name]],
    ),
  );
  const left = await cliBackendsLeft(lane, 10_000);
  if (left.length > 0) throw new Error(`CLI backends survived pg_terminate_backend: ${JSON.stringify(left)}`);
}

/** Hands lanes to cases one at a time each; a case waits for a free lane. */
export class LanePool {
  private readonly waiting: Array<(lane: Lane) => void> = [];

  constructor(private readonly free: Lane[]) {}

  acquire(): Promise<Lane> {
    const lane = this.free.pop();
    if (lane) return Promise.resolve(lane);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(lane: Lane): void {
    const next = this.waiting.shift();
    if (next) next(lane);
    else this.free.push(lane);
  }
}
