/**
 * The hash key's pads as RFC 2104 defines them: a key up to a block is zero-padded to 64 bytes, a longer one
 * is replaced by its SHA-256 first; inner pad XOR 0x36, outer XOR 0x5c. Equal pads mean the SQL HMAC equals
 * Node's (the integration test compares the digests themselves).
 */
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type HashKey, hashKeyFrom, hmacSql } from '../../functions/actions/anonymize/hash-key.ts';
import { ParamList } from '../../functions/actions/anonymize/param-list.ts';

/** HMAC-SHA-256 from the pads alone, as the SQL computes it. */
function hmacFromPads(key: HashKey, message: string): string {
  const inner = createHash('sha256').update(key.ipad).update(message, 'utf8').digest();
  return createHash('sha256').update(key.opad).update(inner).digest('hex');
}

describe('hashKeyFrom', () => {
  it('zero-pads a short key to a block and XORs it with 0x36 and 0x5c', () => {
    const key = hashKeyFrom('key');

    expect(key.ipad).toHaveLength(64);
    expect(key.opad).toHaveLength(64);
    expect([...key.ipad.subarray(0, 3)]).toEqual([0x6b ^ 0x36, 0x65 ^ 0x36, 0x79 ^ 0x36]);
    expect(key.ipad.subarray(3).every((b) => b === 0x36)).toBe(true);
    expect(key.opad.subarray(3).every((b) => b === 0x5c)).toBe(true);
  });

  it('hashes a key longer than a block first', () => {
    const secret = 'k'.repeat(65);
    const digest = createHash('sha256').update(secret).digest();

    const key = hashKeyFrom(secret);

    expect(key.ipad.subarray(0, 32)).toEqual(Buffer.from(digest.map((b) => b ^ 0x36)));
    expect(key.ipad.subarray(32).every((b) => b === 0x36)).toBe(true);
  });

  it('keeps a key of exactly a block as it is', () => {
    const secret = Buffer.alloc(64, 0xa5);

    expect(hashKeyFrom(secret).opad.every((b) => b === (0xa5 ^ 0x5c))).toBe(true);
  });

  it.each([
    ['a short key', 'secret'],
    ['a key of a block', 'b'.repeat(64)],
    ['a long key', 'long key '.repeat(20)],
    ['a non-ASCII key', 'clé secrète ключ'],
  ])('gives the same HMAC as Node for %s', (_, secret) => {
    for (const message of ['jane.doe@example.com', 'Zoë Ångström 日本']) {
      expect(hmacFromPads(hashKeyFrom(secret), message)).toBe(
        createHmac('sha256', secret).update(message, 'utf8').digest('hex'),
      );
    }
  });

  it('refuses an empty key', () => {
    expect(() => hashKeyFrom('')).toThrow(RangeError);
    expect(() => hashKeyFrom(Buffer.alloc(0))).toThrow(RangeError);
  });
});

describe('hmacSql', () => {
  it('passes the pads as bytea parameters, never in the SQL text, and once per statement', () => {
    const key = hashKeyFrom('secret');
    const params = new ParamList(3);

    const first = hmacSql('"t"."a"', params, key);
    const second = hmacSql('"t"."b"', params, key);

    expect(first).toBe(`sha256($4::bytea || sha256($3::bytea || convert_to("t"."a", 'UTF8')))`);
    expect(second).toBe(`sha256($4::bytea || sha256($3::bytea || convert_to("t"."b", 'UTF8')))`);
    expect(params.values).toEqual([key.ipad, key.opad]);
    expect(first).not.toContain(key.ipad.toString('hex'));
  });
});
