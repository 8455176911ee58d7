/**
 * The pages' Snappy compressor: every stream decompresses (by hyparquet, the reader restore and erasure use) to
 * the exact input, across the 64 KiB fragment edges and the short inputs the compressor treats apart, and an
 * output handed out is never overwritten by the next page (the compressor writes into a reused buffer).
 */
import { randomBytes } from 'node:crypto';
import { snappyUncompress } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { snappyCompress } from '../../functions/core/parquet/snappy.ts';

function roundTrip(input: Uint8Array): Uint8Array {
  const output = new Uint8Array(input.length);
  snappyUncompress(snappyCompress(input), output);
  return output;
}

/** Text-like bytes: repeats Snappy finds, mixed with noise it does not. */
function pageLike(length: number): Uint8Array {
  const noise = randomBytes(length);
  const words = Buffer.from('{"camera":12,"kind":"motion","score":0.75}');
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++)
    bytes[i] = i % 97 < 60 ? (words[i % words.length] as number) : (noise[i] as number);
  return bytes;
}

describe('snappyCompress', () => {
  it.each([0, 1, 14, 15, 16, 65_535, 65_536, 65_537, 200_000, 1 << 20])(
    'decompresses to the same %i bytes, compressible or not',
    (length) => {
      for (const input of [pageLike(length), new Uint8Array(randomBytes(length)), new Uint8Array(length)]) {
        expect(Buffer.from(roundTrip(input)).equals(Buffer.from(input))).toBe(true);
      }
    },
  );

  it('compresses repeats (a page of one value shrinks)', () => {
    expect(snappyCompress(new Uint8Array(1 << 20).fill(7)).length).toBeLessThan(60_000);
  });

  it('hands out a copy: a later, larger page leaves an earlier output as it was', () => {
    const first = snappyCompress(pageLike(100_000));
    const kept = Buffer.from(first);
    snappyCompress(new Uint8Array(randomBytes(1 << 21)));
    expect(Buffer.from(first).equals(kept)).toBe(true);
  });
});
