/**
 * The archive decodes a chunk's COPY binary output as it arrives (CopyBinaryDecoder, fed after every piece by
 * copy-out.ts). Whatever the pieces — cut inside a length, a value or the header, buffers replaced as they grow,
 * more rows than the room allocated — the columns must equal those of decoding the whole stream at once, and a
 * bad value or a stream cut short must fail at the end as it does whole.
 */
import { describe, expect, it } from 'vitest';
import { vectorToArray } from '../../functions/core/parquet/column-vector.ts';
import {
  type ColumnReader,
  CopyBinaryDecoder,
  decodeCopyBinary,
} from '../../functions/core/parquet/copy-binary.ts';
import { ParquetInputError } from '../../functions/core/parquet/errors.ts';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

const readers: ColumnReader[] = [
  { name: 'id', kind: 'int8' },
  { name: 'n', kind: 'int4' },
  { name: 's', kind: 'text', fromText: (text) => text, keepText: false, asBytes: true },
  { name: 'k', kind: 'text', fromText: null, keepText: true },
  { name: 't', kind: 'timestamptz' },
];

/** Fields per row: int8, int4, text, text, timestamptz (null: SQL NULL). */
function stream(rows: number, options: { nullEvery?: number; badInt4At?: number } = {}): Buffer {
  const parts: Buffer[] = [SIGNATURE, Buffer.alloc(8)];
  for (let r = 0; r < rows; r++) {
    const isNull = options.nullEvery !== undefined && r % options.nullEvery === 0;
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(BigInt(r) * 1_000_003n - 7n);
    const int4 = Buffer.alloc(options.badInt4At === r ? 3 : 4);
    if (options.badInt4At !== r) int4.writeInt32BE(r * 31 - 5);
    // Near and far from 2000 (two decoding paths), before and after it, and +infinity.
    const far = r % 2 ? 2n ** 60n : -(2n ** 60n);
    const micros = r === 99 ? 2n ** 63n - 1n : r % 50 === 7 ? far : 7_777_777_777n * BigInt(r % 2 ? r : -r);
    const time = Buffer.alloc(8);
    time.writeBigInt64BE(micros);
    const fields = [
      int8,
      int4,
      isNull ? null : Buffer.from(`välue ${r} ${'x'.repeat(r % 17)}`),
      Buffer.from(`k${r}`),
      isNull && r % 2 === 0 ? null : time,
    ];
    const head = Buffer.alloc(2);
    head.writeInt16BE(fields.length);
    parts.push(head);
    for (const field of fields) {
      const length = Buffer.alloc(4);
      length.writeInt32BE(field ? field.length : -1);
      parts.push(length);
      if (field) parts.push(field);
    }
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

/** Feeds `data` in pieces of the given sizes (cycled), into buffers replaced each time they fill, as copy-out does. */
function fedInPieces(data: Buffer, pieces: number[], expectedRows: number) {
  const decoder = new CopyBinaryDecoder(readers, expectedRows);
  let buffer = Buffer.alloc(16);
  let length = 0;
  for (let at = 0, p = 0; at < data.length; p++) {
    const piece = data.subarray(at, Math.min(data.length, at + (pieces[p % pieces.length] as number)));
    if (length + piece.length > buffer.length) {
      const grown = Buffer.alloc(Math.max(buffer.length * 2, length + piece.length));
      buffer.copy(grown, 0, 0, length);
      buffer.fill(0xee); // the old buffer is gone: nothing may still be read from it
      buffer = grown;
    }
    piece.copy(buffer, length);
    length += piece.length;
    at += piece.length;
    decoder.feed(buffer, length);
  }
  return { decoder, whole: buffer.subarray(0, length) };
}

const columns = (decoded: { values: Parameters<typeof vectorToArray>[0][] }) =>
  decoded.values.map((vector) =>
    vectorToArray(vector).map((v) => (v instanceof Uint8Array ? Buffer.from(v) : v)),
  );

describe('CopyBinaryDecoder fed as the COPY arrives', () => {
  it.each([
    ['one byte at a time', [1], 10],
    ['odd pieces across lengths and values', [7, 3, 50, 2, 1, 13], 10],
    ['64 KiB reads, more rows than the room allocated', [65_536], 3],
    ['one piece', [1 << 24], 600],
  ])('reads the same columns as the whole stream: %s', (_name, pieces, expectedRows) => {
    const data = stream(600, { nullEvery: 7 });
    const { decoder, whole } = fedInPieces(data, pieces, expectedRows);
    const decoded = decoder.finish(whole);
    const reference = decodeCopyBinary(data, readers);
    expect(decoded.rows).toBe(600);
    expect(columns(decoded)).toEqual(columns(reference));
    expect(decoded.texts[3]).toEqual(reference.texts[3]);
  });

  it('fails at the end on a value of the wrong size, as the whole stream does', () => {
    const data = stream(50, { badInt4At: 31 });
    const { decoder, whole } = fedInPieces(data, [5], 10);
    expect(() => decoder.finish(whole)).toThrow(/a int4 value of 3 bytes/);
    expect(() => decodeCopyBinary(data, readers)).toThrow(/a int4 value of 3 bytes/);
  });

  it('reads int8 and timestamps at their word edges exactly (no BigInt made for most of them)', () => {
    const epoch = 946_684_800_000_000n; // 2000-01-01 in microseconds from 1970
    const int8s = [
      0n,
      -1n,
      1n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      2n ** 32n,
      -(2n ** 32n),
      2n ** 32n - 1n,
      -(2n ** 31n),
    ];
    const edge = 0x100000n * 2n ** 32n; // where the word path hands over to BigInt arithmetic
    const micros = [
      0n,
      -1n,
      1n,
      2n ** 32n - 1n,
      2n ** 32n,
      -(2n ** 32n),
      edge - 1n,
      edge,
      -edge,
      -edge + 1n,
      -epoch - 1n,
    ];
    const rows = Math.max(int8s.length, micros.length);
    const parts: Buffer[] = [SIGNATURE, Buffer.alloc(8)];
    for (let r = 0; r < rows; r++) {
      const row = Buffer.alloc(2 + 2 * 12);
      row.writeInt16BE(2, 0);
      row.writeInt32BE(8, 2);
      row.writeBigInt64BE(int8s[r % int8s.length] as bigint, 6);
      row.writeInt32BE(8, 14);
      row.writeBigInt64BE(micros[r % micros.length] as bigint, 18);
      parts.push(row);
    }
    parts.push(Buffer.from([0xff, 0xff]));
    const decoded = decodeCopyBinary(Buffer.concat(parts), [
      { name: 'i', kind: 'int8' },
      { name: 't', kind: 'timestamptz' },
    ]);
    const expected = Array.from({ length: rows }, (_, r) => [
      int8s[r % int8s.length],
      (micros[r % micros.length] as bigint) + epoch,
    ]);
    expect(Array.from({ length: rows }, (_, r) => decoded.values.map((v) => vectorToArray(v)[r]))).toEqual(
      expected,
    );
  });

  it('refuses an empty numeric or jsonb field instead of reading its header from bytes past it', () => {
    // Rows are decoded in place in a reused buffer: past a field that has not arrived in full lie an earlier
    // chunk's bytes. FF FC there would read as a numeric of -4 digits, i.e. a "complete" 0-byte value.
    for (const reader of [
      { name: 'd', kind: 'decimal', precision: 10, scale: 2 },
      { name: 'j', kind: 'jsonb', fromText: null, keepText: false },
    ] as ColumnReader[]) {
      const row = Buffer.from([0, 1, 0, 0, 0, 0]); // one field, 0 bytes
      const stream = Buffer.concat([SIGNATURE, Buffer.alloc(8), row, Buffer.from([0xff, 0xff])]);
      const stale = Buffer.concat([SIGNATURE, Buffer.alloc(8), row, Buffer.from([0xff, 0xfc, 1, 0x7b])]);
      const decoder = new CopyBinaryDecoder([reader], 4);
      decoder.feed(stale, 19 + row.length);
      expect(() => decoder.finish(stream)).toThrow(ParquetInputError);
    }
  });

  it('fails a stream cut short (inside a row, or before its trailer) instead of returning fewer rows', () => {
    const data = stream(20);
    for (const cut of [data.length - 2, data.length - 9, 30]) {
      const { decoder, whole } = fedInPieces(data.subarray(0, cut), [11], 5);
      expect(() => decoder.finish(whole)).toThrow(ParquetInputError);
    }
    const { decoder } = fedInPieces(Buffer.from('not a copy stream at all'), [4], 5);
    expect(() => decoder.finish(Buffer.from('not a copy stream at all'))).toThrow(/not a COPY binary stream/);
  });
});
