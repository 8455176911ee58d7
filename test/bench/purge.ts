/**
 * `npm run bench -- purge`: how fast the real purge path empties a table in short transactions, against one
 * `DELETE … WHERE created_at < cutoff` of the same rows, measured in the same run on identical data.
 *
 * Per repetition: fill `bench.events` → single DELETE (timed) → refill → purge through the synthesized
 * state machine with the real handlers (`runPolicyLocally`, `targetTransactionMs` 250) → ledger and
 * conservation checks. Every chunk transaction is timed from BEGIN to the end of COMMIT by wrapping the
 * step dependencies' connections from outside (nothing in functions/ changes); the ledger's
 * `chunks.duration_ms` (BEGIN to just before COMMIT) is reported too.
 */

import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { computeCutoff } from '../../functions/core/cutoff.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import { type LocalRunResult, runPolicyLocally } from '../../functions/local-runner/local-runner.ts';
import { type AslDefinition, synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import type { StepDependencies } from '../../functions/run/dependencies.ts';
import { type LifecycleConfig, LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import { countEvents, EVENTS_TABLE, fillEvents, tableBytes } from './dataset.ts';
import { startBenchServices } from './services.ts';
import { median, medianIndex, round } from './stats.ts';

const POLICY = 'bench-purge';
const RETENTION = 'P1D';

interface Options {
  rows: number;
  repeat: number;
  json: boolean;
  targetMs: number;
  maxRows: number;
}

class UsageError extends Error {}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new UsageError(`--${name} must be a positive integer, got "${text}"`);
  return value;
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
    },
  });
  return {
    rows: positiveInt('rows', values.rows, 1_000_000),
    repeat: positiveInt('repeat', values.repeat, 1),
    json: values.json,
    targetMs: positiveInt('target-ms', values['target-ms'], 250),
    maxRows: positiveInt('max-rows', values['max-rows'], 50_000),
  };
}

interface RunMeasurement {
  readonly table_bytes: number;
  readonly delete_seconds: number;
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
}

export async function main(argv: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 2;
  }
  const progress = (text: string) => process.stderr.write(`[bench purge] ${text}\n`);
  progress('starting PostgreSQL…');
  // The purge path needs no S3; the in-process server is the cheapest thing startBenchServices offers.
  const services = await startBenchServices('inproc');
  let admin: pg.Client | undefined;
  try {
    admin = await connect(await resolveClientConfig({ DATABASE_URL: services.databaseUrl }));
    await applyMigrations(admin);
    const config = LifecycleConfigSchema.parse({
      sandbox: true,
      policies: [
        {
          name: POLICY,
          action: 'purge',
          table: EVENTS_TABLE,
          timeColumn: 'created_at',
          retention: RETENTION,
          chunking: { targetTransactionMs: options.targetMs, maxRows: options.maxRows },
        },
      ],
    });
    progress('synthesizing the state machine (not timed)…');
    const definition = await synthesizeDefinition(config);
    const runs: RunMeasurement[] = [];
    for (let i = 0; i < options.repeat; i++) {
      const label = options.repeat > 1 ? ` (run ${i + 1}/${options.repeat})` : '';
      runs.push(await measureOnce(admin, services.databaseUrl, config, definition, options, label, progress));
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

async function measureOnce(
  admin: pg.Client,
  databaseUrl: string,
  config: LifecycleConfig,
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
  progress('single DELETE … WHERE created_at < cutoff…');
  let started = performance.now();
  const deleted = await admin.query(`DELETE FROM ${EVENTS_TABLE} WHERE created_at < $1::timestamptz`, [
    cutoff,
  ]);
  const deleteSeconds = (performance.now() - started) / 1000;
  if (deleted.rowCount !== n)
    throw new Error(`single DELETE removed ${deleted.rowCount} rows, expected ${n}`);

  progress(`refilling ${EVENTS_TABLE}${label}…`);
  await fillEvents(admin, n);
  progress('chunked purge through the local state machine…');
  const transactions: number[] = [];
  const base = localDependencies({ databaseUrl });
  started = performance.now();
  const result = await runPolicyLocally({
    config,
    policyName: POLICY,
    definition,
    pauseMs: 0,
    retryIntervalMs: 100,
    dependencies: (context) => timeTransactions(base(context), transactions),
  });
  const purgeSeconds = (performance.now() - started) / 1000;
  await checkConservation(admin, result, n);

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
    delete_seconds: round(deleteSeconds),
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
  };
}

/**
 * Wraps each connection the steps open so that every transaction (BEGIN … COMMIT/ROLLBACK) is timed to the
 * end of its COMMIT: what a concurrent writer waiting on one of its row locks would wait at most.
 */
function timeTransactions(deps: StepDependencies, transactions: number[]): StepDependencies {
  return {
    ...deps,
    connect: async () => {
      const client = await deps.connect();
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      let begunAt: number | undefined;
      (client as { query: unknown }).query = async (...args: unknown[]) => {
        const first = args[0];
        const text = typeof first === 'string' ? first : ((first as { text?: string })?.text ?? '');
        if (text === 'BEGIN') begunAt = performance.now();
        const out = await query(...args);
        if ((text === 'COMMIT' || text === 'ROLLBACK') && begunAt !== undefined) {
          transactions.push(performance.now() - begunAt);
          begunAt = undefined;
        }
        return out;
      };
      return client;
    },
  };
}

async function checkConservation(admin: pg.Client, result: LocalRunResult, n: number): Promise<void> {
  if (result.status !== 'succeeded' || !result.summary)
    throw new Error(`purge run ${result.status}: ${result.failure?.error}: ${result.failure?.cause}`);
  if (result.summary.rows !== n) throw new Error(`purge reported ${result.summary.rows} rows, expected ${n}`);
  const left = await countEvents(admin);
  if (left !== 0) throw new Error(`${left} rows left after the purge`);
  const { rows } = await admin.query<{ rows: string }>(
    `SELECT coalesce(sum(rows), 0)::text AS rows FROM lifecycle.chunks WHERE run_id = $1`,
    [result.summary.runId],
  );
  if (Number(rows[0]?.rows) !== n) throw new Error(`ledger chunks hold ${rows[0]?.rows} rows, expected ${n}`);
}

interface Report {
  readonly rows: number;
  readonly repeat: number;
  readonly cores: number;
  readonly load_1m: number;
  readonly target_transaction_ms: number;
  readonly table_bytes: number;
  readonly delete_rows_per_s: number;
  /** Rows per second of the run without its VACUUM (the single DELETE has none either). */
  readonly purge_rows_per_s: number;
  readonly purge_with_vacuum_rows_per_s: number;
  /** purge_rows_per_s ÷ delete_rows_per_s (goal ≥ 0.6). */
  readonly ratio: number;
  readonly ratio_with_vacuum: number;
  /** Longest chunk transaction over all repetitions (BEGIN to the end of COMMIT). */
  readonly max_transaction_ms: number;
  readonly max_ledger_chunk_ms: number;
  readonly within_target: boolean;
  readonly partition_drop: string;
  readonly runs: RunMeasurement[];
}

function buildReport(options: Options, runs: RunMeasurement[]): Report {
  const n = options.rows;
  const deleteRate = median(runs.map((r) => n / r.delete_seconds));
  const purgeRate = median(runs.map((r) => n / (r.purge_seconds - r.vacuum_seconds)));
  const purgeWithVacuumRate = median(runs.map((r) => n / r.purge_seconds));
  const maxTransaction = Math.max(...runs.map((r) => r.transaction_ms.max));
  const medianRun = runs[medianIndex(runs, (r) => r.purge_seconds)] as RunMeasurement;
  return {
    rows: n,
    repeat: options.repeat,
    cores: availableParallelism(),
    load_1m: round(loadavg()[0] ?? 0, 2),
    target_transaction_ms: options.targetMs,
    table_bytes: medianRun.table_bytes,
    delete_rows_per_s: Math.round(deleteRate),
    purge_rows_per_s: Math.round(purgeRate),
    purge_with_vacuum_rows_per_s: Math.round(purgeWithVacuumRate),
    ratio: round(purgeRate / deleteRate),
    ratio_with_vacuum: round(purgeWithVacuumRate / deleteRate),
    max_transaction_ms: maxTransaction,
    max_ledger_chunk_ms: Math.max(...runs.map((r) => r.ledger_chunk_ms.max)),
    within_target: maxTransaction <= options.targetMs,
    partition_drop: 'TODO: not measured yet (partition retention is not in the product yet; see README)',
    runs,
  };
}

function formatReport(report: Report): string {
  return [
    `purge of ${report.rows} rows (${report.repeat} run${report.repeat > 1 ? 's' : ''}, ${report.cores} cores, load ${report.load_1m})`,
    `  single DELETE   ${report.delete_rows_per_s} rows/s`,
    `  chunked purge   ${report.purge_rows_per_s} rows/s without VACUUM (${report.purge_with_vacuum_rows_per_s} with it)`,
    `  ratio           ${report.ratio} (goal >= 0.6; with VACUUM ${report.ratio_with_vacuum})`,
    `  transactions    max ${report.max_transaction_ms} ms (target ${report.target_transaction_ms} ms), ledger max ${report.max_ledger_chunk_ms} ms`,
    `  partition drop  ${report.partition_drop}`,
    '',
  ].join('\n');
}
