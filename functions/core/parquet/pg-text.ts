/**
 * Parsers from PostgreSQL text output to the exact values Parquet stores.
 *
 * Rows arrive in text format under fixed session settings (TimeZone=UTC, DateStyle=ISO,
 * IntervalStyle=iso_8601, extra_float_digits=3, bytea_output=hex), so each type has one known shape.
 * Anything else is a {@link PgTextParseError}; a well-formed value that the Parquet type cannot hold
 * exactly is an {@link UnrepresentableValueError}. Nothing goes through `Date`, which has only
 * millisecond precision and a narrower range than PostgreSQL.
 */
import { PgTextParseError, UnrepresentableValueError } from './errors.ts';

/** Largest int64; DuckDB stores timestamp 'infinity' as this many microseconds. */
export const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
/** DuckDB's timestamp '-infinity' (not INT64_MIN, which it reserves). */
export const TIMESTAMP_NEG_INFINITY = -INT64_MAX;
/** DuckDB's date 'infinity' / '-infinity', in days since 1970-01-01. */
export const DATE_INFINITY = 2_147_483_647;
export const DATE_NEG_INFINITY = -2_147_483_647;

const INTEGER = /^-?\d+$/;
const FLOAT = /^-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;
const DATE = /^(\d{4,})-(\d\d)-(\d\d)( BC)?$/;
// The zone is present only for timestamptz; with TimeZone=UTC it is '+00', but any offset is honoured.
const TIMESTAMP =
  /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d\d)(?::(\d\d)(?::(\d\d))?)?)?( BC)?$/;

/**
 * Describes a value for an error message without its contents: errors reach logs and the ledger, and
 * row contents must never do (they may be personal data). Column and row position locate the value.
 */
export function preview(text: string): string {
  return `(a value of ${text.length} characters)`;
}

/** int8 text to bigint. */
export function parseInt64(text: string): bigint {
  if (!INTEGER.test(text)) throw new PgTextParseError(`not an integer: ${preview(text)}`);
  const value = BigInt(text);
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new UnrepresentableValueError(`${preview(text)} is outside the int64 range`);
  }
  return value;
}

/** int4 / int2 text to number; `bits` bounds the range so a mis-declared column cannot wrap. */
export function parseInt32(text: string, bits: 16 | 32 = 32): number {
  if (!INTEGER.test(text)) throw new PgTextParseError(`not an integer: ${preview(text)}`);
  const value = Number(text);
  const limit = 2 ** (bits - 1);
  if (value < -limit || value >= limit) {
    throw new UnrepresentableValueError(`${preview(text)} is outside the int${bits} range`);
  }
  return value;
}

/**
 * float8 text to number. PostgreSQL prints the shortest text that reads back to the same double, so
 * `Number` (correctly rounded) restores it bit for bit, including '-0', 'NaN' and '±Infinity'.
 */
export function parseFloat64(text: string): number {
  // Number() alone would also accept '', ' ', '0x1f' and '1_0'; only PostgreSQL's shapes pass here.
  if (FLOAT.test(text) || text === 'NaN' || text === 'Infinity' || text === '-Infinity') return Number(text);
  throw new PgTextParseError(`not a float: ${preview(text)}`);
}

/**
 * float4 text to the float32 value (as a number). The text is the shortest that reads back to that
 * float32, at most 9 significant digits, so rounding it to a double and then to float32 lands on it.
 */
export function parseFloat32(text: string): number {
  return Math.fround(parseFloat64(text));
}

/** bool text ('t' / 'f'). */
export function parseBool(text: string): boolean {
  if (text === 't') return true;
  if (text === 'f') return false;
  throw new PgTextParseError(`not a boolean: ${preview(text)}`);
}

/**
 * numeric text to the unscaled integer of DECIMAL(precision, scale): '12.3' at scale 2 is 1230n.
 * Fewer fraction digits are padded; extra digits are accepted only when they are zeros, because
 * dropping others would round archived data. NaN and ±Infinity have no DECIMAL form.
 */
export function parseDecimalUnscaled(text: string, precision: number, scale: number): bigint {
  const match = DECIMAL.exec(text);
  if (!match) {
    if (text === 'NaN' || text === 'Infinity' || text === '-Infinity') {
      throw new UnrepresentableValueError(`${text} has no DECIMAL(${precision},${scale}) representation`);
    }
    throw new PgTextParseError(`not a numeric: ${preview(text)}`);
  }
  const [, sign, whole = '', fraction = ''] = match;
  let digits: string;
  if (fraction.length > scale) {
    for (let i = scale; i < fraction.length; i++) {
      if (fraction.charCodeAt(i) !== 48) {
        throw new UnrepresentableValueError(`${preview(text)} has more than ${scale} fraction digits`);
      }
    }
    digits = whole + fraction.slice(0, scale);
  } else {
    digits = whole + fraction.padEnd(scale, '0');
  }
  let leadingZeros = 0;
  while (leadingZeros < digits.length && digits.charCodeAt(leadingZeros) === 48) leadingZeros++;
  if (digits.length - leadingZeros > precision) {
    throw new UnrepresentableValueError(`${preview(text)} does not fit DECIMAL(${precision},${scale})`);
  }
  const unscaled = BigInt(digits);
  return sign ? -unscaled : unscaled;
}

/**
 * Days from 1970-01-01 to a proleptic Gregorian date (PostgreSQL's calendar for all dates), with
 * astronomical years (1 BC is year 0). Howard Hinnant's days_from_civil.
 */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * ((month + 9) % 12) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of 'YYYY-MM-DD[ BC]'; throws unless the fields form a real date. */
function civilDays(text: string, yearText: string, monthText: string, dayText: string, bc: boolean): number {
  const shownYear = Number(yearText);
  const year = bc ? 1 - shownYear : shownYear;
  const month = Number(monthText);
  const day = Number(dayText);
  if (shownYear < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    throw new PgTextParseError(`not a valid date: ${preview(text)}`);
  }
  return daysFromCivil(year, month, day);
}

/**
 * date text to days since 1970-01-01. 'infinity' / '-infinity' become ±2147483647, the values DuckDB
 * reads back as date 'infinity' / '-infinity'; PostgreSQL's finite range ends well inside them.
 */
export function parseDateDays(text: string): number {
  const match = DATE.exec(text);
  if (!match) {
    if (text === 'infinity') return DATE_INFINITY;
    if (text === '-infinity') return DATE_NEG_INFINITY;
    throw new PgTextParseError(`not a date: ${preview(text)}`);
  }
  const [, year = '', month = '', day = '', bc] = match;
  return civilDays(text, year, month, day, bc !== undefined);
}

/**
 * timestamp / timestamptz text to microseconds since 1970-01-01 00:00:00 UTC (timestamptz) or since
 * that wall-clock instant (timestamp). Exact to the microsecond. 'infinity' / '-infinity' become
 * ±(2^63 - 1), which DuckDB reads back as 'infinity' / '-infinity'; finite values must stay strictly
 * inside so they never read back as infinity.
 */
export function parseTimestampMicros(text: string, withZone: boolean): bigint {
  const match = TIMESTAMP.exec(text);
  if (!match) {
    if (text === 'infinity') return INT64_MAX;
    if (text === '-infinity') return TIMESTAMP_NEG_INFINITY;
    throw new PgTextParseError(`not a ${withZone ? 'timestamptz' : 'timestamp'}: ${preview(text)}`);
  }
  const [, year = '', month = '', day = '', hh = '', mm = '', ss = '', fraction, zoneSign, zh, zm, zs, bc] =
    match;
  if ((zoneSign !== undefined) !== withZone) {
    throw new PgTextParseError(`${withZone ? 'missing' : 'unexpected'} time zone in ${preview(text)}`);
  }
  const hours = Number(hh);
  const minutes = Number(mm);
  const seconds = Number(ss);
  if (hours > 23 || minutes > 59 || seconds > 59)
    throw new PgTextParseError(`not a valid time in ${preview(text)}`);
  const days = civilDays(text, year, month, day, bc !== undefined);
  let offsetSeconds = 0;
  if (zoneSign !== undefined) {
    offsetSeconds = Number(zh) * 3600 + Number(zm ?? 0) * 60 + Number(zs ?? 0);
    if (zoneSign === '-') offsetSeconds = -offsetSeconds;
  }
  // Exact in a double: |days| < 2^31, so |epochSeconds| < 2^48.
  const epochSeconds = days * 86400 + hours * 3600 + minutes * 60 + seconds - offsetSeconds;
  const micros = fraction === undefined ? 0 : Number(fraction.padEnd(6, '0'));
  // Within ±285 years of 1970 the microsecond count fits a double exactly: one BigInt instead of three.
  if (Math.abs(epochSeconds) < 9e9) return BigInt(epochSeconds * 1e6 + micros);
  const value = BigInt(epochSeconds) * 1_000_000n + BigInt(micros);
  if (value >= INT64_MAX || value <= TIMESTAMP_NEG_INFINITY) {
    throw new UnrepresentableValueError(`${preview(text)} is outside the int64 microsecond range`);
  }
  return value;
}

/** bytea text in hex format ('\x0a0b') to bytes. */
export function parseByteaHex(text: string): Uint8Array {
  if (!text.startsWith('\\x') || text.length % 2 !== 0) {
    throw new PgTextParseError(`not a hex bytea (is bytea_output=hex?): ${preview(text)}`);
  }
  const hex = text.slice(2);
  const bytes = Buffer.from(hex, 'hex');
  // Buffer.from stops silently at the first non-hex pair, so a short result means bad input.
  if (bytes.length * 2 !== hex.length) throw new PgTextParseError(`not a hex bytea: ${preview(text)}`);
  // A plain view, not the Buffer subclass: callers compare and copy it as bytes.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}
