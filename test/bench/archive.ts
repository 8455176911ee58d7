/**
 * `npm run bench -- archive`: how fast the real archive path empties a table, against how fast PostgreSQL can
 * stream the same rows out (COPY … TO STDOUT), measured in the same run on the same data.
 *
 * Per repetition: fill `bench.events` (all rows past the cutoff) → COPY ordered like the archive (created_at, id)
 * → COPY unordered → stage rates on a chunk-sized sample → archive through the synthesized state machine with
 * the real handlers (`runPolicyLocally`), instrumented from outside → conservation checks. The state machine is
 * synthesized once, before anything is timed (in AWS it exists already).
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { S3ObjectStore } from '../../functions/adapters/archive-store.ts';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { createS3Client } from '../../functions/commons/s3.ts';
import { computeCutoff } from '../../functions/core/cutoff.ts';
import { policyPrefix } from '../../functions/core/object-keys.ts';
import type { ParquetCompression } from '../../functions/core/parquet/encode.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import {
  type LocalRunResult,
  prepareDefinition,
  runPolicyLocally,
} from '../../functions/local-runner/local-runner.ts';
import { type AslDefinition, synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import {
  type ArchivePolicy,
  type LifecycleConfig,
  LifecycleConfigSchema,
} from '../../lib/contracts/config.ts';
import { copyOut, orderedSelect, unorderedSelect } from './copy.ts';
import { type CpuUsage, cpuBetween, postmasterOf, sampleCpu } from './cpu.ts';
import { countEvents, EVENTS_TABLE, fillEvents, tableBytes } from './dataset.ts';
import { timeInFreshSession } from './fresh-session.ts';
import { instrumentDependencies, TimingStore, Timings } from './instrument.ts';
import { collectGarbage } from './memory.ts';
import { commandLine, positiveInt, progressLine, UsageError } from './options.ts';
import { type ProbeMode, type ProbeResult, runArchiveProbe } from './pipeline-probe.ts';
import { type ProfileSummary, profilePhase } from './profile.ts';
import { type BenchServices, type S3Mode, startBenchServices } from './services.ts';
import { measureStages, type StageRates } from './stages.ts';
import { median, medianIndex, round } from './stats.ts';

const POLICY = 'bench-events';
const BUCKET = 'pg-lifecycle-bench';
const RETENTION = 'P1D';
const COMPRESSIONS = ['snappy', 'zstd', 'gzip', 'uncompressed'] as const;

interface Options {
  rows: number;
  repeat: number;
  json: boolean;
  maxRows: number;
  initialRows: number | undefined;
  compression: ParquetCompression;
  s3: S3Mode;
  cpuProfile: string | undefined;
  probe: boolean;
  /** AWS_ENDPOINT_URL_S3 was set: an S3 server of the caller's, not started here. */
  s3External: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rows: { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean', default: false },
      'max-rows': { type: 'string' },
      'initial-rows': { type: 'string' },
      compression: { type: 'string', default: 'snappy' },
      s3: { type: 'string', default: 'child' },
      'cpu-profile': { type: 'string' },
      probe: { type: 'boolean', default: false },
    },
  });
  const compression = COMPRESSIONS.find((c) => c === values.compression);
  if (!compression) throw new UsageError(`--compression must be one of ${COMPRESSIONS.join(', ')}`);
  if (values.s3 !== 'child' && values.s3 !== 'inproc') throw new UsageError('--s3 must be child or inproc');
  return {
    rows: positiveInt('rows', values.rows, 1_000_000),
    repeat: positiveInt('repeat', values.repeat, 1),
    json: values.json,
    maxRows: positiveInt('max-rows', values['max-rows'], 50_000),
    initialRows:
      values['initial-rows'] === undefined
        ? undefined
        : positiveInt('initial-rows', values['initial-rows'], 0),
    compression,
    s3: values.s3,
    cpuProfile: values['cpu-profile'],
    probe: values.probe,
    s3External: process.env.AWS_ENDPOINT_URL_S3 !== undefined,
  };
}

interface Breakdown {
  readonly wall_s: number;
  /** Seconds and calls per kind of work, timed around each query / S3 call. */
  readonly timed: Record<string, { seconds: number; calls: number }>;
  /** Wall time outside every timed call: Parquet encode, SHA-256, row slicing, state machine, handlers. */
  readonly untimed_s: number;
  /** Untimed time the stage sample explains: encode + SHA-256 of every row at the sample's rates. */
  readonly encode_sha256_estimate_s: number;
}

interface RunMeasurement {
  readonly fill_seconds: number;
  readonly table_bytes: number;
  /** Ordered COPY in a fresh session (connecting not timed): the baseline of `ratio`. */
  readonly copy_seconds: number;
  /** Minor page faults of that session's backend during the COPY (null: the server's /proc is not readable). */
  readonly copy_minor_faults: number | null;
  /** The same COPY in the session that filled the table (every shared buffer already mapped). */
  readonly copy_warm_session_seconds: number;
  readonly copy_bytes: number;
  readonly copy_unordered_seconds: number;
  readonly archive_seconds: number;
  readonly objects: number;
  readonly bytes: number;
  readonly chunks: number;
  readonly chunk_invocations: number;
  readonly executions: number;
  readonly cpu: { readonly copy: CpuUsage; readonly archive: CpuUsage };
  readonly stages: StageRates;
  readonly breakdown: Breakdown;
  readonly profile: ProfileSummary | undefined;
  /** Share of the archive's wall time the event loop was busy. */
  readonly main_thread_busy_share: number;
  readonly probe: { sequential: ProbeResult; pipelined: ProbeResult } | undefined;
  /** RSS of this process (the S3 server's child excluded) during the archive run; see `sampleRss`. */
  readonly rss: RssDuringRun;
}

/** Resident memory of the benchmark process while the archive runs (bytes). */
interface RssDuringRun {
  /** Highest RSS during the run: the kernel's high-water mark (reset at the run's start), else the samples'. */
  readonly peak_bytes: number;
  /** RSS at the run's start, after a full GC: the process floor (tsx, handlers, pg, AWS SDK, aws-cdk-lib). */
  readonly start_bytes: number;
  /** 95th percentile of the RSS sampled every 50 ms during the run. */
  readonly p95_bytes: number;
  readonly method: 'vmhwm' | 'sampled';
}

/**
 * Starts sampling this process's RSS every 50 ms and resets the kernel's high-water mark (VmHWM, Linux:
 * `/proc/self/clear_refs` ← 5), so that `stop()` returns the peak of the run alone — not the fill, the COPY
 * baselines or the synth before it, which process.resourceUsage().maxRSS (a lifetime peak) would include.
 */
function sampleRss(): () => RssDuringRun {
  const hwm = () => {
    try {
      const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
      return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
    } catch {
      return undefined;
    }
  };
  let kernel = false;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    kernel = hwm() !== undefined;
  } catch {
    // Not Linux, or refused: the samples stand in (they can miss a spike shorter than 50 ms).
  }
  const start = process.memoryUsage.rss();
  const samples = [start];
  const timer = setInterval(() => samples.push(process.memoryUsage.rss()), 50);
  return () => {
    clearInterval(timer);
    samples.push(process.memoryUsage.rss());
    const peakHwm = kernel ? hwm() : undefined;
    const sorted = samples.sort((a, b) => a - b);
    return {
      peak_bytes: Math.max(sorted[sorted.length - 1] ?? start, peakHwm ?? 0),
      start_bytes: start,
      p95_bytes: sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))] ?? start,
      method: peakHwm === undefined ? 'sampled' : 'vmhwm',
    };
  };
}

interface Context {
  readonly options: Options;
  readonly services: BenchServices;
  readonly admin: pg.Client;
  readonly s3: S3Client;
  readonly config: LifecycleConfig;
  readonly definition: AslDefinition;
  readonly postmasterPid: number | undefined;
}

export async function main(argv: string[]): Promise<number> {
  const options = commandLine(parseOptions, argv);
  if (!options) return 2;
  const progress = progressLine('archive');

  progress(`starting servers (S3: ${options.s3External ? 'AWS_ENDPOINT_URL_S3' : options.s3})…`);
  const services = await startBenchServices(options.s3);
  let admin: pg.Client | undefined;
  let s3: S3Client | undefined;
  try {
    // The handlers' S3 client reads the standard AWS environment, as in Lambda.
    process.env.AWS_ENDPOINT_URL_S3 = services.s3Endpoint;
    process.env.AWS_ACCESS_KEY_ID ??= 'bench';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
    process.env.AWS_REGION ??= 'us-east-1';
    s3 = createS3Client();
    await createBucket(s3);
    // Seeding 10 M rows takes longer than any run's statement_timeout: the bench's own connection has none.
    admin = await connect(
      await resolveClientConfig(
        { DATABASE_URL: services.databaseUrl },
        { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
      ),
    );
    await applyMigrations(admin);

    const config = LifecycleConfigSchema.parse({
      sandbox: true,
      policies: [
        {
          name: POLICY,
          action: 'archive',
          table: EVENTS_TABLE,
          timeColumn: 'created_at',
          retention: RETENTION,
          archive: { compression: options.compression },
          chunking: {
            maxRows: options.maxRows,
            ...(options.initialRows === undefined ? {} : { initialRows: options.initialRows }),
          },
        },
      ],
    });
    progress('synthesizing the state machine (not timed)…');
    const definition = await synthesizeDefinition(config);
    // Validated once, as the service does when the machine is deployed: not part of any timed run.
    prepareDefinition(definition);
    const { rows } = await admin.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const postmasterPid = services.localPostgres && rows[0] ? postmasterOf(Number(rows[0].pid)) : undefined;
    const context: Context = { options, services, admin, s3, config, definition, postmasterPid };

    const runs: RunMeasurement[] = [];
    for (let i = 0; i < options.repeat; i++) {
      runs.push(await measureOnce(context, i, progress));
    }
    const report = buildReport(options, runs);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  } catch (error) {
    process.stderr.write(
      `bench archive failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  } finally {
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

async function measureOnce(
  context: Context,
  index: number,
  progress: (text: string) => void,
): Promise<RunMeasurement> {
  const { options, admin, postmasterPid } = context;
  const s3Pid = context.services.s3Pid;
  const label = options.repeat > 1 ? ` (run ${index + 1}/${options.repeat})` : '';
  const n = options.rows;

  progress(`filling ${EVENTS_TABLE} with ${n} rows${label}…`);
  let started = performance.now();
  await fillEvents(admin, n);
  const fillSeconds = (performance.now() - started) / 1000;
  const bytesOnDisk = await tableBytes(admin);

  // Every row is older than any cutoff computed from now on (they end two days back, retention is one).
  const cutoff = computeCutoff(new Date(), RETENTION);
  // The baseline in a fresh session, as psql and as each Chunk step open theirs; then in the session that
  // filled the table, whose backend has every shared buffer mapped already (see fresh-session.ts).
  progress('COPY TO STDOUT (ordered in a fresh session, ordered in the filling session, unordered)…');
  let before = sampleCpu(postmasterPid, s3Pid);
  let after = before;
  const fresh = await timeInFreshSession(
    context.services.databaseUrl,
    (db) => copyOut(db, orderedSelect(cutoff)),
    () => {
      after = sampleCpu(postmasterPid, s3Pid);
    },
  );
  const copyCpu = cpuBetween(before, after);
  const ordered = fresh.result;
  const warm = await copyOut(admin, orderedSelect(cutoff));
  const unordered = await copyOut(admin, unorderedSelect(cutoff));
  if (ordered.rows !== n || warm.rows !== n || unordered.rows !== n)
    throw new Error(`COPY returned ${ordered.rows}/${warm.rows}/${unordered.rows} rows, expected ${n}`);

  progress('stage rates on a chunk-sized sample…');
  const stages = await measureStages(admin, Math.min(n, options.maxRows), options.compression);

  progress(`archiving through the local state machine${label}…`);
  const timings = new Timings();
  const store = new TimingStore(new S3ObjectStore(context.s3, BUCKET), timings);
  const dependencies = instrumentDependencies(
    localDependencies({ databaseUrl: context.services.databaseUrl, bucket: BUCKET, store }),
    timings,
  );
  const archive = () =>
    runPolicyLocally({
      config: context.config,
      policyName: POLICY,
      dependencies,
      definition: context.definition,
      pauseMs: 0,
      retryIntervalMs: 0,
    });
  collectGarbage();
  const stopRss = sampleRss();
  before = sampleCpu(postmasterPid, s3Pid);
  const elu = performance.eventLoopUtilization();
  started = performance.now();
  let result: LocalRunResult;
  let profile: ProfileSummary | undefined;
  if (options.cpuProfile && index === 0) {
    const profiled = await profilePhase(options.cpuProfile, archive);
    result = profiled.result;
    profile = profiled.summary;
  } else {
    result = await archive();
  }
  const archiveSeconds = (performance.now() - started) / 1000;
  const archiveCpu = cpuBetween(before, sampleCpu(postmasterPid, s3Pid));
  const busyShare = performance.eventLoopUtilization(elu).utilization;
  const rss = stopRss();

  await checkConservation(context, result, n);
  const summary = result.summary;
  const timedSeconds = timings.totalSeconds();
  const encodeShaEstimate = n / stages.encode_rows_per_s + n / stages.sha256_rows_per_s;
  progress(`archived ${n} rows in ${archiveSeconds.toFixed(2)} s (COPY ${ordered.seconds.toFixed(2)} s)`);
  return {
    fill_seconds: fillSeconds,
    table_bytes: bytesOnDisk,
    copy_seconds: ordered.seconds,
    copy_minor_faults: fresh.minorFaults ?? null,
    copy_warm_session_seconds: warm.seconds,
    copy_bytes: ordered.bytes,
    copy_unordered_seconds: unordered.seconds,
    archive_seconds: archiveSeconds,
    objects: summary?.objects ?? 0,
    bytes: summary?.bytes ?? 0,
    chunks: summary?.chunks ?? 0,
    chunk_invocations: result.chunkInvocations,
    executions: result.executions,
    cpu: { copy: copyCpu, archive: archiveCpu },
    stages,
    breakdown: {
      wall_s: archiveSeconds,
      timed: timings.snapshot(),
      untimed_s: archiveSeconds - timedSeconds,
      encode_sha256_estimate_s: encodeShaEstimate,
    },
    profile,
    main_thread_busy_share: busyShare,
    rss,
    probe: options.probe ? await runProbes(context, label, progress) : undefined,
  };
}

async function runProbes(
  context: Context,
  label: string,
  progress: (text: string) => void,
): Promise<{ sequential: ProbeResult; pipelined: ProbeResult }> {
  const results: Partial<Record<ProbeMode, ProbeResult>> = {};
  for (const mode of ['sequential', 'pipelined'] as const) {
    progress(`probe ${mode}: refilling${label}…`);
    await fillEvents(context.admin, context.options.rows);
    const result = await runArchiveProbe({
      databaseUrl: context.services.databaseUrl,
      store: new S3ObjectStore(context.s3, BUCKET),
      policy: context.config.policies[0] as ArchivePolicy,
      chunkRows: context.options.maxRows,
      mode,
    });
    const left = await countEvents(context.admin);
    if (result.rows !== context.options.rows || left !== 0) {
      throw new Error(
        `probe ${mode}: archived ${result.rows} rows, ${left} left, expected ${context.options.rows} / 0`,
      );
    }
    progress(`probe ${mode}: ${result.rows} rows in ${result.seconds.toFixed(2)} s`);
    results[mode] = result;
  }
  return { sequential: results.sequential as ProbeResult, pipelined: results.pipelined as ProbeResult };
}

function probeReport(runs: readonly RunMeasurement[], copyRate: number): Pick<Report, 'probe'> {
  const probes = runs.flatMap((run) => (run.probe ? [run.probe] : []));
  if (probes.length === 0) return {};
  const rate = (mode: ProbeMode) => median(probes.map((p) => p[mode].rows / p[mode].seconds));
  const busy = (mode: ProbeMode) => round(median(probes.map((p) => p[mode].main_thread_busy_share)));
  const sequentialRate = rate('sequential');
  const pipelinedRate = rate('pipelined');
  return {
    probe: {
      sequential_rows_per_s: Math.round(sequentialRate),
      pipelined_rows_per_s: Math.round(pipelinedRate),
      speedup: round(pipelinedRate / sequentialRate),
      pipelined_ratio: round(pipelinedRate / copyRate),
      sequential_main_thread_busy_share: busy('sequential'),
      pipelined_main_thread_busy_share: busy('pipelined'),
    },
  };
}

/** Nothing lost, nothing twice: the table is empty, the ledger lists N rows, S3 holds exactly the listed objects. */
async function checkConservation(context: Context, result: LocalRunResult, n: number): Promise<void> {
  const problems: string[] = [];
  if (result.status !== 'succeeded') {
    problems.push(`run ${result.status}: ${JSON.stringify(result.failure ?? null)}`);
  }
  const runId = result.summary?.runId;
  if (result.summary?.rows !== n) problems.push(`summary says ${result.summary?.rows} rows, expected ${n}`);
  const left = await countEvents(context.admin);
  if (left !== 0) problems.push(`${left} rows left in ${EVENTS_TABLE}`);
  const ledger = await context.admin.query<{ rows: string; objects: string }>(
    `SELECT coalesce(sum(rows), 0)::text AS rows, count(*)::text AS objects
       FROM lifecycle.archived_objects WHERE run_id = $1`,
    [runId ?? null],
  );
  const ledgerRows = Number(ledger.rows[0]?.rows ?? 0);
  const ledgerObjects = Number(ledger.rows[0]?.objects ?? 0);
  if (ledgerRows !== n) problems.push(`ledger lists ${ledgerRows} rows, expected ${n}`);
  const pending = await context.admin.query('SELECT 1 FROM lifecycle.pending_objects WHERE run_id = $1', [
    runId ?? null,
  ]);
  if ((pending.rowCount ?? 0) !== 0) problems.push(`${pending.rowCount} objects still pending`);
  let stored = 0;
  for await (const page of paginateListObjectsV2(
    { client: context.s3 },
    { Bucket: BUCKET, Prefix: policyPrefix(POLICY) },
  )) {
    stored += (page.Contents ?? []).filter(
      (object) => runId !== undefined && object.Key?.includes(runId),
    ).length;
  }
  if (stored !== ledgerObjects)
    problems.push(`S3 holds ${stored} objects of the run, the ledger lists ${ledgerObjects}`);
  if (problems.length > 0) throw new Error(`conservation check failed:\n  ${problems.join('\n  ')}`);
}

interface Report {
  benchmark: 'archive';
  rows: number;
  repeat: number;
  copy_rows_per_s: number;
  copy_unordered_rows_per_s: number;
  archive_rows_per_s: number;
  ratio: number;
  /** The first (cold) repetition's archive ÷ COPY, each against its own COPY: medians hide a slow start. */
  ratio_first_run: number;
  /** Both ratios against the ordered COPY in the session that filled the table (the baseline until 2026-12-03). */
  ratio_warm_session: number;
  ratio_first_run_warm_session: number;
  copy_warm_session_rows_per_s: number;
  copy_minor_faults: number | null;
  archive_seconds: number;
  copy_seconds: number;
  copy_unordered_seconds: number;
  objects: number;
  bytes: number;
  chunks: number;
  node: string;
  cores: number;
  /** 1-minute load average when the report was built: other work on the machine skews every number. */
  load_1m: number;
  settings: { max_rows: number; initial_rows: number | 'default'; compression: string; s3: string };
  copy_mb_per_s: number;
  table_bytes: number;
  cpu: RunMeasurement['cpu'];
  /** Upper bound for any overlap of the same work on this machine: wall ≥ max(node, postgres, all CPU / cores). */
  archive_cpu_bound_rows_per_s: number | undefined;
  /** Event-loop utilisation during the archive: the rest is Node waiting on PostgreSQL / S3. */
  main_thread_busy_share: number;
  /**
   * Peak RSS (MiB) of the benchmark process during the archive runs, highest over the repetitions (goal ≤ 256;
   * the S3 server runs in its child process by default and is not in it; with `--s3 inproc` it is).
   */
  peak_rss_mb: number;
  /**
   * RSS (MiB) at the start of the archive run with the highest peak, after a full GC: the process floor (tsx,
   * handlers, pg, AWS SDK, aws-cdk-lib from the in-process synth, and what the fill, COPY and stage sample left
   * mapped: V8 and malloc rarely hand memory back).
   */
  rss_start_mb: number;
  /** peak_rss_mb − rss_start_mb: what the archive run itself added to the process. */
  rss_added_mb: number;
  /** 95th percentile (MiB) of the 50 ms RSS samples of that run. */
  rss_p95_mb: number;
  /** `vmhwm`: kernel high-water mark reset at the run's start (exact); `sampled`: 50 ms samples only. */
  rss_method: 'vmhwm' | 'sampled';
  stages: StageRates;
  breakdown: Breakdown;
  profile?: ProfileSummary;
  /** `--probe`: the chunk loop rebuilt outside the product, sequential vs pipelined (see pipeline-probe.ts). */
  probe?: {
    sequential_rows_per_s: number;
    pipelined_rows_per_s: number;
    speedup: number;
    pipelined_ratio: number;
    sequential_main_thread_busy_share: number;
    pipelined_main_thread_busy_share: number;
  };
  runs?: Array<
    Pick<
      RunMeasurement,
      'copy_seconds' | 'copy_warm_session_seconds' | 'copy_unordered_seconds' | 'archive_seconds' | 'chunks'
    > & {
      peak_rss_mb: number;
    }
  >;
}

function buildReport(options: Options, runs: RunMeasurement[]): Report {
  const n = options.rows;
  const copySeconds = median(runs.map((r) => r.copy_seconds));
  const unorderedSeconds = median(runs.map((r) => r.copy_unordered_seconds));
  const archiveSeconds = median(runs.map((r) => r.archive_seconds));
  // Details come from the run with the median archive time.
  const typical = runs[medianIndex(runs, (r) => r.archive_seconds)] as RunMeasurement;
  const archiveRate = n / archiveSeconds;
  const copyRate = n / copySeconds;
  const cpu = typical.cpu.archive;
  const cores = availableParallelism();
  const cpuBound =
    cpu.postgres_cpu_s === undefined
      ? undefined
      : Math.round(
          n /
            Math.max(
              cpu.node_cpu_s,
              cpu.postgres_cpu_s,
              (cpu.node_cpu_s + cpu.postgres_cpu_s + (cpu.s3_server_cpu_s ?? 0)) / cores,
            ),
        );
  const profile = runs.find((r) => r.profile)?.profile;
  const mib = (bytes: number) => round(bytes / 2 ** 20, 1);
  const peakRun = runs.reduce((a, b) => (b.rss.peak_bytes > a.rss.peak_bytes ? b : a), typical);
  return {
    benchmark: 'archive',
    rows: n,
    repeat: options.repeat,
    copy_rows_per_s: Math.round(copyRate),
    copy_unordered_rows_per_s: Math.round(n / unorderedSeconds),
    archive_rows_per_s: Math.round(archiveRate),
    ratio: round(archiveRate / copyRate),
    ratio_first_run: round((runs[0]?.copy_seconds ?? 0) / (runs[0]?.archive_seconds ?? Number.NaN)),
    ratio_warm_session: round(archiveRate / (n / median(runs.map((r) => r.copy_warm_session_seconds)))),
    ratio_first_run_warm_session: round(
      (runs[0]?.copy_warm_session_seconds ?? 0) / (runs[0]?.archive_seconds ?? Number.NaN),
    ),
    copy_warm_session_rows_per_s: Math.round(n / median(runs.map((r) => r.copy_warm_session_seconds))),
    copy_minor_faults: typical.copy_minor_faults,
    archive_seconds: round(archiveSeconds),
    copy_seconds: round(copySeconds),
    copy_unordered_seconds: round(unorderedSeconds),
    objects: typical.objects,
    bytes: typical.bytes,
    chunks: typical.chunks,
    node: process.version,
    cores,
    load_1m: round(loadavg()[0] ?? 0, 2),
    settings: {
      max_rows: options.maxRows,
      initial_rows: options.initialRows ?? 'default',
      compression: options.compression,
      s3: options.s3External ? 'external' : options.s3,
    },
    copy_mb_per_s: round(typical.copy_bytes / 1e6 / typical.copy_seconds, 1),
    table_bytes: typical.table_bytes,
    cpu: roundDeep(typical.cpu),
    archive_cpu_bound_rows_per_s: cpuBound,
    main_thread_busy_share: round(typical.main_thread_busy_share),
    peak_rss_mb: mib(peakRun.rss.peak_bytes),
    rss_start_mb: mib(peakRun.rss.start_bytes),
    rss_added_mb: mib(peakRun.rss.peak_bytes - peakRun.rss.start_bytes),
    rss_p95_mb: mib(peakRun.rss.p95_bytes),
    rss_method: peakRun.rss.method,
    stages: roundDeep(typical.stages),
    breakdown: roundDeep(typical.breakdown),
    ...(profile ? { profile: roundDeep(profile) } : {}),
    ...probeReport(runs, copyRate),
    ...(runs.length > 1
      ? {
          runs: runs.map((r) => ({
            copy_seconds: round(r.copy_seconds),
            copy_warm_session_seconds: round(r.copy_warm_session_seconds),
            copy_unordered_seconds: round(r.copy_unordered_seconds),
            archive_seconds: round(r.archive_seconds),
            chunks: r.chunks,
            peak_rss_mb: mib(r.rss.peak_bytes),
          })),
        }
      : {}),
  };
}

/** Rounds every number in a plain object: rates (>= 1000) to integers, the rest to 3 decimals. */
function roundDeep<T>(value: T): T {
  if (typeof value === 'number') return (Math.abs(value) >= 1000 ? Math.round(value) : round(value)) as T;
  if (Array.isArray(value)) return value.map((item) => roundDeep(item)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, roundDeep(item)])) as T;
  }
  return value;
}

function formatReport(report: Report): string {
  const rate = (value: number) => `${Math.round(value).toLocaleString('en-US')} rows/s`;
  const seconds = (value: number) => `${value.toFixed(2)} s`;
  const lines: Array<[string, string]> = [
    ['rows', report.rows.toLocaleString('en-US')],
    [
      'COPY ordered (created_at, id), fresh session',
      `${rate(report.copy_rows_per_s)}  (${seconds(report.copy_seconds)}, ${report.copy_mb_per_s} MB/s)`,
    ],
    [
      'COPY unordered',
      `${rate(report.copy_unordered_rows_per_s)}  (${seconds(report.copy_unordered_seconds)})`,
    ],
    ['archive (state machine)', `${rate(report.archive_rows_per_s)}  (${seconds(report.archive_seconds)})`],
    [
      'ratio archive / COPY',
      `${report.ratio.toFixed(3)} (first run ${report.ratio_first_run.toFixed(3)}; vs the filling session's COPY ${report.ratio_warm_session.toFixed(3)}, first run ${report.ratio_first_run_warm_session.toFixed(3)})`,
    ],
    [
      'objects / chunks / bytes',
      `${report.objects} / ${report.chunks} / ${(report.bytes / 1e6).toFixed(1)} MB`,
    ],
    [
      'archive CPU node / postgres / s3',
      [report.cpu.archive.node_cpu_s, report.cpu.archive.postgres_cpu_s, report.cpu.archive.s3_server_cpu_s]
        .map((v) => (v === undefined ? 'n/a' : seconds(v)))
        .join(' / '),
    ],
  ];
  lines.push([
    'peak RSS during archive',
    `${report.peak_rss_mb} MiB (start ${report.rss_start_mb}, added ${report.rss_added_mb}, p95 ${report.rss_p95_mb}, ${report.rss_method})`,
  ]);
  for (const [kind, { seconds: s, calls }] of Object.entries(report.breakdown.timed)) {
    lines.push([`  ${kind}`, `${seconds(s)}  (${calls} calls)`]);
  }
  lines.push(['  untimed (encode, sha256, steps)', seconds(report.breakdown.untimed_s)]);
  lines.push(['  of which encode+sha256 (est.)', seconds(report.breakdown.encode_sha256_estimate_s)]);
  lines.push([
    'stage rates (sample)',
    `fetch ${rate(report.stages.fetch_rows_per_s)}, encode ${rate(report.stages.encode_rows_per_s)}`,
  ]);
  if (report.probe) {
    const p = report.probe;
    lines.push([
      'probe sequential / pipelined',
      `${rate(p.sequential_rows_per_s)} / ${rate(p.pipelined_rows_per_s)}`,
    ]);
    lines.push(['  speedup, pipelined ratio', `${p.speedup.toFixed(2)}x, ${p.pipelined_ratio.toFixed(3)}`]);
  }
  if (report.profile) {
    lines.push(['cpu profile', report.profile.file]);
    for (const { area, share } of report.profile.areas.slice(0, 8))
      lines.push([`  ${area}`, `${(share * 100).toFixed(1)} %`]);
  }
  const width = Math.max(...lines.map(([label]) => label.length));
  return `${lines.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n')}\n`;
}
