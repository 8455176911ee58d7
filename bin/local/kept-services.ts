/**
 * `npm run demo:up` / `npm run demo:down`: the demo's PostgreSQL and S3 server kept running as detached
 * processes, described by the state directory (bin/local/demo-state.ts), so that every README command can
 * be tried on what the demo left.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import {
  type DemoPaths,
  type DemoState,
  demoPaths,
  demoStateDir,
  displayPath,
  forgetRunningServices,
  readDemoState,
  writeDemoState,
  writeEnvFiles,
} from './demo-state.ts';
import { startKeptPostgres, stopKeptPostgres } from './kept-postgres.ts';
import { isKeptS3, startKeptS3, stopKeptS3 } from './kept-s3.ts';
import { isPostmasterFor } from './processes.ts';
import { localS3Client } from './s3-snapshot.ts';
import { PASSWORD, USER } from './services.ts';

/** Ports tried first, so that the printed environment stays the same from one `demo:up` to the next. */
const POSTGRES_PORT = 55432;
const S3_PORT = 45660;

/** `demo:up` found services of an earlier `demo:up` still running. */
export class DemoAlreadyRunningError extends Error {
  constructor(
    message: string,
    readonly stateDir: string,
  ) {
    super(message);
    this.name = 'DemoAlreadyRunningError';
  }
}

export interface UpOptions {
  readonly bucket: string;
  readonly hashKey: string;
  /** Keep (and reuse) the data directory and the S3 snapshot across down/up. */
  readonly persist: boolean;
  readonly say: (text: string) => void;
}

export interface KeptServices {
  readonly state: DemoState;
  readonly paths: DemoPaths;
  /** True when `--persist` found the data of an earlier demo and started on it. */
  readonly resumed: boolean;
}

/**
 * Starts PostgreSQL and the S3 server detached and records them in the state directory.
 * Without `persist` it starts from nothing (an earlier persisted state is removed); with it, on the data
 * an earlier `demo:down --persist` kept, when there is some.
 * @throws DemoAlreadyRunningError when services of an earlier `demo:up` still run
 */
export async function upKeptServices(options: UpOptions): Promise<KeptServices> {
  const paths = demoPaths(demoStateDir());
  const earlier = await readDemoState(paths).catch(() => undefined);
  const running = earlier ? runningPids(earlier) : [];
  if (running.length > 0) {
    throw new DemoAlreadyRunningError(
      `The demo services of an earlier demo:up are still running (pid ${running.join(', ')}; state in ${paths.stateDir}).\n` +
        `Use them (source ${displayPath(paths.envFile)}), or stop them first: npm run demo:down${options.persist ? ' -- --persist' : ''}`,
      paths.stateDir,
    );
  }
  if (!options.persist && existsSync(paths.stateDir)) {
    if (existsSync(paths.dataDir))
      options.say(`Removing the data an earlier demo left in ${paths.stateDir}…`);
    await rm(paths.stateDir, { recursive: true, force: true, maxRetries: 5 });
  }
  await forgetRunningServices(paths);
  await mkdir(paths.stateDir, { recursive: true });
  // As root, PostgreSQL runs as `postgres`, which must reach its data directory inside.
  await chmod(paths.stateDir, 0o711);
  const resumed = options.persist && existsSync(path.join(paths.dataDir, 'PG_VERSION'));
  const state: DemoState = {
    version: 1,
    startedAt: new Date().toISOString(),
    persist: options.persist,
    postgres: {
      port: earlier?.postgres.port ?? POSTGRES_PORT,
      log: paths.postgresLog,
      dataDir: paths.dataDir,
      user: USER,
      password: PASSWORD,
      database: 'postgres',
    },
    s3: {
      port: earlier?.s3.port ?? S3_PORT,
      log: paths.s3Log,
      storageDir: paths.s3StorageDir,
      bucket: options.bucket,
      region: 'us-east-1',
      accessKeyId: 'demo',
      secretAccessKey: 'demo',
    },
    hashKey: options.hashKey,
  };
  // One write at a time: both servers report their pid concurrently.
  let writes = writeDemoState(paths, state);
  const record = (update: (s: DemoState) => void) => {
    update(state);
    writes = writes.then(() => writeDemoState(paths, state));
    return writes;
  };
  try {
    const [postgres, s3] = await Promise.allSettled([
      startKeptPostgres({
        dataDir: paths.dataDir,
        preferredPort: state.postgres.port,
        log: paths.postgresLog,
        persistent: options.persist,
        onSpawn: (pid, port) => record((s) => Object.assign(s.postgres, { pid, port })),
      }),
      startKeptS3({
        preferredPort: state.s3.port,
        log: paths.s3Log,
        storageDir: paths.s3StorageDir,
        onSpawn: (pid, port) => record((s) => Object.assign(s.s3, { pid, port })),
      }),
    ]);
    const failed = [postgres, s3].find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const s3Client = localS3Client(`http://127.0.0.1:${state.s3.port}`);
    try {
      await s3Client.send(new CreateBucketCommand({ Bucket: options.bucket }));
    } finally {
      s3Client.destroy();
    }
    await writes;
    await writeEnvFiles(paths, state);
    return { state, paths, resumed };
  } catch (error) {
    await writes.catch(() => undefined);
    await stopServices(state, paths, { persist: options.persist }).catch(() => undefined);
    throw error;
  }
}

/** Options of {@link downKeptServices}. */
export interface DownOptions {
  /** Keep the data directory and the S3 snapshot for `demo:up --persist`. */
  readonly persist: boolean;
  readonly say: (text: string) => void;
}

/** Stops the kept services and removes the state directory (with `persist`: all but the data and logs). */
export async function downKeptServices(options: DownOptions): Promise<void> {
  const paths = demoPaths(demoStateDir());
  const state = await readDemoState(paths);
  if (!state) {
    options.say(`No demo services recorded in ${paths.stateDir}.`);
    if (!options.persist && existsSync(paths.stateDir)) {
      options.say(`Removing ${paths.stateDir}.`);
      await rm(paths.stateDir, { recursive: true, force: true, maxRetries: 5 });
    }
    return;
  }
  const pids = [state.postgres.pid, state.s3.pid].filter((pid) => pid !== undefined);
  options.say(`Stopping the demo services (pid ${pids.join(', ') || '-'})…`);
  await stopServices(state, paths, options);
  options.say(
    options.persist
      ? `Stopped. The data stays in ${paths.stateDir} for: npm run demo:up -- --persist`
      : `Stopped; ${paths.stateDir} removed.`,
  );
}

async function stopServices(
  state: DemoState,
  paths: DemoPaths,
  options: { persist: boolean },
): Promise<void> {
  const stops = await Promise.allSettled([
    state.postgres.pid === undefined
      ? undefined
      : stopKeptPostgres(state.postgres.pid, state.postgres.dataDir),
    state.s3.pid === undefined ? undefined : stopKeptS3(state.s3.pid),
  ]);
  const failed = stops.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  // A process that would not stop keeps the state file, so that demo:down can be tried again.
  if (failed) throw failed.reason;
  if (options.persist) await forgetRunningServices(paths);
  else await rm(paths.stateDir, { recursive: true, force: true, maxRetries: 5 });
}

/** The recorded processes that still run (a pid reused by another process, after a reboot, does not count). */
function runningPids(state: DemoState): number[] {
  const { postgres, s3 } = state;
  return [
    postgres.pid !== undefined && isPostmasterFor(postgres.pid, postgres.dataDir) ? postgres.pid : undefined,
    s3.pid !== undefined && isKeptS3(s3.pid) ? s3.pid : undefined,
  ].filter((pid) => pid !== undefined);
}
