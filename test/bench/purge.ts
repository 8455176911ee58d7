/**
 * `npm run bench -- purge`: how fast the real purge path empties a table in short transactions, against one
 * `DELETE … WHERE created_at < cutoff` of the same rows, measured in the same run on identical data.
 *
 * Per repetition: fill `bench.events` → single DELETE in a fresh session (timed) → refill → the same DELETE in
 * the session that filled it (timed; see fresh-session.ts) → refill → purge through the synthesized
 * state machine with the real handlers (`runPolicyLocally`, `targetTransactionMs` 250) → ledger and
 * conservation checks. Every chunk transaction is timed from BEGIN to the end of COMMIT by wrapping the
 * step dependencies' connections from outside (nothing in functions/ changes); the ledger's
 * `chunks.duration_ms` (BEGIN to just before COMMIT) is reported too.
 *
 * Then partition retention vs chunked purge of the same rows: fill `bench.events_by_month` (the same rows,
 * RANGE-partitioned by month; every partition but the newest lies wholly before the cutoff and the newest
 * holds no row) → purge it through the state machine with partition retention on (timed: the old
 * partitions are detached and dropped as units) → refill → purge it again with `partitions.enabled: false`
 * (timed: every row through chunks) → conservation checks after each.
 */

import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { computeCutoff } from '../../functions/core/cutoff.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import {
  type LocalRunResult,
  prepareDefinition,
  runPolicyLocally,
} from '../../functions/local-runner/local-runner.ts';
import { type AslDefinition, synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import { type LifecycleConfig, LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import {
  countEvents,
  EVENTS_TABLE,
  fillEvents,
  fillMonthlyEvents,
  MONTHLY_EVENTS_TABLE,
  tableBytes,
} from './dataset.ts';
import { timeInFreshSession, timeInSession } from './fresh-session.ts';
import { measurePeakRss } from './memory.ts';
import { commandLine, positiveInt, progressLine, UsageError } from './options.ts';
import {
  reportStatementTimes,
  type SlowStatements,
  type StatementTimes,
  timeStatements,
} from './purge-statements.ts';
import { startBenchServices } from './services.ts';
import { median, medianIndex, round } from './stats.ts';
import { timeTransactions } from './transactions.ts';

const POLICY = 'bench-purge';
/** Partition retention on `bench.events_by_month`, and the same policy with every row through chunks. */
const PARTITION_POLICY = 'bench-purge-partitions';
const CHUNKED_POLICY = 'bench-purge-partitions-chunked';
const RETENTION = 'P1D';
/** Monthly partitions of `bench.events_by_month`: all but the newest wholly before the cutoff. */
const MONTHS = 12;

interface Options {
  rows: number;
  repeat: number;
  json: boolean;
  targetMs: number;
  /** Chunk row cap; the policy's built-in default unless given. */
  maxRows: number | undefined;
  /** `partitions`: only the partition-retention part (no single DELETE, no purge of `bench.events`). */
  only: 'all' | 'partitions';
  /** `partitions.count` of the partition run's policy (the product's default unless given). */
  partitionCount: 'estimate' | 'exact' | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rows: { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean', default: false },
      'target-ms': { type: 'string' },
      'max-rows': { type: 'string' },
      only: { type: 'string' },
      'partition-count': { type: 'string' },
    },
  });
  const partitionCount = values['partition-count'];
  if (partitionCount !== undefined && partitionCount !== 'estimate' && partitionCount !== 'exact')
    throw new UsageError(`--partition-count must be estimate or exact, got "${partitionCount}"`);
  const only = values.only ?? 'all';
  if (only !== 'all' && only !== 'partitions')
    throw new UsageError(`--only must be partitions (or all), got "${only}"`);
  return {
    rows: positiveInt('rows', values.rows, 1_000_000),
    repeat: positiveInt('repeat', values.repeat, 1),
    json: values.json,
    targetMs: positiveInt('target-ms', values['target-ms'], 250),
    maxRows: values['max-rows'] === undefined ? undefined : positiveInt('max-rows', values['max-rows'], 1),
    only,
    partitionCount,
  };
}

interface RunMeasurement {
  readonly table_bytes: number;
  /** The single DELETE in a fresh session (connecting not timed): the baseline of `ratio`. */
  readonly delete_seconds: number;
  /** Minor page faults of that session's backend during the DELETE (null: the server's /proc is not readable). */
  readonly delete_minor_faults: number | null;
  /** The same DELETE in the session that filled the table (every shared buffer already mapped). */
  readonly delete_warm_session_seconds: number;
  readonly delete_warm_session_minor_faults: number | null;
  /** Wall time of the whole run: Start, every Chunk step, Finish (with its VACUUM), state machine. */
  readonly purge_seconds: number;
  /** The Finish step's VACUUM (ANALYZE) (the single DELETE leaves its dead tuples to autovacuum). */
  readonly vacuum_seconds: number;
  readonly chunks: number;
  readonly chunk_invocations: number;
  /** BEGIN to the end of COMMIT, measured on the connection. */
  readonly transaction_ms: { readonly max: number; readonly p95: number; readonly median: number };
  /** lifecycle.chunks.duration_ms: BEGIN to just before COMMIT, as the loop records it. */
  readonly ledger_chunk_ms: { readonly max: number; readonly p95: number };
  readonly chunk_rows: { readonly min: number; readonly max: number };
  /**
   * Seconds and calls per statement kind over every connection of the run (purge-statements.ts), connecting
   * included (`connect`): what of `purge_seconds` went to PostgreSQL; the rest is the handlers and the state machine.
   */
  readonly statements: StatementTimes;
  /** Peak RSS of this process (which runs the state machine and the handlers) during the run. */
  readonly rss: RssMeasurement;
  readonly partitions: PartitionMeasurement;
}

/** What `measurePeakRss` saw during one run, in MiB. */
interface RssMeasurement {
  readonly peak_mb: number;
  /** RSS at the run's start, after a full GC: the peak minus this is what the run added. */
  readonly start_mb: number;
  readonly p95_mb: number;
  readonly method: 'vmhwm' | 'sampled';
}

/** Partition retention vs chunked purge of the same rows of `bench.events_by_month`. */
interface PartitionMeasurement {
  readonly partitions: number;
  readonly partitions_dropped: number;
  /** Wall time of the run with partition retention (Start, Chunk steps, Finish, state machine). */
  readonly partition_seconds: number;
  /** From the first unit's start to the last unit's end (lifecycle.partition_units): the units alone. */
  readonly partition_units_seconds: number;
  /** Longest transaction of the partition run (BEGIN to the end of COMMIT; DETACH CONCURRENTLY is outside any). */
  readonly partition_max_transaction_ms: number;
  /** Wall time of the run of the same policy with `partitions.enabled: false` on the same rows. */
  readonly chunked_seconds: number;
  readonly chunked_vacuum_seconds: number;
  readonly chunked_chunks: number;
  /** partition_seconds ÷ chunked_seconds (goal ≤ 0.01). */
  readonly partition_time_share: number;
  /** Seconds and calls per statement kind of the partition run (purge-statements.ts), all connections. */
  readonly partition_statements: StatementTimes;
  readonly partition_slowest_statements: SlowStatements;
  /** The partition run's Finish maintenance (VACUUM (ANALYZE) of the parent, when the run took enough rows). */
  readonly partition_vacuum_seconds: number;
  /** Per dropped unit: rows recorded, whether estimated, and its seconds (started_at to finished_at). */
  readonly units: ReadonlyArray<{ readonly rows: number; readonly estimated: boolean; readonly ms: number }>;
  readonly partition_rss: RssMeasurement;
  readonly chunked_rss: RssMeasurement;
}

export async function main(argv: string[]): Promise<number> {
  const options = commandLine(parseOptions, argv);
  if (!options) return 2;
  const progress = progressLine('purge');
  progress('starting PostgreSQL…');
  // The purge path needs no S3; the in-process server is the cheapest thing startBenchServices offers.
  const services = await startBenchServices('inproc');
  let admin: pg.Client | undefined;
  try {
    // Seeding 10 M rows takes longer than any run's statement_timeout: the bench's own connection has none.
    admin = await connect(
      await resolveClientConfig(
        { DATABASE_URL: services.databaseUrl },
        { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
      ),
    );
    await applyMigrations(admin);
    const purgePolicy = (name: string, table: string, partitions: boolean) => ({
      name,
      action: 'purge',
      table,
      timeColumn: 'created_at',
      retention: RETENTION,
      chunking: {
        targetTransactionMs: options.targetMs,
        ...(options.maxRows === undefined ? {} : { maxRows: options.maxRows }),
      },
      partitions: {
        enabled: partitions,
        ...(options.partitionCount === undefined ? {} : { count: options.partitionCount }),
      },
    });
    const config = LifecycleConfigSchema.parse({
      sandbox: true,
      policies: [
        purgePolicy(POLICY, EVENTS_TABLE, true),
        purgePolicy(PARTITION_POLICY, MONTHLY_EVENTS_TABLE, true),
      ],
    });
    // Its own config: one config may not hold two purges of one table (validate refuses them as conflicting).
    const chunkedConfig = LifecycleConfigSchema.parse({
      sandbox: true,
      policies: [purgePolicy(CHUNKED_POLICY, MONTHLY_EVENTS_TABLE, false)],
    });
    progress('synthesizing the state machine (not timed)…');
    const definition = await synthesizeDefinition(config);
    // Validated once, as the service does when the machine is deployed: not part of any timed run.
    prepareDefinition(definition);
    const runs: RunMeasurement[] = [];
    const partitionRuns: PartitionMeasurement[] = [];
    for (let i = 0; i < options.repeat; i++) {
      const label = options.repeat > 1 ? ` (run ${i + 1}/${options.repeat})` : '';
      const configs = { config, chunkedConfig };
      if (options.only === 'partitions') {
        partitionRuns.push(
          await measurePartitions(
            admin,
            services.databaseUrl,
            configs,
            definition,
            options.rows,
            label,
            progress,
          ),
        );
        continue;
      }
      runs.push(
        await measureOnce(admin, services.databaseUrl, configs, definition, options, label, progress),
      );
    }
    if (options.only === 'partitions') {
      const report = buildPartitionReport(options, partitionRuns);
      process.stdout.write(
        options.json ? `${JSON.stringify(report, null, 2)}\n` : formatPartitionReport(report),
      );
      return 0;
    }
    const report = buildReport(options, runs);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  } catch (error) {
    process.stderr.write(
      `bench purge failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  } finally {
    await admin?.end().catch(() => undefined);
    await services
      .stop()
      .catch((error: unknown) => process.stderr.write(`stopping servers: ${String(error)}\n`));
  }
}

/** The configs of the runs: the chunked purge of the partitioned table has its own (see main). */
interface BenchConfigs {
  readonly config: LifecycleConfig;
  readonly chunkedConfig: LifecycleConfig;
}

async function measureOnce(
  admin: pg.Client,
  databaseUrl: string,
  { config, chunkedConfig }: BenchConfigs,
  definition: AslDefinition,
  options: Options,
  label: string,
  progress: (text: string) => void,
): Promise<RunMeasurement> {
  const n = options.rows;
  progress(`filling ${EVENTS_TABLE} with ${n} rows${label}…`);
  await fillEvents(admin, n);
  const bytesOnDisk = await tableBytes(admin);
  // Every row is older than any cutoff computed from now on (they end two days back, retention is one).
  const cutoff = computeCutoff(new Date(), RETENTION);
  // The baseline twice: in a fresh session, as `psql -c` runs it and as the purge's steps run theirs, and in
  // the session that filled the table, whose backend has every shared buffer mapped (see fresh-session.ts).
  const singleDelete = async (db: pg.Client) => {
    const deleted = await db.query(`DELETE FROM ${EVENTS_TABLE} WHERE created_at < $1::timestamptz`, [
      cutoff,
    ]);
    if (deleted.rowCount !== n)
      throw new Error(`single DELETE removed ${deleted.rowCount} rows, expected ${n}`);
  };
  progress('single DELETE … WHERE created_at < cutoff, in a fresh session…');
  const fresh = await timeInFreshSession(databaseUrl, singleDelete);
  progress(`refilling ${EVENTS_TABLE}${label}…`);
  await fillEvents(admin, n);
  progress('single DELETE again, in the session that filled the table…');
  const warm = await timeInSession(admin, singleDelete);

  progress(`refilling ${EVENTS_TABLE}${label}…`);
  await fillEvents(admin, n);
  progress('chunked purge through the local state machine…');
  const transactions: number[] = [];
  const statementTimes: StatementTimes = {};
  const base = localDependencies({ databaseUrl });
  let purgeSeconds = 0;
  const { result, rss } = await measurePeakRss(async () => {
    const runStarted = performance.now();
    const run = await runPolicyLocally({
      config,
      policyName: POLICY,
      definition,
      pauseMs: 0,
      retryIntervalMs: 100,
      dependencies: (context) =>
        timeTransactions(timeStatements(base(context), statementTimes), transactions),
    });
    purgeSeconds = (performance.now() - runStarted) / 1000;
    return run;
  });
  await checkConservation(admin, result, n, EVENTS_TABLE);
  await admin.query(`DROP TABLE ${EVENTS_TABLE}`);
  const partitions = await measurePartitions(
    admin,
    databaseUrl,
    { config, chunkedConfig },
    definition,
    n,
    label,
    progress,
  );

  const runId = result.summary?.runId as string;
  const { rows } = await admin.query<{ max: string; p95: string; min_rows: string; max_rows: string }>(
    `SELECT max(duration_ms)::text AS max,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)::text AS p95,
            min(rows)::text AS min_rows, max(rows)::text AS max_rows
       FROM lifecycle.chunks WHERE run_id = $1 AND rows > 0`,
    [runId],
  );
  const ledger = rows[0];
  const sorted = [...transactions].sort((a, b) => a - b);
  const quantile = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    table_bytes: bytesOnDisk,
    delete_seconds: round(fresh.seconds),
    delete_minor_faults: fresh.minorFaults ?? null,
    delete_warm_session_seconds: round(warm.seconds),
    delete_warm_session_minor_faults: warm.minorFaults ?? null,
    purge_seconds: round(purgeSeconds),
    vacuum_seconds: round((result.summary?.maintenance?.durationMs ?? 0) / 1000),
    chunks: result.summary?.chunks ?? 0,
    chunk_invocations: result.chunkInvocations,
    transaction_ms: {
      max: round(quantile(1), 1),
      p95: round(quantile(0.95), 1),
      median: round(median(sorted), 1),
    },
    ledger_chunk_ms: { max: Number(ledger?.max ?? 0), p95: round(Number(ledger?.p95 ?? 0), 1) },
    chunk_rows: { min: Number(ledger?.min_rows ?? 0), max: Number(ledger?.max_rows ?? 0) },
    rss: rssMeasurement(rss),
    statements: reportStatementTimes(statementTimes),
    partitions,
  };
}

/**
 * The same `n` rows in `bench.events_by_month`: purged once with partition retention (every partition but
 * the newest is dropped as a unit), then, refilled identically, with `partitions.enabled: false`.
 */
async function measurePartitions(
  admin: pg.Client,
  databaseUrl: string,
  configs: BenchConfigs,
  definition: AslDefinition,
  n: number,
  label: string,
  progress: (text: string) => void,
): Promise<PartitionMeasurement> {
  const cutoff = computeCutoff(new Date(), RETENTION);
  const base = localDependencies({ databaseUrl });
  // Timed inside measurePeakRss: its full GC before the run is not part of the run's seconds.
  const run = async (
    policyName: string,
    transactions: number[],
    statements?: { times: StatementTimes; slowest: SlowStatements },
  ) => {
    let seconds = 0;
    const { result, rss } = await measurePeakRss(async () => {
      const runStarted = performance.now();
      const out = await runPolicyLocally({
        config: policyName === CHUNKED_POLICY ? configs.chunkedConfig : configs.config,
        policyName,
        definition,
        pauseMs: 0,
        retryIntervalMs: 100,
        dependencies: (context) => {
          const deps = base(context);
          const timed = statements ? timeStatements(deps, statements.times, statements.slowest) : deps;
          return timeTransactions(timed, transactions);
        },
      });
      seconds = (performance.now() - runStarted) / 1000;
      return out;
    });
    return { result, rss: rssMeasurement(rss), seconds };
  };

  progress(
    `filling ${MONTHLY_EVENTS_TABLE} with ${n} rows over ${MONTHS - 1} of ${MONTHS} monthly partitions${label}…`,
  );
  const partitionCount = await fillMonthlyEvents(admin, n, cutoff, MONTHS);
  progress('purge with partition retention through the local state machine…');
  const transactions: number[] = [];
  const statements = { times: {} as StatementTimes, slowest: [] as SlowStatements };
  const partitionRun = await run(PARTITION_POLICY, transactions, statements);
  const retained = partitionRun.result;
  const partitionSeconds = partitionRun.seconds;
  const perUnit = await admin.query<{ rows: string; estimated: string; ms: string }>(
    `SELECT rows::text AS rows, rows_estimated::text AS estimated,
            (extract(epoch FROM finished_at - started_at) * 1000)::text AS ms
       FROM lifecycle.partition_units WHERE finished_by = $1 AND state = 'dropped' ORDER BY bound_to`,
    [retained.summary?.runId],
  );
  const { rows } = await admin.query<{ dropped: string; rows: string; seconds: string | null }>(
    `SELECT count(*)::text AS dropped, coalesce(sum(rows), 0)::text AS rows,
            extract(epoch FROM max(finished_at) - min(started_at))::text AS seconds
       FROM lifecycle.partition_units WHERE finished_by = $1 AND state = 'dropped'`,
    [retained.summary?.runId],
  );
  const units = rows[0];
  const dropped = Number(units?.dropped ?? 0);
  if (dropped !== MONTHS - 1) throw new Error(`${dropped} partitions dropped, expected ${MONTHS - 1}`);
  // Estimated units (the default) record the planner's estimate: exact here after the fill's VACUUM,
  // but only required within 1 %; counted units must hold exactly n.
  const recorded = Number(units?.rows);
  const estimated = perUnit.rows.some((u) => u.estimated === 'true');
  if (estimated ? Math.abs(recorded - n) > n * 0.01 : recorded !== n)
    throw new Error(`dropped partitions held ${recorded} rows, expected ${n}`);
  await checkConservation(admin, retained, recorded, MONTHLY_EVENTS_TABLE);

  progress(`refilling ${MONTHLY_EVENTS_TABLE}${label}…`);
  await fillMonthlyEvents(admin, n, cutoff, MONTHS);
  progress('chunked purge of the same rows (partitions.enabled: false)…');
  const chunkedRun = await run(CHUNKED_POLICY, []);
  const chunked = chunkedRun.result;
  const chunkedSeconds = chunkedRun.seconds;
  await checkConservation(admin, chunked, n, MONTHLY_EVENTS_TABLE);
  await admin.query(`DROP TABLE ${MONTHLY_EVENTS_TABLE}`);
  return {
    partitions: partitionCount,
    partitions_dropped: dropped,
    partition_seconds: round(partitionSeconds),
    partition_units_seconds: round(Number(units?.seconds ?? 0)),
    partition_max_transaction_ms: round(Math.max(0, ...transactions), 1),
    chunked_seconds: round(chunkedSeconds),
    chunked_vacuum_seconds: round((chunked.summary?.maintenance?.durationMs ?? 0) / 1000),
    chunked_chunks: chunked.summary?.chunks ?? 0,
    partition_time_share: round(partitionSeconds / chunkedSeconds, 4),
    partition_statements: reportStatementTimes(statements.times),
    partition_slowest_statements: statements.slowest,
    partition_vacuum_seconds: round((retained.summary?.maintenance?.durationMs ?? 0) / 1000),
    units: perUnit.rows.map((u) => ({
      rows: Number(u.rows),
      estimated: u.estimated === 'true',
      ms: round(Number(u.ms), 1),
    })),
    partition_rss: partitionRun.rss,
    chunked_rss: chunkedRun.rss,
  };
}

function rssMeasurement(rss: {
  peak_bytes: number;
  start_bytes: number;
  p95_bytes: number;
  method: 'vmhwm' | 'sampled';
}): RssMeasurement {
  const mb = (bytes: number) => round(bytes / 2 ** 20, 1);
  return {
    peak_mb: mb(rss.peak_bytes),
    start_mb: mb(rss.start_bytes),
    p95_mb: mb(rss.p95_bytes),
    method: rss.method,
  };
}

/** The run succeeded, the table is empty, and the run and its ledger chunks record `n` rows. */
async function checkConservation(
  admin: pg.Client,
  result: LocalRunResult,
  n: number,
  table: string,
): Promise<void> {
  if (result.status !== 'succeeded' || !result.summary)
    throw new Error(`purge run ${result.status}: ${result.failure?.error}: ${result.failure?.cause}`);
  if (result.summary.rows !== n) throw new Error(`purge reported ${result.summary.rows} rows, expected ${n}`);
  const left = await countEvents(admin, table);
  if (left !== 0) throw new Error(`${left} rows left after the purge`);
  const { rows } = await admin.query<{ rows: string }>(
    `SELECT coalesce(sum(rows), 0)::text AS rows FROM lifecycle.chunks WHERE run_id = $1`,
    [result.summary.runId],
  );
  if (Number(rows[0]?.rows) !== n) throw new Error(`ledger chunks hold ${rows[0]?.rows} rows, expected ${n}`);
}

/** Medians over the repetitions: partition retention vs chunked purge of the same rows. */
interface PartitionSummary {
  /** Partitions of `bench.events_by_month` and how many the partition run dropped (median run). */
  readonly partitions: number;
  readonly partitions_dropped: number;
  readonly partition_seconds: number;
  readonly partition_units_seconds: number;
  readonly chunked_seconds: number;
  /** partition_seconds ÷ chunked_seconds (goal ≤ 0.01); median over the runs. */
  readonly partition_time_share: number;
  /** partition_units_seconds ÷ chunked_seconds: the units alone, without the run's fixed cost. */
  readonly partition_units_time_share: number;
  readonly partition_within_goal: boolean;
  /**
   * Median of the units' own times (`started_at` to `finished_at`: check, DETACH, lock, re-check, count,
   * DROP, ledger; not the COMMIT after the DROP, which `partition_statements.commit_after_drop` times).
   */
  readonly unit_ms_median: number;
  /** The median partition run's statements by kind (purge-statements.ts). */
  readonly partition_statements: StatementTimes;
}

interface PartitionReport extends PartitionSummary {
  readonly rows: number;
  readonly repeat: number;
  readonly only: 'partitions';
  /** `partitions.count` of the partition run (`estimate` is the product's default). */
  readonly partition_count: 'estimate' | 'exact';
  readonly cores: number;
  readonly load_1m: number;
  /** Highest RSS of this process during any measured run (partition and chunked), MiB. */
  readonly peak_rss_mb: number;
  readonly runs: PartitionMeasurement[];
}

interface Report extends PartitionSummary {
  readonly rows: number;
  readonly repeat: number;
  readonly cores: number;
  readonly load_1m: number;
  readonly target_transaction_ms: number;
  readonly table_bytes: number;
  /** The single DELETE in a fresh session (see fresh-session.ts). */
  readonly delete_rows_per_s: number;
  /** The same in the session that filled the table: its backend had every shared buffer mapped already. */
  readonly delete_warm_session_rows_per_s: number;
  /** Rows per second of the run without its VACUUM (the single DELETE has none either). */
  readonly purge_rows_per_s: number;
  readonly purge_with_vacuum_rows_per_s: number;
  /** purge_rows_per_s ÷ delete_rows_per_s (goal ≥ 0.6). */
  readonly ratio: number;
  /** The first (cold) repetition's ratio, against its own single DELETE: medians hide a slow start. */
  readonly ratio_first_run: number;
  /** Both ratios against the single DELETE in the session that filled the table (the baseline until 2026-12-03). */
  readonly ratio_warm_session: number;
  readonly ratio_first_run_warm_session: number;
  readonly ratio_with_vacuum: number;
  /** Longest chunk transaction over all repetitions (BEGIN to the end of COMMIT). */
  readonly max_transaction_ms: number;
  readonly max_ledger_chunk_ms: number;
  readonly within_target: boolean;
  /**
   * Highest RSS of this process (state machine, handlers, pg clients) during the chunked purge of
   * `bench.events`, over the repetitions, MiB; `peak_rss_start_mb` is RSS at that run's start after a full GC.
   */
  readonly peak_rss_mb: number;
  readonly peak_rss_start_mb: number;
  /**
   * partition_seconds ÷ the chunked purge (with its VACUUM) of as many rows of the unpartitioned
   * `bench.events` (`purge_seconds`): the chunked path on a partitioned parent is much slower per row.
   */
  readonly partition_time_share_vs_unpartitioned: number;
  readonly runs: RunMeasurement[];
}

function firstRunRatio(run: RunMeasurement | undefined, baseline: 'fresh' | 'warm' = 'fresh'): number {
  if (!run) return Number.NaN;
  const deleteSeconds = baseline === 'fresh' ? run.delete_seconds : run.delete_warm_session_seconds;
  return round(deleteSeconds / (run.purge_seconds - run.vacuum_seconds));
}

function summarizePartitions(runs: readonly PartitionMeasurement[]): PartitionSummary {
  const medianRun = runs[medianIndex(runs, (r) => r.partition_seconds)] as PartitionMeasurement;
  const share = round(median(runs.map((r) => r.partition_time_share)), 4);
  return {
    partitions: medianRun.partitions,
    partitions_dropped: medianRun.partitions_dropped,
    partition_seconds: round(median(runs.map((r) => r.partition_seconds))),
    partition_units_seconds: round(median(runs.map((r) => r.partition_units_seconds))),
    chunked_seconds: round(median(runs.map((r) => r.chunked_seconds))),
    partition_time_share: share,
    partition_units_time_share: round(
      median(runs.map((r) => r.partition_units_seconds / r.chunked_seconds)),
      4,
    ),
    partition_within_goal: share <= 0.01,
    unit_ms_median: round(median(runs.flatMap((r) => r.units.map((u) => u.ms))), 1),
    partition_statements: medianRun.partition_statements,
  };
}

function buildPartitionReport(options: Options, runs: PartitionMeasurement[]): PartitionReport {
  return {
    rows: options.rows,
    repeat: options.repeat,
    only: 'partitions',
    partition_count: options.partitionCount ?? 'estimate',
    cores: availableParallelism(),
    load_1m: round(loadavg()[0] ?? 0, 2),
    ...summarizePartitions(runs),
    peak_rss_mb: Math.max(...runs.flatMap((r) => [r.partition_rss.peak_mb, r.chunked_rss.peak_mb])),
    runs,
  };
}

function buildReport(options: Options, runs: RunMeasurement[]): Report {
  const n = options.rows;
  const deleteRate = median(runs.map((r) => n / r.delete_seconds));
  const warmDeleteRate = median(runs.map((r) => n / r.delete_warm_session_seconds));
  const purgeRate = median(runs.map((r) => n / (r.purge_seconds - r.vacuum_seconds)));
  const purgeWithVacuumRate = median(runs.map((r) => n / r.purge_seconds));
  const maxTransaction = Math.max(...runs.map((r) => r.transaction_ms.max));
  const medianRun = runs[medianIndex(runs, (r) => r.purge_seconds)] as RunMeasurement;
  const peakRun = runs.reduce((a, b) => (b.rss.peak_mb > a.rss.peak_mb ? b : a));
  return {
    rows: n,
    repeat: options.repeat,
    cores: availableParallelism(),
    load_1m: round(loadavg()[0] ?? 0, 2),
    target_transaction_ms: options.targetMs,
    table_bytes: medianRun.table_bytes,
    delete_rows_per_s: Math.round(deleteRate),
    delete_warm_session_rows_per_s: Math.round(warmDeleteRate),
    purge_rows_per_s: Math.round(purgeRate),
    purge_with_vacuum_rows_per_s: Math.round(purgeWithVacuumRate),
    ratio: round(purgeRate / deleteRate),
    ratio_first_run: firstRunRatio(runs[0]),
    ratio_warm_session: round(purgeRate / warmDeleteRate),
    ratio_first_run_warm_session: firstRunRatio(runs[0], 'warm'),
    ratio_with_vacuum: round(purgeWithVacuumRate / deleteRate),
    max_transaction_ms: maxTransaction,
    max_ledger_chunk_ms: Math.max(...runs.map((r) => r.ledger_chunk_ms.max)),
    within_target: maxTransaction <= options.targetMs,
    peak_rss_mb: peakRun.rss.peak_mb,
    peak_rss_start_mb: peakRun.rss.start_mb,
    ...summarizePartitions(runs.map((r) => r.partitions)),
    partition_time_share_vs_unpartitioned: round(
      median(runs.map((r) => r.partitions.partition_seconds / r.purge_seconds)),
      4,
    ),
    runs,
  };
}

function formatPartitionLines(report: PartitionSummary): string[] {
  return [
    `  partitions      ${report.partitions_dropped} of ${report.partitions} dropped in ${report.partition_seconds} s (units ${report.partition_units_seconds} s) vs chunked purge of the same rows ${report.chunked_seconds} s`,
    `  time share      ${report.partition_time_share} (goal <= 0.01; units alone ${report.partition_units_time_share}; median unit ${report.unit_ms_median} ms)`,
    `  statements      ${Object.entries(report.partition_statements)
      .map(([kind, t]) => `${kind} ${t.seconds} s/${t.calls}`)
      .join(', ')}`,
  ];
}

function formatPartitionReport(report: PartitionReport): string {
  return [
    `partition retention on ${report.rows} rows (${report.repeat} run${report.repeat > 1 ? 's' : ''}, ${report.cores} cores, load ${report.load_1m})`,
    ...formatPartitionLines(report),
    `  peak RSS        ${report.peak_rss_mb} MiB`,
    '',
  ].join('\n');
}

function formatReport(report: Report): string {
  return [
    `purge of ${report.rows} rows (${report.repeat} run${report.repeat > 1 ? 's' : ''}, ${report.cores} cores, load ${report.load_1m})`,
    `  single DELETE   ${report.delete_rows_per_s} rows/s in a fresh session, ${report.delete_warm_session_rows_per_s} in the filling session`,
    `  chunked purge   ${report.purge_rows_per_s} rows/s without VACUUM (${report.purge_with_vacuum_rows_per_s} with it)`,
    `  ratio           ${report.ratio} (goal >= 0.6; first run ${report.ratio_first_run}; with VACUUM ${report.ratio_with_vacuum}; vs the filling session ${report.ratio_warm_session}, first run ${report.ratio_first_run_warm_session})`,
    `  transactions    max ${report.max_transaction_ms} ms (target ${report.target_transaction_ms} ms), ledger max ${report.max_ledger_chunk_ms} ms`,
    `  peak RSS        ${report.peak_rss_mb} MiB (${report.peak_rss_start_mb} MiB at the run's start)`,
    ...formatPartitionLines(report),
    '',
  ].join('\n');
}
