/**
 * Where a partition-retention run's time goes, per statement kind: the step dependencies' connections are
 * wrapped from outside (nothing in functions/ changes) and every query is timed and classified by its text.
 * Kinds overlap nothing: each query is counted once, under the first kind whose pattern matches.
 */
import type { StepDependencies } from '../../functions/run/dependencies.ts';
import { round } from './stats.ts';

/** Patterns in order: the first match names the kind. */
const KINDS: ReadonlyArray<readonly [string, RegExp]> = [
  ['count_exact', /^SELECT count\(\*\)/],
  ['row_estimate', /reltuples|^ANALYZE|default_statistics_target/],
  // Purge's no-row-at-or-after-the-cutoff check, with its SET LOCAL constraint_exclusion in the same string.
  ['ineligible_check', /SELECT EXISTS \(SELECT 1 FROM/],
  ['detach', /DETACH PARTITION/],
  ['drop', /^DROP TABLE/],
  ['lock', /^LOCK TABLE/],
  ['begin_commit', /^(BEGIN|COMMIT|ROLLBACK)$/],
  ['ledger', /lifecycle\./],
  // The chunked purge's own statements (core/chunk-sql.ts): the window's end found by an index probe, or
  // predicted from the last window's rows per second (its first and last rows looked up), and its DELETE.
  ['window_predicted', /^WITH pg_lifecycle_bound AS MATERIALIZED[\s\S]*make_interval/],
  ['window_probe', /^WITH pg_lifecycle_bound AS MATERIALIZED/],
  ['window_delete', /^DELETE FROM|^WITH deleted AS/],
  ['vacuum', /^VACUUM/],
  ['explain', /^EXPLAIN/],
  ['settings', /^(SET|RESET|SHOW)\b|set_config|current_setting/],
  ['catalog', /\bpg_[a-z_]+\b|::regclass|has_[a-z_]+_privilege/],
];

export type StatementTimes = Record<string, { seconds: number; calls: number }>;

/** The slowest statements of a run (text shortened), for what a kind's seconds are made of. */
export type SlowStatements = Array<{ readonly kind: string; readonly ms: number; readonly text: string }>;

const KEEP_SLOWEST = 10;

function add(times: StatementTimes, kind: string, seconds: number): void {
  const entry = times[kind] ?? { seconds: 0, calls: 0 };
  entry.seconds += seconds;
  entry.calls += 1;
  times[kind] = entry;
}

/**
 * Wraps `deps` so that every query of its connections is added to `times` by kind (`other` if none), and
 * every connect as `connect`; `slowest` keeps the slowest statements.
 */
export function timeStatements(
  deps: StepDependencies,
  times: StatementTimes,
  slowest: SlowStatements = [],
): StepDependencies {
  return {
    ...deps,
    // The step's session timeouts (its policy's chunking) go through: only the timing is added.
    connect: async (timeouts) => {
      const connectStarted = performance.now();
      const client = await deps.connect(timeouts);
      add(times, 'connect', (performance.now() - connectStarted) / 1000);
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      // The COMMIT of a transaction that dropped a table is where PostgreSQL drops its buffers and
      // truncates its files: timed apart from other COMMITs.
      let dropped = false;
      (client as { query: unknown }).query = async (...args: unknown[]) => {
        const first = args[0];
        const text = (typeof first === 'string' ? first : ((first as { text?: string })?.text ?? '')).trim();
        let kind = KINDS.find(([, pattern]) => pattern.test(text))?.[0] ?? 'other';
        if (kind === 'drop') dropped = true;
        else if (text === 'COMMIT' && dropped) kind = 'commit_after_drop';
        if (text === 'COMMIT' || text === 'ROLLBACK') dropped = false;
        const started = performance.now();
        try {
          return await query(...args);
        } finally {
          const ms = performance.now() - started;
          add(times, kind, ms / 1000);
          slowest.push({ kind, ms: round(ms, 1), text: text.replace(/\s+/g, ' ').slice(0, 100) });
          slowest.sort((a, b) => b.ms - a.ms);
          slowest.splice(KEEP_SLOWEST);
        }
      };
      return client;
    },
  };
}

/** The same, rounded for the report and sorted by time spent. */
export function reportStatementTimes(times: StatementTimes): StatementTimes {
  return Object.fromEntries(
    Object.entries(times)
      .sort(([, a], [, b]) => b.seconds - a.seconds)
      .map(([kind, { seconds, calls }]) => [kind, { seconds: round(seconds, 4), calls }]),
  );
}
