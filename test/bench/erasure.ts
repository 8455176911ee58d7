/**
 * `npm run bench -- erasure`: how long the real GDPR erasure of one subject takes when the subject's rows are
 * spread over N archived Parquet objects (one row in every object), against an export of the same subject over
 * the same objects in the same run (the export reads, verifies and decodes every archived object of the table:
 * the read-only floor of any erasure, which must also read every object to find the subject).
 *
 * Per repetition, in a database and a bucket of its own (each repetition starts from the same state):
 *   1. setup (timed apart): `bench.events` filled with objects × rowsPerObject rows in one calendar month (one
 *      Hive partition), the subject's (user_id 42) row at a different offset of every object-sized slice; archived
 *      through the synthesized state machine (`runPolicyLocally`, real handlers) with chunking initialRows =
 *      minRows = maxRows = rowsPerObject, so every chunk is exactly one object; checked: N objects of
 *      rowsPerObject rows, the table empty;
 *   2. baseline: an export request for the subject, processed by a run of the subjects policy (timed, wall);
 *      checked: N objects read, N archived rows found;
 *   3. erasure: an erase request for the subject, processed by a run of the same policy (timed, wall: Start, every
 *      Chunk step — the live DELETE, then the archive phase over the objects —, Finish, state machine); checked:
 *      request completed, objects searched = N, objects rewritten = N (one row removed from each, rowsPerObject − 1
 *      left), rows removed = N, ledger rows = before − N, no pending object, none of the old keys left in the
 *      bucket and every new key there;
 *   4. (untimed) a second export: N objects read, no archived row of the subject found by the product's own reader.
 * Any mismatch fails the benchmark. Nothing in functions/ changes; the steps run with their real dependencies.
 */

import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import type pg from 'pg';
import { createSubjectRequest, listSubjectRequests } from '../../functions/actions/subjects/requests.ts';
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
import { type AslDefinition, synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import { type LifecycleConfig, LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import { type PhaseCpu, phaseCpuBetween, postmasterOf, samplePhase } from './cpu.ts';
import { commandLine, positiveInt, progressLine, UsageError } from './options.ts';
import { type S3Mode, startBenchServices } from './services.ts';
import { median, round } from './stats.ts';

const ARCHIVE_POLICY = 'bench-erasure-archive';
const SUBJECTS_POLICY = 'bench-gdpr';
const SCHEMA = 'bench';
const TABLE = `${SCHEMA}.events`;
/** As the archive runs record their table, and the subjects proof names it. */
const TABLE_QUOTED = `"${SCHEMA}"."events"`;
const SUBJECT = '42';
/** Not a secret: the benchmark's own key (localDependencies `hashKey`). */
const HASH_KEY = 'pg-lifecycle bench hash key: not a secret';
/** Every row lies in this month (one Hive partition), a millisecond apart: far older than the retention. */
const FIRST_TIME = '2024-01-01 00:00:00+00';
const RETENTION = 'P30D';
const MAX_ROWS = 1_000_000;

interface Options {
  objects: number;
  rowsPerObject: number;
  repeat: number;
  json: boolean;
  s3: S3Mode;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      objects: { type: 'string' },
      'rows-per-object': { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean', default: false },
      s3: { type: 'string' },
    },
  });
  const s3 = values.s3 ?? 'child';
  if (s3 !== 'child' && s3 !== 'inproc') throw new UsageError(`--s3 must be child or inproc, got "${s3}"`);
  const rowsPerObject = positiveInt('rows-per-object', values['rows-per-object'], 100);
  // One row of the subject per object and at least one other: every object is rewritten, none emptied.
  if (rowsPerObject < 2 || rowsPerObject > MAX_ROWS)
    throw new UsageError(`--rows-per-object must be between 2 and ${MAX_ROWS}, got ${rowsPerObject}`);
  const objects = positiveInt('objects', values.objects, 1000);
  // A month of milliseconds: every row in one partition.
  if (objects * rowsPerObject > 2_000_000_000)
    throw new UsageError('--objects × --rows-per-object must be at most 2 000 000 000');
  return {
    objects,
    rowsPerObject,
    repeat: positiveInt('repeat', values.repeat, 1),
    json: values.json,
    s3,
  };
}

function configFor(rowsPerObject: number): LifecycleConfig {
  return LifecycleConfigSchema.parse({
    sandbox: true,
    policies: [
      {
        name: ARCHIVE_POLICY,
        action: 'archive',
        table: TABLE,
        timeColumn: 'created_at',
        retention: RETENTION,
        chunking: { initialRows: rowsPerObject, minRows: rowsPerObject, maxRows: rowsPerObject },
      },
      {
        name: SUBJECTS_POLICY,
        action: 'subjects',
        subjects: {
          keyName: 'user_id',
          tables: [{ table: TABLE, keyColumn: 'user_id', action: 'delete' }],
        },
      },
    ],
  });
}

/**
 * `bench.events` with objects × rowsPerObject rows ordered by `created_at` (= by id); slice k (the rows of the
 * k-th object) holds the subject's row at offset k mod rowsPerObject, no other row of theirs.
 */
async function fillEvents(db: pg.Client, objects: number, rowsPerObject: number): Promise<void> {
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await db.query(`
    CREATE TABLE ${TABLE} (
      id         bigint      PRIMARY KEY,
      user_id    bigint      NOT NULL,
      created_at timestamptz NOT NULL,
      payload    text)`);
  await db.query(
    `INSERT INTO ${TABLE} (id, user_id, created_at, payload)
     SELECT g,
            CASE WHEN (g - 1) % p.r = ((g - 1) / p.r) % p.r THEN ${SUBJECT} ELSE 1000 + g % 5000 END,
            $3::timestamptz + g * interval '1 millisecond',
            'event ' || g || ' ' || md5(g::text)
       FROM (SELECT $1::bigint AS n, $2::bigint AS r) AS p, generate_series(1, p.n * p.r) AS g`,
    [objects, rowsPerObject, FIRST_TIME],
  );
  await db.query(`CREATE INDEX ON ${TABLE} (user_id)`);
  await db.query(`CREATE INDEX ON ${TABLE} (created_at)`);
  await db.query('CHECKPOINT').catch(() => undefined);
  await db.query(`VACUUM ANALYZE ${TABLE}`);
  await db.query('CHECKPOINT').catch(() => undefined);
}

interface LedgerState {
  readonly objects: number;
  readonly rows: number;
  readonly keys: string[];
  readonly partitions: string[];
  readonly rowsPerObject: number[];
}

async function archiveLedger(db: pg.Client): Promise<LedgerState> {
  // The steps' connections read every type as text.
  const { rows: text } = await db.query<{ key: string; rows: string; partition: string | null }>(
    `SELECT o.key, o.rows::text AS rows, o.partition
       FROM lifecycle.archived_objects o JOIN lifecycle.runs r ON r.run_id = o.run_id
      WHERE o.kind = 'archive-copy' AND r.action = 'archive' ORDER BY o.object_id`,
  );
  const rows = text.map((r) => ({ ...r, rows: Number(r.rows) }));
  return {
    objects: rows.length,
    rows: rows.reduce((sum, r) => sum + r.rows, 0),
    keys: rows.map((r) => r.key),
    partitions: [...new Set(rows.map((r) => r.partition ?? ''))],
    rowsPerObject: [...new Set(rows.map((r) => r.rows))],
  };
}

async function countOf(db: pg.Client, text: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(text);
  return Number(rows[0]?.n ?? Number.NaN);
}

async function bucketKeys(s3: S3Client, bucket: string): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket }))
    for (const object of page.Contents ?? []) if (object.Key) keys.add(object.Key);
  return keys;
}

async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
  }
}

/** Empties a repetition's bucket once it is measured, so the S3 server holds the same at every start. */
async function emptyBucket(s3: S3Client, bucket: string): Promise<void> {
  const keys = [...(await bucketKeys(s3, bucket))];
  for (let i = 0; i < keys.length; i += 32)
    await Promise.all(
      keys.slice(i, i + 32).map((key) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))),
    );
}

function databaseUrlFor(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

interface ExportProof {
  readonly tables: Array<{ table: string; rows: number; archivedRows?: number; objectsRead?: number }>;
}

interface RewriteRecord {
  readonly table: string;
  readonly oldKey: string;
  readonly newKey: string | null;
  readonly rowsRemoved: number;
  readonly rowsMasked: number;
  readonly rowsLeft: number;
}

interface ErasureProof {
  readonly archives: {
    readonly rewritten: boolean;
    readonly objectsSearched: number;
    readonly objects: RewriteRecord[];
    readonly rowsRemoved: number;
  };
}

interface RunMeasurement {
  readonly loadAtStart: number[];
  /** Fill + archive (not part of the measurement). */
  readonly setupSeconds: number;
  readonly fillSeconds: number;
  readonly archiveSeconds: number;
  readonly archivedBytes: number;
  /** A subjects run with no pending request: the fixed cost inside both timed runs. */
  readonly emptyRunSeconds: number;
  /** Export request processed by a subjects run: reads and decodes every archived object. */
  readonly exportSeconds: number;
  /** Erase request processed by a subjects run, end to end (wall). */
  readonly erasureSeconds: number;
  /** erasureSeconds ÷ exportSeconds. */
  readonly ratio: number;
  readonly msPerObject: number;
  readonly exportMsPerObject: number;
  /** (erasure − export) ÷ objects: what rewriting adds per object over reading it. */
  readonly extraMsPerObject: number;
  readonly erasureRun: { chunks: number; chunkInvocations: number; executions: number; summaryRows: number };
  readonly cpu: { export: PhaseCpu; erasure: PhaseCpu };
  /** The untimed second export after the erasure. */
  readonly verifySeconds: number;
  readonly checks: {
    readonly objectsSearched: number;
    readonly objectsRewritten: number;
    readonly rowsRemoved: number;
    readonly ledgerRowsBefore: number;
    readonly ledgerRowsAfter: number;
    readonly ledgerObjectsAfter: number;
    readonly oldKeysLeftInBucket: number;
    readonly newKeysMissingFromBucket: number;
    readonly pendingObjects: number;
    readonly exportArchivedRows: number;
    readonly exportObjectsRead: number;
    readonly archivedRowsAfterErasure: number;
  };
}

interface Context {
  readonly options: Options;
  readonly maintenanceUrl: string;
  readonly s3: S3Client;
  readonly config: LifecycleConfig;
  readonly definition: AslDefinition;
  readonly postmasterPid: number | undefined;
  readonly s3Pid: number | undefined;
  readonly progress: (text: string) => void;
}

function checkRun(
  what: string,
  result: LocalRunResult,
): asserts result is LocalRunResult & {
  summary: NonNullable<LocalRunResult['summary']>;
} {
  if (result.status !== 'succeeded' || !result.summary)
    throw new Error(`${what} run ${result.status}: ${result.failure?.error}: ${result.failure?.cause}`);
}

async function measureOnce(ctx: Context, index: number): Promise<RunMeasurement> {
  const { options, progress, s3 } = ctx;
  const n = options.objects;
  const perObject = options.rowsPerObject;
  const label = options.repeat > 1 ? ` (run ${index + 1}/${options.repeat})` : '';
  const loadAtStart = loadavg().map((v) => round(v, 2));
  const database = `bench_erasure_${index + 1}`;
  const bucket = `bench-erasure-${index + 1}`;
  const maintenance = await connect(
    await resolveClientConfig(
      { DATABASE_URL: ctx.maintenanceUrl },
      { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
    ),
  );
  let admin: pg.Client | undefined;
  try {
    await maintenance.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await maintenance.query(`CREATE DATABASE ${database}`);
    await createBucket(s3, bucket);
    await emptyBucket(s3, bucket);
    const databaseUrl = databaseUrlFor(ctx.maintenanceUrl, database);
    admin = await connect(
      await resolveClientConfig(
        { DATABASE_URL: databaseUrl },
        { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
      ),
    );
    await applyMigrations(admin);
    const dependencies = localDependencies({ databaseUrl, s3, bucket, hashKey: HASH_KEY });
    const run = (policyName: string) =>
      runPolicyLocally({
        config: ctx.config,
        policyName,
        definition: ctx.definition,
        dependencies,
        pauseMs: 0,
        retryIntervalMs: 0,
      });

    // 1. Setup: fill and archive (timed apart).
    progress(`filling ${TABLE} with ${n} × ${perObject} rows${label}…`);
    let started = performance.now();
    await fillEvents(admin, n, perObject);
    const fillSeconds = (performance.now() - started) / 1000;
    progress(`archiving into ${n} objects through the local state machine…`);
    started = performance.now();
    const archived = await run(ARCHIVE_POLICY);
    const archiveSeconds = (performance.now() - started) / 1000;
    checkRun('archive', archived);
    const before = await archiveLedger(admin);
    const left = await countOf(admin, `SELECT count(*)::text AS n FROM ${TABLE}`);
    const setupProblems: string[] = [];
    if (before.objects !== n) setupProblems.push(`${before.objects} archive objects, expected ${n}`);
    if (before.rows !== n * perObject)
      setupProblems.push(`the ledger lists ${before.rows} archived rows, expected ${n * perObject}`);
    if (before.rowsPerObject.length !== 1 || before.rowsPerObject[0] !== perObject)
      setupProblems.push(`object sizes ${before.rowsPerObject.join(', ')} rows, expected ${perObject} each`);
    if (before.partitions.length !== 1)
      setupProblems.push(`objects in ${before.partitions.length} Hive partitions, expected 1`);
    if (left !== 0) setupProblems.push(`${left} rows left in ${TABLE} after the archive`);
    if (setupProblems.length > 0) throw new Error(`setup check failed:\n  ${setupProblems.join('\n  ')}`);
    const { rows: bytesRows } = await admin.query<{ b: string }>(
      `SELECT coalesce(sum(bytes), 0)::text AS b FROM lifecycle.archived_objects WHERE kind = 'archive-copy'`,
    );
    const archivedBytes = Number(bytesRows[0]?.b ?? 0);
    const requestedAt = new Date(Date.now() - 60_000);
    const request = async (kind: 'erase' | 'export') =>
      (
        await createSubjectRequest(admin as pg.Client, {
          policy: SUBJECTS_POLICY,
          kind,
          subjectKey: SUBJECT,
          hashKey: HASH_KEY,
          dueDays: 30,
          requestedAt,
        })
      ).request.requestId;
    const completed = async (requestId: string) => {
      const found = (await listSubjectRequests(admin as pg.Client, SUBJECTS_POLICY)).find(
        (r) => r.requestId === requestId,
      );
      if (found?.status !== 'completed')
        throw new Error(`request ${requestId} is ${found?.status ?? 'missing'}: ${found?.error ?? ''}`);
      return found.proof;
    };
    const cpu = () => samplePhase(ctx.postmasterPid, ctx.s3Pid);
    const exportOnce = async () => {
      const id = await request('export');
      const sample = cpu();
      const t0 = performance.now();
      const result = await run(SUBJECTS_POLICY);
      const seconds = (performance.now() - t0) / 1000;
      const usage = phaseCpuBetween(sample, cpu());
      checkRun('export', result);
      const proof = (await completed(id)) as ExportProof;
      const table = proof.tables.find((t) => t.table === TABLE_QUOTED);
      if (!table) throw new Error(`the export proof names no ${TABLE_QUOTED}: ${JSON.stringify(proof)}`);
      return { seconds, usage, archivedRows: table.archivedRows ?? 0, objectsRead: table.objectsRead ?? 0 };
    };

    // The run's fixed cost: a subjects run with no request (Start, one empty Chunk step, Finish, state machine).
    progress('subjects run with no pending request (fixed cost)…');
    started = performance.now();
    checkRun('empty subjects', await run(SUBJECTS_POLICY));
    const emptyRunSeconds = (performance.now() - started) / 1000;

    // 2. Baseline: export (reads and decodes every object).
    progress(`export of subject ${SUBJECT} over ${n} objects (baseline)…`);
    const exported = await exportOnce();
    if (exported.objectsRead !== n || exported.archivedRows !== n)
      throw new Error(
        `export read ${exported.objectsRead} objects and found ${exported.archivedRows} archived rows, expected ${n} and ${n}`,
      );

    // 3. Erasure.
    progress(`erasure of subject ${SUBJECT} over ${n} objects…`);
    const eraseId = await request('erase');
    const sample = cpu();
    started = performance.now();
    const erased = await run(SUBJECTS_POLICY);
    const erasureSeconds = (performance.now() - started) / 1000;
    const erasureCpu = phaseCpuBetween(sample, cpu());
    checkRun('erasure', erased);
    const proof = (await completed(eraseId)) as ErasureProof;
    const after = await archiveLedger(admin);
    const keys = await bucketKeys(s3, bucket);
    const rewrites = proof.archives.objects;
    const oldKeys = new Set(before.keys);
    const pendingObjects = await countOf(admin, 'SELECT count(*)::text AS n FROM lifecycle.pending_objects');
    const checks = {
      objectsSearched: proof.archives.objectsSearched,
      objectsRewritten: rewrites.length,
      rowsRemoved: proof.archives.rowsRemoved,
      ledgerRowsBefore: before.rows,
      ledgerRowsAfter: after.rows,
      ledgerObjectsAfter: after.objects,
      oldKeysLeftInBucket: before.keys.filter((k) => keys.has(k)).length,
      newKeysMissingFromBucket: after.keys.filter((k) => !keys.has(k)).length,
      pendingObjects,
      exportArchivedRows: exported.archivedRows,
      exportObjectsRead: exported.objectsRead,
      archivedRowsAfterErasure: Number.NaN,
    };
    const problems: string[] = [];
    const expect = (what: string, actual: number, expected: number) => {
      if (actual !== expected) problems.push(`${what}: ${actual}, expected ${expected}`);
    };
    if (!proof.archives.rewritten) problems.push('the proof says the archives were not rewritten');
    expect('objects searched', checks.objectsSearched, n);
    expect('objects rewritten', checks.objectsRewritten, n);
    expect('rows removed', checks.rowsRemoved, n);
    expect('ledger rows after', checks.ledgerRowsAfter, before.rows - n);
    expect('ledger objects after', checks.ledgerObjectsAfter, n);
    expect('old keys left in the bucket', checks.oldKeysLeftInBucket, 0);
    expect('new keys missing from the bucket', checks.newKeysMissingFromBucket, 0);
    expect('pending objects', pendingObjects, 0);
    expect('run summary rows', erased.summary.rows, n);
    expect('distinct old keys rewritten', new Set(rewrites.map((r) => r.oldKey)).size, n);
    expect(
      'rewrites of an object not listed before',
      rewrites.filter((r) => !oldKeys.has(r.oldKey)).length,
      0,
    );
    expect(
      'rewrites not of 1 row removed leaving rowsPerObject − 1',
      rewrites.filter(
        (r) =>
          r.table !== TABLE_QUOTED ||
          r.rowsRemoved !== 1 ||
          r.rowsMasked !== 0 ||
          r.rowsLeft !== perObject - 1 ||
          r.newKey === null ||
          oldKeys.has(r.newKey),
      ).length,
      0,
    );
    expect(
      'archive objects in the bucket',
      [...keys].filter((k) => k.startsWith(policyPrefix(ARCHIVE_POLICY))).length,
      n,
    );
    if (problems.length > 0) throw new Error(`erasure check failed:\n  ${problems.join('\n  ')}`);

    // 4. Untimed: the product's own reader finds the subject in no archived object any more.
    progress('second export (not timed): the subject must be in no archived object…');
    const verify = await exportOnce();
    if (verify.objectsRead !== n || verify.archivedRows !== 0)
      throw new Error(
        `after the erasure the export read ${verify.objectsRead} objects and found ${verify.archivedRows} archived rows of the subject, expected ${n} and 0`,
      );
    checks.archivedRowsAfterErasure = verify.archivedRows;

    const r = (v: number) => round(v);
    return {
      loadAtStart,
      setupSeconds: r(fillSeconds + archiveSeconds),
      fillSeconds: r(fillSeconds),
      archiveSeconds: r(archiveSeconds),
      archivedBytes,
      emptyRunSeconds: r(emptyRunSeconds),
      exportSeconds: r(exported.seconds),
      erasureSeconds: r(erasureSeconds),
      ratio: r(erasureSeconds / exported.seconds),
      msPerObject: round((erasureSeconds * 1000) / n, 2),
      exportMsPerObject: round((exported.seconds * 1000) / n, 2),
      extraMsPerObject: round(((erasureSeconds - exported.seconds) * 1000) / n, 2),
      erasureRun: {
        chunks: erased.summary.chunks,
        chunkInvocations: erased.chunkInvocations,
        executions: erased.executions,
        summaryRows: erased.summary.rows,
      },
      cpu: { export: roundCpu(exported.usage), erasure: roundCpu(erasureCpu) },
      verifySeconds: r(verify.seconds),
      checks,
    };
  } finally {
    await admin?.end().catch(() => undefined);
    await emptyBucket(s3, bucket).catch(() => undefined);
    await maintenance.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
    await maintenance.end().catch(() => undefined);
  }
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

export async function main(argv: string[]): Promise<number> {
  const options = commandLine(parseOptions, argv);
  if (!options) return 2;
  const progress = progressLine('erasure');
  const loadBefore = loadavg().map((v) => round(v, 2));
  const s3External = process.env.AWS_ENDPOINT_URL_S3 !== undefined;
  progress(`starting servers (S3: ${s3External ? 'AWS_ENDPOINT_URL_S3' : options.s3})…`);
  const services = await startBenchServices(options.s3);
  let s3: S3Client | undefined;
  let admin: pg.Client | undefined;
  try {
    // The handlers' S3 client reads the standard AWS environment, as in Lambda.
    process.env.AWS_ENDPOINT_URL_S3 = services.s3Endpoint;
    process.env.AWS_ACCESS_KEY_ID ??= 'bench';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
    process.env.AWS_REGION ??= 'us-east-1';
    s3 = createS3Client();
    admin = await connect(
      await resolveClientConfig(
        { DATABASE_URL: services.databaseUrl },
        { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
      ),
    );
    const { rows } = await admin.query<{ pid: number; version: string }>(
      'SELECT pg_backend_pid() AS pid, current_setting($1) AS version',
      ['server_version'],
    );
    const postmasterPid = services.localPostgres && rows[0] ? postmasterOf(Number(rows[0].pid)) : undefined;
    await admin.end();
    admin = undefined;
    const config = configFor(options.rowsPerObject);
    progress('synthesizing the state machine (not timed)…');
    const definition = await synthesizeDefinition(config);
    // Validated once, as the service does when the machine is deployed: not part of any timed run.
    prepareDefinition(definition);
    const ctx: Context = {
      options,
      maintenanceUrl: services.databaseUrl,
      s3,
      config,
      definition,
      postmasterPid,
      s3Pid: services.s3Pid,
      progress,
    };
    const runs: RunMeasurement[] = [];
    for (let i = 0; i < options.repeat; i++) runs.push(await measureOnce(ctx, i));
    const report = buildReport(options, runs, loadBefore, rows[0]?.version ?? 'unknown', s3External);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  } catch (error) {
    process.stderr.write(
      `bench erasure failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
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

const SUMMARY_FIELDS = [
  'setupSeconds',
  'emptyRunSeconds',
  'exportSeconds',
  'erasureSeconds',
  'ratio',
  'msPerObject',
  'exportMsPerObject',
  'extraMsPerObject',
] as const;

type Summary = Record<(typeof SUMMARY_FIELDS)[number], number>;

function summaryOf(run: RunMeasurement): Summary {
  return Object.fromEntries(SUMMARY_FIELDS.map((field) => [field, run[field]])) as Summary;
}

/** Each field's median over `runs` (ratio: the median of the per-repetition ratios). */
function medianOf(runs: readonly RunMeasurement[]): Summary {
  return Object.fromEntries(
    SUMMARY_FIELDS.map((field) => [field, round(median(runs.map((r) => r[field])), 3)]),
  ) as Summary;
}

function buildReport(
  options: Options,
  runs: RunMeasurement[],
  loadBefore: number[],
  postgres: string,
  s3External: boolean,
) {
  const first = runs[0] as RunMeasurement;
  return {
    benchmark: 'erasure' as const,
    objects: options.objects,
    rowsPerObject: options.rowsPerObject,
    rows: options.objects * options.rowsPerObject,
    repeat: options.repeat,
    s3: s3External ? 'AWS_ENDPOINT_URL_S3' : options.s3,
    machine: {
      node: process.version,
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: round(totalmem() / 1024 ** 3, 1),
      kernel: release(),
      postgres,
    },
    /** 1-, 5- and 15-minute load averages before the servers started, at each repetition's start, at the end. */
    load: {
      before: loadBefore,
      atStart: runs.map((r) => r.loadAtStart),
      after: loadavg().map((v) => round(v, 2)),
    },
    /** The first (cold) repetition: a fresh process, caches and JIT cold. */
    first: summaryOf(first),
    /** Medians over every repetition (the first included). */
    median: medianOf(runs),
    /** Medians over the repetitions after the first; null with --repeat 1. */
    medianWithoutFirst: runs.length > 1 ? medianOf(runs.slice(1)) : null,
    runs,
  };
}

type Report = ReturnType<typeof buildReport>;

function formatReport(report: Report): string {
  const line = (name: string, s: Summary) =>
    `  ${name.padEnd(14)} setup ${s.setupSeconds} s, export ${s.exportSeconds} s (${s.exportMsPerObject} ms/object), erasure ${s.erasureSeconds} s (${s.msPerObject} ms/object), ratio ${s.ratio}`;
  return [
    `erasure of one subject over ${report.objects} objects × ${report.rowsPerObject} rows (${report.repeat} run${report.repeat > 1 ? 's' : ''}, ${report.machine.cpus} cpus, load ${report.load.before[0]} → ${report.load.after[0]})`,
    line('first (cold)', report.first),
    line('median', report.median),
    ...(report.medianWithoutFirst ? [line('median warm', report.medianWithoutFirst)] : []),
    '',
  ].join('\n');
}
