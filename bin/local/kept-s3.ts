/**
 * The kept demo's S3 server: bin/local/demo-s3-server.ts in a detached node process (its own session, output
 * to a log file) that outlives the process that started it. SIGTERM stops it, after it saved its objects.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { findFreePort, isAlive, isPortFree, readCommandLine, signal, waitForExit } from './processes.ts';

export interface KeptS3Options {
  /** Port tried first; a free one when it is taken. */
  readonly preferredPort: number;
  /** Server output (appended). */
  readonly log: string;
  /** Snapshot directory: loaded at start, written at SIGTERM. */
  readonly storageDir: string;
  /** Called with the server's pid as soon as it is spawned, before it is ready. */
  readonly onSpawn: (pid: number, port: number) => Promise<void>;
}

const ENTRY = fileURLToPath(new URL('./demo-s3-server.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const START_TIMEOUT_MS = 60_000;

/** Starts the detached S3 server and waits until it serves (its snapshot loaded); returns its pid and port. */
export async function startKeptS3(options: KeptS3Options): Promise<{ pid: number; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port =
      attempt === 1 && (await isPortFree(options.preferredPort))
        ? options.preferredPort
        : await findFreePort();
    const child = await spawnServer(options, port);
    const pid = child.pid as number;
    await options.onSpawn(pid, port);
    const outcome = await waitUntilReady(child);
    if (outcome === 'ready') return { pid, port };
    await stopKeptS3(pid);
    // The free port is only free until someone else binds it: a lost race is retried on another port.
    if (outcome === 'EADDRINUSE' && attempt < 3) continue;
    throw new Error(`The local S3 server did not start (${outcome}); see ${options.log}`);
  }
}

/** SIGTERM (the server saves its objects, then exits), SIGKILL if it is still there after `timeoutMs`. */
export async function stopKeptS3(pid: number, timeoutMs = 60_000): Promise<void> {
  // A pid reused by another process (the server died, the machine rebooted) is left alone.
  if (!isKeptS3(pid)) return;
  signal(pid, 'SIGTERM');
  if (await waitForExit(pid, timeoutMs)) return;
  signal(pid, 'SIGKILL');
  if (!(await waitForExit(pid, 5_000))) throw new Error(`The local S3 server (pid ${pid}) did not stop`);
}

/** Whether `pid` is a running kept S3 server (not another process that got its pid). */
export function isKeptS3(pid: number): boolean {
  return isAlive(pid) && readCommandLine(pid)?.includes(ENTRY) === true;
}

async function spawnServer(options: KeptS3Options, port: number): Promise<ChildProcess> {
  const log = await open(options.log, 'a');
  try {
    const child = spawn(
      process.execPath,
      ['--import', TSX, ENTRY, '--port', String(port), '--storage', options.storageDir],
      // Its own session: the terminal's Ctrl-C and the end of npm do not reach it. IPC only until it is ready.
      { detached: true, stdio: ['ignore', log.fd, log.fd, 'ipc'] },
    );
    if (child.pid === undefined) {
      await new Promise((resolve) => child.once('error', resolve));
      throw new Error(`Could not start ${ENTRY}`);
    }
    return child;
  } finally {
    await log.close();
  }
}

/** 'ready', or why not: the error code the server reported, 'exited' or 'timeout'. Lets the child go after. */
async function waitUntilReady(child: ChildProcess): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<string>((resolve) => {
      child.on('message', (message: { ready?: boolean; error?: string }) =>
        resolve(message.ready ? 'ready' : (message.error ?? 'failed')),
      );
      child.once('exit', () => resolve('exited'));
      timer = setTimeout(() => resolve('timeout'), START_TIMEOUT_MS);
    });
  } finally {
    clearTimeout(timer);
    if (child.connected) child.disconnect();
    child.unref();
  }
}
