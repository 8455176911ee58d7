/**
 * Runs the real CLI (`node --import tsx bin/pg-lifecycle.ts …`) in a child process, asynchronously: a
 * blocking spawn (spawnSync) would freeze the in-process S3 server the tests talk to (TOOLCHAIN.md).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** The repository root: the CLI resolves `tsx` and its default config file from here. */
export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

const ENTRY = path.join(REPO_ROOT, 'bin/pg-lifecycle.ts');

/** What a CLI run left: its exit, its output and how long it took. */
export interface CliResult {
  /** Exit code; null when the process was killed (see `signal`). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  /** The run outlived `timeoutMs` and was killed with SIGKILL (no chance to clean up, like a lost Lambda). */
  readonly timedOut: boolean;
}

export interface CliOptions {
  /**
   * The child's whole environment on top of PATH/HOME/TMPDIR/LANG: nothing else is inherited, so a
   * DATABASE_URL, AWS profile or NODE_OPTIONS of the test process cannot leak into the run under test.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** @default 120_000 */
  readonly timeoutMs?: number;
}

/** Variables every child gets from the test process (to find node, a home and a temp directory). */
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'] as const;

/**
 * Starts `pg-lifecycle <argv>` and returns the process, for a test that acts on it while it runs (signals,
 * waiting for its progress). Its environment is `env` on top of PATH/HOME/TMPDIR/LANG/TZ, as in `runCli`;
 * stdout and stderr are piped: the caller reads (or resumes) both.
 */
export function spawnCli(
  argv: readonly string[],
  env: CliOptions['env'],
): ChildProcessByStdio<null, Readable, Readable> {
  const childEnv: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = process.env[name];
    if (value !== undefined) childEnv[name] = value;
  }
  for (const [name, value] of Object.entries(env)) if (value !== undefined) childEnv[name] = value;
  return spawn(process.execPath, ['--import', 'tsx', ENTRY, ...argv], {
    cwd: REPO_ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function runCli(argv: readonly string[], options: CliOptions): Promise<CliResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawnCli(argv, options.env);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        durationMs: Math.round(performance.now() - started),
        timedOut,
      });
    });
  });
}

/** The environment of a local run: the database, the S3 endpoint with dummy credentials, the bucket. */
export function cliEnvironment(options: {
  readonly databaseUrl: string;
  readonly s3Endpoint: string;
  readonly bucket?: string;
}): Record<string, string> {
  return {
    DATABASE_URL: options.databaseUrl,
    AWS_ENDPOINT_URL_S3: options.s3Endpoint,
    // What test/support/s3.ts uses: local S3 servers accept any credentials.
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    ...(options.bucket ? { PG_LIFECYCLE_BUCKET: options.bucket } : {}),
  };
}
