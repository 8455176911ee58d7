/**
 * `npm run bench -- backup`: how fast the real backup path turns a table into verified parts in S3, against
 * how fast PostgreSQL streams the same table out (`COPY (SELECT …) TO STDOUT` through pg-copy-streams to
 * /dev/null, one connection), and how fast those parts restore, against one `COPY … FROM STDIN` of the same
 * rows from a local file. Both sides in the same run, on the same table; the unit of `ratio` is the table's
 * COPY text (bytes per second on both sides).
 *
 * Per repetition: fill `bench_backup.events` → baseline COPY TO → the full-table content-checksum query
 * (timed: the backup runs it per part; its result checks the manifest) → backup through the synthesized state
 * machine with the real handlers, instrumented from outside (backup-instrument.ts), peak RSS → checks → the
 * same backup with each part's checksum query replaced (the bench toggle; timed only) → restore baseline and
 * restore (backup-restore.ts), peak RSS → the stage ladder (backup-stages.ts) and codec rates, last so their
 * buffers are not in the RSS the measured phases start from. The state machine is synthesized once, in a child
 * process (synth-child.ts), before anything is timed. `--memory-rows N` then adds one repetition at N rows, for
 * the flatness of the peak RSS.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import {
  formatContentChecksum,
  readContentChecksum,
} from '../../functions/actions/backup/content-checksum.ts';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { createS3Client } from '../../functions/commons/s3.ts';
import { quoteIdent } from '../../lib/contracts/identifiers.ts';
import { buildReport, formatReport, type RunMeasurement } from './backup-report.ts';
import { copyInBaseline, createRestoreTarget, downloadParts, RESTORE_TARGET } from './backup-restore.ts';
import { BUCKET, backupConfigInput, checkBackup, createBucket, removeBackup } from './backup-run.ts';
import { copyCompressed, writeWholeTablePart } from './backup-stages.ts';
import { BackupWorker } from './backup-worker.ts';
import { measureCodecRates, zstdAvailable } from './codec-rates.ts';
import { copyOutStream } from './copy.ts';
import { phaseCpuBetween, postmasterOf, samplePhase } from './cpu.ts';
import { BACKUP_COLUMNS, BACKUP_TABLE, fillBackupEvents } from './dataset.ts';
import { commandLine, positiveInt, progressLine, UsageError } from './options.ts';
import { type BenchServices, type S3Mode, startBenchServices } from './services.ts';
import { synthesizeInChild } from './synth-child.ts';

const CODECS = ['gzip', 'zstd'] as const;

export interface Options {
  readonly rows: number;
  readonly repeat: number;
  readonly json: boolean;
  readonly codec: (typeof CODECS)[number];
  readonly level: number;
  readonly partMiB: number;
  readonly maxConcurrency: number;
  /** Also one repetition at this many rows, for the flatness of the peak RSS. */
  readonly memoryRows: number | undefined;
  readonly s3: S3Mode;
  readonly s3External: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rows: { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean', default: false },
      compression: { type: 'string', default: 'gzip' },
      level: { type: 'string' },
      'part-mib': { type: 'string' },
      'max-concurrency': { type: 'string' },
      'memory-rows': { type: 'string' },
      s3: { type: 'string', default: 'child' },
    },
  });
  const codec = CODECS.find((c) => c === values.compression);
  if (!codec) throw new UsageError(`--compression must be one of ${CODECS.join(', ')}`);
  if (codec === 'zstd' && !zstdAvailable())
    throw new UsageError(
      `zstd needs Node 22.15 or later (node:zlib createZstdCompress); this is ${process.version}`,
    );
  if (values.s3 !== 'child' && values.s3 !== 'inproc') throw new UsageError('--s3 must be child or inproc');
  return {
    rows: positiveInt('rows', values.rows, 1_000_000),
    repeat: positiveInt('repeat', values.repeat, 1),
    json: values.json,
    codec,
    level: positiveInt('level', values.level, 1),
    partMiB: positiveInt('part-mib', values['part-mib'], 32),
    maxConcurrency: positiveInt('max-concurrency', values['max-concurrency'], 2),
    memoryRows:
      values['memory-rows'] === undefined ? undefined : positiveInt('memory-rows', values['memory-rows'], 1),
    s3: values.s3,
    s3External: process.env.AWS_ENDPOINT_URL_S3 !== undefined,
  };
}

interface Context {
  readonly options: Options;
  readonly services: BenchServices;
  readonly admin: pg.Client;
  /** The restore baseline's connection (the restore itself runs in the worker). */
  readonly copyInClient: pg.Client;
  readonly s3: S3Client;
  readonly worker: BackupWorker;
  readonly postmasterPid: number | undefined;
}

export async function main(argv: string[]): Promise<number> {
  const options = commandLine(parseOptions, argv);
  if (!options) return 2;
  const progress = progressLine('backup');
  progress(`starting servers (S3: ${options.s3External ? 'AWS_ENDPOINT_URL_S3' : options.s3})…`);
  const services = await startBenchServices(options.s3);
  const clients: pg.Client[] = [];
  let s3: S3Client | undefined;
  let worker: BackupWorker | undefined;
  try {
    // The worker inherits these: the handlers' S3 client reads the standard AWS environment, as in Lambda.
    process.env.AWS_ENDPOINT_URL_S3 = services.s3Endpoint;
    process.env.AWS_ACCESS_KEY_ID ??= 'bench';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
    process.env.AWS_REGION ??= 'us-east-1';
    s3 = createS3Client();
    await createBucket(s3);
    const open = async () => {
      const client = await connect(
        await resolveClientConfig(
          { DATABASE_URL: services.databaseUrl },
          { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
        ),
      );
      clients.push(client);
      return client;
    };
    const admin = await open();
    const copyInClient = await open();
    await applyMigrations(admin);
    const configInput = backupConfigInput({
      compression: options.codec,
      level: options.level,
      partMiB: options.partMiB,
      maxConcurrency: options.maxConcurrency,
    });
    progress('synthesizing the state machine in a child process (not timed)…');
    const definition = await synthesizeInChild(configInput);
    const startWorker = async () => {
      progress('starting a backup worker process…');
      const started = await BackupWorker.start({
        databaseUrl: services.databaseUrl,
        configInput,
        definition,
      });
      worker = started.worker;
      return started;
    };
    const started = await startWorker();
    const { rows } = await admin.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const postmasterPid = services.localPostgres && rows[0] ? postmasterOf(Number(rows[0].pid)) : undefined;
    const context: Context = {
      options,
      services,
      admin,
      copyInClient,
      s3,
      worker: started.worker,
      postmasterPid,
    };
    const runs: RunMeasurement[] = [];
    for (let i = 0; i < options.repeat; i++) {
      const label = options.repeat > 1 ? ` (run ${i + 1}/${options.repeat})` : '';
      runs.push(await measureOnce(context, options.rows, label, progress));
    }
    let memoryRun: RunMeasurement | undefined;
    if (options.memoryRows !== undefined) {
      // A fresh worker, like the first repetition's: both peaks start from the same floor.
      await started.worker.stop();
      const fresh = await startWorker();
      const label = ` (memory run, ${options.memoryRows} rows, fresh worker)`;
      memoryRun = await measureOnce(
        { ...context, worker: fresh.worker },
        options.memoryRows,
        label,
        progress,
      );
    }
    const { rows: version } = await admin.query<{ v: string }>(
      `SELECT current_setting('server_version') AS v`,
    );
    const report = buildReport(options, runs, memoryRun, version[0]?.v ?? 'unknown', started.floorRss);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return 0;
  } catch (error) {
    process.stderr.write(
      `bench backup failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  } finally {
    await worker?.stop().catch(() => undefined);
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    s3?.destroy();
    await services
      .stop()
      .catch((error: unknown) => process.stderr.write(`stopping servers: ${String(error)}\n`));
  }
}

async function measureOnce(
  context: Context,
  n: number,
  label: string,
  progress: (text: string) => void,
): Promise<RunMeasurement> {
  const { admin, options, postmasterPid, worker } = context;
  const s3Pid = context.services.s3Pid;
  const cpu = () => samplePhase(postmasterPid, s3Pid);
  const loadAtStart = loadAverages();
  progress(`filling ${BACKUP_TABLE} with ${n} rows${label}…`);
  await fillBackupEvents(admin, n);
  const compression = { codec: options.codec, level: options.level };

  const select = `SELECT ${BACKUP_COLUMNS.map(quoteIdent).join(', ')} FROM ${BACKUP_TABLE}`;
  progress('baseline: COPY TO STDOUT → /dev/null…');
  let before = cpu();
  const copy = await copyOutStream(admin, select);
  const copyCpu = phaseCpuBetween(before, cpu());
  if (copy.rows !== n) throw new Error(`COPY returned ${copy.rows} rows, expected ${n}`);

  progress('content checksum of the whole table (one query)…');
  const started = performance.now();
  const checksum = formatContentChecksum(await readContentChecksum(admin, BACKUP_TABLE, BACKUP_COLUMNS));
  const checksumSeconds = (performance.now() - started) / 1000;

  progress(`backup through the local state machine (worker process)${label}…`);
  before = cpu();
  const backup = await worker.backup(false);
  const backupCpu = phaseCpuBetween(before, cpu(), backup.node_cpu_s);
  const manifest = await checkBackup(context.s3, backup.run, n, checksum);
  const parts = manifest.tables.flatMap((t) => t.parts);
  progress(
    `backed up ${n} rows in ${backup.seconds.toFixed(2)} s (COPY ${copy.seconds.toFixed(2)} s), peak RSS ${mib(backup.rss.peak_bytes)} MiB`,
  );

  progress('the same backup without the per-part checksum query (bench toggle)…');
  before = cpu();
  const unchecked = await worker.backup(true);
  const uncheckedCpu = phaseCpuBetween(before, cpu(), unchecked.node_cpu_s);
  if (unchecked.run.status !== 'succeeded' || unchecked.run.summary?.rows !== n)
    throw new Error(`backup without checksum: ${unchecked.run.status}, ${unchecked.run.summary?.rows} rows`);
  await removeBackup(context.s3, unchecked.run.summary.backup?.backupId);

  const tempDir = await mkdtemp(join(tmpdir(), 'bench-backup-'));
  try {
    // The restore baseline's input: the same COPY text, in a local file (not timed).
    const copyTextFile = join(tempDir, 'events.copy');
    const saved = await copyOutStream(admin, select, copyTextFile);
    if (saved.bytes !== copy.bytes)
      throw new Error(`COPY to file wrote ${saved.bytes} bytes, not ${copy.bytes}`);
    progress(`restore baseline: COPY FROM STDIN of the file${label}…`);
    before = cpu();
    const copyIn = await copyInBaseline(admin, context.copyInClient, copyTextFile, n);
    const copyInCpu = phaseCpuBetween(before, cpu());
    progress(`restore of the ${parts.length} parts (worker process)${label}…`);
    await createRestoreTarget(admin, RESTORE_TARGET);
    before = cpu();
    const restore = await worker.restore(manifest, RESTORE_TARGET, n);
    const restoreCpu = phaseCpuBetween(before, cpu(), restore.node_cpu_s);
    await admin.query(`DROP TABLE ${RESTORE_TARGET}`);
    const downloadSeconds = await downloadParts(context.s3, BUCKET, manifest);
    await removeBackup(context.s3, manifest.backupId);
    progress(
      `restored ${n} rows in ${restore.restore_seconds.toFixed(2)} s (COPY FROM ${copyIn.seconds.toFixed(2)} s), peak RSS ${mib(restore.rss.peak_bytes)} MiB`,
    );

    progress('stages: COPY → compressor → /dev/null, then the part writer on the whole table…');
    before = cpu();
    const compressed = await copyCompressed(admin, select, compression);
    const compressedCpu = phaseCpuBetween(before, cpu());
    before = cpu();
    const wholePart = await writeWholeTablePart(admin, context.s3, BUCKET, compression, n);
    const wholePartCpu = phaseCpuBetween(before, cpu());
    const codecRates = await measureCodecRates(copyTextFile, compression);
    return {
      rows: n,
      load_at_start: loadAtStart,
      copy_seconds: copy.seconds,
      copy_bytes: copy.bytes,
      copy_cpu: copyCpu,
      stages: {
        copy_compress_seconds: compressed.seconds,
        copy_compress_cpu: compressedCpu,
        part_writer_seconds: wholePart.seconds,
        part_writer_cpu: wholePartCpu,
      },
      checksum_sql_seconds: checksumSeconds,
      codec_rates: codecRates,
      backup: {
        backup_seconds: backup.seconds,
        parts: parts.length,
        stored_bytes: parts.reduce((sum, p) => sum + p.bytes, 0),
        chunk_invocations: backup.run.chunkInvocations,
        rss: backup.rss,
        cpu: backupCpu,
        main_thread_busy_share: backup.busy_share,
        timed: backup.timed,
        parts_busy_s: backup.parts_busy_s,
        no_checksum_seconds: unchecked.seconds,
        no_checksum_cpu: uncheckedCpu,
      },
      restore: {
        copy_in_seconds: copyIn.seconds,
        restore_seconds: restore.restore_seconds,
        restore_checksum_seconds: restore.checksum_seconds,
        download_seconds: downloadSeconds,
        rss: restore.rss,
        cpu: { copy_in: copyInCpu, restore: restoreCpu },
      },
    };
  } finally {
    await rm(tempDir, { recursive: true, force: true });
  }
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

function loadAverages(): [number, number, number] {
  const [one = 0, five = 0, fifteen = 0] = loadavg();
  return [one, five, fifteen];
}
