/**
 * Compiles each masked column's strategy (contract.ts) to SQL against the column's catalog type, at Start,
 * so that a strategy that cannot apply (a hash on an integer, `null` on a NOT NULL column) is refused before
 * any row is touched, and the chunk UPDATE only splices expressions checked here.
 *
 * Each column gets two expressions over its current value: `set`, the masked value, of the column's own type
 * (a domain's CHECKs apply), and `done`, true when the value already holds its masked form. A chunk selects
 * rows where some `done` is false and rewrites every masked column of the row, so `set` must be idempotent:
 * applied to a masked value it returns it unchanged, and a second run changes nothing. `hash` and `email` do
 * it by shape (a value already shaped like a pseudonym is taken as masked, so `done` needs no HMAC); the
 * others by value (`done` is "value IS NOT DISTINCT FROM set" or cheaper). `noise` is not idempotent by value:
 * its rows are told apart by the marker column, and its `done` is undefined.
 *
 * Strategies are checked against a domain's base type; arrays and enums take only `null` and `fixed`. Every
 * strategy keeps NULL as NULL except `fixed`. No expression here fails on a row's value of the column's type:
 * - text meets a regex or a substring search only under `COLLATE "C"` (PostgreSQL refuses both under a
 *   nondeterministic collation, e.g. a case-insensitive ICU one), and text that is not an address is tested
 *   by a regex before it is cast;
 * - numbers are bucketed and noised within the type's range (smallint/int/bigint, numeric(p,s) from its
 *   typmod, real/double precision), NaN and infinities kept as they are; dates and timestamps too (a value
 *   within `days` of the type's ends keeps its value, and a value in the partial first month or year of the
 *   range, before 4713-01-01 BC, is not truncated);
 * - json scalars and arrays are left alone; a json object holding a string escape PostgreSQL's json functions
 *   refuse (\u0000, or an unpaired UTF-16 surrogate \uD800–\uDFFF: json input checks only their syntax) is
 *   replaced as a whole, by NULL, or by `{}` on a NOT NULL column, rather than failing the chunk (one
 *   contrived spelling still fails: JSON_REFUSED_ESCAPE). In a database whose encoding is not UTF8,
 *   a json object holding an escape of a code point above U+007F the encoding cannot hold still fails.
 * A domain's CHECK or a table's CHECK may still refuse a masked value: Start probes the domain's (mask-probes.ts).
 */
import pg from 'pg';
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import { CatalogError, HashKeyError } from '../../core/errors.ts';
import type { MaskStrategy } from './contract.ts';
import { type HashKey, hmacSql } from './hash-key.ts';
import { BPCHAR, type MaskedColumn } from './masked-columns.ts';
import type { ParamList } from './param-list.ts';

/** A column's strategy as SQL over its current value. */
export interface CompiledMask {
  /** The masked value, of the column's type. Applied to a masked value it returns it unchanged (but noise). */
  readonly set: string;
  /** Parameter-free boolean: this column of this row already holds its masked form; undefined only for noise. */
  readonly done: string | undefined;
}

/** How strategies see a base type. */
export type TypeKind =
  | 'text'
  | 'uuid'
  | 'inet'
  | 'cidr'
  | 'date'
  | 'timestamp'
  | 'timestamptz'
  | 'integer'
  | 'numeric'
  | 'float'
  | 'json'
  | 'jsonb'
  | 'array'
  | 'enum'
  | 'other';

const KIND_BY_OID = new Map<number, TypeKind>([
  [2950, 'uuid'],
  [869, 'inet'],
  [650, 'cidr'],
  [1082, 'date'],
  [1114, 'timestamp'],
  [1184, 'timestamptz'],
  [21, 'integer'],
  [23, 'integer'],
  [20, 'integer'],
  [1700, 'numeric'],
  [700, 'float'],
  [701, 'float'],
  [114, 'json'],
  [3802, 'jsonb'],
]);

/** The range of each integer type: noise is clamped to it rather than overflow at run time. */
const INTEGER_RANGE = new Map<number, readonly [string, string]>([
  [21, ['-32768', '32767']],
  [23, ['-2147483648', '2147483647']],
  [20, ['-9223372036854775808', '9223372036854775807']],
]);

export function kindOf(column: MaskedColumn): TypeKind {
  if (column.isArray) return 'array';
  if (column.isEnum) return 'enum';
  return KIND_BY_OID.get(column.baseTypeOid) ?? (column.category === 'S' ? 'text' : 'other');
}

/** Base types with an equality operator (arrays and json have none usable; they compare as text). */
function comparesByValue(column: MaskedColumn): boolean {
  if (column.isArray) return false;
  return 'SNDBEIT'.includes(column.category) || [2950, 3802, 17].includes(column.baseTypeOid);
}

const lit = (text: string) => pg.escapeLiteral(text);

/** `value` (SQL of any type) as text in the "C" collation: regexes and substring searches work on it. */
const asCText = (value: string) => `(${value}::text COLLATE "C")`;

/** The lowest and highest value of each float type, within which numeric round trips stay finite. */
const FLOAT_RANGE = new Map<number, readonly [string, string]>([
  [700, ['-3.40282e38', '3.40282e38']],
  [701, ['-1.79769313486231e308', '1.79769313486231e308']],
]);

/** numeric(p,s)'s bounds: ±(10^(p−s) − 10^(−s)). */
function numericRange(column: MaskedColumn): readonly [string, string] | undefined {
  if (!column.numeric) return undefined;
  const { precision, scale } = column.numeric;
  const max = `(1e${precision - scale}::numeric - 1e${-scale}::numeric)`;
  return [`(-${max})`, max];
}

/** The range a number column's values and masked values stay in; undefined for unconstrained numeric. */
function numberRange(column: MaskedColumn): readonly [string, string] | undefined {
  return INTEGER_RANGE.get(column.baseTypeOid) ?? FLOAT_RANGE.get(column.baseTypeOid) ?? numericRange(column);
}

/** Values PostgreSQL reads relative to the current time ('now', 'today'…): never equal from one run to the next. */
const RELATIVE_TIME = /\b(now|today|tomorrow|yesterday)\b/i;

function refusal(column: MaskedColumn, strategy: MaskStrategy, reason: string): CatalogError {
  return new CatalogError(
    `column ${quoteIdent(column.name)} (${column.typeName}): strategy ${strategy.strategy} ${reason}`,
  );
}

/** What compiling one column needs besides its strategy. */
interface MaskInput {
  readonly column: MaskedColumn;
  readonly kind: TypeKind;
  /** The current value, parenthesized. */
  readonly v: string;
  readonly params: ParamList;
  readonly key: HashKey | undefined;
}

/**
 * `strategy` for `column`, over `value` (SQL of the current value, e.g. `"t"."email"`). Pads for hash and
 * email go to `params`; every other constant is an escaped literal (config, not secret).
 *
 * @throws CatalogError naming the column, its type and the strategy when the strategy cannot apply;
 *   HashKeyError (same naming) when hash or email has no key
 */
export function compileMask(
  column: MaskedColumn,
  strategy: MaskStrategy,
  value: string,
  params: ParamList,
  key: HashKey | undefined,
): CompiledMask {
  const input: MaskInput = { column, kind: kindOf(column), v: `(${value})`, params, key };
  if ((input.kind === 'array' || input.kind === 'enum') && !['null', 'fixed'].includes(strategy.strategy))
    throw refusal(column, strategy, `does not apply to ${input.kind} columns (only null and fixed do)`);
  switch (strategy.strategy) {
    case 'null':
      if (column.notNull) throw refusal(column, strategy, 'cannot apply: the column is NOT NULL');
      return { set: `NULL::${column.typeName}`, done: `${input.v} IS NULL` };
    case 'fixed':
      return fixedMask(input, strategy, strategy.value);
    case 'hash':
      return input.kind === 'uuid' ? uuidHashMask(input, strategy) : textHashMask(input, strategy);
    case 'email':
      return emailMask(input, strategy);
    case 'partial':
      return partialMask(input, strategy);
    case 'ip':
      return ipMask(input, strategy);
    case 'generalize':
      return generalizeMask(input, strategy);
    case 'jsonb':
      return jsonbMask(input, strategy);
    case 'noise':
      return noiseMask(input, strategy);
  }
}

/** `set` cast to the column's type, and `done` as "already equal to it". */
function byValue({ column, v }: MaskInput, expression: string): CompiledMask {
  const set = `(${expression})::${column.typeName}`;
  return { set, done: `${v} IS NOT DISTINCT FROM ${set}` };
}

/** `set` that keeps a value already of the masked shape (`done`), else computes `masked`. */
function byShape({ column, v }: MaskInput, done: string, masked: string): CompiledMask {
  return {
    set: `(CASE WHEN ${done} THEN ${v} ELSE (${masked})::${column.typeName} END)::${column.typeName}`,
    done,
  };
}

function fixedMask(input: MaskInput, strategy: MaskStrategy, value: string): CompiledMask {
  const { column, v } = input;
  // 'now' in a timestamptz is another value in every transaction: a masked row would never read as masked.
  if (column.category === 'D' && RELATIVE_TIME.test(value))
    throw refusal(
      column,
      strategy,
      `value ${JSON.stringify(value)} is read relative to the current time, so it differs on every run and a ` +
        'masked row would never read as masked: give an absolute value (e.g. 1970-01-01)',
    );
  const set = `${lit(value)}::${column.typeName}`;
  // Types without equality (json, arrays of anything) compare by text: the same value prints the same.
  const done = comparesByValue(column)
    ? `${v} IS NOT DISTINCT FROM ${set}`
    : `${v}::text IS NOT DISTINCT FROM (${set})::text`;
  return { set, done };
}

function requireText(input: MaskInput, strategy: MaskStrategy, what: string): void {
  if (input.kind !== 'text') throw refusal(input.column, strategy, `applies to ${what} only`);
}

function requireKey({ column, key }: MaskInput, strategy: MaskStrategy): HashKey {
  if (key) return key;
  throw new HashKeyError(
    `column ${quoteIdent(column.name)} (${column.typeName}): strategy ${strategy.strategy} needs the hash key, ` +
      'which is missing: set PG_LIFECYCLE_HASH_KEY locally, or anonymization.hashKeySecretArn in the config for AWS',
  );
}

/** Hex digits of the pseudonym: 32, fewer when varchar(n)/char(n) cannot hold `anon_` + 32 (at least 16). */
function pseudonymDigits(input: MaskInput, strategy: MaskStrategy): number {
  const n = input.column.maxLength;
  if (n === undefined || n >= 37) return 32;
  if (n - 5 < 16)
    throw refusal(input.column, strategy, 'needs room for anon_ + 16 hex digits (21 characters)');
  return n - 5;
}

/**
 * `anon_` + the first L hex digits of HMAC-SHA-256(key, value). An original value already of that shape is
 * taken as masked and kept (nobody's real name is `anon_` + 32 hex digits).
 */
function textHashMask(input: MaskInput, strategy: MaskStrategy): CompiledMask {
  requireText(input, strategy, 'text-like columns and uuid');
  const key = requireKey(input, strategy);
  const digits = pseudonymDigits(input, strategy);
  const { v } = input;
  return byShape(
    input,
    `(${v} IS NULL OR ${asCText(v)} ~ '^anon_[0-9a-f]{${digits}}$')`,
    `'anon_' || left(encode(${hmacSql(`${v}::text`, input.params, key)}, 'hex'), ${digits})`,
  );
}

/**
 * A version-8 UUID (RFC 9562, "custom") of the HMAC's first 16 bytes, version nibble 8 and variant bits 10.
 * The HMAC is of the UUID's canonical text, so a uuid column and a text column holding the same UUID agree.
 * An original UUID that is already version 8 with that variant is taken as masked.
 */
function uuidHashMask(input: MaskInput, strategy: MaskStrategy): CompiledMask {
  const key = requireKey(input, strategy);
  const { v } = input;
  const hex = `left(encode(${hmacSql(`${v}::text`, input.params, key)}, 'hex'), 32)`;
  // A scalar subquery computes the HMAC once; the variant nibble keeps its two low bits under 10xx.
  const uuid = `(SELECT overlay(overlay(pgl_hex PLACING '8' FROM 13 FOR 1)
                                PLACING substr('89ab89ab89ab89ab', strpos('0123456789abcdef', substr(pgl_hex, 17, 1)), 1)
                                FROM 17 FOR 1)::uuid
                   FROM (SELECT ${hex} AS pgl_hex) AS pgl_hmac)`;
  return byShape(input, `(${v} IS NULL OR ${asCText(v)} ~ '^.{14}8.{4}[89ab]')`, uuid);
}

/**
 * `anon_` + 16 hex digits of HMAC(value, exactly as stored) + `@` + a domain (not of lower(value): `Bob@x`
 * and `bob@x` are two values, and one pseudonym for both would collide on a unique column): the original's part after its last `@`
 * when `keepDomain` (and it has one), else `domain`. A value starting `anon_<16 hex>@` is taken as masked.
 * In varchar(n) a kept domain may be cut short (the cast truncates); the value still reads as masked.
 */
function emailMask(input: MaskInput, strategy: Extract<MaskStrategy, { strategy: 'email' }>): CompiledMask {
  requireText(input, strategy, 'text-like columns');
  const key = requireKey(input, strategy);
  const n = input.column.maxLength;
  if (n !== undefined && n < 22 + strategy.domain.length)
    throw refusal(
      input.column,
      strategy,
      `needs ${22 + strategy.domain.length} characters for anon_<16 hex>@${strategy.domain}`,
    );
  const { v } = input;
  const domain = strategy.keepDomain
    ? `coalesce(nullif(substring(${asCText(v)} FROM '@([^@]*)$'), ''), ${lit(strategy.domain)})`
    : lit(strategy.domain);
  return byShape(
    input,
    `(${v} IS NULL OR ${asCText(v)} ~ '^anon_[0-9a-f]{16}@')`,
    `'anon_' || left(encode(${hmacSql(`${v}::text`, input.params, key)}, 'hex'), 16) || '@' || ${domain}`,
  );
}

/**
 * Keeps `keepFirst` and `keepLast` characters, masks the rest, same length. Idempotent whatever the kept
 * characters hold (even the mask character): which characters are kept depends on the length only, and the
 * length does not change. char(n) pads with spaces, so a space mask would be lost: refused there.
 */
function partialMask(
  input: MaskInput,
  strategy: Extract<MaskStrategy, { strategy: 'partial' }>,
): CompiledMask {
  requireText(input, strategy, 'text-like columns');
  if (input.column.baseTypeOid === BPCHAR && strategy.mask.trim() === '')
    throw refusal(input.column, strategy, 'cannot mask with a space in char(n): the padding would eat it');
  const t = `${input.v}::text`;
  const { keepFirst: first, keepLast: last } = strategy;
  const mask = lit(strategy.mask);
  return byValue(
    input,
    `CASE WHEN char_length(${t}) <= ${first + last} THEN repeat(${mask}, char_length(${t}))
          ELSE left(${t}, ${first}) || repeat(${mask}, char_length(${t}) - ${first + last}) || right(${t}, ${last}) END`,
  );
}

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = `${OCTET}(\\.${OCTET}){3}`;
const H = '[0-9a-f]{1,4}';
const IPV6 = [
  `(${H}:){7}${H}`,
  `(${H}:){1,7}:`,
  `(${H}:){1,6}:${H}`,
  `(${H}:){1,5}(:${H}){1,2}`,
  `(${H}:){1,4}(:${H}){1,3}`,
  `(${H}:){1,3}(:${H}){1,4}`,
  `(${H}:){1,2}(:${H}){1,5}`,
  `${H}:(:${H}){1,6}`,
  `:((:${H}){1,7}|:)`,
].join('|');
/**
 * Text that PostgreSQL's inet input accepts, tested before the cast so no row fails at run time. IPv4 dotted
 * quads without leading zeros and IPv6 in hex groups; other spellings (a prefix length, a zone, IPv4 embedded
 * in IPv6) count as not an address.
 */
const ADDRESS_REGEX = `^(${IPV4}|${IPV6})$`;

const PREFIX = (family: string) => `CASE ${family} WHEN 4 THEN 24 ELSE 48 END`;

/** IPv4 to its /24 network, IPv6 to its /48; a network already wider stays. */
function ipMask(input: MaskInput, strategy: MaskStrategy): CompiledMask {
  const { column, kind, v } = input;
  if (kind === 'inet')
    return byValue(
      input,
      `network(set_masklen(${v}, least(masklen(${v}), ${PREFIX(`family(${v})`)})))::inet`,
    );
  if (kind === 'cidr')
    return byValue(input, `set_masklen(${v}, least(masklen(${v}), ${PREFIX(`family(${v})`)}))`);
  requireText(input, strategy, 'inet, cidr and text-like columns');
  if (column.maxLength !== undefined && column.maxLength < 7)
    throw refusal(column, strategy, 'needs at least 7 characters (0.0.0.0)');
  const t = asCText(v);
  const notAnAddress = column.notNull ? `'0.0.0.0'` : 'NULL';
  return byValue(
    input,
    `CASE WHEN ${t} ~* ${lit(ADDRESS_REGEX)}
          THEN host(network(set_masklen(${t}::inet, CASE WHEN strpos(${t}, ':') > 0 THEN 48 ELSE 24 END)))
          ELSE ${notAnAddress} END`,
  );
}

/** Dates and timestamps from here on can be truncated to their month or year (4714 BC starts in late November). */
const FIRST_WHOLE_YEAR = "'4713-01-01 BC'";

/** Digits after the point of `step` written out: 0.125 → 3, 1e-7 → 7, 1500 → 0 (and −2: a multiple of 100). */
function decimalPlaces(step: number): number {
  const [mantissa = '', exponent = '0'] = String(step).split('e');
  const [whole = '', fraction = ''] = mantissa.split('.');
  const trailingZeros = fraction === '' ? (/0*$/.exec(whole)?.[0].length ?? 0) : 0;
  return (fraction === '' ? -trailingZeros : fraction.length) - Number(exponent);
}

function generalizeMask(
  input: MaskInput,
  strategy: Extract<MaskStrategy, { strategy: 'generalize' }>,
): CompiledMask {
  const { column, kind, v } = input;
  if (kind === 'date' || kind === 'timestamp' || kind === 'timestamptz') {
    if (strategy.to === undefined || strategy.step !== undefined)
      throw refusal(column, strategy, 'takes `to` (month or year), not `step`, on dates and timestamps');
    const unit = lit(strategy.to);
    // Infinities and the first weeks of the range (their month or year starts before it) stay as they are.
    const truncated =
      kind === 'timestamptz'
        ? // In UTC whatever the session's TimeZone.
          `date_trunc(${unit}, ${v}::timestamptz, 'UTC')`
        : kind === 'timestamp'
          ? `date_trunc(${unit}, ${v}::timestamp)`
          : // Date arithmetic, not through timestamp: a date may lie beyond timestamp's range.
            `${v}::date - (extract(${strategy.to === 'month' ? 'day' : 'doy'} FROM ${v}::date)::int - 1)`;
    const type = kind === 'timestamptz' ? 'timestamptz' : kind;
    const lowest = kind === 'timestamptz' ? `'4713-01-01 00:00:00+00 BC'` : FIRST_WHOLE_YEAR;
    return byValue(
      input,
      `CASE WHEN isfinite(${v}::${type}) AND ${v}::${type} >= ${lowest}::${type} THEN ${truncated} ELSE ${v}::${type} END`,
    );
  }
  if (kind === 'integer' || kind === 'numeric' || kind === 'float') {
    const { step } = strategy;
    if (step === undefined || strategy.to !== undefined)
      throw refusal(column, strategy, 'takes `step`, not `to`, on numbers');
    if (kind === 'integer' && !Number.isInteger(step))
      throw refusal(column, strategy, `needs an integer step on an integer column (got ${step})`);
    // A bucket bound with more digits than the column keeps is rounded on the cast, into another bucket: a
    // second run would move it again.
    if (column.numeric && decimalPlaces(step) > column.numeric.scale)
      throw refusal(
        column,
        strategy,
        `needs a step that is a multiple of ${10 ** -column.numeric.scale} on ${column.typeName} (got ${step}): ` +
          'a bound with more decimals than the column keeps would be rounded on writing, so it would not stay in its bucket',
      );
    // In numeric, even for floats: floor((k·step)/step) is k exactly, so a second pass keeps the bucket.
    const s = `${lit(String(step))}::numeric`;
    const bucket = `floor(${v}::numeric / ${s}) * ${s}`;
    const range = numberRange(column);
    if (!range) return byValue(input, bucket);
    const [min, max] = range;
    // floor() goes down, below the type's minimum for a value near it: the lowest bucket inside the type
    // instead. Floats: NaN and the infinities are kept (numeric has no infinity before PostgreSQL 14).
    // greatest/least skip NULLs: without the CASE a NULL would become the lowest bucket.
    const clamped = `CASE WHEN ${v} IS NOT NULL
                          THEN least(greatest(${bucket}, ceil(${min}::numeric / ${s}) * ${s}), floor(${max}::numeric / ${s}) * ${s}) END`;
    return byValue(
      input,
      kind === 'float'
        ? `CASE WHEN ${v} BETWEEN ${min} AND ${max} THEN (${clamped})::float8 ELSE ${v}::float8 END`
        : clamped,
    );
  }
  throw refusal(column, strategy, 'applies to dates, timestamps and numbers only');
}

/**
 * A json text holding a string escape PostgreSQL's json functions refuse when they de-escape strings (json
 * input checks only the syntax): \u0000, a high surrogate not followed by a low one, a low one not preceded
 * by a high one. An escape is one after an even number of backslashes. The surrogates' neighbours are read
 * without that parity: an escaped backslash followed by the text `ud83d` then a real low surrogate passes the
 * test and still fails the chunk (a surrogate pair spelled with an escaped backslash in between).
 */
const JSON_REFUSED_ESCAPE = String.raw`(^|[^\\])(\\\\)*(\\u0000|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})|(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2})`;

function jsonbMask(input: MaskInput, strategy: Extract<MaskStrategy, { strategy: 'jsonb' }>): CompiledMask {
  const { column, kind, v } = input;
  const keys = `ARRAY[${strategy.removeKeys.map(lit).join(', ')}]::text[]`;
  // Only objects lose keys: `-` on a scalar raises, and array elements are not keys.
  if (kind === 'jsonb')
    return byShape(
      input,
      `NOT coalesce(jsonb_typeof(${v}) = 'object' AND ${v} ?| ${keys}, false)`,
      `${v} - ${keys}`,
    );
  if (kind === 'json') {
    // Not through jsonb, which would reformat every value: the keys are read with json_object_keys (under
    // CASE: it raises on a non-object), the other members re-aggregated with their values as written. An
    // object holding an escape the json functions refuse (JSON_REFUSED_ESCAPE; jsonb input refuses them all)
    // is never handed to them: it is not taken as masked, and is replaced by NULL ({} on a NOT NULL column).
    const refused = `${asCText(v)} ~* ${lit(JSON_REFUSED_ESCAPE)}`;
    return byShape(
      input,
      `NOT CASE WHEN json_typeof(${v}) IS DISTINCT FROM 'object' THEN false
                WHEN ${refused} THEN true
                ELSE EXISTS (SELECT FROM json_object_keys(${v}) AS pgl_key WHERE pgl_key = ANY (${keys})) END`,
      `CASE WHEN ${refused} THEN ${column.notNull ? `'{}'::json` : 'NULL::json'}
            ELSE (SELECT coalesce(json_object_agg(key, value), '{}') FROM json_each(${v}) WHERE key <> ALL (${keys})) END`,
    );
  }
  throw refusal(input.column, strategy, 'applies to jsonb and json columns only');
}

/** ± up to `amount` / `days`, at random; the marker column tells masked rows apart (no `done`). */
function noiseMask(input: MaskInput, strategy: Extract<MaskStrategy, { strategy: 'noise' }>): CompiledMask {
  const { column, kind, v } = input;
  const unit = '(random() * 2 - 1)';
  const set = (expression: string) => ({ set: `(${expression})::${column.typeName}`, done: undefined });
  if (kind === 'integer' || kind === 'numeric' || kind === 'float') {
    const { amount } = strategy;
    if (amount === undefined || strategy.days !== undefined)
      throw refusal(column, strategy, 'takes `amount`, not `days`, on numbers');
    const noise = `${unit} * ${lit(String(amount))}::float8`;
    const range = numberRange(column);
    if (kind === 'float') {
      // A value within `amount` of the type's ends keeps its value (float8 addition would overflow); NaN and
      // the infinities too.
      const [min, max] = range ?? ['0', '0'];
      const a = lit(String(amount));
      return set(
        `CASE WHEN ${v} BETWEEN ${min}::float8 + ${a}::float8 AND ${max}::float8 - ${a}::float8 THEN ${v} + ${noise} ELSE ${v} END`,
      );
    }
    const rounded =
      kind === 'numeric'
        ? `round(${v} + (${noise})::numeric, coalesce(scale(${v}), 0))`
        : `round(${v}::numeric + (${noise})::numeric)`;
    if (!range) return set(`CASE WHEN ${v} IS NOT NULL THEN ${rounded} END`);
    // greatest/least skip NULLs: without the CASE a NULL would become the type's minimum. NaN (numeric) is
    // kept: it would compare above the maximum.
    return set(
      `CASE WHEN ${v} IS NOT NULL AND ${v}::numeric <> 'NaN' THEN least(greatest(${rounded}, ${range[0]}), ${range[1]}) ELSE ${v}::numeric END`,
    );
  }
  if (kind === 'date' || kind === 'timestamp' || kind === 'timestamptz') {
    const { days } = strategy;
    if (days === undefined || strategy.amount !== undefined)
      throw refusal(column, strategy, 'takes `days`, not `amount`, on dates and timestamps');
    // A value within `days` of the type's ends (and the infinities) keeps its value: it would overflow.
    const within = (low: string, high: string, type: string) =>
      `${v} BETWEEN ${lit(low)}::${type} + ${days + 1} * interval '1 day' AND ${lit(high)}::${type} - ${days + 1} * interval '1 day'`;
    if (kind === 'date')
      return set(
        `CASE WHEN ${v} BETWEEN ${lit('4713-01-01 BC')}::date + ${days + 1} AND ${lit('5874897-12-31')}::date - ${days + 1}
              THEN ${v} + (floor(random() * ${2 * days + 1})::int - ${days}) ELSE ${v} END`,
      );
    const [low, high] =
      kind === 'timestamptz'
        ? ['4713-01-01 00:00:00+00 BC', '294276-12-30 00:00:00+00']
        : ['4713-01-01 00:00:00 BC', '294276-12-30 00:00:00'];
    // Seconds, not days: adding days to a timestamptz would depend on the session's TimeZone (DST).
    return set(
      `CASE WHEN ${within(low, high, kind)} THEN ${v} + interval '1 second' * (${unit} * ${days * 86400}) ELSE ${v} END`,
    );
  }
  throw refusal(column, strategy, 'applies to numbers, dates and timestamps only');
}
