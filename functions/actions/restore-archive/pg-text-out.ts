/**
 * The inverse of functions/core/parquet/pg-text.ts: from the exact values an archive object stores back to
 * text PostgreSQL's input functions read as the same value. Pure; nothing passes through `Date` (millisecond
 * precision, narrower range) or a float where the archive kept an integer.
 */
import {
  DATE_INFINITY,
  DATE_NEG_INFINITY,
  INT64_MAX,
  TIMESTAMP_NEG_INFINITY,
} from '../../core/parquet/pg-text.ts';

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
 * Microseconds since the epoch (TIMESTAMP MICROS) to timestamp text with all six fraction digits; `withZone`
 * (timestamptz, stored UTC-adjusted) adds '+00'. ±(2^63 - 1) are 'infinity' / '-infinity'.
 */
export function timestampText(micros: bigint, withZone: boolean): string {
  if (micros === INT64_MAX) return 'infinity';
  if (micros === TIMESTAMP_NEG_INFINITY) return '-infinity';
  // Floor division: a negative instant belongs to the day before, at a positive time of day.
  let days = micros / MICROS_PER_DAY;
  let rest = micros - days * MICROS_PER_DAY;
  if (rest < 0n) {
    days -= 1n;
    rest += MICROS_PER_DAY;
  }
  const { date, bc } = civilText(Number(days));
  const ofDay = Number(rest);
  const seconds = Math.floor(ofDay / 1_000_000);
  const fraction = ofDay - seconds * 1_000_000;
  const time = `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}.${pad(fraction, 6)}`;
  return `${date} ${time}${withZone ? '+00' : ''}${bc ? ' BC' : ''}`;
}

/** The unscaled integer of DECIMAL(p, scale) as numeric text with exactly `scale` fraction digits. */
export function decimalText(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString();
  if (scale === 0) return negative ? `-${digits}` : digits;
  const padded = digits.padStart(scale + 1, '0');
  const text = `${padded.slice(0, -scale)}.${padded.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

/** A big-endian two's complement integer (DECIMAL in a FIXED_LEN_BYTE_ARRAY). */
export function bigIntFromBytes(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  if (bytes.length > 0 && ((bytes[0] as number) & 0x80) !== 0) value -= 1n << BigInt(bytes.length * 8);
  return value;
}

/**
 * A float as float4/float8 input reads it back bit for bit: JavaScript prints the shortest text that rounds
 * to the same double, and a FLOAT column's double is exactly its float32, which float4in rounds back to.
 */
export function floatText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return 'Infinity';
  if (value === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (Object.is(value, -0)) return '-0';
  return String(value);
}

/**
 * A float32 (read as the double equal to it) as its shortest text, as float4out prints it: the fewest
 * significant digits (at most 9) that round back to the same float32.
 */
export function float32Text(value: number): string {
  if (!Number.isFinite(value) || value === 0) return floatText(value);
  for (let digits = 1; digits <= 9; digits++) {
    const shortest = Number(value.toPrecision(digits));
    if (Math.fround(shortest) === value) return String(shortest);
  }
  return String(value);
}

/** bytea in hex format. */
export function byteaText(bytes: Uint8Array): string {
  return `\\x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
}

/** A one-dimensional array literal: every element quoted (so no element text needs inspecting), NULLs bare. */
export function arrayText(elements: ReadonlyArray<string | null>): string {
  const parts = elements.map((element) =>
    element === null ? 'NULL' : `"${element.replace(/[\\"]/g, (c) => `\\${c}`)}"`,
  );
  return `{${parts.join(',')}}`;
}

const COPY_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** One value as a field of COPY's text format (`\N` for NULL, backslash, newline, CR and tab escaped). */
export function copyField(value: string | null): string {
  if (value === null) return '\\N';
  return value.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c] as string);
}

/** One row of COPY's text format, newline included. */
export function copyLine(values: ReadonlyArray<string | null>): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) line += '\t';
    line += copyField(values[i] ?? null);
  }
  return `${line}\n`;
}
