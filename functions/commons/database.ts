/**
 * PostgreSQL connections for the handlers and the CLI.
 *
 * Every value comes back as the server's text: pg's default parsers turn timestamptz into a JS Date
 * (dropping microseconds) and int8/numeric into lossy numbers, and a lifecycle tool must copy rows
 * byte-exact. The session is pinned to UTC/ISO output so the text is stable.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { classifyDatabaseError } from '../core/errors.ts';
import { AWS_CLIENT_TIMEOUTS } from './aws-clients.ts';
import type { HandlerEnv } from './env.ts';

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

interface RdsSecret {
  host: string;
  port?: number | string;
  username: string;
  password: string;
  dbname?: string;
}

const SECRET_TTL_MS = 5 * 60_000;
let cachedSecret: { arn: string; value: RdsSecret; fetchedAt: number } | undefined;

async function readSecret(arn: string): Promise<RdsSecret> {
  if (cachedSecret && cachedSecret.arn === arn && Date.now() - cachedSecret.fetchedAt < SECRET_TTL_MS) {
    return cachedSecret.value;
  }
  const client = new SecretsManagerClient({ ...AWS_CLIENT_TIMEOUTS });
  const result = await client.send(new GetSecretValueCommand({ SecretId: arn }));
  if (!result.SecretString) throw new Error(`secret ${arn} has no SecretString`);
  const value = JSON.parse(result.SecretString) as RdsSecret;
  cachedSecret = { arn, value, fetchedAt: Date.now() };
  return value;
}

/** Client settings from the environment: a Secrets Manager secret (AWS) or DATABASE_URL / PG* (local). */
export async function resolveClientConfig(
  env: Pick<HandlerEnv, 'DB_SECRET_ARN' | 'DATABASE_URL' | 'DB_SSL'>,
): Promise<pg.ClientConfig> {
  const common: pg.ClientConfig = {
    types: RAW_TEXT_TYPES,
    options: SESSION_OPTIONS,
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
  if (env.DATABASE_URL) config.connectionString = env.DATABASE_URL;
  if (env.DB_SSL === 'require') config.ssl = { rejectUnauthorized: false };
  if (env.DB_SSL === 'verify-full') config.ssl = { rejectUnauthorized: true };
  return config;
}

/** Opens a client; connection failures surface as TransientDatabaseError (Step Functions retries them). */
export async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw classifyDatabaseError(error);
  }
  return client;
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
    throw classifyDatabaseError(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}
