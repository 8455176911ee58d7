/**
 * Backup parts, the pure half: plans cover every key and block once (half-open ranges, open ends), range
 * values are inlined as literals only outside quoted names, and a part's COPY block is cut from its header
 * and trailer wherever the stream's chunks fall.
 */
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import {
  partStride,
  planBlockParts,
  planKeyParts,
  planMethod,
  rangePredicate,
} from '../../functions/actions/backup/part-plan.ts';
import { BackupPartFormatError, CopyBlockBody } from '../../functions/actions/backup/part-reader.ts';
import { copyOutSql, inlineParameters, partHeader } from '../../functions/actions/backup/part-writer.ts';

const facts = {
  keyColumns: [],
  blocks: 100,
  tableBytes: 819_200,
  estimatedRows: 8_000,
  serverVersion: 150_000,
};

describe('part plan', () => {
  it('cuts key ranges half-open between boundaries, first and last open', () => {
    const parts = planKeyParts(
      ['t', 'id'],
      [
        ['a', '5'],
        ['b', '1'],
      ],
    );
    expect(parts.map((part) => part.range)).toEqual([
      { kind: 'key', columns: ['t', 'id'], to: ['a', '5'] },
      { kind: 'key', columns: ['t', 'id'], from: ['a', '5'], to: ['b', '1'] },
      { kind: 'key', columns: ['t', 'id'], from: ['b', '1'] },
    ]);
    expect(rangePredicate(parts[1]?.range ?? { kind: 'whole' })).toEqual({
      sql: 'ROW("t", "id") >= ROW($1, $2) AND ROW("t", "id") < ROW($3, $4)',
      params: ['a', '5', 'b', '1'],
    });
    expect(planKeyParts(['id'], [])).toEqual([{ index: 1, range: { kind: 'key', columns: ['id'] } }]);
    expect(rangePredicate({ kind: 'key', columns: ['id'], to: ['7'] })).toEqual({
      sql: '"id" < $1',
      params: ['7'],
    });
  });

  it('cuts block ranges that tile the heap, the last open for pages added later', () => {
    expect(planBlockParts(10, 4).map((part) => part.range)).toEqual([
      { kind: 'blocks', toBlock: 4 },
      { kind: 'blocks', fromBlock: 4, toBlock: 8 },
      { kind: 'blocks', fromBlock: 8 },
    ]);
    expect(planBlockParts(0, 4)).toEqual([{ index: 1, range: { kind: 'blocks' } }]);
    expect(rangePredicate({ kind: 'blocks', fromBlock: 4, toBlock: 8 })).toEqual({
      sql: 'ctid >= $1::pg_catalog.tid AND ctid < $2::pg_catalog.tid',
      params: ['(4,0)', '(8,0)'],
    });
  });

  it('sizes parts from the table size and splits keyless tables by blocks only from PostgreSQL 14', () => {
    expect(partStride(facts, 102_400)).toEqual({ rows: 1000, blocks: 12 });
    expect(partStride({ ...facts, estimatedRows: -1 }, 2560).rows).toBe(10);
    expect(planMethod(facts)).toBe('blocks');
    expect(planMethod({ ...facts, serverVersion: 130_011 })).toBe('whole');
    expect(planMethod({ ...facts, keyColumns: ['id'], serverVersion: 130_011 })).toBe('key');
  });
});

describe('part SQL', () => {
  it('inlines values as literals, never inside quoted names or strings', () => {
    expect(inlineParameters(`"a$1" >= $1 AND '$2' <> $2`, [`it's`, 'back\\slash'])).toBe(
      // pg's escapeLiteral puts a space before E'…' (harmless in SQL).
      `"a$1" >= 'it''s' AND '$2' <>  E'back\\\\slash'`,
    );
    expect(() => inlineParameters('x = $2', ['only one'])).toThrow(RangeError);
    const table = { quotedName: '"s"."t"', columns: ['A b', 'c"d'] };
    expect(copyOutSql({ ...table, only: true }, { sql: '"A b" >= $1', params: ['1'] })).toBe(
      `COPY (SELECT "A b", "c""d" FROM ONLY "s"."t" WHERE "A b" >= '1') TO STDOUT`,
    );
  });
});

describe('COPY block body', () => {
  const columns = ['id', 'new\nline'];
  const columnList = '"id", "new\nline"';
  const block = `${partHeader({ quotedName: '"s"."t\nx"', columns })}1\ta\n2\t\\N\n\\.\n`;

  it.for([1, 2, 3, 7, 1000])('keeps only the rows, in chunks of %i bytes', async (size) => {
    const bytes = Buffer.from(block);
    const chunks = Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) =>
      bytes.subarray(i * size, (i + 1) * size),
    );
    expect(await text(Readable.from(chunks).pipe(new CopyBlockBody('k', columnList)))).toBe('1\ta\n2\t\\N\n');
  });

  it.for([
    ['no trailer', block.slice(0, -3)],
    ['other columns', block.replace('"id"', '"ID"')],
    ['no header', '1\ta\n\\.\n'],
  ] as const)('refuses a block with %s', async ([, input]) => {
    const body = Readable.from([Buffer.from(input)]).pipe(new CopyBlockBody('k', columnList));
    await expect(text(body)).rejects.toThrow(BackupPartFormatError);
  });
});
