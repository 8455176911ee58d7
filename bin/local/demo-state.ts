/**
 * The state of a kept demo (`npm start -- --keep`, `npm run demo:up`): where it lives, what it records and the
 * environment it hands to the CLI. One directory holds everything: the state file, the env file, both
 * servers' logs, the PostgreSQL cluster and the S3 snapshot.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The repository root: the default state directory is `.demo/` there, whatever the working directory. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `$PG_LIFECYCLE_DEMO_DIR`, or `.demo/` in the repository root. */
export function demoStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.PG_LIFECYCLE_DEMO_DIR;
  return path.resolve(configured ? configured : path.join(REPO_ROOT, '.demo'));
}

/** A path as the user would type it: relative when under the working directory, else absolute. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

/** The files and directories of a state directory. */
export function demoPaths(stateDir: string) {
  return {
    stateDir,
    stateFile: path.join(stateDir, 'state.json'),
    envFile: path.join(stateDir, 'env'),
    duckdbFile: path.join(stateDir, 'duckdb.sql'),
    dataDir: path.join(stateDir, 'pgdata'),
    s3StorageDir: path.join(stateDir, 's3data'),
    postgresLog: path.join(stateDir, 'postgres.log'),
    s3Log: path.join(stateDir, 's3.log'),
  };
}

export type DemoPaths = ReturnType<typeof demoPaths>;

const ServiceSchema = z.object({
  /** Pid of the detached process (the postmaster; the S3 server's node process). */
  pid: z.int().positive().optional(),
  port: z.int().min(1).max(65_535),
  log: z.string(),
});

/** state.json: written as soon as a process is spawned, so `demo:down` can stop a half-started demo too. */
export const DemoStateSchema = z.object({
  version: z.literal(1),
  startedAt: z.string(),
  /** Kept across `demo:down --persist` / `demo:up --persist`. */
  persist: z.boolean(),
  postgres: ServiceSchema.extend({
    dataDir: z.string(),
    user: z.string(),
    password: z.string(),
    database: z.string(),
  }),
  s3: ServiceSchema.extend({
    /** Where a graceful stop writes the objects and a start reads them back (persist only). */
    storageDir: z.string().optional(),
    bucket: z.string(),
    region: z.string(),
    accessKeyId: z.string(),
    secretAccessKey: z.string(),
  }),
  /** The demo's hash key (subject requests, anonymize), for the CLI. */
  hashKey: z.string(),
});

export type DemoState = z.output<typeof DemoStateSchema>;

/** The state file's content; undefined when there is none. */
export async function readDemoState(paths: DemoPaths): Promise<DemoState | undefined> {
  let text: string;
  try {
    text = await readFile(paths.stateFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = DemoStateSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${paths.stateFile} is not a pg-lifecycle demo state file`);
  return parsed.data;
}

/** Writes the state file atomically (a reader never sees half of it). */
export async function writeDemoState(paths: DemoPaths, state: DemoState): Promise<void> {
  await mkdir(paths.stateDir, { recursive: true });
  const temporary = `${paths.stateFile}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, paths.stateFile);
}

/** Removes what describes running services (state file, env file), keeping data and logs. */
export async function forgetRunningServices(paths: DemoPaths): Promise<void> {
  await Promise.all(
    [paths.stateFile, paths.envFile, paths.duckdbFile].map((file) => rm(file, { force: true })),
  );
}

export function databaseUrl(state: DemoState): string {
  const { user, password, port, database } = state.postgres;
  // sslmode=disable: the local server has no TLS, and a PGSSLMODE in the user's shell must not ask for it.
  return `postgres://${user}:${password}@127.0.0.1:${port}/${database}?sslmode=disable`;
}

export function s3Endpoint(state: DemoState): string {
  return `http://127.0.0.1:${state.s3.port}`;
}

/** The environment under which every README command works against the kept services. */
export function demoEnvironment(state: DemoState): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl(state),
    AWS_ENDPOINT_URL_S3: s3Endpoint(state),
    AWS_ACCESS_KEY_ID: state.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: state.s3.secretAccessKey,
    AWS_REGION: state.s3.region,
    PG_LIFECYCLE_BUCKET: state.s3.bucket,
    PG_LIFECYCLE_HASH_KEY: state.hashKey,
  };
}

/** `export NAME='value'` lines, quoted for sh/bash/zsh. */
export function exportLines(environment: Record<string, string>): string[] {
  return Object.entries(environment).map(([name, value]) => `export ${name}=${shellQuote(value)}`);
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** DuckDB statements that read the demo's archive straight from the local S3 server (needs httpfs). */
export function duckdbSetup(state: DemoState): string {
  return [
    'INSTALL httpfs; LOAD httpfs;',
    `CREATE OR REPLACE SECRET pg_lifecycle_demo (TYPE s3, KEY_ID '${state.s3.accessKeyId}', SECRET '${state.s3.secretAccessKey}', REGION '${state.s3.region}', ENDPOINT '127.0.0.1:${state.s3.port}', URL_STYLE 'path', USE_SSL false);`,
    `SELECT count(*) FROM read_parquet('s3://${state.s3.bucket}/archive/counting-results/*/*/*/*.parquet', hive_partitioning = true);`,
  ].join('\n');
}

/** Writes `env` (for `source`) and `duckdb.sql` next to the state file. */
export async function writeEnvFiles(paths: DemoPaths, state: DemoState): Promise<void> {
  const header = `# pg-lifecycle demo services (${paths.stateDir}); stop them with: npm run demo:down`;
  await writeFile(paths.envFile, `${[header, ...exportLines(demoEnvironment(state))].join('\n')}\n`, {
    mode: 0o600,
  });
  await writeFile(paths.duckdbFile, `${duckdbSetup(state)}\n`);
}
