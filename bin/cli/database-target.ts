/**
 * The CLI's database: DATABASE_URL or the PG* variables (functions/commons/database.ts resolves them). A
 * connection that cannot be opened is said once, as something the user can act on: which host, port,
 * database and user were tried, which variables chose them, and what to check. Never the password.
 */
import pg from 'pg';
import { resolveClientConfig, withClient } from '../../functions/commons/database.ts';
import { describeError } from '../../functions/core/redact-database-error.ts';

/** The database could not be reached or refused the login: exit 1, one message. */
export class DatabaseUnreachableError extends Error {
  override readonly name = 'DatabaseUnreachableError';
}

/** libpq's variables that pg reads when DATABASE_URL does not say. */
const PG_VARIABLES = ['PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER'] as const;

/** Where pg would connect with `config` (pg's own resolution: URL, then PG*, then defaults) and who said so. */
export function describeTarget(config: pg.ClientConfig, env: NodeJS.ProcessEnv = process.env): string {
  // Constructing a client resolves its parameters and opens nothing.
  const { host, port, database, user } = new pg.Client(config);
  const where = host.startsWith('/') ? `socket ${host}/.s.PGSQL.${port}` : `${host}:${port}`;
  const set = PG_VARIABLES.filter((name) => env[name]);
  const source = env.DATABASE_URL
    ? 'set by DATABASE_URL'
    : set.length > 0
      ? `set by ${set.join(', ')}${set.length < PG_VARIABLES.length ? ', the rest defaults' : ''}`
      : 'defaults: neither DATABASE_URL nor PGHOST/PGPORT/PGDATABASE/PGUSER is set';
  const name = (value: string | undefined) => (value ? `"${value}"` : '(not set)');
  return `${where}, database ${name(database)} as user ${name(user)} (${source})`;
}

const HINTS: Array<[RegExp, string, string]> = [
  [
    /^ECONNREFUSED$/,
    'connection refused',
    'check that PostgreSQL runs there and listens on that port (listen_addresses, port)',
  ],
  [/^(ENOTFOUND|EAI_AGAIN)$/, 'host name not found', 'check the host name (spelling, DNS, VPN)'],
  [
    /^(ETIMEDOUT|timeout)$/,
    'no answer within 10 s',
    'check that no firewall or security group drops the connection, and the host',
  ],
  [
    /^(28P01|28000|sasl)$/,
    'login refused',
    'check the user and password (the URL, PGPASSWORD or ~/.pgpass) and pg_hba.conf',
  ],
  [
    /^closed$/,
    'the server closed the connection',
    'check that this port is PostgreSQL’s and whether it needs SSL (sslmode=require in the URL)',
  ],
  [/^3D000$/, 'no such database', 'check the database name (the path of the URL, or PGDATABASE)'],
];

/** Every `code` along the cause chain, plus `timeout`, `sasl`, `closed` for pg's client-side connect errors. */
function codesOf(error: unknown, timedOut: boolean): string[] {
  // pg reports its connect timeout as "Connection terminated unexpectedly": only the time tells them apart.
  const codes: string[] = timedOut ? ['timeout'] : [];
  for (
    let e = error, depth = 0;
    e instanceof Object && depth < 5;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string') codes.push(code);
    if (typeof message === 'string' && /connection timeout|timeout expired/i.test(message))
      codes.push('timeout');
    if (typeof message === 'string' && /^SASL:/.test(message)) codes.push('sasl');
    if (typeof message === 'string' && /^Connection terminated/.test(message)) codes.push('closed');
  }
  return codes;
}

/** The message for a connection that could not be opened: what was tried, why it failed, what to check. */
export function unreachableMessage(error: unknown, config: pg.ClientConfig, timedOut = false): string {
  const codes = codesOf(error, timedOut);
  const hint = HINTS.find(([pattern]) => codes.some((code) => pattern.test(code)));
  const code = hint && codes.find((c) => hint[0].test(c));
  // A server or network code is shown as it is; pg's own conditions (timeout, sasl, closed) only in words.
  const why = hint ? `${hint[1]}${/^[A-Z0-9]+$/.test(code ?? '') ? ` (${code})` : ''}` : describeError(error);
  const check = hint?.[2] ?? 'check the server and the connection settings';
  return (
    `cannot connect to PostgreSQL at ${describeTarget(config)}: ${why}\n` +
    `  ${check},\n  or point DATABASE_URL (postgres://USER@HOST:PORT/DATABASE) or PGHOST/PGPORT/PGDATABASE/PGUSER ` +
    'at the right server'
  );
}

/**
 * `work` with a client of the CLI's database (withClient: ended on success and error). A connection that
 * cannot be opened throws DatabaseUnreachableError; errors of `work` pass as they are.
 */
export async function withDatabase<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const config = await resolveClientConfig({ DATABASE_URL: process.env.DATABASE_URL });
  let connected = false;
  const started = performance.now();
  try {
    return await withClient(config, (client) => {
      connected = true;
      return work(client);
    });
  } catch (error) {
    if (connected) throw error;
    const timedOut = performance.now() - started >= (config.connectionTimeoutMillis ?? 10_000) - 500;
    throw new DatabaseUnreachableError(unreachableMessage(error, config, timedOut), { cause: error });
  }
}

/** Opens and closes one connection: a run or plan says once that the database is unreachable, not per policy. */
export function checkDatabaseReachable(): Promise<void> {
  return withDatabase(async () => undefined);
}
