/**
 * Throughput benchmarks against local servers: `npm run bench -- <benchmark> [options]`.
 *
 *   archive   COPY baseline vs the real archive path (local state machine, real handlers); see archive.ts.
 *   purge     single DELETE vs the real chunked purge path on identical data; see purge.ts.
 *   backup    COPY TO / COPY FROM baselines vs the real backup path and a restore of its parts; see backup.ts.
 *   anonymize single UPDATE with the compiled masks vs the real chunked anonymize path; see anonymize.ts.
 *   erasure   a subject's export vs its erasure over N archived objects (subjects policy); see erasure.ts.
 *   impact    an OLTP workload's latency alone vs during an archive / a purge, lock waits, WAL; see impact.ts.
 *   workers   a parallel run (parallelism N) vs one worker on the same rows, archive and purge; see workers.ts.
 *   memory    peak RSS of a fresh process running one archive / purge, at two table sizes; see step-memory.ts.
 *
 * Powertools is silenced before any handler module loads (as bin/pg-lifecycle.ts does), and Node 20 gets the
 * one polyfill aws-local-stepfunctions needs, so everything else is imported dynamically.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_TRACE_ENABLED ??= 'false';
// The SDK's notice about Node versions published after January 2027: nothing a bench run can act on.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

await import('../support/polyfills.ts');

type BenchmarkMain = (argv: string[]) => Promise<number>;

/** One entry per benchmark; each module exports `main(argv)` returning the exit code. */
const benchmarks: Record<string, () => Promise<BenchmarkMain>> = {
  archive: async () => (await import('./archive.ts')).main,
  purge: async () => (await import('./purge.ts')).main,
  backup: async () => (await import('./backup.ts')).main,
  anonymize: async () => (await import('./anonymize.ts')).main,
  erasure: async () => (await import('./erasure.ts')).main,
  impact: async () => (await import('./impact.ts')).main,
  workers: async () => (await import('./workers.ts')).main,
  memory: async () => (await import('./step-memory.ts')).main,
};

const USAGE = `usage: npm run bench -- <benchmark> [options]

benchmarks:
  archive   COPY TO STDOUT baseline vs archive through the local state machine
            --rows N (1000000)  --repeat K (1)  --json  --max-rows N (50000)  --initial-rows N
            --compression snappy|zstd|gzip|uncompressed (snappy)  --s3 child|inproc (child)
            --cpu-profile FILE (profile the first archive run only)
            --probe (also time the chunk loop rebuilt outside the product, sequential vs pipelined)
  purge     single DELETE … WHERE created_at < cutoff vs chunked purge through the local state machine,
            and partition retention vs chunked purge of the same rows (monthly partitions)
            --rows N (1000000)  --repeat K (1)  --json  --target-ms N (250)  --max-rows N (50000)
            --only partitions (the partition part alone)  --partition-count estimate|exact (estimate)
  backup    COPY TO STDOUT baseline vs backup through the local state machine (ratio), and COPY FROM STDIN
            of the same rows vs restoring the backup's parts (restore_ratio); peak RSS of both
            --rows N (1000000)  --repeat K (1)  --json  --compression gzip|zstd (gzip)  --level N (1)
            --part-mib N (32)  --max-concurrency N (2)  --s3 child|inproc (child)
            --memory-rows N (also one repetition at N rows: peak RSS flatness, e.g. 4000000)
  anonymize one UPDATE … SET <the policy's compiled masks> vs chunked anonymize through the local state
            machine on identical data (bench.profiles); conservation: every row masked, a re-run updates 0
            --rows N (1000000)  --repeat K (1)  --json  --target-ms N (policy default 250)  --max-rows N
  erasure   one subject (a row in each of N archived objects): export request (reads every object) vs erase
            request (rewrites every object) through the subjects policy's local state machine
            --objects N (1000)  --rows-per-object N (100)  --repeat K (1)  --json  --s3 child|inproc (child)
  impact    an OLTP workload (child process, open loop) alone, then during an archive and during a purge of
            the old rows (product defaults): latency p50/p99 and ratios, lock waits caused by the run, WAL
            bytes per row; unpinned, and pinned with taskset (node + S3 on core 0, PostgreSQL + workload on 1)
            --rows N (1000000)  --repeat K (1)  --json  --oltp-clients N (4)  --oltp-rate N per client (50)
            --alone-seconds N (15)  --pin both|off|only (both)
  workers   parallelism N vs 1 worker on the same rows (archive, then purge): rows/s, speed-up, scaling
            efficiency, rows per CPU-second; conservation (table empty, ranges done, S3 = ledger)
            --rows N (1000000)  --workers N (4)  --repeat K (1)  --json  --only archive|purge
  memory    peak RSS of a fresh process running one archive / purge policy (nothing else loaded), at each
            row count: the chunk step's memory and its growth with the table
            --rows N,N (1000000,4000000)  --only archive|purge  --json
`;

const [name, ...rest] = process.argv.slice(2);
const load = name ? benchmarks[name] : undefined;
if (!load) {
  process.stderr.write(name && name !== '--help' ? `unknown benchmark "${name}"\n\n${USAGE}` : USAGE);
  process.exitCode = name === '--help' ? 0 : 2;
} else {
  const main = await load();
  process.exitCode = await main(rest);
}
