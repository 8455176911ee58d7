/**
 * PostgreSQL's text of a time value as an archive stores it (microseconds or days since 1970, DuckDB's infinity
 * encodings): the inverse of ./pg-text.ts's time parsers, in the product's session settings (DateStyle ISO,
 * TimeZone UTC): `2026-01-02 03:04:05.12+00`, `0044-03-15 12:00:00+00 BC`, `infinity`. Pure; nothing passes
 * through `Date` (millisecond precision, narrower range).
 *
 * Two readers: restore-archive writes COPY text with every fraction digit ({@link timestampText}); the archive
 * chunk makes the server's own output of each row's time ({@link pgTimeText}: cursor, ledger ranges, Hive
 * partition) instead of selecting `time::text` for every row, which cost the server ≈ 0.75 µs per row.
 * test/integration/archive-time-text.test.ts holds pgTimeText to the server's output, edges included.
 */
import type { ParquetValue } from './column-plan.ts';
import { DATE_INFINITY, DATE_NEG_INFINITY, INT64_MAX, TIMESTAMP_NEG_INFINITY } from './pg-text.ts';

export type TimeKind = 'timestamptz' | 'timestamp' | 'date';

const MICROS_PER_DAY = 86_400_000_000n;

/** Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's civil_from_days). */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const dayOfEra = z - era * 146097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524) - Math.floor(dayOfEra / 146096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

const pad = (value: number, width: number) => String(value).padStart(width, '0');

/** 'YYYY-MM-DD' and the era suffix (astronomical year 0 is 1 BC), as PostgreSQL's ISO output writes them. */
function civilText(days: number): { date: string; bc: boolean } {
  const { year, month, day } = civilFromDays(days);
  const bc = year <= 0;
  return { date: `${pad(bc ? 1 - year : year, 4)}-${pad(month, 2)}-${pad(day, 2)}`, bc };
}

/** Days since 1970-01-01 (DATE) to date text; DuckDB's infinity encodings back to 'infinity'. */
export function dateText(days: number): string {
  if (days === DATE_INFINITY) return 'infinity';
  if (days === DATE_NEG_INFINITY) return '-infinity';
  const { date, bc } = civilText(days);
  return bc ? `${date} BC` : date;
}

/**
 * Microseconds since the epoch (TIMESTAMP MICROS) to timestamp text; `withZone` (timestamptz, stored
 * UTC-adjusted) adds '+00'. ±(2^63 - 1) are 'infinity' / '-infinity'. `fraction` 'all' writes six fraction
 * digits; 'server' drops trailing zeros and a zero fraction, as PostgreSQL's output does.
 */
export function timestampText(micros: bigint, withZone: boolean, fraction: 'all' | 'server' = 'all'): string {
  if (micros === INT64_MAX) return 'infinity';
  if (micros === TIMESTAMP_NEG_INFINITY) return '-infinity';
  const days = floorDiv(micros, MICROS_PER_DAY);
  const { date, bc } = civilText(Number(days));
  const ofDay = Number(micros - days * MICROS_PER_DAY);
  const seconds = Math.floor(ofDay / 1_000_000);
  const micro = ofDay - seconds * 1_000_000;
  const digits =
    fraction === 'all' ? `.${pad(micro, 6)}` : micro === 0 ? '' : `.${pad(micro, 6).replace(/0+$/, '')}`;
  const time = `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}${digits}`;
  return `${date} ${time}${withZone ? '+00' : ''}${bc ? ' BC' : ''}`;
}

/** The server's own output text of a time value of `kind` (what `time::text` gives in the product's sessions). */
export function pgTimeText(kind: TimeKind, value: ParquetValue): string {
  return kind === 'date'
    ? dateText(value as number)
    : timestampText(value as bigint, kind === 'timestamptz', 'server');
}

/** The day (since 1970-01-01) a time value falls on, or undefined for ±infinity. */
export function dayOf(kind: TimeKind, value: ParquetValue): number | undefined {
  if (kind === 'date') {
    const days = value as number;
    return days === DATE_INFINITY || days === DATE_NEG_INFINITY ? undefined : days;
  }
  const micros = value as bigint;
  if (micros === INT64_MAX || micros === TIMESTAMP_NEG_INFINITY) return undefined;
  return Number(floorDiv(micros, MICROS_PER_DAY));
}

/** Floor division: a negative instant belongs to the day before, at a positive time of day. */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b < 0n ? q - 1n : q;
}
