/**
 * decodeCopyBinary keeps a STRING column as byte ranges of its buffer (column-vector.ts). Two edges a real
 * server rarely sends: bytes that are not UTF-8 after rows already held as ranges (the column becomes values,
 * read as the row path reads them, earlier rows kept), and NULL / empty values between them.
 */
import { describe, expect, it } from 'vitest';
import { ByteRanges, vectorToArray } from '../../functions/core/parquet/column-vector.ts';
import { decodeCopyBinary } from '../../functions/core/parquet/copy-binary.ts';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** A COPY binary stream of one-column rows (null: SQL NULL). */
function copyStream(values: ReadonlyArray<Buffer | null>): Buffer {
  const parts: Buffer[] = [SIGNATURE, Buffer.alloc(8)]; // flags, header extension length
  for (const value of values) {
    const head = Buffer.alloc(6);
    head.writeInt16BE(1, 0);
    head.writeInt32BE(value ? value.length : -1, 2);
    parts.push(head);
    if (value) parts.push(value);
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

const reader = {
  name: 's',
  kind: 'text' as const,
  fromText: (text: string) => text,
  keepText: false,
  asBytes: true,
};
const shown = (values: unknown[]) =>
  values.map((v) => (v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('utf8')}` : v));

describe('COPY binary STRING columns as byte ranges', () => {
  it('keeps valid UTF-8 as ranges of the buffer, NULL and empty values included', () => {
    const data = copyStream([Buffer.from('é one'), null, Buffer.from(''), Buffer.from('😀')]);
    const decoded = decodeCopyBinary(data, [reader]);
    const vector = decoded.values[0];
    expect(vector).toBeInstanceOf(ByteRanges);
    expect((vector as ByteRanges).data).toBe(data);
    expect(shown(vectorToArray(vector as ByteRanges))).toEqual(['bytes:é one', null, 'bytes:', 'bytes:😀']);
  });

  it('turns the column into values at the first byte sequence that is not UTF-8, keeping the earlier rows', () => {
    const data = copyStream([
      Buffer.from('é one'),
      null,
      Buffer.from(''),
      Buffer.from([0x61, 0xff, 0x62]),
      Buffer.from('z'),
    ]);
    const decoded = decodeCopyBinary(data, [reader]);
    expect(decoded.values[0]).not.toBeInstanceOf(ByteRanges);
    // The bad bytes are replaced as the row protocol's text would be; every other value is unchanged.
    expect(shown(vectorToArray(decoded.values[0] ?? []))).toEqual([
      'bytes:é one',
      null,
      'bytes:',
      'a\uFFFDb',
      'bytes:z',
    ]);
  });
});
