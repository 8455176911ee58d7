/**
 * The report of `npm run bench -- backup`: medians over the repetitions, the first (cold) repetition next to
 * them, the worst peak RSS, the details of the median run, and the machine it ran on.
 */
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import type { Options } from './backup.ts';
import { type CodecRates, zstdAvailable } from './codec-rates.ts';
import type { PhaseCpu } from './cpu.ts';
import type { PeakRss } from './memory.ts';
import { median, medianIndex, round } from './stats.ts';

/** One backup run through the state machine, as measured from outside. */
export interface BackupRun {
  readonly backup_seconds: number;
  readonly parts: number;
  readonly stored_bytes: number;
  readonly chunk_invocations: number;
  readonly rss: PeakRss;
  readonly cpu: PhaseCpu;
  /** Event-loop utilisation during the backup: the rest is Node waiting (PostgreSQL, S3, zlib's threads). */
  readonly main_thread_busy_share: number;
  /** Seconds in flight and calls per kind (backup-instrument.ts); overlapping, not shares of the wall. */
  readonly timed: Record<string, { seconds: number; calls: number }>;
  /** Seconds with at least one part transaction open. */
  readonly parts_busy_s: number;
  /** The same backup with each part's checksum query replaced (the bench toggle). */
  readonly no_checksum_seconds: number;
  readonly no_checksum_cpu: PhaseCpu;
}

export interface RestoreMeasurement {
  /** The baseline: BEGIN, one COPY FROM STDIN of the local file, COMMIT. */
  readonly copy_in_seconds: number;
  /** BEGIN, restorePart of every part (verified download + COPY FROM STDIN), COMMIT; not the checksum. */
  readonly restore_seconds: number;
  /** The content checksum of the loaded rows, in the restore's transaction (restore and drills run it). */
  readonly restore_checksum_seconds: number;
  /** A separate pass: download and verify every part, nothing loaded. */
  readonly download_seconds: number;
  readonly rss: PeakRss;
  readonly cpu: { readonly copy_in: PhaseCpu; readonly restore: PhaseCpu };
}

export interface RunMeasurement {
  readonly rows: number;
  readonly load_at_start: readonly [number, number, number];
  readonly copy_seconds: number;
  readonly copy_bytes: number;
  readonly copy_cpu: PhaseCpu;
  /** The rungs between the baseline and the backup, one connection each (backup-stages.ts). */
  readonly stages: {
    readonly copy_compress_seconds: number;
    readonly copy_compress_cpu: PhaseCpu;
    readonly part_writer_seconds: number;
    readonly part_writer_cpu: PhaseCpu;
  };
  /** One content-checksum query over the whole table (what the parts' queries add up to). */
  readonly checksum_sql_seconds: number;
  readonly codec_rates: CodecRates;
  readonly backup: BackupRun;
  readonly restore: RestoreMeasurement;
}

const RATIO_GOAL = 0.6;
const RSS_GOAL_MB = 256;
const FLATNESS_GOAL = 1.1;
const MB = 1e6;
const MIB = 1024 * 1024;

const ratioOf = (r: RunMeasurement) => r.copy_seconds / r.backup.backup_seconds;
const restoreRatioOf = (r: RunMeasurement) => r.restore.copy_in_seconds / r.restore.restore_seconds;
const mib = (bytes: number) => round(bytes / MIB, 1);

/** Upper bound of the ratio for the CPU work the backup did: wall ≥ max(node, postgres, all CPU / cores). */
function cpuBoundRatio(run: RunMeasurement, cores: number): number | undefined {
  const { node_cpu_s: node, postgres_cpu_s: postgres, s3_server_cpu_s: s3 } = run.backup.cpu;
  if (postgres === undefined) return undefined;
  return round(run.copy_seconds / Math.max(node, postgres, (node + postgres + (s3 ?? 0)) / cores));
}

function peaks(run: RunMeasurement) {
  return { backup: run.backup.rss.peak_bytes, restore: run.restore.rss.peak_bytes };
}

export function buildReport(
  options: Options,
  runs: readonly RunMeasurement[],
  memoryRun: RunMeasurement | undefined,
  postgres: string,
  floorRss: number,
) {
  const cores = availableParallelism();
  const first = runs[0] as RunMeasurement;
  const typical = runs[medianIndex(runs, (r) => r.backup.backup_seconds)] as RunMeasurement;
  const copySeconds = median(runs.map((r) => r.copy_seconds));
  const backupSeconds = median(runs.map((r) => r.backup.backup_seconds));
  const copyInSeconds = median(runs.map((r) => r.restore.copy_in_seconds));
  const restoreSeconds = median(runs.map((r) => r.restore.restore_seconds));
  const restoreChecksumSeconds = median(runs.map((r) => r.restore.restore_checksum_seconds));
  const noChecksumSeconds = median(runs.map((r) => r.backup.no_checksum_seconds));
  const bytes = typical.copy_bytes;
  const n = options.rows;
  const ratio = copySeconds / backupSeconds;
  const restoreRatio = copyInSeconds / restoreSeconds;
  const peakBackup = Math.max(...runs.map((r) => r.backup.rss.peak_bytes));
  const peakRestore = Math.max(...runs.map((r) => r.restore.rss.peak_bytes));
  const stored = typical.backup.stored_bytes;
  return {
    benchmark: 'backup' as const,
    rows: n,
    repeat: options.repeat,
    compression: { codec: options.codec, level: options.level },
    /** zstd needs Node 22.15+: which codecs this runtime could run (only `compression` ran). */
    zstd_available: zstdAvailable(),
    settings: {
      part_mib: options.partMiB,
      max_concurrency: options.maxConcurrency,
      s3: options.s3External ? 'external' : options.s3,
    },
    machine: {
      node: process.version,
      cores,
      cpu_model: cpus()[0]?.model ?? 'unknown',
      memory_gib: round(totalmem() / 1024 ** 3, 1),
      kernel: release(),
      postgres,
    },
    /** 1-, 5- and 15-minute load averages when the report was built, and when each repetition started. */
    load: {
      at_end: loadavg().map((v) => round(v, 2)),
      at_start: runs.map((r) => r.load_at_start.map((v) => round(v, 2))),
    },
    load_1m: round(loadavg()[0] ?? 0, 2),
    copy_bytes: bytes,
    copy_seconds: round(copySeconds),
    copy_mb_per_s: round(bytes / MB / copySeconds, 1),
    copy_rows_per_s: Math.round(n / copySeconds),
    backup_seconds: round(backupSeconds),
    backup_mb_per_s: round(bytes / MB / backupSeconds, 1),
    backup_rows_per_s: Math.round(n / backupSeconds),
    ratio: round(ratio),
    ratio_first_run: round(ratioOf(first)),
    ratio_within_goal: ratio >= RATIO_GOAL,
    parts: typical.backup.parts,
    stored_bytes: stored,
    compressed_ratio: round(stored / bytes, 4),
    copy_in_seconds: round(copyInSeconds),
    copy_in_rows_per_s: Math.round(n / copyInSeconds),
    restore_seconds: round(restoreSeconds),
    restore_rows_per_s: Math.round(n / restoreSeconds),
    restore_ratio: round(restoreRatio),
    restore_ratio_first_run: round(restoreRatioOf(first)),
    restore_ratio_within_goal: restoreRatio >= RATIO_GOAL,
    /** The restore with the content checksum of the loaded rows that restore and drills run before COMMIT. */
    restore_with_checksum_ratio: round(copyInSeconds / (restoreSeconds + restoreChecksumSeconds)),
    restore_checksum_seconds: round(restoreChecksumSeconds),
    restore_download_seconds: round(median(runs.map((r) => r.restore.download_seconds))),
    /**
     * Highest over the repetitions, of the worker process that runs the backups and restores and nothing else
     * (backup-worker.ts; PostgreSQL and the S3 server are other processes).
     */
    peak_rss_mb: {
      /** The worker process after loading its modules, before any work: tsx, handlers, local runner, pg, AWS SDK. */
      process_floor: mib(floorRss),
      backup: mib(peakBackup),
      restore: mib(peakRestore),
      /** What the backup and the restore add to the floor at most (their own working memory). */
      backup_over_floor: mib(peakBackup - floorRss),
      restore_over_floor: mib(peakRestore - floorRss),
      /** The median repetition's RSS sampled every 10 ms during the backup / restore: 95th percentile. */
      backup_p95: mib(typical.backup.rss.p95_bytes),
      restore_p95: mib(typical.restore.rss.p95_bytes),
      at_backup_start: mib(typical.backup.rss.start_bytes),
      at_restore_start: mib(typical.restore.rss.start_bytes),
      method: typical.backup.rss.method,
      within_goal: Math.max(peakBackup, peakRestore) <= RSS_GOAL_MB * MIB,
    },
    checksum: {
      /** One checksum query over the whole table, and its time against the COPY's. */
      table_query_seconds: round(median(runs.map((r) => r.checksum_sql_seconds))),
      table_query_vs_copy: round(median(runs.map((r) => r.checksum_sql_seconds / r.copy_seconds))),
      backup_without_checksum_seconds: round(noChecksumSeconds),
      ratio_without_checksum: round(copySeconds / noChecksumSeconds),
      /** Share of the backup's wall time the per-part checksum queries cost: 1 − without ÷ with. */
      share_of_backup: round(1 - noChecksumSeconds / backupSeconds),
    },
    stages: stageLadder(runs, bytes),
    ...(memoryRun ? { flatness: flatness(memoryRun, first) } : {}),
    cpu: roundDeep({
      copy: typical.copy_cpu,
      copy_compress: typical.stages.copy_compress_cpu,
      part_writer: typical.stages.part_writer_cpu,
      backup_without_checksum: typical.backup.no_checksum_cpu,
      backup: typical.backup.cpu,
      copy_in: typical.restore.cpu.copy_in,
      restore: typical.restore.cpu.restore,
    }),
    backup_cpu_bound_ratio: cpuBoundRatio(typical, cores),
    main_thread_busy_share: round(typical.backup.main_thread_busy_share),
    codec_rates: roundDeep(typical.codec_rates),
    breakdown: roundDeep({
      wall_s: typical.backup.backup_seconds,
      parts_busy_s: typical.backup.parts_busy_s,
      /** Start (plan), the DDL files, ledger, state machine, Finish (manifest): no part transaction open. */
      outside_parts_s: typical.backup.backup_seconds - typical.backup.parts_busy_s,
      timed: typical.backup.timed,
    }),
    runs: runs.map((r) => ({
      load_1m_at_start: round(r.load_at_start[0], 2),
      /** CPU seconds other processes took during this run's backup: high means the figures are skewed. */
      other_processes_cpu_s_during_backup: round(r.backup.cpu.other_processes_cpu_s ?? Number.NaN),
      copy_seconds: round(r.copy_seconds),
      backup_seconds: round(r.backup.backup_seconds),
      no_checksum_seconds: round(r.backup.no_checksum_seconds),
      copy_in_seconds: round(r.restore.copy_in_seconds),
      restore_seconds: round(r.restore.restore_seconds),
      peak_rss_mb: { backup: mib(r.backup.rss.peak_bytes), restore: mib(r.restore.rss.peak_bytes) },
      chunk_invocations: r.backup.chunk_invocations,
    })),
  };
}

/**
 * Where the wall time goes: each rung of backup-stages.ts as MB/s of COPY text (medians), and the seconds each
 * added to the rung before it. `parallel_and_orchestration_s` is negative when running parts in parallel gains
 * more than the state machine, planning, DDL files, manifest and ledger cost.
 */
function stageLadder(runs: readonly RunMeasurement[], bytes: number) {
  // CPU seconds of node, PostgreSQL and the S3 server per rung: less skewed by other work than wall time.
  const total = (cpu: PhaseCpu) => cpu.node_cpu_s + (cpu.postgres_cpu_s ?? 0) + (cpu.s3_server_cpu_s ?? 0);
  const cpuOf = (pick: (r: RunMeasurement) => PhaseCpu) => median(runs.map((r) => total(pick(r))));
  const cpu = {
    copy: cpuOf((r) => r.copy_cpu),
    copy_compress: cpuOf((r) => r.stages.copy_compress_cpu),
    part_writer_one_part: cpuOf((r) => r.stages.part_writer_cpu),
    backup_without_checksum: cpuOf((r) => r.backup.no_checksum_cpu),
    backup: cpuOf((r) => r.backup.cpu),
  };
  const copy = median(runs.map((r) => r.copy_seconds));
  const compress = median(runs.map((r) => r.stages.copy_compress_seconds));
  const writer = median(runs.map((r) => r.stages.part_writer_seconds));
  const unchecked = median(runs.map((r) => r.backup.no_checksum_seconds));
  const backup = median(runs.map((r) => r.backup.backup_seconds));
  const rate = (seconds: number) => round(bytes / MB / seconds, 1);
  return {
    /** Wall time: MB of COPY text per second of each rung, and the seconds each adds to the one before. */
    mb_per_s: {
      copy: rate(copy),
      copy_compress: rate(compress),
      part_writer_one_part: rate(writer),
      backup_without_checksum: rate(unchecked),
      backup: rate(backup),
    },
    added_s: {
      compress: round(compress - copy),
      hash_upload: round(writer - compress),
      parallel_and_orchestration: round(unchecked - writer),
      checksum_queries: round(backup - unchecked),
    },
    /** CPU seconds (node + PostgreSQL + S3 server) of each rung, and what each adds to the one before. */
    cpu_s: roundDeep(cpu),
    added_cpu_s: roundDeep({
      compress: cpu.copy_compress - cpu.copy,
      hash_upload: cpu.part_writer_one_part - cpu.copy_compress,
      parallel_and_orchestration: cpu.backup_without_checksum - cpu.part_writer_one_part,
      checksum_queries: cpu.backup - cpu.backup_without_checksum,
    }),
  };
}

/**
 * The memory run's peaks against the first repetition's: both ran first in a fresh worker, so both start from
 * the same floor (later repetitions start from what the earlier ones left). Flat: memory does not grow with rows.
 */
function flatness(memoryRun: RunMeasurement, first: RunMeasurement) {
  const base = peaks(first);
  const peak = peaks(memoryRun);
  const backup = peak.backup / base.backup;
  const restore = peak.restore / base.restore;
  return {
    rows: memoryRun.rows,
    parts: memoryRun.backup.parts,
    peak_rss_mb: { backup: mib(peak.backup), restore: mib(peak.restore) },
    /** Its peak ÷ the first repetition's at --rows (goal ≤ 1.1). */
    peak_ratio: { backup: round(backup), restore: round(restore) },
    /** The same with the 95th percentile of the sampled RSS (less sensitive to when V8 collects). */
    p95_ratio: {
      backup: round(memoryRun.backup.rss.p95_bytes / first.backup.rss.p95_bytes),
      restore: round(memoryRun.restore.rss.p95_bytes / first.restore.rss.p95_bytes),
    },
    within_goal: Math.max(backup, restore) <= FLATNESS_GOAL,
    within_goal_p95:
      Math.max(
        memoryRun.backup.rss.p95_bytes / first.backup.rss.p95_bytes,
        memoryRun.restore.rss.p95_bytes / first.restore.rss.p95_bytes,
      ) <= FLATNESS_GOAL,
    ratio: round(ratioOf(memoryRun)),
    restore_ratio: round(restoreRatioOf(memoryRun)),
    backup_seconds: round(memoryRun.backup.backup_seconds),
    copy_seconds: round(memoryRun.copy_seconds),
  };
}

export type BackupReport = ReturnType<typeof buildReport>;

/** Rounds every number in a plain object: rates (>= 1000) to integers, the rest to 3 decimals. */
function roundDeep<T>(value: T): T {
  if (typeof value === 'number') return (Math.abs(value) >= 1000 ? Math.round(value) : round(value)) as T;
  if (Array.isArray(value)) return value.map((item) => roundDeep(item)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, roundDeep(item)])) as T;
  }
  return value;
}

export function formatReport(report: BackupReport): string {
  const lines: Array<[string, string]> = [
    ['rows / parts', `${report.rows.toLocaleString('en-US')} / ${report.parts}`],
    [
      'compression',
      `${report.compression.codec} ${report.compression.level} (stored ÷ COPY ${report.compressed_ratio})`,
    ],
    ['COPY TO STDOUT', `${report.copy_mb_per_s} MB/s (${report.copy_seconds} s)`],
    ['backup', `${report.backup_mb_per_s} MB/s (${report.backup_seconds} s)`],
    ['ratio (goal ≥ 0.6)', `${report.ratio} (first run ${report.ratio_first_run})`],
    ['COPY FROM STDIN', `${report.copy_in_rows_per_s} rows/s (${report.copy_in_seconds} s)`],
    ['restore', `${report.restore_rows_per_s} rows/s (${report.restore_seconds} s)`],
    ['restore_ratio (goal ≥ 0.6)', `${report.restore_ratio} (first run ${report.restore_ratio_first_run})`],
    [
      'peak RSS backup / restore',
      `${report.peak_rss_mb.backup} / ${report.peak_rss_mb.restore} MiB (goal ≤ 256)`,
    ],
    [
      'checksum share of backup',
      `${report.checksum.share_of_backup} (table query ${report.checksum.table_query_seconds} s)`,
    ],
    ['load (1 min)', String(report.load_1m)],
  ];
  if (report.flatness) {
    const f = report.flatness;
    lines.push([
      `flatness at ${f.rows} rows`,
      `${f.peak_ratio.backup} / ${f.peak_ratio.restore} (goal ≤ 1.1)`,
    ]);
  }
  const width = Math.max(...lines.map(([label]) => label.length));
  return `${lines.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n')}\n`;
}
