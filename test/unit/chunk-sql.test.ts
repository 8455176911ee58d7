import { describe, expect, it } from 'vitest';
import {
  buildCountEligibleStatement,
  buildDeleteChunkStatement,
  buildPurgeChunkStatement,
  type ChunkTarget,
  eligibleWhere,
} from '../../functions/core/chunk-sql.ts';

const base: ChunkTarget = {
  schema: 'public',
  table: 'Camera"Events',
  partitioned: false,
  timeColumn: { name: 'CreatedAt', kind: 'timestamptz' },
  keyColumns: [{ name: 'id', typeName: 'bigint' }],
  columnNames: ['id', 'CreatedAt', 'payload'],
};

describe('chunk SQL', () => {
  it('quotes every identifier and casts cursor values back with the column types', () => {
    const { text, orderPositions, firstColumnPosition } = buildDeleteChunkStatement(base, true);
    expect(text).toContain('DELETE FROM "public"."Camera""Events"');
    expect(text).toContain('"CreatedAt" < $1::timestamptz');
    expect(text).toContain('("CreatedAt", "id") > ($3::timestamptz, $4::bigint)');
    expect(text).toContain('ORDER BY "CreatedAt", "id"');
    expect(text).toContain('LIMIT $2');
    expect(text).toContain('FOR UPDATE SKIP LOCKED');
    // The time and key values are read from the returned columns (id is column 1, CreatedAt column 2).
    expect(text).toMatch(/ORDER BY 2, 1$/);
    expect(text).toContain('RETURNING "public"."Camera""Events"."id", "public"."Camera""Events"."CreatedAt"');
    expect(orderPositions).toEqual([1, 0]);
    expect(firstColumnPosition).toBe(0);
  });

  it('purge returns only the order terms, never the row contents', () => {
    const keyed = buildPurgeChunkStatement(base, true);
    expect(keyed.text).toContain('FOR UPDATE SKIP LOCKED');
    expect(keyed.text).toContain(
      'RETURNING "public"."Camera""Events"."CreatedAt" AS o1, "public"."Camera""Events"."id" AS o2',
    );
    expect(keyed.text).not.toContain('"payload"');
    // One summary row: the count, then the first and the last rows' order values, sorted on their own
    // types and only then cast to text (text order would put id 9 after id 10).
    expect(keyed.text).toContain(
      'SELECT (SELECT count(*) FROM deleted)::text AS n, first_row.o1::text, first_row.o2::text, last_row.o1::text, last_row.o2::text',
    );
    expect(keyed.text).toContain(
      '(SELECT o1, o2 FROM deleted ORDER BY o1 DESC, o2 DESC LIMIT 1) AS last_row',
    );
    expect(keyed.terms).toBe(2);
    const partitionedNoKey = buildPurgeChunkStatement({ ...base, keyColumns: [], partitioned: true }, false);
    expect(partitionedNoKey.text).toContain(
      'RETURNING "public"."Camera""Events"."CreatedAt" AS o1, "public"."Camera""Events".tableoid AS o2, "public"."Camera""Events".ctid AS o3',
    );
    expect(partitionedNoKey.terms).toBe(3);
  });

  it('orders by ctid without a primary key, and joins on tableoid for partitioned tables', () => {
    const noKey = { ...base, keyColumns: [] };
    expect(eligibleWhere(noKey, true)).toContain('("CreatedAt", ctid) > ($3::timestamptz, $4::tid)');
    const plain = buildDeleteChunkStatement(noKey, true);
    expect(plain.text).toContain('RETURNING "public"."Camera""Events".ctid, "public"."Camera""Events"."id"');
    expect(plain.orderPositions).toEqual([2, 0]);
    expect(plain.firstColumnPosition).toBe(1);
    const partitioned = buildDeleteChunkStatement({ ...noKey, partitioned: true }, true).text;
    expect(partitioned).toContain('("CreatedAt", tableoid, ctid) > ($3::timestamptz, $4::oid, $5::tid)');
    expect(partitioned).toContain('.tableoid = pg_lifecycle_locked.lock_oid');
  });

  it('wraps the filter in parentheses so OR cannot escape the cutoff', () => {
    const where = eligibleWhere({ ...base, filter: "a = 1 OR b = 'x'" }, false);
    expect(where).toBe(`"CreatedAt" < $1::timestamptz\n    AND (a = 1 OR b = 'x')`);
  });

  it('compares timestamp and date columns with the UTC cutoff', () => {
    expect(eligibleWhere({ ...base, timeColumn: { name: 't', kind: 'timestamp' } }, false)).toBe(
      `"t" < ($1::timestamptz AT TIME ZONE 'UTC')`,
    );
    expect(buildCountEligibleStatement({ ...base, timeColumn: { name: 'd', kind: 'date' } })).toContain(
      `"d" < ($1::timestamptz AT TIME ZONE 'UTC')::date`,
    );
  });

  it('puts the partition bound after the cursor parameters, cast like the cutoff', () => {
    const { text } = buildDeleteChunkStatement(base, true, { upperBound: true });
    expect(text).toContain('("CreatedAt", "id") > ($3::timestamptz, $4::bigint)');
    expect(text).toContain('"CreatedAt" < $5::timestamptz');
    expect(buildDeleteChunkStatement(base, false, { upperBound: true }).text).toContain(
      '"CreatedAt" < $3::timestamptz',
    );
  });

  it('works inside one leaf partition by ctid, keeping the parent keyset (tableoid stays a term)', () => {
    const leafTarget = {
      ...base,
      keyColumns: [],
      partitioned: true,
      leaf: { schema: 'public', table: 'events_2024_01' },
    };
    const { text } = buildDeleteChunkStatement(leafTarget, true);
    // Read under the parent's name, so a filter qualified with it still resolves.
    expect(text).toContain(
      'DELETE FROM "public"."events_2024_01" AS "Camera""Events"\n  WHERE ctid = ANY (ARRAY(',
    );
    expect(text).toContain('RETURNING "Camera""Events".tableoid, "Camera""Events".ctid');
    expect(text).not.toContain('lock_oid');
    expect(text).toContain('("CreatedAt", tableoid, ctid) > ($3::timestamptz, $4::oid, $5::tid)');
    expect(buildPurgeChunkStatement(leafTarget, false).text).toContain(
      'SELECT ctid FROM "public"."events_2024_01" AS "Camera""Events"',
    );
  });
});
