/**
 * The impact benchmark's figures from what the workload child recorded: latency percentiles of the statements
 * due in a window, the lock waits the sampler saw in it (and which of them the run's backends caused), the
 * sampled wait events, and the sampler's own resolution.
 */

import { type LockWait, STATEMENT_KINDS, type WorkloadResult } from './impact-workload.ts';
import { round } from './stats.ts';

/** Nearest-rank quantile of an ascending array (0 when empty). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

export interface LatencyFigures {
  /** Statements due in the window (their latency counts from when they were due). */
  readonly statements: number;
  readonly failed: number;
  readonly p50_ms: number;
  /** p90 and p95: how far up the distribution a run's harm reaches (pacing makes it rarer, not milder). */
  readonly p90_ms: number;
  readonly p95_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  /** Send → response, without the wait behind the client's previous statement. */
  readonly service_p50_ms: number;
  readonly service_p99_ms: number;
  readonly statements_over_100ms: number;
  readonly by_kind: Record<string, { statements: number; p50_ms: number; p99_ms: number }>;
}

export function latencyFigures(data: WorkloadResult, start: number, end: number): LatencyFigures {
  const latency: number[] = [];
  const service: number[] = [];
  const perKind = STATEMENT_KINDS.map(() => [] as number[]);
  let failed = 0;
  data.due.forEach((due, i) => {
    if (due < start || due >= end) return;
    const ms = data.latencyMs[i] as number;
    latency.push(ms);
    service.push(data.serviceMs[i] as number);
    perKind[data.kind[i] as number]?.push(ms);
    failed += data.failed[i] ?? 0;
  });
  const asc = (values: number[]) => values.sort((a, b) => a - b);
  asc(latency);
  asc(service);
  return {
    statements: latency.length,
    failed,
    p50_ms: round(quantile(latency, 0.5), 2),
    p90_ms: round(quantile(latency, 0.9), 2),
    p95_ms: round(quantile(latency, 0.95), 2),
    p99_ms: round(quantile(latency, 0.99), 2),
    max_ms: round(latency[latency.length - 1] ?? 0, 2),
    service_p50_ms: round(quantile(service, 0.5), 2),
    service_p99_ms: round(quantile(service, 0.99), 2),
    statements_over_100ms: latency.filter((ms) => ms > 100).length,
    by_kind: Object.fromEntries(
      STATEMENT_KINDS.map((kind, k) => {
        const values = asc(perKind[k] as number[]);
        return [
          kind,
          {
            statements: values.length,
            p50_ms: round(quantile(values, 0.5), 2),
            p99_ms: round(quantile(values, 0.99), 2),
          },
        ];
      }),
    ),
  };
}

export interface LockWaitFigures {
  /** Heavyweight-lock waits of workload backends the sampler saw in the window, whoever held the lock. */
  readonly observed: number;
  /** Of those, waits on a lock held (or queued ahead) by a backend that is not the workload's: the run's. */
  readonly by_run: number;
  readonly by_run_over_100ms: number;
  /** Longest wait caused by the run (lower bound: exact start to the last sample that saw it), ms. */
  readonly max_by_run_ms: number;
  readonly max_any_ms: number;
  /** Blockers of the run's waits, by application_name (or backend_type). */
  readonly blockers: Record<string, number>;
  /** Lock types and modes waited for, by the run's waits: `tuple/ExclusiveLock`… */
  readonly locks: Record<string, number>;
  /** The run's waits by waiting statement → blocking statement (first 100 characters of each). */
  readonly statements: Record<string, number>;
}

export function lockWaitFigures(
  data: WorkloadResult,
  start: number,
  end: number,
  samplerIntervalMs: number,
): LockWaitFigures & { waits: Array<LockWait & { duration_ms: number; by_run: boolean }> } {
  const workload = new Set(data.workloadPids);
  const waits = data.lockWaits
    .filter((wait) => wait.lastSeen >= start && wait.waitStart < end)
    .map((wait) => ({
      ...wait,
      // The wait lasted at least to the last sample that saw it; `goneBy` bounds it from above.
      duration_ms: round(wait.lastSeen - wait.waitStart, 1),
      upper_ms: round((wait.goneBy ?? wait.lastSeen + samplerIntervalMs) - wait.waitStart, 1),
      by_run: wait.blockers.some((pid) => !workload.has(pid)),
    }));
  const byRun = waits.filter((wait) => wait.by_run);
  const count = (keys: string[]) =>
    keys.reduce<Record<string, number>>((counts, key) => {
      counts[key] = (counts[key] ?? 0) + 1;
      return counts;
    }, {});
  return {
    observed: waits.length,
    by_run: byRun.length,
    by_run_over_100ms: byRun.filter((wait) => wait.duration_ms > 100).length,
    max_by_run_ms: Math.max(0, ...byRun.map((wait) => wait.duration_ms)),
    max_any_ms: Math.max(0, ...waits.map((wait) => wait.duration_ms)),
    blockers: count(
      byRun.flatMap((wait) =>
        wait.blockers.flatMap((pid, i) => (workload.has(pid) ? [] : [wait.blockerNames[i] ?? `pid ${pid}`])),
      ),
    ),
    locks: count(byRun.map((wait) => `${wait.lockType}/${wait.mode}`)),
    statements: count(
      byRun.map((wait) => `${wait.query} ← ${wait.blockerQueries.filter((q) => q !== '').join(' | ')}`),
    ),
    waits,
  };
}

export interface SamplerFigures {
  readonly samples: number;
  readonly median_gap_ms: number;
  readonly max_gap_ms: number;
  /**
   * Share of the sampled states of active workload backends, by wait event (`CPU`: active without one —
   * running or waiting for a CPU), highest first.
   */
  readonly wait_events: Record<string, number>;
  /** Active workload backends per sample, on average (0 … clients). */
  readonly active_backends: number;
}

export function samplerFigures(data: WorkloadResult, start: number, end: number): SamplerFigures {
  const at: number[] = [];
  const events: string[] = [];
  data.sampleAt.forEach((t, i) => {
    if (t < start || t >= end) return;
    at.push(t);
    events.push(...(data.sampleEvents[i] ?? []));
  });
  const gaps = at.slice(1).map((t, i) => t - (at[i] as number));
  const counts = new Map<string, number>();
  for (const event of events) counts.set(event, (counts.get(event) ?? 0) + 1);
  const sortedGaps = [...gaps].sort((a, b) => a - b);
  return {
    samples: at.length,
    median_gap_ms: round(quantile(sortedGaps, 0.5), 1),
    max_gap_ms: round(sortedGaps[sortedGaps.length - 1] ?? 0, 1),
    wait_events: Object.fromEntries(
      [...counts.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([event, n]) => [event, round(n / Math.max(1, events.length), 3)]),
    ),
    active_backends: round(events.length / Math.max(1, at.length), 3),
  };
}
