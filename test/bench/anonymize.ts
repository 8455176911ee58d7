/**
 * `npm run bench -- anonymize`: how fast the real anonymize path masks a table in short transactions, against
 * one `UPDATE` of the same rows with the same SQL expressions, measured in the same run on identical data.
 *
 * Per repetition: fill `bench.profiles` → single UPDATE (timed; its SET list is compiled by the product's own
 * compiler, `resolveMasks` + `maskAssignments`, under the same hash key, so it does the same per-row work) →
 * checks → refill identically → anonymize through the synthesized state machine with the real handlers
 * (`runPolicyLocally`, pauses 0) → conservation checks (every row in its masked form, the same content as the
 * single UPDATE left, a second run updates nothing). Every chunk transaction is timed from BEGIN to the end of
 * COMMIT by wrapping the step dependencies' connections from outside (transactions.ts; nothing in functions/
 * changes), and every query is timed by kind for where the run's time goes.
 */

import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { hashKeyFrom } from '../../functions/actions/anonymize/hash-key.ts';
import {
  maskAssignments,
  pendingPredicate,
  type ResolvedMasks,
  resolveMasks,
} from '../../functions/actions/anonymize/masks.ts';
import { ParamList } from '../../functions/actions/anonymize/param-list.ts';
import { resolveTable } from '../../functions/adapters/catalog.ts';
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
import { resolveChunking } from '../../lib/contracts/chunking.ts';
import { type LifecycleConfig, LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import { quoteIdent } from '../../lib/contracts/identifiers.ts';
import type { AnonymizePolicy } from '../../lib/contracts/policy.ts';
import { type PhaseCpu, phaseCpuBetween, postmasterOf, samplePhase } from './cpu.ts';
import { commandLine, positiveInt, progressLine, UsageError } from './options.ts';
import { startBenchServices } from './services.ts';
import { median, medianIndex, round } from './stats.ts';
import { emptyQueryTimes, type QueryTimes, timeTransactions } from './transactions.ts';

const POLICY = 'bench-anonymize';
const SCHEMA = 'bench';
const TABLE_NAME = 'profiles';
const TABLE = `${SCHEMA}.${TABLE_NAME}`;
const RETENTION = 'P30D';
/** Not a secret: the benchmark's own key (localDependencies `hashKey`). */
const HASH_KEY = 'pg-lifecycle bench hash key: not a secret';
/** Text every anonymize chunk statement holds (update-statement.ts), to time it apart. */
const CHUNK_MARKER = 'pg_lifecycle_picked';

/** Every strategy that needs no marker column, on the columns of `bench.profiles`. */
const MASKS = {
  first_name: { strategy: 'fixed', value: 'ANONYMIZED' },
  email: { strategy: 'email', keepDomain: false },
  phone: { strategy: 'partial', keepLast: 2 },
  ip: { strategy: 'ip' },
  birth_date: { strategy: 'generalize', to: 'year' },
  prefs: { strategy: 'jsonb', removeKeys: ['address', 'phone'] },
  notes: { strategy: 'null' },
} as const;

interface Options {
  rows: number;
  repeat: number;
  json: boolean;
  targetMs: number | undefined;
  maxRows: number | undefined;
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
  const optional = (name: string, text: string | undefined) =>
    text === undefined ? undefined : positiveInt(name, text, 1);
  return {
    rows: positiveInt('rows', values.rows, 1_000_000),
    repeat: positiveInt('repeat', values.repeat, 1),
    json: values.json,
    targetMs: optional('target-ms', values['target-ms']),
    maxRows: optional('max-rows', values['max-rows']),
  };
}

/**
 * Drops and recreates `bench.profiles` with `rows` rows, all older than `anchor` − 60 days (retention 30 days),
 * physically in `last_login` order; VACUUM ANALYZE then CHECKPOINT. The same `anchor` gives the same rows.
 */
async function fillProfiles(db: pg.Client, rows: number, anchor: string): Promise<void> {
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await db.query(`
    CREATE TABLE ${TABLE} (
      id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      last_login timestamptz NOT NULL,
      first_name text        NOT NULL,
      email      text,
      phone      text,
      ip         inet,
      birth_date date,
      prefs      jsonb,
      notes      text)`);
  await db.query(
    `INSERT INTO ${TABLE} (last_login, first_name, email, phone, ip, birth_date, prefs, notes)
     SELECT $2::timestamptz - interval '60 days' - (p.n - g) * (interval '730 days' / p.n),
            'First' || g,
            CASE WHEN g % 20 = 0 THEN NULL ELSE 'person.' || g || '@mail' || (g % 7) || '.example.com' END,
            '+44 20 7946 ' || lpad((g % 10000)::text, 4, '0'),
            ('10.' || (g % 200) || '.' || (g % 250) || '.' || (1 + g % 250))::inet,
            date '1950-01-01' + (g * 17) % 20000,
            jsonb_build_object('address', g || ' Example Street', 'phone', '555-' || g, 'theme', 'dark'),
            CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END
       FROM (SELECT $1::int AS n) AS p, generate_series(1, p.n) AS g`,
    [rows, anchor],
  );
  await db.query(`CREATE INDEX ON ${TABLE} (last_login)`);
  // As dataset.ts settle(): the checkpoint first, so VACUUM can set the visibility map (asynchronous commit).
  await db.query('CHECKPOINT').catch(() => undefined);
  await db.query(`VACUUM ANALYZE ${TABLE}`);
  await db.query('CHECKPOINT').catch(() => undefined);
}

/** The single UPDATE's pieces and the checks', compiled by the product from the policy and the catalog. */
interface CompiledMasks {
  readonly masks: ResolvedMasks;
  /** `UPDATE … SET <the chunk statement's assignments> WHERE last_login < $1`; $2… the key's pads. */
  readonly update: string;
  /** Rows some masked column of which differs from its masked form (IS DISTINCT FROM); same parameters. */
  readonly differing: string;
  /** Rows the policy still finds pending (its own predicate, parameter-free). */
  readonly pending: string;
  readonly values: Array<string | Buffer>;
}

async function compileMasks(db: pg.Client, policy: AnonymizePolicy): Promise<CompiledMasks> {
  const table = await resolveTable(db, TABLE);
  const target = { schema: table.schema, table: table.table };
  const masks = await resolveMasks(db, table, policy);
  const params = new ParamList(2);
  const key = hashKeyFrom(HASH_KEY);
  const assignments = maskAssignments(target, masks, params, key);
  const set = assignments.map((a) => `${quoteIdent(a.column)} = ${a.set}`).join(',\n      ');
  const columns = assignments.map((a) => quoteIdent(a.column)).join(', ');
  const forms = assignments.map((a) => a.set).join(', ');
  return {
    masks,
    update: `UPDATE ${TABLE} SET ${set}\n WHERE ${quoteIdent(policy.timeColumn)} < $1::timestamptz`,
    differing: `SELECT count(*)::text AS n FROM ${TABLE}
       WHERE ${quoteIdent(policy.timeColumn)} < $1::timestamptz AND ROW(${columns}) IS DISTINCT FROM ROW(${forms})`,
    pending: `SELECT count(*)::text AS n FROM ${TABLE} WHERE ${pendingPredicate(target, masks, hashKeyFrom('placeholder'))}`,
    values: params.values,
  };
}

interface TransactionStats {
  readonly count: number;
  readonly max: number;
  readonly p95: number;
  readonly median: number;
  readonly total_s: number;
}

function transactionStats(transactions: readonly number[]): TransactionStats {
  const sorted = [...transactions].sort((a, b) => a - b);
  const quantile = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return {
    count: sorted.length,
    max: round(quantile(1), 1),
    p95: round(quantile(0.95), 1),
    median: round(median(sorted), 1),
    total_s: round(sorted.reduce((a, b) => a + b, 0) / 1000),
  };
}

interface RunMeasurement {
  readonly load_at_start: readonly number[];
  readonly table_bytes: number;
  readonly update_seconds: number;
  readonly update_cpu: PhaseCpu;
  /** Wall time of the run: Start, every Chunk step, Finish, state machine. */
  readonly anonymize_seconds: number;
  /** A Finish maintenance step, if the run did one (anonymize does none by default). */
  readonly maintenance_seconds: number;
  readonly anonymize_cpu: PhaseCpu;
  readonly chunks: number;
  readonly chunk_invocations: number;
  readonly chunk_rows: { readonly min: number; readonly max: number; readonly sizes: number[] };
  /** BEGIN to the end of COMMIT, measured on the connection. */
  readonly transaction_ms: TransactionStats;
  /** lifecycle.chunks.duration_ms: BEGIN to just before COMMIT, as the loop records it. */
  readonly ledger_chunk_ms: { readonly max: number; readonly p95: number };
  /** Where the run's wall time goes (seconds; queries timed on the connections). */
  readonly breakdown: QueryTimes & { readonly untimed_s: number };
  /** The second run over the masked table: rows it updated (must be 0) and its wall time. */
  readonly rerun: { readonly rows: number; readonly seconds: number };
  readonly checks: {
    readonly differing_after_update: number;
    readonly differing_after_anonymize: number;
    readonly pending_after_anonymize: number;
    /** Same content checksum after the single UPDATE and after the policy. */
    readonly same_content_as_update: boolean;
  };
}

/** sum of a 64-bit hash of every row's text: equal tables, equal sums (a cheap content comparison). */
async function contentSum(db: pg.Client): Promise<string> {
  const { rows } = await db.query<{ s: string }>(
    `SELECT coalesce(sum(hashtextextended(p::text, 0)), 0)::text AS s FROM ${TABLE} p`,
  );
  return rows[0]?.s ?? '';
}

async function countOf(db: pg.Client, text: string, values: unknown[]): Promise<number> {
  const { rows } = await db.query<{ n: string }>(text, values);
  return Number(rows[0]?.n ?? Number.NaN);
}

interface Context {
  readonly admin: pg.Client;
  readonly databaseUrl: string;
  readonly config: LifecycleConfig;
  readonly policy: AnonymizePolicy;
  readonly definition: AslDefinition;
  readonly postmasterPid: number | undefined;
  readonly options: Options;
  readonly progress: (text: string) => void;
}

async function measureOnce(ctx: Context, label: string): Promise<RunMeasurement> {
  const { admin, options, progress } = ctx;
  const n = options.rows;
  const loadAtStart = loadavg().map((v) => round(v, 2));
  const anchor = new Date().toISOString();
  progress(`filling ${TABLE} with ${n} rows${label}…`);
  await fillProfiles(admin, n, anchor);
  const { rows: size } = await admin.query<{ bytes: string }>(
    `SELECT pg_table_size('${TABLE}')::text AS bytes`,
  );
  const compiled = await compileMasks(admin, ctx.policy);
  // Every row is older than any cutoff computed from now on (they end 60 days back, retention is 30).
  const cutoff = computeCutoff(new Date(), RETENTION);
  const cpu = () => samplePhase(ctx.postmasterPid, undefined);

  progress('single UPDATE … SET <compiled masks> WHERE last_login < cutoff…');
  let before = cpu();
  let started = performance.now();
  const updated = await admin.query(compiled.update, [cutoff, ...compiled.values]);
  const updateSeconds = (performance.now() - started) / 1000;
  const updateCpu = phaseCpuBetween(before, cpu());
  if (updated.rowCount !== n)
    throw new Error(`single UPDATE changed ${updated.rowCount} rows, expected ${n}`);
  const differingAfterUpdate = await countOf(admin, compiled.differing, [cutoff, ...compiled.values]);
  if (differingAfterUpdate !== 0)
    throw new Error(`${differingAfterUpdate} rows differ from their masked form after the single UPDATE`);
  const updateSum = await contentSum(admin);

  progress(`refilling ${TABLE}${label}…`);
  await fillProfiles(admin, n, anchor);
  progress('anonymize through the local state machine…');
  const transactions: number[] = [];
  const times = emptyQueryTimes();
  const base = localDependencies({ databaseUrl: ctx.databaseUrl, hashKey: HASH_KEY });
  const run = (into: number[], queryTimes?: QueryTimes) =>
    runPolicyLocally({
      config: ctx.config,
      policyName: POLICY,
      definition: ctx.definition,
      pauseMs: 0,
      retryIntervalMs: 100,
      dependencies: (context) => timeTransactions(base(context), into, queryTimes, CHUNK_MARKER),
    });
  before = cpu();
  started = performance.now();
  const result = await run(transactions, times);
  const anonymizeSeconds = (performance.now() - started) / 1000;
  const anonymizeCpu = phaseCpuBetween(before, cpu());
  checkRun(result, n);

  const differingAfter = await countOf(admin, compiled.differing, [cutoff, ...compiled.values]);
  const pendingAfter = await countOf(admin, compiled.pending, []);
  const sameContent = (await contentSum(admin)) === updateSum;
  if (differingAfter !== 0) throw new Error(`${differingAfter} rows differ from their masked form`);
  if (pendingAfter !== 0) throw new Error(`${pendingAfter} rows still pending after the run`);
  if (!sameContent) throw new Error('the anonymized table differs from the one the single UPDATE left');

  progress('second run over the masked table (must update nothing)…');
  started = performance.now();
  const rerun = await run([]);
  const rerunSeconds = (performance.now() - started) / 1000;
  if (rerun.status !== 'succeeded' || !rerun.summary)
    throw new Error(`second run ${rerun.status}: ${rerun.failure?.error}: ${rerun.failure?.cause}`);
  if (rerun.summary.rows !== 0) throw new Error(`second run updated ${rerun.summary.rows} rows, expected 0`);

  const runId = result.summary?.runId as string;
  const { rows: ledgerRows } = await ctx.admin.query<{ max: string; p95: string; sizes: string | null }>(
    `SELECT max(duration_ms)::text AS max,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)::text AS p95,
            string_agg(rows::text, ',' ORDER BY seq) AS sizes
       FROM lifecycle.chunks WHERE run_id = $1 AND rows > 0`,
    [runId],
  );
  const ledger = ledgerRows[0];
  const sizes = (ledger?.sizes ?? '').split(',').filter(Boolean).map(Number);
  await admin.query(`DROP TABLE ${TABLE}`);
  const timed =
    times.connect_s +
    times.begin_commit_s +
    times.chunk_statement_s +
    times.other_in_transactions_s +
    times.outside_transactions_s;
  const r = (v: number) => round(v);
  return {
    load_at_start: loadAtStart,
    table_bytes: Number(size[0]?.bytes ?? 0),
    update_seconds: r(updateSeconds),
    update_cpu: roundCpu(updateCpu),
    anonymize_seconds: r(anonymizeSeconds),
    maintenance_seconds: r((result.summary?.maintenance?.durationMs ?? 0) / 1000),
    anonymize_cpu: roundCpu(anonymizeCpu),
    chunks: result.summary?.chunks ?? 0,
    chunk_invocations: result.chunkInvocations,
    chunk_rows: { min: Math.min(...sizes), max: Math.max(...sizes), sizes },
    transaction_ms: transactionStats(transactions),
    ledger_chunk_ms: { max: Number(ledger?.max ?? 0), p95: round(Number(ledger?.p95 ?? 0), 1) },
    breakdown: {
      chunk_statement_s: r(times.chunk_statement_s),
      chunk_statements: times.chunk_statements,
      begin_commit_s: r(times.begin_commit_s),
      other_in_transactions_s: r(times.other_in_transactions_s),
      outside_transactions_s: r(times.outside_transactions_s),
      connections: times.connections,
      connect_s: r(times.connect_s),
      untimed_s: r(anonymizeSeconds - timed),
    },
    rerun: { rows: rerun.summary.rows, seconds: r(rerunSeconds) },
    checks: {
      differing_after_update: differingAfterUpdate,
      differing_after_anonymize: differingAfter,
      pending_after_anonymize: pendingAfter,
      same_content_as_update: sameContent,
    },
  };
}

function roundCpu(cpu: PhaseCpu): PhaseCpu {
  const r = (v: number | undefined) => (v === undefined ? undefined : round(v, 2));
  return {
    node_cpu_s: round(cpu.node_cpu_s, 2),
    postgres_cpu_s: r(cpu.postgres_cpu_s),
    s3_server_cpu_s: r(cpu.s3_server_cpu_s),
    other_processes_cpu_s: r(cpu.other_processes_cpu_s),
  };
}

function checkRun(result: LocalRunResult, n: number): void {
  if (result.status !== 'succeeded' || !result.summary)
    throw new Error(`anonymize run ${result.status}: ${result.failure?.error}: ${result.failure?.cause}`);
  if (result.summary.rows !== n)
    throw new Error(`anonymize reported ${result.summary.rows} rows, expected ${n}`);
}

export async function main(argv: string[]): Promise<number> {
  const options = commandLine(parseOptions, argv);
  if (!options) return 2;
  const progress = progressLine('anonymize');
  progress('starting PostgreSQL…');
  // Anonymize needs no S3; the in-process server is the cheapest thing startBenchServices offers.
  const services = await startBenchServices('inproc');
  let admin: pg.Client | undefined;
  try {
    admin = await connect(
      await resolveClientConfig(
        { DATABASE_URL: services.databaseUrl },
        { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
      ),
    );
    await applyMigrations(admin);
    const chunking = {
      ...(options.targetMs === undefined ? {} : { targetTransactionMs: options.targetMs }),
      ...(options.maxRows === undefined ? {} : { maxRows: options.maxRows }),
    };
    const config = LifecycleConfigSchema.parse({
      sandbox: true,
      policies: [
        {
          name: POLICY,
          action: 'anonymize',
          table: TABLE,
          timeColumn: 'last_login',
          retention: RETENTION,
          ...(Object.keys(chunking).length > 0 ? { chunking } : {}),
          anonymize: { columns: MASKS },
        },
      ],
    });
    const policy = config.policies.find((p) => p.name === POLICY) as AnonymizePolicy;
    progress('synthesizing the state machine (not timed)…');
    const definition = await synthesizeDefinition(config);
    // Validated once, as the service does when the machine is deployed: not part of any timed run.
    prepareDefinition(definition);
    const { rows } = await admin.query<{ pid: number; version: string }>(
      'SELECT pg_backend_pid() AS pid, current_setting($1) AS version',
      ['server_version'],
    );
    const postmasterPid = services.localPostgres && rows[0] ? postmasterOf(Number(rows[0].pid)) : undefined;
    const ctx: Context = {
      admin,
      databaseUrl: services.databaseUrl,
      config,
      policy,
      definition,
      postmasterPid,
      options,
      progress,
    };
    const runs: RunMeasurement[] = [];
    for (let i = 0; i < options.repeat; i++)
      runs.push(await measureOnce(ctx, options.repeat > 1 ? ` (run ${i + 1}/${options.repeat})` : ''));
    const report = buildReport(
      options,
      runs,
      resolveChunking(config, policy).targetTransactionMs,
      rows[0]?.version ?? 'unknown',
    );
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  } catch (error) {
    process.stderr.write(
      `bench anonymize failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  } finally {
    await admin?.end().catch(() => undefined);
    await services
      .stop()
      .catch((error: unknown) => process.stderr.write(`stopping servers: ${String(error)}\n`));
  }
}

function buildReport(options: Options, runs: RunMeasurement[], targetMs: number, postgres: string) {
  const n = options.rows;
  const anonymizeSeconds = (r: RunMeasurement) => r.anonymize_seconds - r.maintenance_seconds;
  const updateRate = median(runs.map((r) => n / r.update_seconds));
  const anonymizeRate = median(runs.map((r) => n / anonymizeSeconds(r)));
  const maxTransaction = Math.max(...runs.map((r) => r.transaction_ms.max));
  const first = runs[0] as RunMeasurement;
  const typical = runs[medianIndex(runs, anonymizeSeconds)] as RunMeasurement;
  const ratio = round(median(runs.map((r) => r.update_seconds / anonymizeSeconds(r))));
  return {
    benchmark: 'anonymize' as const,
    rows: n,
    repeat: options.repeat,
    masks: Object.fromEntries(Object.entries(MASKS).map(([column, mask]) => [column, mask.strategy])),
    machine: {
      node: process.version,
      cores: availableParallelism(),
      cpu_model: cpus()[0]?.model ?? 'unknown',
      memory_gib: round(totalmem() / 1024 ** 3, 1),
      kernel: release(),
      postgres,
    },
    /** 1-, 5- and 15-minute load averages when the report was built, and when each repetition started. */
    load: { at_end: loadavg().map((v) => round(v, 2)), at_start: runs.map((r) => r.load_at_start) },
    load_1m: round(loadavg()[0] ?? 0, 2),
    table_bytes: typical.table_bytes,
    target_transaction_ms: targetMs,
    update_seconds: round(median(runs.map((r) => r.update_seconds))),
    anonymize_seconds: round(median(runs.map(anonymizeSeconds))),
    update_rows_per_s: Math.round(updateRate),
    anonymize_rows_per_s: Math.round(anonymizeRate),
    /** Per repetition anonymize ÷ its own single UPDATE, median (goal ≥ 0.5). */
    ratio,
    ratio_first_run: round(first.update_seconds / anonymizeSeconds(first)),
    ratio_goal_met: ratio >= 0.5,
    max_transaction_ms: maxTransaction,
    max_ledger_chunk_ms: Math.max(...runs.map((r) => r.ledger_chunk_ms.max)),
    within_target: maxTransaction <= targetMs,
    chunks: typical.chunks,
    cpu: { update: typical.update_cpu, anonymize: typical.anonymize_cpu },
    breakdown: typical.breakdown,
    conservation: {
      every_row_masked: runs.every(
        (r) => r.checks.differing_after_anonymize === 0 && r.checks.pending_after_anonymize === 0,
      ),
      same_content_as_update: runs.every((r) => r.checks.same_content_as_update),
      rerun_rows: Math.max(...runs.map((r) => r.rerun.rows)),
    },
    runs,
  };
}

type Report = ReturnType<typeof buildReport>;

function formatReport(report: Report): string {
  const b = report.breakdown;
  return [
    `anonymize of ${report.rows} rows (${report.repeat} run${report.repeat > 1 ? 's' : ''}, ${report.machine.cores} cores, load ${report.load_1m})`,
    `  single UPDATE   ${report.update_rows_per_s} rows/s (${report.update_seconds} s)`,
    `  anonymize       ${report.anonymize_rows_per_s} rows/s (${report.anonymize_seconds} s, ${report.chunks} chunks)`,
    `  ratio           ${report.ratio} (goal >= 0.5; first run ${report.ratio_first_run})`,
    `  transactions    max ${report.max_transaction_ms} ms (target ${report.target_transaction_ms} ms), ledger max ${report.max_ledger_chunk_ms} ms`,
    `  time            chunk statements ${b.chunk_statement_s} s, other in transactions ${b.other_in_transactions_s} s, outside ${b.outside_transactions_s} s, untimed ${b.untimed_s} s`,
    `  cpu (update)    node ${report.cpu.update.node_cpu_s} s, postgres ${report.cpu.update.postgres_cpu_s} s`,
    `  cpu (anonymize) node ${report.cpu.anonymize.node_cpu_s} s, postgres ${report.cpu.anonymize.postgres_cpu_s} s`,
    `  conservation    every row masked ${report.conservation.every_row_masked}, same content as the UPDATE ${report.conservation.same_content_as_update}, re-run rows ${report.conservation.rerun_rows}`,
    '',
  ].join('\n');
}
