/**
 * Splits a parallel run (`parallelism` > 1) into disjoint time ranges of about equal eligible rows, once, at
 * Start. The rows are sampled (TABLESAMPLE SYSTEM over a few thousand pages, however large the table), never
 * counted; the quantiles of their times become the bounds, truncated to whole seconds (a bound is then no row's
 * own value, and ranges of very unequal size only cost balance, never correctness: every eligible row lies in
 * exactly one range whatever the bounds). Statistics would do too, but a partitioned parent has none unless
 * someone analyzed it, and they ignore the policy's filter.
 *
 * A table whose partitions the run retires keeps its units whole: the leaves a run would retire (wholly before
 * the cutoff, as the plan lists them) all fall in range 0, which alone runs the partition driver (with its upper
 * bound as its cutoff) before the other ranges start, and the sample cuts only the rows after them into the
 * remaining parallelism - 1 ranges (so there are never more ranges than workers).
 */
import { quoteIdent } from '../../lib/contracts/identifiers.ts';
import { type Policy, parallelismOf } from '../../lib/contracts/policy.ts';
import type { WorkRange } from '../../lib/contracts/work-range.ts';
import type { Queryable } from '../adapters/transactions.ts';
import { type ChunkTarget, eligibleWhere } from '../core/chunk-sql.ts';
import { timeToMicros } from '../core/partitions.ts';
import { type RetiringPartition, retiringPartitions } from './partitions/eligibility.ts';
import type { PartitionStrategy } from './partitions/strategy.ts';
import type { PreparedTarget } from './prepare-target.ts';

/** Heap pages the sample reads at most (~24 MB at 8 kB pages): about a second of random reads on gp3. */
const SAMPLE_PAGES = 3_000;

/** ISO-8601 UTC text with microseconds, the form of the run's cutoff (sortable as text for years 1–9999). */
const ISO_UTC = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/** A parallel run's ranges, and whether range 0 has whole partitions to retire first. */
export interface PlannedRanges {
  readonly ranges: WorkRange[];
  readonly unitsPending: boolean;
}

export async function planWorkRanges(
  db: Queryable,
  request: {
    readonly policy: Policy;
    readonly prepared: PreparedTarget;
    readonly strategy: PartitionStrategy | undefined;
    readonly cutoff: string;
  },
): Promise<PlannedRanges> {
  const { policy, prepared, strategy, cutoff } = request;
  const parallelism = parallelismOf(policy);
  // The partitions the run would retire (none when retention by partition is blocked: a filter, a foreign key…).
  const retiring = await retiringPartitions(db, policy, prepared, strategy, cutoff);
  const unitsEnd = lastBound(retiring);
  // Range 0 is the units' range when there are units: the sample then cuts the rest into parallelism - 1.
  const sampled = unitsEnd ? parallelism - 1 : parallelism;
  const bounds = sampled > 1 ? await sampledBounds(db, prepared, cutoff, sampled, unitsEnd) : [];
  return {
    ranges: rangesFromBounds([...(unitsEnd ? [unitsEnd] : []), ...bounds], cutoff),
    unitsPending: unitsEnd !== undefined,
  };
}

/**
 * Ranges [null, b1), [b1, b2), …, [bk, cutoff) from bounds (any order, duplicates allowed); bounds at or past
 * the cutoff are dropped. Pure.
 */
export function rangesFromBounds(bounds: readonly string[], cutoff: string): WorkRange[] {
  const end = timeToMicros(cutoff);
  const sorted = [...new Set(bounds)]
    .map((text) => ({ text, micros: timeToMicros(text) }))
    .filter((b) => b.micros < end)
    .sort((a, b) => (a.micros < b.micros ? -1 : a.micros > b.micros ? 1 : 0))
    .map((b) => b.text);
  const edges = [null, ...sorted, cutoff];
  return edges.slice(1).map((to, index) => ({ index, from: edges[index] ?? null, to: to as string }));
}

/** The upper bound (ISO UTC) of the last of the partitions a run retires, if any. */
function lastBound(retiring: readonly RetiringPartition[]): string | undefined {
  let end: bigint | undefined;
  for (const { bound } of retiring) {
    if (bound.kind !== 'range' || bound.to.kind !== 'value') continue;
    const micros = timeToMicros(bound.to.text);
    if (typeof micros === 'bigint' && (end === undefined || micros > end)) end = micros;
  }
  return end === undefined ? undefined : microsToIso(end);
}

/** `ranges - 1` quantiles of the sampled eligible rows' times (at or after `from`), whole seconds. */
async function sampledBounds(
  db: Queryable,
  prepared: PreparedTarget,
  cutoff: string,
  ranges: number,
  from: string | undefined,
): Promise<string[]> {
  const { rows: size } = await db.query<{ pages: string }>(
    `SELECT coalesce(sum(pg_catalog.pg_relation_size(relid)), 0) / current_setting('block_size')::bigint AS pages
       FROM pg_catalog.pg_partition_tree($1::oid) WHERE isleaf`,
    [prepared.table.oid],
  );
  const pages = Math.max(1, Number(size[0]?.pages ?? 0));
  const percent = Math.min(100, (100 * SAMPLE_PAGES) / pages);
  const fractions = Array.from({ length: ranges - 1 }, (_, i) => (i + 1) / ranges);
  const target: ChunkTarget = { ...prepared.target, ...(from ? { lowerBound: from } : {}) };
  const { rows } = await db.query<{ bound: string }>(
    `SELECT DISTINCT pg_catalog.to_char(pg_catalog.date_trunc('second', q AT TIME ZONE 'UTC'), ${ISO_UTC}) AS bound
       FROM (SELECT pg_catalog.unnest(percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY ${utcInstant(target)})) AS q
               FROM ${prepared.qualifiedName} TABLESAMPLE SYSTEM ($3::float8)
              WHERE ${eligibleWhere(target, false)}) AS pg_lifecycle_quantiles
      WHERE pg_catalog.isfinite(q) AND q >= '0001-01-01 00:00:00+00'::timestamptz
      ORDER BY 1`,
    [cutoff, fractions, percent],
  );
  return rows.map((row) => row.bound).filter((bound) => from === undefined || bound > from);
}

/** The time column as the instant the cutoff is compared with (a `timestamp` or `date` read as UTC). */
function utcInstant(target: ChunkTarget): string {
  const column = quoteIdent(target.timeColumn.name);
  switch (target.timeColumn.kind) {
    case 'timestamptz':
      return column;
    case 'timestamp':
      return `(${column} AT TIME ZONE 'UTC')`;
    case 'date':
      return `(${column}::timestamp AT TIME ZONE 'UTC')`;
  }
}

/** Microseconds since 1970 UTC as ISO-8601 UTC text with microseconds. */
export function microsToIso(micros: bigint): string {
  const millis = micros / 1000n;
  const rest = ((micros % 1000n) + 1000n) % 1000n;
  const floorMillis = micros < 0n && rest !== 0n ? millis - 1n : millis;
  const iso = new Date(Number(floorMillis)).toISOString();
  return `${iso.slice(0, 23)}${String(rest).padStart(3, '0')}Z`;
}
