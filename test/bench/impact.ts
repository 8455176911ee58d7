/**
 * `npm run bench -- impact`: what an archive and a purge of N old rows do to a live OLTP workload on the same
 * table — its statements' latency alone vs during each run, the lock waits the run causes it, and the WAL the
 * run writes per row.
 *
 * Per repetition and per CPU layout (unpinned; pinned when taskset can pin: this process and the S3 server on
 * core 0, PostgreSQL and the workload on core 1, baseline and loaded phases alike):
 *   fill `bench.events` with N old rows (dataset.ts) + 10 000 recent ones → workload alone (warm-up, then
 *   `--alone-seconds`) → workload during an archive of the old rows (`runPolicyLocally`, product defaults)
 *   → refill → workload during a purge of them (product defaults, VACUUM included) → conservation checks.
 * The workload runs in a child process (impact-workload.ts): `--oltp-clients` connections, each `--oltp-rate`
 * statements per second, open loop. WAL: `pg_current_wal_lsn()` around each run, minus the workload's own WAL
 * (its bytes per statement in the alone phase × its statements during the run).
 */

import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { createS3Client } from '../../functions/commons/s3.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import { type LocalRunResult, runPolicyLocally } from '../../functions/local-runner/local-runner.ts';
import type { AslDefinition } from '../../functions/local-runner/synthesize.ts';
import type { StepDependencies } from '../../functions/run/dependencies.ts';
import { ChunkingOverridesSchema } from '../../lib/contracts/chunking.ts';
import { type LifecycleConfig, LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import { machineBusySeconds, postmasterOf, sampleCpu } from './cpu.ts';
import { EVENTS_TABLE, fillEvents } from './dataset.ts';
import {
  applyLayout,
  type Layout,
  layout,
  machineCores,
  pinningUnavailable,
  processCpuSeconds,
  setAffinity,
} from './impact-procs.ts';
import {
  type LatencyFigures,
  type LockWaitFigures,
  latencyFigures,
  lockWaitFigures,
  type SamplerFigures,
  samplerFigures,
} from './impact-stats.ts';
import { startWorkload, type WorkloadResult } from './impact-workload.ts';
import { choice, commandLine, positiveInt, progressLine, UsageError } from './options.ts';
import { type BenchServices, startBenchServices } from './services.ts';
import { median, round } from './stats.ts';
import { synthesizeInChild } from './synth-child.ts';

const ARCHIVE_POLICY = 'bench-impact-archive';
const PURGE_POLICY = 'bench-impact-purge';
const BUCKET = 'pg-lifecycle-bench-impact';
const RETENTION = 'P1D';
/** Rows of the last hour added after the fill: what the workload reads and updates from its first statement. */
const RECENT_ROWS = 10_000;
const WARMUP_MS = 2_000;
/** After the run: lets the statements due before its end finish before the workload stops. */
const TAIL_MS = 1_000;
const SAMPLER_INTERVAL_MS = 10;
/** Goals of issue 10 part 5. */
const P99_RATIO_GOAL = 1.5;
const LOCK_WAIT_GOAL_MS = 100;

interface Options {
  rows: number;
  repeat: number;
  json: boolean;
  oltpClients: number;
  oltpRate: number;
  aloneSeconds: number;
  pin: 'both' | 'off' | 'only';
  /** Both policies' `chunking.sleepCoefficient` (0: the product's default, chunks back to back). */
  sleepCoefficient: number;
  /** Both policies' `chunking.targetTransactionMs` (undefined: the product's defaults, 2 s archive, 250 ms purge). */
  targetTransactionMs: number | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rows: { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean', default: false },
      'oltp-clients': { type: 'string' },
      'oltp-rate': { type: 'string' },
      'alone-seconds': { type: 'string' },
      pin: { type: 'string' },
      'sleep-coef': { type: 'string' },
      'target-ms': { type: 'string' },
    },
  });
  return {
    rows: positiveInt('rows', values.rows, 1_000_000),
    repeat: positiveInt('repeat', values.repeat, 1),
    json: values.json,
    oltpClients: positiveInt('oltp-clients', values['oltp-clients'], 4),
    oltpRate: positiveInt('oltp-rate', values['oltp-rate'], 50),
    aloneSeconds: positiveInt('alone-seconds', values['alone-seconds'], 15),
    pin: choice('pin', values.pin, ['both', 'off', 'only'], 'both'),
    sleepCoefficient: sleepCoefficientOption(values['sleep-coef']),
    targetTransactionMs: targetOption(values['target-ms']),
  };
}

/** `--target-ms`: checked by the config's own `chunking.targetTransactionMs` schema. @throws UsageError */
function targetOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = ChunkingOverridesSchema.shape.targetTransactionMs.safeParse(
    value.trim() === '' ? Number.NaN : Number(value),
  );
  if (!parsed.success || parsed.data === undefined)
    throw new UsageError(`--target-ms ${parsed.error?.issues[0]?.message ?? 'is required'}, got "${value}"`);
  return parsed.data;
}

/** `--sleep-coef`: checked by the config's own `chunking.sleepCoefficient` schema. @throws UsageError */
function sleepCoefficientOption(value: string | undefined): number {
  if (value === undefined) return 0;
  const parsed = ChunkingOverridesSchema.shape.sleepCoefficient.safeParse(
    value.trim() === '' ? Number.NaN : Number(value),
  );
  if (!parsed.success || parsed.data === undefined)
    throw new UsageError(`--sleep-coef ${parsed.error?.issues[0]?.message ?? 'is required'}, got "${value}"`);
  return parsed.data;
}

interface Context {
  readonly options: Options;
  readonly services: BenchServices;
  readonly admin: pg.Client;
  readonly configs: { readonly archive: LifecycleConfig; readonly purge: LifecycleConfig };
  readonly definition: AslDefinition;
  readonly postmasterPid: number | undefined;
  /** taskset works here: the workload child is given the layout's database cores. */
  readonly canPin: boolean;
  readonly progress: (text: string) => void;
}

/** CPU seconds over a phase window, by who spent them. */
interface PhaseCpu {
  /** This process: the run's handlers, state machine, encode, SHA-256 (the Lambda's CPU in AWS). */
  readonly bench_node_cpu_s: number;
  /** The PostgreSQL server tree (run backends, workload backends, walwriter, checkpointer, autovacuum). */
  readonly postgres_cpu_s: number | undefined;
  /** Of postgres_cpu_s, the workload's own backends. */
  readonly oltp_backends_cpu_s: number;
  /** Of postgres_cpu_s, the lock-wait sampler's backend (measurement overhead, in every phase alike). */
  readonly sampler_backend_cpu_s: number;
  readonly s3_server_cpu_s: number | undefined;
  /** The workload child (pg client, timers, sampler). */
  readonly workload_client_cpu_s: number;
  /** Busy CPU seconds of the machine spent by none of the above: other people's work. */
  readonly other_processes_cpu_s: number | undefined;
  /** Busy CPU seconds of the whole machine ÷ (window × cores). */
  readonly machine_busy_share: number | undefined;
}

interface CpuMark {
  readonly machine: number | undefined;
  readonly node: number;
  readonly postgres: number | undefined;
  readonly s3: number | undefined;
  readonly workload: number;
  readonly oltp: number;
  readonly sampler: number;
}

interface Phase {
  readonly start: number;
  readonly end: number;
  readonly walBytes: number;
  readonly walFpi: number;
  readonly cpu: PhaseCpu;
  readonly workload: WorkloadResult;
}

interface PhaseFigures extends LatencyFigures {
  readonly window_s: number;
  readonly lock_waits: LockWaitFigures;
  readonly sampler: SamplerFigures;
  readonly cpu: PhaseCpu;
}

interface RunFigures extends PhaseFigures {
  /** p99 during ÷ p99 alone (same layout, same repetition); goal ≤ 1.5. */
  readonly p99_ratio: number;
  readonly p50_ratio: number;
  readonly run: {
    readonly status: string;
    readonly rows: number;
    readonly seconds: number;
    readonly chunks: number;
    readonly max_transaction_ms: number;
    readonly vacuum_seconds?: number;
  };
  /**
   * Purge only: the workload's latencies split at the run's VACUUM (the Finish step's, timed from the statement
   * sent to its response): `chunks` = due from the run's start to the VACUUM's start, `vacuum` = due while it ran.
   */
  readonly split?: { readonly chunks: SplitFigures; readonly vacuum: SplitFigures };
  readonly wal: {
    /** pg_current_wal_lsn() difference from the run's start to its end, everything included. */
    readonly bytes: number;
    /** The workload's share: its WAL per statement alone × its statements during the run. */
    readonly workload_estimate_bytes: number;
    /** bytes − workload_estimate_bytes. */
    readonly run_bytes: number;
    readonly bytes_per_row: number;
    /** Full-page images in the window (pg_stat_wal, cluster-wide, workload included; approximate). */
    readonly full_page_images: number;
    /**
     * What full-page images would add per row with full_page_writes on (off on the embedded cluster): one
     * 8 kB image per heap page at its first change after a checkpoint = heap bytes ÷ rows (before the run).
     * Index pages (VACUUM's) and wal_compression are not counted.
     */
    readonly fpi_heap_bytes_per_row: number;
  };
}

interface SplitFigures {
  readonly window_s: number;
  readonly statements: number;
  readonly p95_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly p99_ratio: number;
}

interface AloneFigures extends PhaseFigures {
  readonly wal_bytes_per_statement: number;
}

interface LayoutRepetition {
  readonly oltp_alone: AloneFigures;
  readonly during_archive: RunFigures;
  readonly during_purge: RunFigures;
}

export async function main(argv: string[]): Promise<number> {
  const options = commandLine(parseOptions, argv);
  if (!options) return 2;
  const progress = progressLine('impact');
  const loadBefore = round(loadavg()[0] ?? 0, 2);
  progress('starting servers (S3 in a child process)…');
  const services = await startBenchServices('child');
  let admin: pg.Client | undefined;
  let s3: S3Client | undefined;
  let pinnedOnce = false;
  let postmasterPid: number | undefined;
  try {
    process.env.AWS_ENDPOINT_URL_S3 = services.s3Endpoint;
    process.env.AWS_ACCESS_KEY_ID ??= 'bench';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
    process.env.AWS_REGION ??= 'us-east-1';
    s3 = createS3Client();
    await createBucket(s3);
    admin = await connect(
      await resolveClientConfig(
        { DATABASE_URL: services.databaseUrl },
        { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
      ),
    );
    await applyMigrations(admin);
    // The product's defaults: no chunking, throttle or pause settings (issue 10: what a user gets), but for
    // the pacing `--sleep-coef` asks for.
    const policy = (name: string, action: 'archive' | 'purge') => ({
      name,
      action,
      table: EVENTS_TABLE,
      timeColumn: 'created_at',
      retention: RETENTION,
      chunking: {
        ...(options.sleepCoefficient > 0 ? { sleepCoefficient: options.sleepCoefficient } : {}),
        ...(options.targetTransactionMs !== undefined
          ? { targetTransactionMs: options.targetTransactionMs }
          : {}),
      },
    });
    const archiveInput = { sandbox: true, policies: [policy(ARCHIVE_POLICY, 'archive')] };
    // Its own config: one config may not hold a purge that would take rows before the archive has them.
    const purgeInput = { sandbox: true, policies: [policy(PURGE_POLICY, 'purge')] };
    const configs = {
      archive: LifecycleConfigSchema.parse(archiveInput),
      purge: LifecycleConfigSchema.parse(purgeInput),
    };
    progress('synthesizing the state machine in a child process (not timed)…');
    // Every chunk-loop policy's machine is the same; the purge runs on the archive policy's definition.
    const definition = await synthesizeInChild(archiveInput);
    const { rows } = await admin.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    postmasterPid = services.localPostgres && rows[0] ? postmasterOf(Number(rows[0].pid)) : undefined;
    const unavailable = pinningUnavailable(services.localPostgres && postmasterPid !== undefined);
    const layouts: Layout['name'][] =
      options.pin === 'off' || unavailable
        ? ['unpinned']
        : options.pin === 'only'
          ? ['pinned']
          : ['unpinned', 'pinned'];
    if (unavailable && options.pin !== 'off') progress(`pinned variant skipped: ${unavailable}`);
    const context: Context = {
      options,
      services,
      admin,
      configs,
      definition,
      postmasterPid,
      canPin: unavailable === undefined,
      progress,
    };
    const results: Record<Layout['name'], LayoutRepetition[]> = { unpinned: [], pinned: [] };
    const loadAtStart: number[] = [];
    for (let i = 0; i < options.repeat; i++) {
      for (const name of layouts) {
        if (context.canPin) {
          applyLayout(layout(name), { postmasterPid, s3Pid: services.s3Pid });
          pinnedOnce ||= name === 'pinned';
        }
        loadAtStart.push(round(loadavg()[0] ?? 0, 2));
        const label = `${name}${options.repeat > 1 ? `, repetition ${i + 1}/${options.repeat}` : ''}`;
        results[name].push(await measureRepetition(context, layout(name), label));
      }
    }
    const settings = await serverSettings(admin);
    const report = buildReport(options, results, layouts, {
      unavailable,
      settings,
      load: { before: loadBefore, at_start: loadAtStart, after: round(loadavg()[0] ?? 0, 2) },
    });
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  } catch (error) {
    process.stderr.write(
      `bench impact failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  } finally {
    if (pinnedOnce) {
      try {
        applyLayout(layout('unpinned'), { postmasterPid, s3Pid: services.s3Pid });
      } catch {
        // The servers stop next anyway.
      }
    }
    await admin?.end().catch(() => undefined);
    s3?.destroy();
    await services
      .stop()
      .catch((error: unknown) => process.stderr.write(`stopping servers: ${String(error)}\n`));
  }
}

async function createBucket(s3: S3Client): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
  }
}

async function serverSettings(admin: pg.Client): Promise<Record<string, string>> {
  const { rows } = await admin.query<{ name: string; setting: string; unit: string | null }>(
    `SELECT name, setting, unit FROM pg_settings
      WHERE name IN ('server_version', 'full_page_writes', 'wal_compression', 'wal_level', 'shared_buffers',
                     'synchronous_commit', 'fsync', 'checkpoint_timeout', 'max_wal_size', 'autovacuum')
      ORDER BY name`,
  );
  return Object.fromEntries(
    rows.map((row) => [row.name, row.unit ? `${row.setting} ${row.unit}` : row.setting]),
  );
}

/** `bench.events` with N old rows (dataset.ts) and RECENT_ROWS rows of the last hour, settled. */
async function prepareTable(context: Context, label: string): Promise<void> {
  const { admin, options } = context;
  context.progress(
    `filling ${EVENTS_TABLE} with ${options.rows} old + ${RECENT_ROWS} recent rows (${label})…`,
  );
  await fillEvents(admin, options.rows);
  await admin.query(
    `INSERT INTO ${EVENTS_TABLE} (created_at, camera_id, kind, value, payload, flag)
     SELECT now() - g * (interval '1 hour' / $1), g % 500, 'person', round((g % 10000) / 7.0, 4),
            jsonb_build_object('zone', g % 16), false
       FROM generate_series(1, $1::int) AS g`,
    [RECENT_ROWS],
  );
  await admin.query('CHECKPOINT').catch(() => undefined);
  await admin.query(`VACUUM ANALYZE ${EVENTS_TABLE}`);
  await admin.query('CHECKPOINT').catch(() => undefined);
}

async function measureRepetition(context: Context, target: Layout, label: string): Promise<LayoutRepetition> {
  const { options, progress } = context;
  const n = options.rows;
  await prepareTable(context, label);
  let recentRows = RECENT_ROWS;

  progress(`workload alone, ${options.aloneSeconds} s (${label})…`);
  const alone = await runPhase(
    context,
    target,
    () => new Promise<void>((resolve) => setTimeout(resolve, options.aloneSeconds * 1000)),
  );
  recentRows += alone.phase.workload.inserted;
  const aloneFigures = phaseFigures(alone.phase);
  const aloneStatements = aloneFigures.statements - aloneFigures.failed;
  const walPerStatement = aloneStatements > 0 ? alone.phase.walBytes / aloneStatements : 0;

  const during = async (action: 'archive' | 'purge'): Promise<RunFigures> => {
    progress(`workload during the ${action} of ${n} rows (${label})…`);
    const heap = await context.admin.query<{ bytes_per_row: number }>(
      `SELECT (relpages::float8 * current_setting('block_size')::int / greatest(reltuples, 1))::float8 AS bytes_per_row
         FROM pg_class WHERE oid = $1::regclass`,
      [EVENTS_TABLE],
    );
    const transactions: number[] = [];
    const vacuums: { start: number; end: number }[] = [];
    const base = localDependencies({
      databaseUrl: context.services.databaseUrl,
      ...(action === 'archive' ? { bucket: BUCKET } : {}),
    });
    const measured = await runPhase(context, target, () =>
      runPolicyLocally({
        config: context.configs[action],
        policyName: action === 'archive' ? ARCHIVE_POLICY : PURGE_POLICY,
        definition: context.definition,
        dependencies: (lambda) => timeTransactions(base(lambda), transactions, vacuums),
      }),
    );
    recentRows += measured.phase.workload.inserted;
    const waits = lockWaitFigures(
      measured.phase.workload,
      measured.phase.start,
      measured.phase.end,
      SAMPLER_INTERVAL_MS,
    );
    for (const [statements, count] of Object.entries(waits.statements))
      progress(`  ${count} lock wait(s) caused by the run: ${statements}`);
    await checkRun(context, measured.result, action, recentRows);
    const figures = phaseFigures(measured.phase);
    const workloadBytes = walPerStatement * (figures.statements - figures.failed);
    const runBytes = measured.phase.walBytes - workloadBytes;
    const summary = measured.result.summary;
    const vacuum = vacuums[0];
    const splitFigures = (from: number, to: number): SplitFigures => {
      const part = latencyFigures(measured.phase.workload, from, to);
      return {
        window_s: round((to - from) / 1000),
        statements: part.statements,
        p95_ms: part.p95_ms,
        p99_ms: part.p99_ms,
        max_ms: part.max_ms,
        p99_ratio: round(part.p99_ms / aloneFigures.p99_ms),
      };
    };
    const split =
      vacuum === undefined
        ? undefined
        : {
            chunks: splitFigures(measured.phase.start, vacuum.start),
            vacuum: splitFigures(vacuum.start, vacuum.end),
          };
    progress(
      `${action}: ${round((measured.phase.end - measured.phase.start) / 1000, 2)} s, p99 ${figures.p99_ms} ms ` +
        `(alone ${aloneFigures.p99_ms} ms), ${figures.lock_waits.by_run} lock waits caused by the run` +
        (split === undefined
          ? ''
          : `; before its VACUUM p99 ${split.chunks.p99_ms} ms, during it (${split.vacuum.window_s} s) ${split.vacuum.p99_ms} ms`),
    );
    return {
      ...figures,
      p99_ratio: round(figures.p99_ms / aloneFigures.p99_ms),
      p50_ratio: round(figures.p50_ms / aloneFigures.p50_ms),
      run: {
        status: measured.result.status,
        rows: summary?.rows ?? 0,
        seconds: round((measured.phase.end - measured.phase.start) / 1000),
        chunks: summary?.chunks ?? 0,
        max_transaction_ms: round(Math.max(0, ...transactions), 1),
        ...(action === 'purge'
          ? { vacuum_seconds: round((summary?.maintenance?.durationMs ?? 0) / 1000) }
          : {}),
      },
      ...(split === undefined ? {} : { split }),
      wal: {
        bytes: Math.round(measured.phase.walBytes),
        workload_estimate_bytes: Math.round(workloadBytes),
        run_bytes: Math.round(runBytes),
        bytes_per_row: round(runBytes / n, 1),
        full_page_images: measured.phase.walFpi,
        fpi_heap_bytes_per_row: round(Number(heap.rows[0]?.bytes_per_row ?? 0), 1),
      },
    };
  };

  const archive = await during('archive');
  await prepareTable(context, label);
  recentRows = RECENT_ROWS;
  const purge = await during('purge');
  return {
    oltp_alone: { ...aloneFigures, wal_bytes_per_statement: round(walPerStatement, 1) },
    during_archive: archive,
    during_purge: purge,
  };
}

/**
 * Times every transaction of the run's connections from BEGIN to the end of its COMMIT/ROLLBACK (what a
 * writer waiting on one of its row locks could wait at most). Unlike transactions.ts it passes the policy's
 * session timeouts on to `connect` and hands back a submittable query (the archive streams its chunk's rows
 * through one) untouched.
 */
function timeTransactions(
  deps: StepDependencies,
  transactions: number[],
  vacuums: { start: number; end: number }[],
): StepDependencies {
  return {
    ...deps,
    connect: async (timeouts) => {
      const client = await deps.connect(timeouts);
      const target = client as unknown as { query: (...args: unknown[]) => unknown };
      const original = target.query.bind(client);
      let begunAt: number | undefined;
      target.query = (...args: unknown[]) => {
        const first = args[0];
        const text = typeof first === 'string' ? first : '';
        if (text === 'BEGIN') begunAt = performance.now();
        const result = original(...args);
        if (/^VACUUM\b/i.test(text) && result instanceof Promise) {
          const start = performance.timeOrigin + performance.now();
          result
            .finally(() => vacuums.push({ start, end: performance.timeOrigin + performance.now() }))
            .catch(() => {});
        }
        if ((text === 'COMMIT' || text === 'ROLLBACK') && result instanceof Promise) {
          const begun = begunAt;
          begunAt = undefined;
          return result.finally(() => {
            if (begun !== undefined) transactions.push(performance.now() - begun);
          });
        }
        return result;
      };
      return client;
    },
  };
}

function phaseFigures(phase: Phase): PhaseFigures {
  return {
    window_s: round((phase.end - phase.start) / 1000),
    ...latencyFigures(phase.workload, phase.start, phase.end),
    lock_waits: (({ waits: _waits, ...figures }) => figures)(
      lockWaitFigures(phase.workload, phase.start, phase.end, SAMPLER_INTERVAL_MS),
    ),
    sampler: samplerFigures(phase.workload, phase.start, phase.end),
    cpu: phase.cpu,
  };
}

/**
 * Starts the workload (pinned like the database when the layout says so), lets it warm up, then measures
 * `work`: its window, the WAL written meanwhile and the CPU spent by each side.
 */
async function runPhase<T>(
  context: Context,
  target: Layout,
  work: () => Promise<T>,
): Promise<{ result: T; phase: Phase }> {
  const { admin } = context;
  const workload = await startWorkload(
    {
      databaseUrl: context.services.databaseUrl,
      table: EVENTS_TABLE,
      clients: context.options.oltpClients,
      ratePerClient: context.options.oltpRate,
      samplerIntervalMs: SAMPLER_INTERVAL_MS,
    },
    (pid) => {
      if (context.canPin) setAffinity(pid, target.database);
    },
  );
  try {
    workload.go();
    await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
    const mark = (): CpuMark => {
      const ours = sampleCpu(context.postmasterPid, context.services.s3Pid);
      return {
        machine: machineBusySeconds(),
        node: ours.node,
        postgres: ours.postgres,
        s3: ours.s3,
        workload: processCpuSeconds(workload.pid),
        oltp: workload.backendPids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0),
        sampler: processCpuSeconds(workload.samplerPid),
      };
    };
    const wal0 = await walPosition(admin);
    const cpu0 = mark();
    const start = performance.timeOrigin + performance.now();
    const result = await work();
    const end = performance.timeOrigin + performance.now();
    const cpu1 = mark();
    const wal1 = await walPosition(admin);
    const { rows } = await admin.query<{ bytes: number }>(
      'SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8 AS bytes',
      [wal1.lsn, wal0.lsn],
    );
    await new Promise((resolve) => setTimeout(resolve, TAIL_MS));
    const data = await workload.stop();
    const seconds = (end - start) / 1000;
    const diff = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined ? undefined : round(b - a);
    const node = round(cpu1.node - cpu0.node);
    const postgres = diff(cpu0.postgres, cpu1.postgres);
    const s3 = diff(cpu0.s3, cpu1.s3);
    const client = round(cpu1.workload - cpu0.workload);
    const machine = diff(cpu0.machine, cpu1.machine);
    return {
      result,
      phase: {
        start,
        end,
        walBytes: Number(rows[0]?.bytes ?? 0),
        walFpi: wal1.fpi - wal0.fpi,
        workload: data,
        cpu: {
          bench_node_cpu_s: node,
          postgres_cpu_s: postgres,
          oltp_backends_cpu_s: round(cpu1.oltp - cpu0.oltp),
          sampler_backend_cpu_s: round(cpu1.sampler - cpu0.sampler),
          s3_server_cpu_s: s3,
          workload_client_cpu_s: client,
          other_processes_cpu_s:
            machine === undefined
              ? undefined
              : round(Math.max(0, machine - node - (postgres ?? 0) - (s3 ?? 0) - client)),
          machine_busy_share: machine === undefined ? undefined : round(machine / (seconds * machineCores())),
        },
      },
    };
  } catch (error) {
    workload.kill();
    throw error;
  }
}

async function walPosition(admin: pg.Client): Promise<{ lsn: string; fpi: number }> {
  const { rows } = await admin.query<{ lsn: string; fpi: string }>(
    'SELECT pg_current_wal_lsn()::text AS lsn, (SELECT wal_fpi FROM pg_stat_wal)::text AS fpi',
  );
  return { lsn: rows[0]?.lsn ?? '0/0', fpi: Number(rows[0]?.fpi ?? 0) };
}

/** The run succeeded with every old row, no old row is left, every recent row (seeded + inserted) is there. */
async function checkRun(
  context: Context,
  result: LocalRunResult,
  action: 'archive' | 'purge',
  recentRows: number,
): Promise<void> {
  const n = context.options.rows;
  const problems: string[] = [];
  if (result.status !== 'succeeded')
    problems.push(`run ${result.status}: ${result.failure?.error}: ${result.failure?.cause}`);
  if (result.summary?.rows !== n) problems.push(`run reports ${result.summary?.rows} rows, expected ${n}`);
  const { rows } = await context.admin.query<{ old: string; recent: string }>(
    `SELECT count(*) FILTER (WHERE created_at < now() - interval '1 day')::text AS old,
            count(*) FILTER (WHERE created_at >= now() - interval '1 day')::text AS recent
       FROM ${EVENTS_TABLE}`,
  );
  if (Number(rows[0]?.old) !== 0) {
    const left = await context.admin.query<{ row: string }>(
      `SELECT (id, created_at, xmin, xmax)::text AS row FROM ${EVENTS_TABLE}
        WHERE created_at < now() - interval '1 day' ORDER BY id LIMIT 5`,
    );
    problems.push(`${rows[0]?.old} old rows left: ${left.rows.map((row) => row.row).join(', ')}`);
  }
  if (Number(rows[0]?.recent) !== recentRows)
    problems.push(
      `${rows[0]?.recent} recent rows, expected ${recentRows} (seeded + inserted by the workload)`,
    );
  if (action === 'archive') {
    const ledger = await context.admin.query<{ rows: string }>(
      'SELECT coalesce(sum(rows), 0)::text AS rows FROM lifecycle.archived_objects WHERE run_id = $1',
      [result.summary?.runId ?? null],
    );
    if (Number(ledger.rows[0]?.rows) !== n)
      problems.push(`ledger lists ${ledger.rows[0]?.rows} rows, expected ${n}`);
  }
  if (problems.length > 0) throw new Error(`${action} check failed:\n  ${problems.join('\n  ')}`);
}

// ---------------------------------------------------------------------------------------------------------
// Report.

interface LayoutReport {
  readonly oltp_alone: { p50_ms: number; p99_ms: number; statements: number };
  readonly during_archive: { p50_ms: number; p99_ms: number; statements: number; p99_ratio: number };
  readonly during_purge: { p50_ms: number; p99_ms: number; statements: number; p99_ratio: number };
  /** Workload lock waits > 100 ms on a lock held by the run, archive and purge, every repetition. */
  readonly lock_waits_over_100ms: number;
  /** Longest workload lock wait on a lock held by the run (sampled lower bound), ms. */
  readonly max_lock_wait_ms: number;
  readonly wal_bytes_per_row: { archive: number; purge: number };
  /** p99 ratio ≤ 1.5 during both runs (median over repetitions) and no lock wait > 100 ms caused by them. */
  readonly within_goal: boolean;
  readonly runs: LayoutRepetition[];
}

interface Report extends Omit<LayoutReport, 'runs'> {
  readonly benchmark: 'impact';
  readonly rows: number;
  readonly repeat: number;
  readonly cores: number;
  readonly node: string;
  /** 1-minute load average when the report was built. */
  readonly load_1m: number;
  readonly load: { before: number; at_start: number[]; after: number };
  readonly settings: {
    oltp_clients: number;
    oltp_rate_per_client: number;
    alone_seconds: number;
    warmup_seconds: number;
    sampler_interval_ms: number;
    statement_mix: string;
    latency: string;
    policies: string;
    sleep_coefficient: number;
    target_transaction_ms: number | null;
    server: Record<string, string>;
  };
  /** Top-level figures are the unpinned layout's (or the pinned one's with `--pin only`). */
  readonly layout: Layout['name'];
  readonly pinned: LayoutReport | null;
  readonly pinned_skipped?: string;
  readonly runs: LayoutRepetition[];
}

function layoutReport(runs: LayoutRepetition[]): LayoutReport {
  const med = (pick: (run: LayoutRepetition) => number) => round(median(runs.map(pick)), 3);
  const locks = runs.flatMap((run) => [run.during_archive.lock_waits, run.during_purge.lock_waits]);
  const archiveRatio = med((run) => run.during_archive.p99_ratio);
  const purgeRatio = med((run) => run.during_purge.p99_ratio);
  const over = locks.reduce((sum, figures) => sum + figures.by_run_over_100ms, 0);
  return {
    oltp_alone: {
      p50_ms: med((run) => run.oltp_alone.p50_ms),
      p99_ms: med((run) => run.oltp_alone.p99_ms),
      statements: med((run) => run.oltp_alone.statements),
    },
    during_archive: {
      p50_ms: med((run) => run.during_archive.p50_ms),
      p99_ms: med((run) => run.during_archive.p99_ms),
      statements: med((run) => run.during_archive.statements),
      p99_ratio: archiveRatio,
    },
    during_purge: {
      p50_ms: med((run) => run.during_purge.p50_ms),
      p99_ms: med((run) => run.during_purge.p99_ms),
      statements: med((run) => run.during_purge.statements),
      p99_ratio: purgeRatio,
    },
    lock_waits_over_100ms: over,
    max_lock_wait_ms: Math.max(0, ...locks.map((figures) => figures.max_by_run_ms)),
    wal_bytes_per_row: {
      archive: med((run) => run.during_archive.wal.bytes_per_row),
      purge: med((run) => run.during_purge.wal.bytes_per_row),
    },
    within_goal: archiveRatio <= P99_RATIO_GOAL && purgeRatio <= P99_RATIO_GOAL && over === 0,
    runs,
  };
}

function buildReport(
  options: Options,
  results: Record<Layout['name'], LayoutRepetition[]>,
  layouts: Layout['name'][],
  extra: {
    unavailable: string | undefined;
    settings: Record<string, string>;
    load: Report['load'];
  },
): Report {
  const primary = layouts[0] ?? 'unpinned';
  const top = layoutReport(results[primary]);
  const pinned = primary !== 'pinned' && layouts.includes('pinned') ? layoutReport(results.pinned) : null;
  return {
    benchmark: 'impact',
    rows: options.rows,
    repeat: options.repeat,
    cores: machineCores(),
    node: process.version,
    load_1m: round(loadavg()[0] ?? 0, 2),
    load: extra.load,
    settings: {
      oltp_clients: options.oltpClients,
      oltp_rate_per_client: options.oltpRate,
      alone_seconds: options.aloneSeconds,
      warmup_seconds: WARMUP_MS / 1000,
      sampler_interval_ms: SAMPLER_INTERVAL_MS,
      statement_mix: 'insert, read by key, update by key, read newest 10 (one each per 4 statements)',
      latency: 'from when the statement was due (open loop) to its response',
      policies: `archive and purge of ${EVENTS_TABLE}, retention ${RETENTION}, product default chunking, no pause${
        options.sleepCoefficient > 0 ? `, but sleepCoefficient ${options.sleepCoefficient}` : ''
      }${options.targetTransactionMs !== undefined ? `, targetTransactionMs ${options.targetTransactionMs}` : ''}`,
      sleep_coefficient: options.sleepCoefficient,
      target_transaction_ms: options.targetTransactionMs ?? null,
      server: extra.settings,
    },
    layout: primary,
    ...top,
    pinned,
    ...(extra.unavailable && options.pin !== 'off' ? { pinned_skipped: extra.unavailable } : {}),
  };
}

function formatReport(report: Report): string {
  const lines = [
    `impact of archive / purge of ${report.rows} rows on ${report.settings.oltp_clients} × ${report.settings.oltp_rate_per_client} statements/s (${report.cores} cores, load ${report.load_1m})`,
  ];
  const describe = (name: string, figures: Omit<LayoutReport, 'runs'>) => {
    lines.push(
      `  ${name}`,
      `    alone           p50 ${figures.oltp_alone.p50_ms} ms, p99 ${figures.oltp_alone.p99_ms} ms (${figures.oltp_alone.statements} statements)`,
      `    during archive  p50 ${figures.during_archive.p50_ms} ms, p99 ${figures.during_archive.p99_ms} ms, p99 ratio ${figures.during_archive.p99_ratio} (${figures.during_archive.statements})`,
      `    during purge    p50 ${figures.during_purge.p50_ms} ms, p99 ${figures.during_purge.p99_ms} ms, p99 ratio ${figures.during_purge.p99_ratio} (${figures.during_purge.statements})`,
      `    lock waits > ${LOCK_WAIT_GOAL_MS} ms caused by the run: ${figures.lock_waits_over_100ms} (max ${figures.max_lock_wait_ms} ms)`,
      `    WAL per row     archive ${figures.wal_bytes_per_row.archive} B, purge ${figures.wal_bytes_per_row.purge} B`,
      `    within goal     ${figures.within_goal} (p99 ratio <= ${P99_RATIO_GOAL}, no lock wait > ${LOCK_WAIT_GOAL_MS} ms)`,
    );
  };
  describe(report.layout, report);
  if (report.pinned) describe('pinned', report.pinned);
  if (report.pinned_skipped) lines.push(`  pinned variant skipped: ${report.pinned_skipped}`);
  return `${lines.join('\n')}\n`;
}
