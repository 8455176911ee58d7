/**
 * `npm run bench -- memory`: peak resident memory of the process that runs an archive or a purge, at two table
 * sizes (issue 10 part 6: ≤ 256 MB, and the larger ÷ the smaller ≤ 1.1).
 *
 * The archive and purge benchmarks' own process cannot answer this: it synthesized the app and filled the
 * table, and RSS rarely shrinks (≈ 500 MiB before its archive starts). Here the parent starts the servers,
 * synthesizes the definition and fills `bench.events`; each measured run happens in a **fresh child process**
 * that loads only what a warm Lambda holds plus the local interpreter (polyfills, config, handlers, pg, the AWS
 * SDK, aws-local-stepfunctions), is garbage-collected, has its kernel high-water mark reset, runs the whole
 * policy through `runPolicyLocally` (every Start, Chunk and Finish step in this one process, so the peak is an
 * upper bound of any single step's) and reports VmHWM. PostgreSQL and the S3 server are other processes.
 * tsx compiles the TypeScript in the child: its module cache is in the floor, which a bundled Lambda does not
 * carry (`floor_mb` is reported apart).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { createS3Client } from '../../functions/commons/s3.ts';
import type { AslDefinition } from '../../functions/local-runner/synthesize.ts';
import { LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import { countEvents, EVENTS_TABLE, fillEvents } from './dataset.ts';
import { measureHandlerFloor } from './handler-floor.ts';
import type { PeakRss } from './memory.ts';
import { commandLine, positiveInt, progressLine, UsageError } from './options.ts';
import { startBenchServices } from './services.ts';
import { round } from './stats.ts';
import { synthesizeInChild } from './synth-child.ts';

const BUCKET = 'pg-lifecycle-bench-memory';
const RETENTION = 'P1D';
const ACTIONS = ['archive', 'purge'] as const;
type Action = (typeof ACTIONS)[number];
/** Issue 10 part 6. */
const PEAK_GOAL_MB = 256;
const GROWTH_GOAL = 1.1;

interface Options {
  readonly rows: readonly number[];
  readonly only: Action | undefined;
  readonly json: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string', default: '1000000,4000000' },
      only: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const rows = values.rows.split(',').map((text) => positiveInt('rows', text, 1));
  if (rows.length < 1) throw new UsageError('--rows takes one or more row counts, comma-separated');
  if (values.only !== undefined && !ACTIONS.includes(values.only as Action))
    throw new UsageError('--only must be archive or purge');
  return { rows, only: values.only as Action | undefined, json: values.json };
}

interface ChildRequest {
  readonly databaseUrl: string;
  readonly configInput: unknown;
  readonly policyName: string;
  readonly definition: AslDefinition;
}

interface ChildResult {
  /** RSS after loading the modules and a full GC, before the run. */
  readonly floor_bytes: number;
  readonly rss: PeakRss;
  readonly seconds: number;
  readonly status: string;
  readonly rows: number;
  readonly chunks: number;
  readonly failure?: string;
}

interface Measurement {
  readonly action: Action;
  readonly rows: number;
  readonly peak_mb: number;
  readonly floor_mb: number;
  /** Peak minus floor: what the run itself added. */
  readonly added_mb: number;
  readonly p95_mb: number;
  readonly method: PeakRss['method'];
  readonly seconds: number;
  readonly chunks: number;
}

const mib = (bytes: number) => round(bytes / 2 ** 20, 1);

function configInput(action: Action) {
  return {
    sandbox: true,
    policies: [
      {
        name: `memory-${action}`,
        action,
        table: EVENTS_TABLE,
        timeColumn: 'created_at',
        retention: RETENTION,
        // The purge's VACUUM is not a chunk step's work (and runs in the server).
        ...(action === 'purge' ? { vacuum: { enabled: false } } : {}),
      },
    ],
  };
}

export async function main(argv: string[]): Promise<number> {
  const options = commandLine(parseOptions, argv);
  if (!options) return 2;
  const progress = progressLine('memory');
  progress('starting PostgreSQL and the S3 server (child process)…');
  const services = await startBenchServices('child');
  process.env.AWS_ENDPOINT_URL_S3 = services.s3Endpoint;
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  process.env.AWS_REGION ??= 'us-east-1';
  const s3 = createS3Client();
  const admin = await connect(
    await resolveClientConfig(
      { DATABASE_URL: services.databaseUrl },
      { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
    ),
  );
  try {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch((error: { name?: string }) => {
      if (error.name !== 'BucketAlreadyOwnedByYou' && error.name !== 'BucketAlreadyExists') throw error;
    });
    await applyMigrations(admin);
    // First: a bundling failure must not throw away runs already measured.
    progress('measuring the bundled chunk handler at rest (esbuild, as deployed)…');
    const handler = await measureHandlerFloor();
    const measurements: Measurement[] = [];
    for (const action of options.only ? [options.only] : ACTIONS) {
      const input = configInput(action);
      LifecycleConfigSchema.parse(input);
      progress(`synthesizing the ${action} policy's state machine (child process)…`);
      const definition = await synthesizeInChild(input);
      for (const rows of options.rows) {
        progress(`filling ${EVENTS_TABLE} with ${rows} rows…`);
        await fillEvents(admin, rows);
        progress(`${action} of ${rows} rows in a fresh process…`);
        const result = await runInChild({
          databaseUrl: services.databaseUrl,
          configInput: input,
          policyName: `memory-${action}`,
          definition,
        });
        const left = await countEvents(admin);
        if (result.status !== 'succeeded' || result.rows !== rows || left !== 0)
          throw new Error(
            `${action} of ${rows} rows: ${result.status}${result.failure ? ` (${result.failure})` : ''}, ` +
              `${result.rows} rows recorded, ${left} left in the table`,
          );
        measurements.push({
          action,
          rows,
          peak_mb: mib(result.rss.peak_bytes),
          floor_mb: mib(result.floor_bytes),
          added_mb: mib(result.rss.peak_bytes - result.floor_bytes),
          p95_mb: mib(result.rss.p95_bytes),
          method: result.rss.method,
          seconds: round(result.seconds),
          chunks: result.chunks,
        });
        progress(`  peak ${mib(result.rss.peak_bytes)} MiB (floor ${mib(result.floor_bytes)} MiB)`);
      }
    }
    const report = buildReport(options, measurements, handler);
    process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    // As every benchmark: 0 once measured (the goal's verdict is `within_goal`), 1 only when a run failed.
    return 0;
  } catch (error) {
    process.stderr.write(
      `bench memory failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  } finally {
    await admin.end().catch(() => undefined);
    s3.destroy();
    await services.stop();
  }
}

function buildReport(
  options: Options,
  measurements: readonly Measurement[],
  handler: { bundle_bytes: number; floor_bytes: number },
) {
  const smallest = Math.min(...options.rows);
  const largest = Math.max(...options.rows);
  const growth = Object.fromEntries(
    ACTIONS.flatMap((action) => {
      const small = measurements.find((m) => m.action === action && m.rows === smallest);
      const large = measurements.find((m) => m.action === action && m.rows === largest);
      return small && large && largest > smallest ? [[action, round(large.peak_mb / small.peak_mb)]] : [];
    }),
  );
  const peak = Math.max(...measurements.map((m) => m.peak_mb));
  return {
    benchmark: 'memory',
    cores: availableParallelism(),
    load_1m: round(loadavg()[0] ?? 0, 2),
    node: process.version,
    peak_mb: peak,
    peak_goal_mb: PEAK_GOAL_MB,
    growth_largest_over_smallest: growth,
    growth_goal: GROWTH_GOAL,
    within_goal:
      peak <= PEAK_GOAL_MB && Object.values(growth).every((ratio) => (ratio as number) <= GROWTH_GOAL),
    runs: measurements,
    // The deployed step's floor: the chunk handler's bundle loaded by a fresh node, collected.
    chunk_handler_bundle_mb: mib(handler.bundle_bytes),
    chunk_handler_floor_mb: mib(handler.floor_bytes),
    // An estimate, not a measurement: that floor plus the most any run added on top of its own child's floor.
    estimated_deployed_peak_mb: round(
      mib(handler.floor_bytes) + Math.max(...measurements.map((m) => m.added_mb)),
      1,
    ),
  };
}

function formatReport(report: ReturnType<typeof buildReport>): string {
  const lines = report.runs.map(
    (m) =>
      `  ${m.action.padEnd(8)} ${String(m.rows).padStart(9)} rows  peak ${m.peak_mb} MiB  floor ${m.floor_mb}  added ${m.added_mb}  p95 ${m.p95_mb}  (${m.seconds} s, ${m.chunks} chunks)`,
  );
  return [
    `memory of a fresh process running one policy (load ${report.load_1m}, ${report.cores} cores, Node ${report.node})`,
    ...lines,
    `  peak ${report.peak_mb} MiB (goal <= ${report.peak_goal_mb}); largest / smallest ${JSON.stringify(report.growth_largest_over_smallest)} (goal <= ${report.growth_goal})`,
    `  bundled chunk handler: ${report.chunk_handler_bundle_mb} MiB, ${report.chunk_handler_floor_mb} MiB at rest; estimated deployed peak ${report.estimated_deployed_peak_mb} MiB`,
    '',
  ].join('\n');
}

/** A measured run that takes longer than this is killed (a hung child would hang the benchmark). */
const CHILD_TIMEOUT_MS = 30 * 60_000;

function runInChild(request: ChildRequest): Promise<ChildResult> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--memory-child'], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  // The parent ending (an error, Ctrl-C) takes the child with it.
  const killChild = () => child.kill('SIGKILL');
  process.once('exit', killChild);
  let timer: NodeJS.Timeout | undefined;
  return new Promise<ChildResult>((resolve, reject) => {
    timer = setTimeout(() => {
      killChild();
      reject(new Error(`memory child: no result after ${CHILD_TIMEOUT_MS / 60_000} minutes, killed`));
    }, CHILD_TIMEOUT_MS);
    child.once('message', (message: { ok: boolean; value?: ChildResult; error?: string }) => {
      child.disconnect();
      if (message.ok && message.value) resolve(message.value);
      else reject(new Error(`memory child: ${message.error}`));
    });
    child.once('exit', (code) => reject(new Error(`memory child exited (${String(code)})`)));
    child.send(request);
  }).finally(() => {
    // Once it has answered it is disconnected and exits by itself; on a timeout it was killed.
    clearTimeout(timer);
    process.off('exit', killChild);
  });
}

/** The child: loads only what the run needs, then runs it once and reports. */
async function serve(request: ChildRequest): Promise<ChildResult> {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_TRACE_ENABLED ??= 'false';
  await import('../support/polyfills.ts');
  const { LifecycleConfigSchema } = await import('../../lib/contracts/config.ts');
  const { localDependencies } = await import('../../functions/local-runner/local-dependencies.ts');
  const { runPolicyLocally, prepareDefinition } = await import(
    '../../functions/local-runner/local-runner.ts'
  );
  const { measurePeakRss } = await import('./memory.ts');
  const config = LifecycleConfigSchema.parse(request.configInput);
  const dependencies = localDependencies({ databaseUrl: request.databaseUrl, bucket: BUCKET });
  // Validated before the measurement, as the service does at deploy.
  prepareDefinition(request.definition);
  const started = performance.now();
  const { result, rss } = await measurePeakRss(() =>
    runPolicyLocally({
      config,
      policyName: request.policyName,
      dependencies,
      definition: request.definition,
      pauseMs: 0,
      retryIntervalMs: 0,
    }),
  );
  return {
    // measurePeakRss collects garbage first: its start is the floor.
    floor_bytes: rss.start_bytes,
    rss,
    seconds: (performance.now() - started) / 1000,
    status: result.status,
    rows: result.summary?.rows ?? 0,
    chunks: result.summary?.chunks ?? 0,
    ...(result.failure ? { failure: JSON.stringify(result.failure).slice(0, 500) } : {}),
  };
}

if (process.argv.includes('--memory-child')) {
  process.once('message', (request: ChildRequest) => {
    serve(request).then(
      (value) => process.send?.({ ok: true, value }),
      (error: Error) => process.send?.({ ok: false, error: error.stack ?? error.message }),
    );
  });
}
