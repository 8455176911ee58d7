/**
 * The inverse of functions/core/parquet/pg-text.ts: from the exact values an archive object stores back to
 * text PostgreSQL's input functions read as the same value. Pure; nothing passes through `Date` (millisecond
 * precision, narrower range) or a float where the archive kept an integer.
 */

// The time texts are the archive chunk's too: one implementation, in core.
export { civilFromDays, dateText, timestampText } from '../../core/parquet/pg-time-text.ts';

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
