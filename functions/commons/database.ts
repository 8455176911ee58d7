/**
 * PostgreSQL connections for the handlers and the CLI.
 *
 * Every value comes back as the server's text: pg's default parsers turn timestamptz into a JS Date
 * (dropping microseconds) and int8/numeric into lossy numbers, and a lifecycle tool must copy rows
 * byte-exact. The session is pinned to UTC/ISO output so the text is stable.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { z } from 'zod';
import { classifyDatabaseError, DatabaseSecretError } from '../core/errors.ts';
import { DEFAULT_SESSION_TIMEOUTS, type SessionTimeouts, timeoutOptions } from '../core/session-timeouts.ts';
import { AWS_CLIENT_TIMEOUTS } from './aws-clients.ts';
import type { HandlerEnv } from './env.ts';
import { explainTimeout, isTimeout, noteTimeout } from './lock-wait.ts';

const RAW_TEXT_TYPES = { getTypeParser: () => (value: string) => value };

/** Session settings that make text output canonical (see functions/core/parquet for the parsers). */
export const SESSION_OPTIONS = [
  '-c TimeZone=UTC',
  '-c DateStyle=ISO,MDY',
  '-c IntervalStyle=iso_8601',
  '-c extra_float_digits=3',
  '-c bytea_output=hex',
  // The filter screen (lib/contracts/config.ts) reads a backslash in a plain '…' literal as an ordinary
  // character, as PostgreSQL does with this on (its default): make sure no server setting says otherwise.
  '-c standard_conforming_strings=on',
  // A Lambda frozen or killed mid-chunk must not hold row locks: the server rolls such a transaction back.
  '-c idle_in_transaction_session_timeout=120000',
].join(' ');

/**
 * An RDS secret as Secrets Manager stores it. Parsed without echoing: neither JSON.parse's message (which
 * quotes the text it choked on) nor a value ever reaches an error, which Step Functions and CloudWatch keep.
 */
const RdsSecretSchema = z.looseObject({
  host: z.string().min(1),
  port: z.union([z.int().min(1).max(65_535), z.string().regex(/^\d{1,5}$/)]).optional(),
  username: z.string().min(1),
  password: z.string().min(1),
  dbname: z.string().min(1).optional(),
});

type RdsSecret = z.output<typeof RdsSecretSchema>;

const SECRET_SHAPE = 'a JSON object with host/username/password (and optionally port, dbname)';

/**
 * Reads an RDS secret's SecretString.
 * @throws DatabaseSecretError naming the secret and, at most, which fields are missing or of the wrong type
 */
export function parseRdsSecret(arn: string, secretString: string): RdsSecret {
  let value: unknown;
  try {
    value = JSON.parse(secretString);
  } catch {
    // No cause: JSON.parse's message quotes the secret's first characters.
    throw new DatabaseSecretError(`secret ${arn} is not ${SECRET_SHAPE}: it is not valid JSON`);
  }
  const parsed = RdsSecretSchema.safeParse(value);
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((issue) => issue.path.join('.') || '(the secret)'))];
    throw new DatabaseSecretError(
      `secret ${arn} is not ${SECRET_SHAPE}: missing or invalid ${fields.join(', ')}`,
    );
  }
  return parsed.data;
}

const SECRET_TTL_MS = 5 * 60_000;
let cachedSecret: { arn: string; value: RdsSecret; fetchedAt: number } | undefined;

async function readSecret(arn: string): Promise<RdsSecret> {
  if (cachedSecret && cachedSecret.arn === arn && Date.now() - cachedSecret.fetchedAt < SECRET_TTL_MS) {
    return cachedSecret.value;
  }
  const client = new SecretsManagerClient({ ...AWS_CLIENT_TIMEOUTS });
  try {
    const result = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    if (!result.SecretString) throw new DatabaseSecretError(`secret ${arn} has no SecretString`);
    const value = parseRdsSecret(arn, result.SecretString);
    cachedSecret = { arn, value, fetchedAt: Date.now() };
    return value;
  } finally {
    client.destroy();
  }
}

/**
 * A backend whose client is gone (a killed CLI, a Lambda that timed out) notices it within this while it
 * waits or runs, instead of holding its place in a lock queue until its own timeout (PostgreSQL 14+).
 */
export const CONNECTION_CHECK_OPTION = '-c client_connection_check_interval=2000';

/**
 * Client settings from the environment: a Secrets Manager secret (AWS) or DATABASE_URL / PG* (local).
 * Every statement of the connection runs under `timeouts` (lock_timeout, statement_timeout); a statement
 * that needs another bound sets it locally.
 */
export async function resolveClientConfig(
  env: Pick<HandlerEnv, 'DB_SECRET_ARN' | 'DATABASE_URL' | 'DB_SSL'>,
  timeouts: SessionTimeouts = DEFAULT_SESSION_TIMEOUTS,
): Promise<pg.ClientConfig> {
  const common: pg.ClientConfig = {
    types: RAW_TEXT_TYPES,
    options: `${SESSION_OPTIONS} ${timeoutOptions(timeouts)} ${CONNECTION_CHECK_OPTION}`,
    application_name: 'pg-lifecycle',
    connectionTimeoutMillis: 10_000,
  };
  if (env.DB_SECRET_ARN) {
    const secret = await readSecret(env.DB_SECRET_ARN);
    const ssl = env.DB_SSL ?? 'verify-full';
    return {
      ...common,
      host: secret.host,
      port: Number(secret.port ?? 5432),
      user: secret.username,
      password: secret.password,
      database: secret.dbname ?? 'postgres',
      ssl: ssl === 'disable' ? false : { rejectUnauthorized: ssl === 'verify-full', servername: secret.host },
    };
  }
  // pg reads PG* variables itself when no connection string is given.
  const config: pg.ClientConfig = { ...common };
  if (env.DATABASE_URL) {
    // pg lets a URL's `options` replace the config's: keep the user's (search_path…) and put ours last, so the
    // canonical text settings and the timeouts hold whatever the URL says.
    const { url, options } = splitOptions(env.DATABASE_URL);
    config.connectionString = url;
    if (options) config.options = `${options} ${config.options}`;
  }
  if (env.DB_SSL === 'require') config.ssl = { rejectUnauthorized: false };
  if (env.DB_SSL === 'verify-full') config.ssl = { rejectUnauthorized: true };
  return config;
}

/** A connection URL without its `options` parameter, and that parameter. */
function splitOptions(databaseUrl: string): { url: string; options?: string } {
  if (!/[?&]options=/.test(databaseUrl)) return { url: databaseUrl };
  try {
    const url = new URL(databaseUrl);
    const options = url.searchParams.get('options') ?? undefined;
    url.searchParams.delete('options');
    return { url: url.toString(), ...(options ? { options } : {}) };
  } catch {
    return { url: databaseUrl };
  }
}

/**
 * Opens a client; connection failures surface as TransientDatabaseError (Step Functions retries them).
 * A server that does not know client_connection_check_interval (before 14) or cannot honour it (no
 * socket close events on its platform) gets the connection without it.
 */
export async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  try {
    return await open(config);
  } catch (error) {
    const refusedCheck = /client_connection_check_interval/.test((error as Error).message ?? '');
    if (!refusedCheck || !config.options?.includes(CONNECTION_CHECK_OPTION))
      throw classifyDatabaseError(error);
    const options = config.options.replace(CONNECTION_CHECK_OPTION, '').replace(/\s+/g, ' ').trim();
    try {
      return await open({ ...config, options });
    } catch (retryError) {
      throw classifyDatabaseError(retryError);
    }
  }
}

async function open(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  noteTimeouts(client, config);
  return client;
}

/**
 * Notes on each lock/statement timeout error what timed out, for how long, on which backend (see
 * lock-wait.ts): the step that fails with it can then name who held the lock. Promise queries and submitted
 * queries that emit 'error' (the archive chunk's COPY, adapters/copy-out.ts; pg-copy-streams) are watched.
 */
function noteTimeouts(client: pg.Client, config: pg.ClientConfig): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const backendPid = (client as unknown as { processID?: number | null }).processID ?? undefined;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const startedAt = performance.now();
    const result = query(...args);
    const note = (error: unknown) => {
      if (!isTimeout(error)) return;
      const first = args[0] as string | { text?: unknown } | undefined;
      noteTimeout(error, {
        statement: typeof first === 'string' ? first : String(first?.text ?? ''),
        elapsedMs: performance.now() - startedAt,
        backendPid,
        config,
      });
    };
    if (result instanceof Promise) {
      return result.catch((error: unknown) => {
        note(error);
        throw error;
      });
    }
    // A stream: noted by a listener added before its reader's, so the reader gets the noted error.
    const stream = result as { once?: (event: string, listener: (error: unknown) => void) => unknown };
    if (typeof stream?.once === 'function') stream.once('error', note);
    return result;
  };
}

/** Runs `work` with a fresh client and always ends it (success or error). */
export async function withClient<T>(
  config: pg.ClientConfig,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await connect(config);
  try {
    return await work(client);
  } catch (error) {
    throw classifyDatabaseError(await explainTimeout(error));
  } finally {
    await client.end().catch(() => undefined);
  }
}
