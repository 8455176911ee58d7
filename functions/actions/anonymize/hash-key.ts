/**
 * The pseudonyms' key, as HMAC-SHA-256 computed by PostgreSQL itself with built-ins only:
 * `sha256(opad || sha256(ipad || convert_to(text, 'UTF8')))` (RFC 2104; `sha256(bytea)` exists since
 * PostgreSQL 11). No pgcrypto: it works on RDS and on the embedded test server without an extension, and
 * the values are masked where they are, never read out to the Lambda.
 *
 * The secret never appears in SQL text: statement text reaches pg_stat_activity, pg_stat_statements and the
 * server log (log_statement, auto_explain, errors), bind values do not by default. Only the two pads, derived
 * from the key, travel, and only as bytea bind parameters.
 */
import { createHash } from 'node:crypto';
import type { ParamList } from './param-list.ts';

/** SHA-256's block size: the key is padded (or first hashed) to this. */
const BLOCK_BYTES = 64;

/** The key as HMAC uses it: the block-sized key XOR 0x36 (inner) and XOR 0x5c (outer). */
export interface HashKey {
  readonly ipad: Buffer;
  readonly opad: Buffer;
}

/**
 * The pads of `secret` (a string is taken as its UTF-8 bytes). A key longer than a block is replaced by its
 * SHA-256, then zero-padded to 64 bytes, as RFC 2104 says: the result equals Node's `createHmac('sha256', secret)`.
 *
 * @throws RangeError for an empty key (an HMAC under no secret is an unsalted hash anyone can recompute)
 */
export function hashKeyFrom(secret: string | Buffer): HashKey {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  if (bytes.length === 0) throw new RangeError('the hash key is empty');
  const key = Buffer.alloc(BLOCK_BYTES);
  (bytes.length > BLOCK_BYTES ? createHash('sha256').update(bytes).digest() : bytes).copy(key);
  return { ipad: xorEach(key, 0x36), opad: xorEach(key, 0x5c) };
}

function xorEach(key: Buffer, byte: number): Buffer {
  return Buffer.from(key.map((b) => b ^ byte));
}

/**
 * A bytea SQL expression: the HMAC-SHA-256 under `key` of the UTF-8 bytes of `textExpression` (a text SQL
 * expression; NULL gives NULL). The pads are added to `params` (once per list: it reuses equal values).
 */
export function hmacSql(textExpression: string, params: ParamList, key: HashKey): string {
  const ipad = params.add(key.ipad);
  const opad = params.add(key.opad);
  return `sha256(${opad}::bytea || sha256(${ipad}::bytea || convert_to(${textExpression}, 'UTF8')))`;
}

/**
 * Stands in for the key where none is needed or none is configured: the done tests read no key, and a dry run's
 * preview without a key (the plan then lists the refusal). Never used to write a value.
 */
export const PLACEHOLDER_KEY: HashKey = hashKeyFrom('pg-lifecycle placeholder: never used to write a value');
