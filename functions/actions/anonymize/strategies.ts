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
 * strategy keeps NULL as NULL except `fixed`. No expression here fails on a row's value: text that is not
 * an address is tested by a regex before it is cast, json scalars are left alone, integer noise is clamped to
 * the type (one exception: a json object holding the escape \u0000, which PostgreSQL's json functions refuse).
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
      return fixedMask(input, strategy.value);
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

function fixedMask(input: MaskInput, value: string): CompiledMask {
  const { column, v } = input;
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
    `(${v} IS NULL OR ${v}::text ~ '^anon_[0-9a-f]{${digits}}$')`,
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
  return byShape(input, `(${v} IS NULL OR ${v}::text ~ '^.{14}8.{4}[89ab]')`, uuid);
}

/**
 * `anon_` + 16 hex digits of HMAC(lower(value)) + `@` + a domain: the original's part after its last `@`
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
    ? `coalesce(nullif(substring(${v}::text FROM '@([^@]*)$'), ''), ${lit(strategy.domain)})`
    : lit(strategy.domain);
  return byShape(
    input,
    `(${v} IS NULL OR ${v}::text ~ '^anon_[0-9a-f]{16}@')`,
    `'anon_' || left(encode(${hmacSql(`lower(${v}::text)`, input.params, key)}, 'hex'), 16) || '@' || ${domain}`,
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
  const t = `${v}::text`;
  const notAnAddress = column.notNull ? `'0.0.0.0'` : 'NULL';
  return byValue(
    input,
    `CASE WHEN ${t} ~* ${lit(ADDRESS_REGEX)}
          THEN host(network(set_masklen(${t}::inet, CASE WHEN strpos(${t}, ':') > 0 THEN 48 ELSE 24 END)))
          ELSE ${notAnAddress} END`,
  );
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
    // timestamptz is truncated in UTC whatever the session's TimeZone; a date is truncated as a timestamp.
    if (kind === 'timestamptz') return byValue(input, `date_trunc(${unit}, ${v}::timestamptz, 'UTC')`);
    return byValue(input, `date_trunc(${unit}, ${v}::timestamp)`);
  }
  if (kind === 'integer' || kind === 'numeric' || kind === 'float') {
    const { step } = strategy;
    if (step === undefined || strategy.to !== undefined)
      throw refusal(column, strategy, 'takes `step`, not `to`, on numbers');
    if (kind === 'integer' && !Number.isInteger(step))
      throw refusal(column, strategy, `needs an integer step on an integer column (got ${step})`);
    // In numeric, even for floats: floor((k·step)/step) is k exactly, so a second pass keeps the bucket.
    return byValue(
      input,
      `floor(${v}::numeric / ${lit(String(step))}::numeric) * ${lit(String(step))}::numeric`,
    );
  }
  throw refusal(column, strategy, 'applies to dates, timestamps and numbers only');
}

function jsonbMask(input: MaskInput, strategy: Extract<MaskStrategy, { strategy: 'jsonb' }>): CompiledMask {
  const { kind, v } = input;
  const keys = `ARRAY[${strategy.removeKeys.map(lit).join(', ')}]::text[]`;
  // Only objects lose keys: `-` on a scalar raises, and array elements are not keys.
  if (kind === 'jsonb')
    return byShape(
      input,
      `NOT coalesce(jsonb_typeof(${v}) = 'object' AND ${v} ?| ${keys}, false)`,
      `${v} - ${keys}`,
    );
  if (kind === 'json')
    // Not through jsonb, which would reformat every value: the keys are read with json_object_keys (under
    // CASE: it raises on a non-object), the other members re-aggregated with their values as written. An
    // object holding the escape \u0000 fails the chunk (PostgreSQL's json functions refuse it, as jsonb does).
    return byShape(
      input,
      `NOT CASE WHEN json_typeof(${v}) = 'object'
                THEN EXISTS (SELECT FROM json_object_keys(${v}) AS pgl_key WHERE pgl_key = ANY (${keys}))
                ELSE false END`,
      `(SELECT coalesce(json_object_agg(key, value), '{}') FROM json_each(${v}) WHERE key <> ALL (${keys}))`,
    );
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
    if (kind === 'float') return set(`${v} + ${noise}`);
    if (kind === 'numeric') return set(`round(${v} + (${noise})::numeric, scale(${v}))`);
    const [min, max] = INTEGER_RANGE.get(column.baseTypeOid) ?? ['0', '0'];
    // greatest/least skip NULLs: without the CASE a NULL would become the type's minimum.
    return set(
      `CASE WHEN ${v} IS NOT NULL THEN least(greatest(round(${v}::numeric + (${noise})::numeric), ${min}), ${max}) END`,
    );
  }
  if (kind === 'date' || kind === 'timestamp' || kind === 'timestamptz') {
    const { days } = strategy;
    if (days === undefined || strategy.amount !== undefined)
      throw refusal(column, strategy, 'takes `days`, not `amount`, on dates and timestamps');
    if (kind === 'date') return set(`${v} + (floor(random() * ${2 * days + 1})::int - ${days})`);
    // Seconds, not days: adding days to a timestamptz would depend on the session's TimeZone (DST).
    return set(`${v} + interval '1 second' * (${unit} * ${days * 86400})`);
  }
  throw refusal(column, strategy, 'applies to numbers, dates and timestamps only');
}
