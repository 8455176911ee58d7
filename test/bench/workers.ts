/**
 * `npm run bench -- workers --workers N`: a parallel run (`parallelism` N) against a single worker on the same
 * rows, in the same process run, for archive and for purge, through the synthesized state machines (the
 * Distributed Map runs its item processor inline in the local interpreter: every worker in this one Node
 * process, against the one local PostgreSQL).
 *
 * Per repetition and action: fill `bench.events` → run with 1 worker → refill → run with N workers →
 * conservation checks (table empty, ledger rows = N rows, every range done; archive: S3 holds exactly the
 * listed objects). The purge's Finish VACUUM is off in both (the same work either way). Reported: rows/s of
 * each, speed-up and scaling efficiency (speed-up ÷ N), and the rate per
 * CPU-second (Node + PostgreSQL + S3 server), which is what a machine with more cores would multiply. On a
 * 2-core machine the speed-up is bounded by the cores, not by the design: read the CPU-normalised rate and the
 * correctness checks here, and docs/scale-out.md for the model of a real deployment.
 */
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { createS3Client } from '../../functions/commons/s3.ts';
import { policyPrefix } from '../../functions/core/object-keys.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import {
  type LocalRunResult,
  prepareDefinition,
  runPolicyLocally,
} from '../../functions/local-runner/local-runner.ts';
import { synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import { type LifecycleConfig, LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import { type CpuUsage, cpuBetween, postmasterOf, sampleCpu } from './cpu.ts';
import { countEvents, EVENTS_TABLE, fillEvents } from './dataset.ts';
import { commandLine, positiveInt, progressLine, UsageError } from './options.ts';
import { type BenchServices, startBenchServices } from './services.ts';
import { median, round } from './stats.ts';

const BUCKET = 'pg-lifecycle-bench-workers';
const RETENTION = 'P1D';
const ACTIONS = ['archive', 'purge'] as const;
type Action = (typeof ACTIONS)[number];

interface Options {
  readonly rows: number;
  readonly workers: number;
  readonly repeat: number;
  readonly json: boolean;
  readonly only: Action | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rows: { type: 'string' },
      workers: { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean', default: false },
      only: { type: 'string' },
    },
  });
  const only = values.only === undefined ? undefined : ACTIONS.find((a) => a === values.only);
  if (values.only !== undefined && !only) throw new UsageError('--only must be archive or purge');
  const workers = positiveInt('workers', values.workers, 4);
  if (workers < 2 || workers > 32) throw new UsageError('--workers must be 2 to 32');
  return {
    rows: positiveInt('rows', values.rows, 1_000_000),
    workers,
    repeat: positiveInt('repeat', values.repeat, 1),
    json: values.json,
    only,
  };
}

/** One run of one action with `workers` workers. */
interface Measured {
  readonly seconds: number;
  readonly rows_per_s: number;
  readonly cpu: CpuUsage;
  /** Rows per CPU-second of Node, PostgreSQL and the S3 server together. */
  readonly rows_per_cpu_s: number;
  readonly ranges: number;
  readonly chunks: number;
  /** Most chunk steps in flight at once (the local runner's count). */
  readonly max_concurrent_steps: number;
}

interface Pair {
  readonly single: Measured;
  readonly parallel: Measured;
}

interface Context {
  readonly options: Options;
  readonly services: BenchServices;
  readonly admin: pg.Client;
  readonly s3: S3Client;
  readonly postmasterPid: number | undefined;
}

function configFor(action: Action, workers: number): LifecycleConfig {
  return LifecycleConfigSchema.parse({
    sandbox: true,
    policies: [
      {
        name: `bench-${action}-w${workers}`,
        action,
        table: EVENTS_TABLE,
        timeColumn: 'created_at',
        retention: RETENTION,
        // The Finish step's VACUUM is the same work whatever the workers: left out of both.
        ...(action === 'purge' ? { vacuum: { enabled: false } } : {}),
        ...(workers > 1 ? { parallelism: workers } : {}),
      },
    ],
  });
}

export async function main(argv: string[]): Promise<number> {
  const options = commandLine(parseOptions, argv);
  if (!options) return 2;
  const progress = progressLine('workers');
  progress('starting servers…');
  const services = await startBenchServices('child');
  let admin: pg.Client | undefined;
  let s3: S3Client | undefined;
  try {
    process.env.AWS_ENDPOINT_URL_S3 = services.s3Endpoint;
    process.env.AWS_ACCESS_KEY_ID ??= 'bench';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
    process.env.AWS_REGION ??= 'us-east-1';
    s3 = createS3Client();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch((error: { name?: string }) => {
      if (error.name !== 'BucketAlreadyOwnedByYou' && error.name !== 'BucketAlreadyExists') throw error;
    });
    admin = await connect(
      await resolveClientConfig(
        { DATABASE_URL: services.databaseUrl },
        { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
      ),
    );
    await applyMigrations(admin);
    const { rows } = await admin.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const postmasterPid = services.localPostgres && rows[0] ? postmasterOf(Number(rows[0].pid)) : undefined;
    const context: Context = { options, services, admin, s3, postmasterPid };
    const results: Partial<Record<Action, Pair[]>> = {};
    for (const action of options.only ? [options.only] : ACTIONS) {
      const pairs: Pair[] = [];
      for (let i = 0; i < options.repeat; i++) {
        const label = options.repeat > 1 ? ` (run ${i + 1}/${options.repeat})` : '';
        const single = await measure(context, action, 1, `${action} 1 worker${label}`, progress);
        const parallel = await measure(
          context,
          action,
          options.workers,
          `${action} ${options.workers} workers${label}`,
          progress,
        );
        pairs.push({ single, parallel });
      }
      results[action] = pairs;
    }
    const report = buildReport(options, results);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  } catch (error) {
    process.stderr.write(
      `bench workers failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
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

async function measure(
  context: Context,
  action: Action,
  workers: number,
  label: string,
  progress: (text: string) => void,
): Promise<Measured> {
  const { options, admin } = context;
  const config = configFor(action, workers);
  const policy = config.policies[0]?.name ?? '';
  const definition = await synthesizeDefinition(config);
  // Validated once, as the service does when the machine is deployed: not part of any timed run.
  prepareDefinition(definition);
  progress(`filling ${EVENTS_TABLE} with ${options.rows} rows for ${label}…`);
  await fillEvents(admin, options.rows);
  // The run's deletes would wake autovacuum during one run and not another, and its CPU counts in PostgreSQL's
  // process tree: kept off the table while measuring (the same for 1 and N workers).
  await admin.query(`ALTER TABLE ${EVENTS_TABLE} SET (autovacuum_enabled = false)`);
  const dependencies = localDependencies({
    databaseUrl: context.services.databaseUrl,
    ...(action === 'archive' ? { bucket: BUCKET } : {}),
  });
  const before = sampleCpu(context.postmasterPid, context.services.s3Pid);
  const started = performance.now();
  const result = await runPolicyLocally({
    config,
    policyName: policy,
    dependencies,
    definition,
    pauseMs: 0,
    retryIntervalMs: 0,
  });
  const seconds = (performance.now() - started) / 1000;
  const cpu = cpuBetween(before, sampleCpu(context.postmasterPid, context.services.s3Pid));
  const ranges = await checkConservation(context, result, action, policy, workers);
  const cpuSeconds = cpu.node_cpu_s + (cpu.postgres_cpu_s ?? 0) + (cpu.s3_server_cpu_s ?? 0);
  progress(`${label}: ${options.rows} rows in ${seconds.toFixed(2)} s, ${cpuSeconds.toFixed(1)} CPU-s`);
  return {
    seconds: round(seconds),
    rows_per_s: Math.round(options.rows / seconds),
    cpu,
    rows_per_cpu_s: Math.round(options.rows / cpuSeconds),
    ranges,
    chunks: result.summary?.chunks ?? 0,
    max_concurrent_steps: result.maxConcurrentChunks,
  };
}

/** Table empty, ledger = N rows, every range done, S3 = the listed objects (archive). Returns the range count. */
async function checkConservation(
  context: Context,
  result: LocalRunResult,
  action: Action,
  policy: string,
  workers: number,
): Promise<number> {
  const { admin, options } = context;
  const problems: string[] = [];
  if (result.status !== 'succeeded') problems.push(`run ${result.status}: ${result.failure?.error ?? ''}`);
  const left = await countEvents(admin);
  if (left !== 0) problems.push(`${left} rows left in the table`);
  if (result.summary?.rows !== options.rows)
    problems.push(`ledger rows ${result.summary?.rows}, expected ${options.rows}`);
  const { rows } = await admin.query<{ ranges: string; open: string; rows: string }>(
    `SELECT count(*) AS ranges, count(*) FILTER (WHERE NOT done) AS open, coalesce(sum(rows), 0) AS rows
       FROM lifecycle.run_ranges WHERE run_id = $1`,
    [result.summary?.runId],
  );
  const ranges = Number(rows[0]?.ranges ?? 0);
  if (workers > 1) {
    if (ranges < 2) problems.push(`${ranges} ranges for ${workers} workers`);
    if (Number(rows[0]?.open) !== 0) problems.push(`${rows[0]?.open} ranges not done`);
    if (Number(rows[0]?.rows) !== options.rows) problems.push(`ranges hold ${rows[0]?.rows} rows`);
  }
  if (action === 'archive') {
    const listed = await admin.query<{ key: string }>(
      `SELECT o.key FROM lifecycle.archived_objects o JOIN lifecycle.runs r USING (run_id) WHERE r.run_id = $1`,
      [result.summary?.runId],
    );
    const keys = new Set<string>();
    for await (const page of paginateListObjectsV2(
      { client: context.s3 },
      { Bucket: BUCKET, Prefix: policyPrefix(policy) },
    )) {
      // Earlier repetitions' objects stay under the same prefix: this run's keys carry its id.
      for (const object of page.Contents ?? [])
        if (object.Key?.includes(`/${result.summary?.runId}-`)) keys.add(object.Key);
    }
    const expected = new Set(listed.rows.map((r) => r.key));
    if (keys.size !== expected.size || [...expected].some((key) => !keys.has(key)))
      problems.push(`S3 holds ${keys.size} objects, the ledger lists ${expected.size}`);
  }
  if (problems.length > 0) throw new Error(`conservation failed: ${problems.join('; ')}`);
  return ranges;
}

interface ActionReport {
  readonly single_rows_per_s: { readonly first: number; readonly median: number };
  readonly parallel_rows_per_s: { readonly first: number; readonly median: number };
  /** parallel ÷ single rows/s. */
  readonly speedup: { readonly first: number; readonly median: number };
  /** speed-up ÷ workers (1 = perfect scaling). */
  readonly efficiency: { readonly first: number; readonly median: number };
  readonly single_rows_per_cpu_s: number;
  readonly parallel_rows_per_cpu_s: number;
  readonly max_concurrent_steps: number;
  readonly runs: readonly Pair[];
}

interface Report {
  readonly benchmark: 'workers';
  readonly rows: number;
  readonly workers: number;
  readonly repetitions: number;
  readonly cores: number;
  readonly load_1m: number;
  readonly actions: Partial<Record<Action, ActionReport>>;
}

function buildReport(options: Options, results: Partial<Record<Action, Pair[]>>): Report {
  const actions: Partial<Record<Action, ActionReport>> = {};
  for (const [action, pairs] of Object.entries(results) as Array<[Action, Pair[]]>) {
    const speedups = pairs.map((p) => p.parallel.rows_per_s / p.single.rows_per_s);
    const firstOf = (values: readonly number[]) => round(values[0] ?? 0);
    actions[action] = {
      single_rows_per_s: {
        first: pairs[0]?.single.rows_per_s ?? 0,
        median: Math.round(median(pairs.map((p) => p.single.rows_per_s))),
      },
      parallel_rows_per_s: {
        first: pairs[0]?.parallel.rows_per_s ?? 0,
        median: Math.round(median(pairs.map((p) => p.parallel.rows_per_s))),
      },
      speedup: { first: firstOf(speedups), median: round(median(speedups)) },
      efficiency: {
        first: firstOf(speedups.map((s) => s / options.workers)),
        median: round(median(speedups) / options.workers),
      },
      single_rows_per_cpu_s: Math.round(median(pairs.map((p) => p.single.rows_per_cpu_s))),
      parallel_rows_per_cpu_s: Math.round(median(pairs.map((p) => p.parallel.rows_per_cpu_s))),
      max_concurrent_steps: Math.max(...pairs.map((p) => p.parallel.max_concurrent_steps)),
      runs: pairs,
    };
  }
  return {
    benchmark: 'workers',
    rows: options.rows,
    workers: options.workers,
    repetitions: options.repeat,
    cores: availableParallelism(),
    load_1m: round(loadavg()[0] ?? 0, 2),
    actions,
  };
}

function formatReport(report: Report): string {
  const lines = [
    `workers: ${report.rows} rows, ${report.workers} workers vs 1, ${report.repetitions} repetition(s), ` +
      `${report.cores} cores, load ${report.load_1m}`,
  ];
  for (const [action, r] of Object.entries(report.actions) as Array<[Action, ActionReport]>) {
    lines.push(
      `  ${action}: 1 worker ${r.single_rows_per_s.median} rows/s, ${report.workers} workers ` +
        `${r.parallel_rows_per_s.median} rows/s (first ${r.parallel_rows_per_s.first}); speed-up ` +
        `${r.speedup.median} (first ${r.speedup.first}), efficiency ${r.efficiency.median}; rows per CPU-s ` +
        `${r.single_rows_per_cpu_s} vs ${r.parallel_rows_per_cpu_s}; ${r.max_concurrent_steps} steps at once`,
    );
  }
  return `${lines.join('\n')}\n`;
}
