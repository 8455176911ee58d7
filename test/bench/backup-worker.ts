/**
 * The process whose memory the backup benchmark reports: a child that runs only the measured backups (the
 * state machine with the real handlers, instrumented as backup-instrument.ts describes) and restores
 * (backup-restore.ts restoreParts), like a warm Lambda or a CLI `restore`. The benchmark's own process fills
 * tables, streams baselines and rebuilds stages; the memory those leave behind (RSS rarely shrinks) would
 * otherwise be in the peak, and make it depend on the order of the phases.
 *
 * Parent side: `BackupWorker.start(init)`, then `backup()` / `restore()`, each answered with its timings, its
 * peak RSS and the CPU time the worker spent. Child side: this file run with `--worker` (IPC requests).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BackupManifest } from '../../functions/actions/backup/manifest.ts';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import type { AslDefinition } from '../../functions/local-runner/synthesize.ts';
import type { RestoredParts } from './backup-restore.ts';
import type { PeakRss } from './memory.ts';

export interface WorkerInit {
  readonly databaseUrl: string;
  /** The config as written (backup-run.ts backupConfigInput). */
  readonly configInput: unknown;
  readonly definition: AslDefinition;
}

export interface WorkerBackup {
  readonly seconds: number;
  readonly rss: PeakRss;
  readonly node_cpu_s: number;
  /** Event-loop utilisation of the worker during the backup. */
  readonly busy_share: number;
  readonly timed: Record<string, { seconds: number; calls: number }>;
  readonly parts_busy_s: number;
  readonly run: Pick<LocalRunResult, 'status' | 'summary' | 'failure' | 'chunkInvocations'>;
}

export interface WorkerRestore extends RestoredParts {
  readonly rss: PeakRss;
  readonly node_cpu_s: number;
}

type Request =
  | { readonly kind: 'init'; readonly init: WorkerInit }
  | { readonly kind: 'backup'; readonly skipChecksum: boolean }
  | {
      readonly kind: 'restore';
      readonly manifest: BackupManifest;
      readonly target: string;
      readonly rows: number;
    };

type Response = { readonly id: number } & (
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: string }
);

export class BackupWorker {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (message: Response) => {
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.ok) waiter?.resolve(message.value);
      else waiter?.reject(new Error(`backup worker: ${message.error}`));
    });
    child.on('exit', (code) => {
      for (const waiter of this.pending.values())
        waiter.reject(new Error(`backup worker exited (${String(code)})`));
      this.pending.clear();
    });
  }

  /** Forks the worker (it inherits the environment: DATABASE and S3 settings) and initialises it. */
  static async start(init: WorkerInit): Promise<{ worker: BackupWorker; floorRss: number }> {
    const child = fork(fileURLToPath(import.meta.url), ['--worker'], {
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const worker = new BackupWorker(child);
    try {
      const floorRss = (await worker.request({ kind: 'init', init })) as number;
      return { worker, floorRss };
    } catch (error) {
      await worker.stop();
      throw error;
    }
  }

  backup(skipChecksum: boolean): Promise<WorkerBackup> {
    return this.request({ kind: 'backup', skipChecksum }) as Promise<WorkerBackup>;
  }

  restore(manifest: BackupManifest, target: string, rows: number): Promise<WorkerRestore> {
    return this.request({ kind: 'restore', manifest, target, rows }) as Promise<WorkerRestore>;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private request(request: Request): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, ...request });
    });
  }
}

/** The child: imports the product only here, so the parent never holds the local runner. */
async function serve(): Promise<void> {
  await import('../support/polyfills.ts');
  const { LifecycleConfigSchema } = await import('../../lib/contracts/config.ts');
  const { connect, resolveClientConfig } = await import('../../functions/commons/database.ts');
  const { createS3Client } = await import('../../functions/commons/s3.ts');
  const { BackupTimings, timeS3Commands } = await import('./backup-instrument.ts');
  const { runBackup } = await import('./backup-run.ts');
  const { BUCKET } = await import('./backup-run.ts');
  const { restoreParts } = await import('./backup-restore.ts');
  const { collectGarbage, measurePeakRss } = await import('./memory.ts');

  const s3 = createS3Client();
  const current: { timings: InstanceType<typeof BackupTimings> | undefined } = { timings: undefined };
  timeS3Commands(s3, () => current.timings);
  let state:
    | {
        runner: Parameters<typeof runBackup>[0];
        db: Awaited<ReturnType<typeof connect>>;
      }
    | undefined;
  const cpuSeconds = (since: NodeJS.CpuUsage) => {
    const used = process.cpuUsage(since);
    return (used.user + used.system) / 1e6;
  };

  const handle = async (request: Request): Promise<unknown> => {
    if (request.kind === 'init') {
      const { databaseUrl, configInput, definition } = request.init;
      const db = await connect(
        await resolveClientConfig(
          { DATABASE_URL: databaseUrl },
          { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
        ),
      );
      const config = LifecycleConfigSchema.parse(configInput);
      state = { runner: { databaseUrl, s3, config, definition, current }, db };
      collectGarbage();
      return process.memoryUsage().rss;
    }
    if (!state) throw new Error('not initialised');
    const cpu = process.cpuUsage();
    if (request.kind === 'backup') {
      const timings = new BackupTimings();
      const elu = performance.eventLoopUtilization();
      const started = performance.now();
      const { result, rss } = await measurePeakRss(() =>
        runBackup(state?.runner as Parameters<typeof runBackup>[0], timings, request.skipChecksum),
      );
      const value: WorkerBackup = {
        seconds: (performance.now() - started) / 1000,
        rss,
        node_cpu_s: cpuSeconds(cpu),
        busy_share: performance.eventLoopUtilization(elu).utilization,
        timed: timings.snapshot(),
        parts_busy_s: timings.partsBusySeconds(),
        run: {
          status: result.status,
          summary: result.summary,
          failure: result.failure,
          chunkInvocations: result.chunkInvocations,
        },
      };
      return value;
    }
    const { db } = state;
    const { result, rss } = await measurePeakRss(() =>
      restoreParts(db, s3, BUCKET, request.manifest, request.target, request.rows),
    );
    const value: WorkerRestore = { ...result, rss, node_cpu_s: cpuSeconds(cpu) };
    return value;
  };

  process.on('message', (message: { id: number } & Request) => {
    handle(message).then(
      (value) => process.send?.({ id: message.id, ok: true, value }),
      (error: unknown) =>
        process.send?.({
          id: message.id,
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
    );
  });
  process.on('disconnect', () => {
    void state?.db.end().finally(() => {
      s3.destroy();
      process.exit(0);
    });
    if (!state) process.exit(0);
  });
}

if (process.argv.includes('--worker')) await serve();
