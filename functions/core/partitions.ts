/**
 * Partition-aware retention, the pure part: read the bound PostgreSQL prints for a partition
 * (`pg_get_expr(relpartbound)`), place it in time, and decide which partitions of a table RANGE-partitioned
 * on the policy's time column are handled as whole units (archived and/or detached and dropped) instead of
 * row by row.
 *
 * Bounds are compared as integer microseconds (BigInt), never through a JS Date: the session prints
 * timestamps in ISO style and UTC (see functions/commons/database.ts), microseconds included.
 */
import type { TimeColumnKind } from './chunk-sql.ts';
import { LifecycleError } from './errors.ts';

/** One side of a range bound: a literal value, or MINVALUE / MAXVALUE. */
export type BoundValue =
  | { readonly kind: 'value'; readonly text: string }
  | { readonly kind: 'minvalue' }
  | { readonly kind: 'maxvalue' };

export type PartitionBound =
  | { readonly kind: 'default' }
  | { readonly kind: 'range'; readonly from: BoundValue; readonly to: BoundValue };

/** A partition of the policy's table, as listed from the catalog. */
export interface PartitionInfo {
  readonly oid: string;
  readonly schema: string;
  readonly name: string;
  /** 'r' a table (a leaf), 'p' itself partitioned, 'f' a foreign table. */
  readonly relkind: string;
  /** `pg_get_expr(relpartbound)` text, e.g. `FOR VALUES FROM ('2024-01-01 00:00:00+00') TO (…)`. */
  readonly boundText: string;
  /** A `DETACH … CONCURRENTLY` that was interrupted (`pg_inherits.inhdetachpending`). */
  readonly detachPending: boolean;
}

/** A partition bound or a time value this module cannot read (a list, hash or multi-column bound…). */
export class PartitionBoundError extends LifecycleError {
  override readonly name = 'PartitionBoundError';
}

/**
 * Parses a partition bound as `pg_get_expr(relpartbound, oid)` prints it: `DEFAULT` or a single-column
 * `FOR VALUES FROM (x) TO (y)` where x and y are quoted literals, MINVALUE or MAXVALUE. Anything else
 * (list, hash, multi-column ranges) throws PartitionBoundError.
 */
export function parsePartitionBound(text: string): PartitionBound {
  const trimmed = text.trim();
  if (trimmed === 'DEFAULT') return { kind: 'default' };
  const prefix = 'FOR VALUES FROM (';
  if (!trimmed.startsWith(prefix)) throw new PartitionBoundError(`not a range bound: ${text}`);
  const from = readBoundValue(trimmed, prefix.length);
  const middle = ') TO (';
  if (trimmed.slice(from.end, from.end + middle.length) !== middle) {
    throw new PartitionBoundError(`not a single-column range bound: ${text}`);
  }
  const to = readBoundValue(trimmed, from.end + middle.length);
  if (trimmed.slice(to.end) !== ')')
    throw new PartitionBoundError(`not a single-column range bound: ${text}`);
  return { kind: 'range', from: from.value, to: to.value };
}

function readBoundValue(text: string, start: number): { value: BoundValue; end: number } {
  for (const keyword of ['MINVALUE', 'MAXVALUE'] as const) {
    if (text.startsWith(keyword, start)) {
      return {
        value: { kind: keyword === 'MINVALUE' ? 'minvalue' : 'maxvalue' },
        end: start + keyword.length,
      };
    }
  }
  if (text[start] !== "'") throw new PartitionBoundError(`unexpected bound value at ${start} in ${text}`);
  let value = '';
  let i = start + 1;
  for (;;) {
    if (i >= text.length) throw new PartitionBoundError(`unterminated literal in ${text}`);
    if (text[i] === "'") {
      if (text[i + 1] === "'") {
        value += "'";
        i += 2;
        continue;
      }
      return { value: { kind: 'value', text: value }, end: i + 1 };
    }
    value += text[i];
    i++;
  }
}

const TIME_TEXT =
  /^(\d{4,})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?)?( BC)?$/;

/**
 * A time value as PostgreSQL prints it (ISO DateStyle; `timestamptz` with its offset, `timestamp` and
 * `date` without one, read as UTC) or as ISO-8601 UTC (`…T…Z`, the run's cutoff), in microseconds since
 * 1970-01-01 UTC; `infinity` / `-infinity` are ±Infinity.
 */
export function timeToMicros(text: string): bigint | number {
  if (text === 'infinity') return Number.POSITIVE_INFINITY;
  if (text === '-infinity') return Number.NEGATIVE_INFINITY;
  const match = TIME_TEXT.exec(text);
  if (!match) throw new PartitionBoundError(`cannot read time value ${JSON.stringify(text)}`);
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', , sign, oh = '0', om = '0', os = '0', bc] =
    match;
  // Year 1 BC is year 0 of the proleptic Gregorian calendar.
  const year = bc ? 1 - Number(y) : Number(y);
  const days = daysFromCivil(year, Number(mo), Number(d));
  const micros = BigInt(fraction.padEnd(6, '0').slice(0, 6) || '0');
  let seconds = BigInt(days) * 86_400n + BigInt(Number(h) * 3600 + Number(mi) * 60 + Number(s));
  if (sign) {
    const offset = BigInt(Number(oh) * 3600 + Number(om) * 60 + Number(os));
    seconds += sign === '+' ? -offset : offset;
  }
  return seconds * 1_000_000n + micros;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

const MICROS_PER_DAY = 86_400_000_000n;

/**
 * The instant below which every value of a column of `kind` is eligible, the way `cutoffPredicate` in
 * chunk-sql.ts compares it: timestamps against the cutoff itself (a `timestamp` as UTC wall time), dates
 * against the cutoff's UTC day (the cutoff's own day is kept whole).
 */
export function eligibleBelow(cutoff: string, kind: TimeColumnKind): bigint {
  const micros = timeToMicros(cutoff);
  if (typeof micros !== 'bigint')
    throw new PartitionBoundError(`cutoff must be a finite time, got ${cutoff}`);
  if (kind !== 'date') return micros;
  const floor = micros - (((micros % MICROS_PER_DAY) + MICROS_PER_DAY) % MICROS_PER_DAY);
  return floor;
}

function compareBound(value: BoundValue, instant: bigint): number {
  if (value.kind === 'minvalue') return -1;
  if (value.kind === 'maxvalue') return 1;
  const micros = timeToMicros(value.text);
  if (micros === Number.NEGATIVE_INFINITY) return -1;
  if (micros === Number.POSITIVE_INFINITY) return 1;
  return micros < instant ? -1 : micros > instant ? 1 : 0;
}

/** Why a partition is left to the chunked path (or left alone). */
export type KeepReason =
  | 'default-partition'
  | 'straddles-cutoff'
  | 'after-cutoff'
  | 'last-partition'
  | 'not-a-leaf'
  | 'detach-pending'
  | 'unreadable-bound';

export type PartitionDecision =
  | { readonly partition: PartitionInfo; readonly bound: PartitionBound; readonly action: 'retire' }
  | {
      readonly partition: PartitionInfo;
      readonly bound: PartitionBound | undefined;
      readonly action: 'keep';
      readonly reason: KeepReason;
    };

/**
 * Decides, for every partition of a table RANGE-partitioned on the time column, whether it is retired as
 * a unit: only a leaf whose upper bound is at or below the cutoff (every row it can hold is eligible).
 * Never the DEFAULT partition (it may hold any time), never one straddling the cutoff (the chunked path
 * takes its old rows), never a partition mid-detach, and never the last range partition: at least one
 * stays attached (the newest of those that would go), so the table keeps somewhere for new old-dated rows
 * and its partition layout. Retired partitions come first, oldest first.
 */
export function decidePartitions(
  partitions: readonly PartitionInfo[],
  cutoff: string,
  kind: TimeColumnKind,
): PartitionDecision[] {
  const below = eligibleBelow(cutoff, kind);
  const decisions: PartitionDecision[] = [];
  const candidates: Array<{ partition: PartitionInfo; bound: PartitionBound & { kind: 'range' } }> = [];
  let rangePartitions = 0;
  for (const partition of partitions) {
    let bound: PartitionBound;
    try {
      bound = parsePartitionBound(partition.boundText);
    } catch {
      decisions.push({ partition, bound: undefined, action: 'keep', reason: 'unreadable-bound' });
      continue;
    }
    if (bound.kind === 'default') {
      decisions.push({ partition, bound, action: 'keep', reason: 'default-partition' });
      continue;
    }
    if (partition.detachPending) {
      decisions.push({ partition, bound, action: 'keep', reason: 'detach-pending' });
      continue;
    }
    rangePartitions++;
    if (compareBound(bound.to, below) > 0) {
      const reason = compareBound(bound.from, below) < 0 ? 'straddles-cutoff' : 'after-cutoff';
      decisions.push({ partition, bound, action: 'keep', reason });
      continue;
    }
    if (partition.relkind !== 'r') {
      decisions.push({ partition, bound, action: 'keep', reason: 'not-a-leaf' });
      continue;
    }
    candidates.push({ partition, bound });
  }
  candidates.sort((a, b) => compareValues(a.bound.to, b.bound.to));
  // Every range partition would go: keep the newest one.
  const keepLast = candidates.length > 0 && candidates.length === rangePartitions;
  const retired = keepLast ? candidates.slice(0, -1) : candidates;
  const kept = keepLast ? candidates.slice(-1) : [];
  return [
    ...retired.map(({ partition, bound }) => ({ partition, bound, action: 'retire' as const })),
    ...kept.map(({ partition, bound }) => ({
      partition,
      bound,
      action: 'keep' as const,
      reason: 'last-partition' as const,
    })),
    ...decisions,
  ];
}

function compareValues(a: BoundValue, b: BoundValue): number {
  const rank = (v: BoundValue) => (v.kind === 'minvalue' ? -1 : v.kind === 'maxvalue' ? 1 : 0);
  if (a.kind !== 'value' || b.kind !== 'value') return rank(a) - rank(b);
  const x = timeToMicros(a.text);
  const y = timeToMicros(b.text);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** `MINVALUE`, `MAXVALUE` or the literal's text, as the ledger records a bound. */
export function describeBoundValue(value: BoundValue): string {
  return value.kind === 'value' ? value.text : value.kind.toUpperCase();
}
