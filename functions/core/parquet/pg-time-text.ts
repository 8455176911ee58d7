/**
 * PostgreSQL's text of a time value read from COPY binary (./copy-binary.ts's Parquet value: microseconds or
 * days since 1970, DuckDB's infinity encodings), exactly as the server prints it in the product's sessions
 * (DateStyle ISO, TimeZone UTC): `2026-01-02 03:04:05.12+00`, `0044-03-15 12:00:00+00 BC`, `infinity`.
 *
 * Why: the archive needs each row's Hive partition and a few rows' text (cursor, ledger ranges). Asking the
 * server for `time::text` of every deleted row cost it ≈ 0.75 µs per row (a quarter of the chunk statement)
 * and Node one string per row, kept until the chunk was encoded; the binary value is already there.
 * test/integration/archive-time-text.test.ts holds this to the server's own output, edges included.
 */
import type { ParquetValue } from './column-plan.ts';
import { DATE_INFINITY, DATE_NEG_INFINITY, INT64_MAX, TIMESTAMP_NEG_INFINITY } from './pg-text.ts';

export type TimeKind = 'timestamptz' | 'timestamp' | 'date';

const MICROS_PER_DAY_BIG = 86_400_000_000n;

/** A civil date (proleptic Gregorian, astronomical year: 0 is 1 BC). */
export interface CivilDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

/** The day (since 1970-01-01) a time value falls on, or undefined for ±infinity. */
export function dayOf(kind: TimeKind, value: ParquetValue): number | undefined {
  if (kind === 'date') {
    const days = value as number;
    return days === DATE_INFINITY || days === DATE_NEG_INFINITY ? undefined : days;
  }
  const micros = value as bigint;
  if (micros === INT64_MAX || micros === TIMESTAMP_NEG_INFINITY) return undefined;
  return Number(floorDiv(micros, MICROS_PER_DAY_BIG));
}

/** PostgreSQL's output text of a time value of `kind`. */
export function pgTimeText(kind: TimeKind, value: ParquetValue): string {
  if (kind === 'date') {
    const days = value as number;
    if (days === DATE_INFINITY) return 'infinity';
    if (days === DATE_NEG_INFINITY) return '-infinity';
    const date = civilFromDays(days);
    return `${dateText(date)}${date.year <= 0 ? ' BC' : ''}`;
  }
  const micros = value as bigint;
  if (micros === INT64_MAX) return 'infinity';
  if (micros === TIMESTAMP_NEG_INFINITY) return '-infinity';
  const days = floorDiv(micros, MICROS_PER_DAY_BIG);
  const date = civilFromDays(Number(days));
  let rest = Number(micros - days * MICROS_PER_DAY_BIG); // 0 ≤ rest < one day
  const fraction = rest % 1_000_000;
  rest = (rest - fraction) / 1_000_000;
  const time = `${pad(Math.floor(rest / 3600), 2)}:${pad(Math.floor(rest / 60) % 60, 2)}:${pad(rest % 60, 2)}`;
  // Microseconds with their trailing zeros dropped, and none at all on a whole second.
  const micro = fraction === 0 ? '' : `.${pad(fraction, 6).replace(/0+$/, '')}`;
  const zone = kind === 'timestamptz' ? '+00' : '';
  return `${dateText(date)} ${time}${micro}${zone}${date.year <= 0 ? ' BC' : ''}`;
}

/** Days since 1970-01-01 → civil date (H. Hinnant's days_from_civil inverse), for any integer day. */
export function civilFromDays(days: number): CivilDate {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** YYYY-MM-DD with PostgreSQL's year: 1 BC is 0001 (astronomical 0), at least four digits. */
function dateText({ year, month, day }: CivilDate): string {
  const shown = year <= 0 ? 1 - year : year;
  return `${pad(shown, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b < 0n ? q - 1n : q;
}
