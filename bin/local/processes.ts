/**
 * Process and port helpers shared by the local services (in-process and kept): liveness that sees through
 * zombies, signals that tolerate a process already gone, waits with deadlines, pid files, free ports.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** True while `pid` runs (also when it belongs to another user); false once it exited, zombie or not. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** An exited orphan stays a zombie until init reaps it, which some container inits do only every second or so. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/** Sends `name` to `pid`; a process already gone is not an error. */
export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** Waits until `pid` is gone; false when it still runs after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** {@link waitForExit} for exit handlers, where nothing async runs. */
export function waitForExitSync(pid: number, timeoutMs: number): void {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) Atomics.wait(sleeper, 0, 0, 20);
}

/** Guards against pid reuse: only a postgres process started on this very directory qualifies. */
export function isPostmasterFor(pid: number, dataDir: string): boolean {
  const commandLine = readCommandLine(pid);
  return (
    commandLine !== undefined && /postgres/.test(commandLine) && commandLine.includes(path.resolve(dataDir))
  );
}

/** The process's command line, arguments separated by spaces; undefined when it is gone. */
export function readCommandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    try {
      return execFileSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
    } catch {
      return undefined;
    }
  }
}

/** The pid on the first line of a pid file (postmaster.pid and ours); undefined when missing or garbled. */
export function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n', 1)[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the caller retries if someone takes it first). */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether nothing listens on 127.0.0.1:`port` (binding it succeeds). */
export async function isPortFree(port: number): Promise<boolean> {
  const server = createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (bound) await new Promise<void>((resolve) => server.close(() => resolve()));
  return bound;
}
