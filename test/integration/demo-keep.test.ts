/**
 * `npm run demo:up` / `npm run demo:down` with real processes: the kept PostgreSQL and S3 server outlive the
 * process that started them, the printed environment is all another process needs to use them with the CLI,
 * demo:down leaves nothing behind, and `--persist` keeps the data across a down/up.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { type DemoState, DemoStateSchema } from '../../bin/local/demo-state.ts';
import { isKeptS3 } from '../../bin/local/kept-s3.ts';
import { isAlive, isPortFree, isPostmasterFor, signal, waitForExit } from '../../bin/local/processes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const stateDirs: string[] = [];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command in the repository root, as another process, with exactly the environment given. */
function run(command: string, args: string[], env: Record<string, string>, timeoutMs = 280_000) {
  return new Promise<Outcome>((resolve) => {
    execFile(
      command,
      args,
      { cwd: ROOT, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The environment of a fresh shell: no AWS or PostgreSQL settings of the test run leak into the children. */
function shellEnv(extra: Record<string, string> = {}): Record<string, string> {
  const { PATH = '', HOME = '' } = process.env;
  return { PATH, HOME, ...extra };
}

async function newStateDir(): Promise<string> {
  const base = await mkdtemp(path.join(tmpdir(), 'pg-lifecycle-demo-keep-'));
  // As root, PostgreSQL runs as `postgres`, which must reach the data directory inside.
  await chmod(base, 0o711);
  const dir = path.join(base, 'state');
  stateDirs.push(dir);
  return dir;
}

const npm = (stateDir: string, args: string[]) =>
  run('npm', ['run', '--silent', ...args], shellEnv({ PG_LIFECYCLE_DEMO_DIR: stateDir }));

async function readState(stateDir: string): Promise<DemoState> {
  return DemoStateSchema.parse(JSON.parse(await readFile(path.join(stateDir, 'state.json'), 'utf8')));
}

/** The `export NAME='value'` lines of the env file, as the shell would read them. */
async function readEnvFile(stateDir: string): Promise<Record<string, string>> {
  const text = await readFile(path.join(stateDir, 'env'), 'utf8');
  const entries = [...text.matchAll(/^export ([A-Z0-9_]+)='((?:[^']|'\\'')*)'$/gm)].map(
    ([, name, value]) => [name as string, (value as string).replaceAll(`'\\''`, "'")] as const,
  );
  return Object.fromEntries(entries);
}

function s3ClientFor(env: Record<string, string>): S3Client {
  return new S3Client({
    endpoint: env.AWS_ENDPOINT_URL_S3,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: {
      accessKeyId: env.AWS_ACCESS_KEY_ID as string,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY as string,
    },
  });
}

/** Asserts what demo:down promises: the processes are gone, so are their ports (and the directory, unless kept). */
async function expectStopped(state: DemoState) {
  const pids = [state.postgres.pid, state.s3.pid];
  expect(pids.every((pid) => pid !== undefined)).toBe(true);
  for (const pid of pids) expect(isAlive(pid as number), `pid ${pid} still alive`).toBe(false);
  expect(await isPortFree(state.postgres.port)).toBe(true);
  expect(await isPortFree(state.s3.port)).toBe(true);
}

afterAll(async () => {
  // A failed test must not leave servers behind: kill what any state file still records, then the directories.
  for (const dir of stateDirs) {
    const state = await readState(dir).catch(() => undefined);
    const { postgres, s3 } = state ?? {};
    const pids = [
      postgres?.pid !== undefined && isPostmasterFor(postgres.pid, postgres.dataDir)
        ? postgres.pid
        : undefined,
      s3?.pid !== undefined && isKeptS3(s3.pid) ? s3.pid : undefined,
    ].filter((pid) => pid !== undefined);
    for (const pid of pids) signal(pid, 'SIGKILL');
    await Promise.all(pids.map((pid) => waitForExit(pid, 10_000)));
    await rm(path.dirname(dir), { recursive: true, force: true, maxRetries: 5 });
  }
}, 60_000);

describe('npm run demo:up / demo:down', () => {
  it('keeps PostgreSQL and S3 running after the demo for the CLI of another process, and demo:down removes every trace', {
    timeout: 600_000,
  }, async () => {
    const stateDir = await newStateDir();

    const up = await npm(stateDir, ['demo:up', '--', '--json']);
    expect(up.code, up.stderr).toBe(0);
    const report = JSON.parse(up.stdout);
    expect(report.ok).toBe(true);
    const state = await readState(stateDir);
    // The demo's process has exited; its services have not.
    expect(isPostmasterFor(state.postgres.pid as number, state.postgres.dataDir)).toBe(true);
    expect(isKeptS3(state.s3.pid as number)).toBe(true);
    const env = await readEnvFile(stateDir);
    expect(env).toEqual(report.services.env);
    expect(Object.keys(env)).toEqual(
      expect.arrayContaining([
        'DATABASE_URL',
        'AWS_ENDPOINT_URL_S3',
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'AWS_REGION',
        'PG_LIFECYCLE_BUCKET',
        'PG_LIFECYCLE_HASH_KEY',
      ]),
    );

    // Another process, with nothing but the printed environment: the ledger the demo wrote…
    const cli = (args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'bin/pg-lifecycle.ts', ...args], shellEnv(env));
    const status = await cli(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const runs: Array<{ policy: string; status: string }> = JSON.parse(status.stdout).runs;
    expect(runs.length).toBeGreaterThan(0);
    expect(runs.every((r) => r.status === 'succeeded')).toBe(true);
    // …and the archive in S3, checked against that ledger.
    const verify = await cli(['verify', '--policy', 'counting-results-archive']);
    expect(verify.code, `${verify.stdout}${verify.stderr}`).toBe(0);
    expect(verify.stdout).toMatch(/counting-results-archive: \d+ objects, \d+ rows: OK/);
    const s3 = s3ClientFor(env);
    try {
      const listed = await s3.send(
        new ListObjectsV2Command({
          Bucket: env.PG_LIFECYCLE_BUCKET,
          Prefix: 'archive/counting-results-archive/',
        }),
      );
      expect(listed.KeyCount).toBeGreaterThan(0);
    } finally {
      s3.destroy();
    }

    const down = await npm(stateDir, ['demo:down']);
    expect(down.code, down.stderr).toBe(0);
    await expectStopped(state);
    expect(existsSync(stateDir)).toBe(false);
  });

  it('keeps the data across demo:down --persist and demo:up --persist, and refuses a second demo:up', {
    timeout: 300_000,
  }, async () => {
    const stateDir = await newStateDir();

    const up = await npm(stateDir, ['demo:up', '--', '--persist', '--services-only', '--json']);
    expect(up.code, up.stderr).toBe(0);
    const first = await readState(stateDir);
    const env = await readEnvFile(stateDir);
    const bucket = env.PG_LIFECYCLE_BUCKET as string;
    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    await client.connect();
    try {
      await client.query("CREATE TABLE demo_marker (note text); INSERT INTO demo_marker VALUES ('kept')");
    } finally {
      await client.end();
    }
    let s3 = s3ClientFor(env);
    try {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'marker/a.txt', Body: 'kept object' }));
    } finally {
      s3.destroy();
    }

    const again = await npm(stateDir, ['demo:up', '--', '--persist']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('still running');
    expect(again.stderr).toContain('npm run demo:down');
    expect(isPostmasterFor(first.postgres.pid as number, first.postgres.dataDir)).toBe(true);

    const downKeeping = await npm(stateDir, ['demo:down', '--', '--persist']);
    expect(downKeeping.code, downKeeping.stderr).toBe(0);
    await expectStopped(first);
    expect(existsSync(path.join(stateDir, 'pgdata', 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(stateDir, 'state.json'))).toBe(false);

    const resumed = await npm(stateDir, ['demo:up', '--', '--persist', '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout).services.resumed).toBe(true);
    const second = await readState(stateDir);
    const envAgain = await readEnvFile(stateDir);
    const reader = new pg.Client({ connectionString: envAgain.DATABASE_URL });
    await reader.connect();
    try {
      const { rows } = await reader.query<{ note: string }>('SELECT note FROM demo_marker');
      expect(rows).toEqual([{ note: 'kept' }]);
    } finally {
      await reader.end();
    }
    s3 = s3ClientFor(envAgain);
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'marker/a.txt' }));
      expect(await object.Body?.transformToString()).toBe('kept object');
    } finally {
      s3.destroy();
    }

    const down = await npm(stateDir, ['demo:down']);
    expect(down.code, down.stderr).toBe(0);
    await expectStopped(second);
    expect(existsSync(stateDir)).toBe(false);
  });
});
