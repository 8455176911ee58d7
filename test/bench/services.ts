/**
 * Servers for a benchmark: DATABASE_URL or an embedded PostgreSQL, AWS_ENDPOINT_URL_S3 or a local S3 server
 * (in a child process by default, in-process with `inproc`). `stop()` stops only what was started here.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startLocalPostgres, startLocalS3 } from '../../bin/local/services.ts';

export type S3Mode = 'child' | 'inproc';

export interface BenchServices {
  readonly databaseUrl: string;
  readonly s3Endpoint: string;
  /** True when PostgreSQL runs on this machine, started here (its CPU time can be read from /proc). */
  readonly localPostgres: boolean;
  /** Pid of the S3 server child process, when there is one. */
  readonly s3Pid: number | undefined;
  stop(): Promise<void>;
}

export async function startBenchServices(s3Mode: S3Mode): Promise<BenchServices> {
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    const results = await Promise.allSettled(stops.reverse().map((fn) => fn()));
    stops.length = 0;
    const failed = results.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  };
  try {
    const [postgres, s3] = await Promise.all([
      process.env.DATABASE_URL
        ? { url: process.env.DATABASE_URL, local: false }
        : startLocalPostgres().then((server) => {
            stops.push(server.stop);
            return { url: server.url, local: true };
          }),
      process.env.AWS_ENDPOINT_URL_S3
        ? { endpoint: process.env.AWS_ENDPOINT_URL_S3, pid: undefined }
        : s3Mode === 'child'
          ? startS3Child().then((child) => {
              stops.push(child.stop);
              return child;
            })
          : startLocalS3().then((server) => {
              stops.push(server.stop);
              return { endpoint: server.endpoint, pid: undefined };
            }),
    ]);
    return {
      databaseUrl: postgres.url,
      s3Endpoint: s3.endpoint,
      localPostgres: postgres.local,
      s3Pid: s3.pid,
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

async function startS3Child(): Promise<{
  endpoint: string;
  pid: number | undefined;
  stop: () => Promise<void>;
}> {
  const entry = fileURLToPath(new URL('./s3-server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const { endpoint } = await readFirstLine(child);
    return { endpoint, pid: child.pid, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function readFirstLine(child: ChildProcess): Promise<{ endpoint: string }> {
  if (!child.stdout) throw new Error('S3 server child has no stdout');
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`S3 server child exited (${String(code)}) before reporting its endpoint`);
  });
  const first = once(lines, 'line').then(([line]) => JSON.parse(String(line)) as { endpoint: string });
  const timeout = new Promise<never>((_, reject) => {
    setTimeout(() => reject(new Error('S3 server child did not start within 30 s')), 30_000).unref();
  });
  try {
    return await Promise.race([first, exited, timeout]);
  } finally {
    lines.close();
  }
}
