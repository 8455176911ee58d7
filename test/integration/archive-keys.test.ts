/**
 * Archive over every kind of row identity the keyset cursor must handle, through the synthesized state
 * machine (run locally with the real handlers) against a real PostgreSQL and a real S3 API server:
 * no primary key (ctid), a composite text + integer key, a uuid key, mixed-case quoted names, and range
 * partitioned tables with and without a primary key. Time values repeat across chunk boundaries, so the
 * tie-breaking part of the cursor is what keeps rows from being skipped or taken twice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { testConfig } from '../support/archive.ts';
import { expectArchiveGuarantees, runRecord, tableKeys } from '../support/archive-guarantees.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

const RETENTION = 'P90D';
/** 150-row chunks: chunk boundaries fall inside groups of rows sharing one time value. */
const CHUNKING = { initialRows: 150, minRows: 150, maxRows: 150 };

/** Monthly range partitions of `parent` covering the two years before NOW (plus the month of NOW). */
const monthlyPartitions = (parent: string) => `
  DO $$
  DECLARE m date;
  BEGIN
    FOR m IN SELECT generate_series(date '2024-11-01', date '2026-11-01', interval '1 month')::date LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF ${parent} FOR VALUES FROM (%L) TO (%L)',
                     '${parent}_' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
    END LOOP;
  END $$`;

interface KeyCase {
  readonly title: string;
  readonly policy: string;
  /** `table` and `timeColumn` exactly as a user writes them in the config. */
  readonly table: string;
  readonly timeColumn: string;
  readonly setup: readonly string[];
  /** SQL: the quoted table, the quoted time column, and a text key expression of a row. */
  readonly from: string;
  readonly time: string;
  readonly key: string;
  /** The same key from an archived row (Parquet column names are the table's own). */
  readonly keyOf: (row: Record<string, unknown>) => string;
  /** A non-key column whose archived value must be the table's. */
  readonly check: string;
  /** The keyset order as PostgreSQL sorts it (time, then the key or the system columns). */
  readonly order: string;
  /** Every object key starts with this: `archive/<policy>/<encoded schema>.<encoded table>/`. */
  readonly prefix: string;
}

// $1 = NOW. Rows are inserted in random physical order, so ctid order is not time order.
const cases: KeyCase[] = [
  {
    title: 'a table without a primary key (ordered by ctid)',
    policy: 'no-pk',
    table: 'public.no_pk_events',
    timeColumn: 'created_at',
    setup: [
      'CREATE TABLE public.no_pk_events (seq integer NOT NULL, created_at timestamptz NOT NULL, note text)',
      `INSERT INTO public.no_pk_events
       SELECT g, $1::timestamptz - (g / 40) * interval '10 days', 'note ' || g
         FROM generate_series(1, 1200) AS g ORDER BY random()`,
      // Twins of every third row (same time and note): within a time value only ctid orders them.
      `INSERT INTO public.no_pk_events SELECT seq + 100000, created_at, note FROM public.no_pk_events WHERE seq % 3 = 0`,
    ],
    from: 'public.no_pk_events',
    time: 'created_at',
    key: 'seq::text',
    keyOf: (row) => String(row.seq),
    check: 'note',
    order: 'created_at, ctid',
    prefix: 'archive/no-pk/public.no_pk_events/',
  },
  {
    title: 'a composite primary key (text + integer)',
    policy: 'composite-pk',
    table: 'public.composite_events',
    timeColumn: 'created_at',
    setup: [
      `CREATE TABLE public.composite_events (
         region text NOT NULL, n integer NOT NULL, created_at timestamptz NOT NULL, note text,
         PRIMARY KEY (region, n))`,
      `INSERT INTO public.composite_events
       SELECT r, n, $1::timestamptz - (n / 10) * interval '12 days', r || '/' || n
         FROM unnest(ARRAY['eu', 'US', 'ap', 'Ünter', 'a b', 'a''b']) AS r, generate_series(1, 250) AS n
        ORDER BY random()`,
    ],
    from: 'public.composite_events',
    time: 'created_at',
    key: `region || '#' || n`,
    keyOf: (row) => `${String(row.region)}#${String(row.n)}`,
    check: 'note',
    order: 'created_at, region, n',
    prefix: 'archive/composite-pk/public.composite_events/',
  },
  {
    title: 'a uuid primary key',
    policy: 'uuid-pk',
    table: 'public.uuid_events',
    timeColumn: 'created_at',
    setup: [
      `CREATE TABLE public.uuid_events (
         id uuid PRIMARY KEY DEFAULT gen_random_uuid(), created_at timestamptz NOT NULL, note text)`,
      `INSERT INTO public.uuid_events (created_at, note)
       SELECT $1::timestamptz - (g / 25) * interval '7 days', 'note ' || g FROM generate_series(1, 1200) AS g`,
    ],
    from: 'public.uuid_events',
    time: 'created_at',
    key: 'id::text',
    keyOf: (row) => String(row.id),
    check: 'note',
    order: 'created_at, id',
    prefix: 'archive/uuid-pk/public.uuid_events/',
  },
  {
    title: 'mixed-case quoted schema, table and column names',
    policy: 'quoted-names',
    table: '"Sales"."Order Lines"',
    timeColumn: '"CreatedAt"',
    setup: [
      'CREATE SCHEMA "Sales"',
      `CREATE TABLE "Sales"."Order Lines" (
         "LineId" bigint PRIMARY KEY, "CreatedAt" timestamptz NOT NULL, "Amount" numeric(10,2) NOT NULL,
         created_at timestamptz NOT NULL)`,
      // A lower-case created_at decoy holding NOW: archiving by it would take nothing.
      `INSERT INTO "Sales"."Order Lines"
       SELECT g, $1::timestamptz - (g / 20) * interval '5 days', g * 1.25, $1::timestamptz
         FROM generate_series(1, 1200) AS g ORDER BY random()`,
    ],
    from: '"Sales"."Order Lines"',
    time: '"CreatedAt"',
    key: '"LineId"::text',
    keyOf: (row) => String(row.LineId),
    check: '"Amount"',
    order: '"CreatedAt", "LineId"',
    prefix: 'archive/quoted-names/Sales.Order%20Lines/',
  },
  {
    title: 'a range-partitioned table with a primary key including the time column',
    policy: 'partitioned-pk',
    table: 'public.measurements',
    timeColumn: 'created_at',
    setup: [
      `CREATE TABLE public.measurements (
         id bigint NOT NULL, created_at timestamptz NOT NULL, value double precision,
         PRIMARY KEY (created_at, id)) PARTITION BY RANGE (created_at)`,
      monthlyPartitions('measurements'),
      `INSERT INTO public.measurements
       SELECT g, $1::timestamptz - (g / 4) * interval '12 hours', g / 7.0
         FROM generate_series(1, 1400) AS g ORDER BY random()`,
    ],
    from: 'public.measurements',
    time: 'created_at',
    key: 'id::text',
    keyOf: (row) => String(row.id),
    check: 'value',
    order: 'created_at, id',
    prefix: 'archive/partitioned-pk/public.measurements/',
  },
  {
    title: 'a range-partitioned table without a primary key (ordered by tableoid, ctid)',
    policy: 'partitioned-no-pk',
    table: 'public.readings',
    timeColumn: 'created_at',
    setup: [
      `CREATE TABLE public.readings (
         n integer NOT NULL, created_at timestamptz NOT NULL, reading text) PARTITION BY RANGE (created_at)`,
      monthlyPartitions('readings'),
      `INSERT INTO public.readings
       SELECT g, $1::timestamptz - (g / 30) * interval '10 days', 'r' || (g % 5)
         FROM generate_series(1, 1400) AS g ORDER BY random()`,
    ],
    from: 'public.readings',
    time: 'created_at',
    key: 'n::text',
    keyOf: (row) => String(row.n),
    check: 'reading',
    order: 'created_at, tableoid, ctid',
    prefix: 'archive/partitioned-no-pk/public.readings/',
  },
  {
    // Hash leaves interleave in time: chunks must stay parent-wide (a leaf-local chunk would step over rows).
    title: 'a hash-partitioned table (leaves interleave in time)',
    policy: 'hash-partitioned',
    table: 'public.hashed',
    timeColumn: 'created_at',
    setup: [
      `CREATE TABLE public.hashed (n integer PRIMARY KEY, created_at timestamptz NOT NULL, note text) PARTITION BY HASH (n)`,
      'CREATE TABLE public.hashed_0 PARTITION OF public.hashed FOR VALUES WITH (MODULUS 3, REMAINDER 0)',
      'CREATE TABLE public.hashed_1 PARTITION OF public.hashed FOR VALUES WITH (MODULUS 3, REMAINDER 1)',
      'CREATE TABLE public.hashed_2 PARTITION OF public.hashed FOR VALUES WITH (MODULUS 3, REMAINDER 2)',
      'CREATE INDEX ON public.hashed (created_at)',
      `INSERT INTO public.hashed SELECT g, $1::timestamptz - (g / 30) * interval '10 days', 'h' || (g % 7) FROM generate_series(1, 1400) AS g`,
    ],
    from: 'public.hashed',
    time: 'created_at',
    key: 'n::text',
    keyOf: (row) => String(row.n),
    check: 'note',
    order: 'created_at, n',
    prefix: 'archive/hash-partitioned/public.hashed/',
  },
];

describe('archive keyset over every kind of row identity', () => {
  it.for(cases)(
    'archives exactly the eligible rows of $title, each once',
    async (c, { database: db, s3, bucket, runPolicy, definition }) => {
      // Prepare
      for (const statement of c.setup) {
        await db.pool.query(statement, statement.includes('$1') ? [NOW.toISOString()] : []);
      }
      const tableKeysSql = `SELECT ${c.key} AS k FROM ${c.from}`;
      const before = await tableKeys(db.pool, tableKeysSql);
      const eligible = await db.pool.query<{ k: string; check: string | null }>(
        `SELECT ${c.key} AS k, ${c.check}::text AS check FROM ${c.from}
        WHERE ${c.time} < $1::timestamptz - $2::interval ORDER BY ${c.order}`,
        [NOW.toISOString(), RETENTION],
      );
      expect(eligible.rowCount).toBeGreaterThan(3 * CHUNKING.maxRows);
      const config = testConfig([
        {
          name: c.policy,
          table: c.table,
          action: 'archive',
          timeColumn: c.timeColumn,
          retention: RETENTION,
          chunking: CHUNKING,
          // The chunk keyset is under test: old partitions go through chunks, not as whole units.
          partitions: { enabled: false },
        },
      ]);

      // Act
      const result = await runPolicy(config, c.policy, {
        definition,
        // With each commit held 30 ms, a 1.1 s budget fits about one chunk: several Chunk invocations.
        chunkBudgetMs: 1_100,
        deps: { hooks: { beforeCommit: () => sleep(30) } },
      });

      // Assess
      expect(result.failure).toBeUndefined();
      expect(result.status).toBe('succeeded');
      const scope = { pool: db.pool, s3, bucket, policy: c.policy, tableKeysSql, keyOf: c.keyOf };
      const state = await expectArchiveGuarantees(scope, before);
      // In keyset order, object after object: each object's first and last rows bound its ledger ranges.
      expect(state.archivedKeys).toEqual(eligible.rows.map((r) => r.k));
      expect(result.summary?.rows).toBe(eligible.rowCount);
      const run = await runRecord(db.pool, result.summary?.runId);
      expect(Number(run?.chunks)).toBeGreaterThanOrEqual(
        Math.ceil((eligible.rowCount ?? 0) / CHUNKING.maxRows),
      );
      expect(result.chunkInvocations).toBeGreaterThan(1);
      // Object keys carry the encoded schema.table of the configured (parent) table.
      expect(state.objects.length).toBeGreaterThan(0);
      expect(state.objects.filter((o) => !o.key.startsWith(`${c.prefix}${o.partition}/`))).toEqual([]);
      // Each archived row is the row that was in the table (compared on a non-key column).
      const expected = new Map(eligible.rows.map((r) => [r.k, r.check]));
      const column = c.check.replaceAll('"', '');
      const differing = state.archived.filter((row) => {
        const want = expected.get(c.keyOf(row));
        const got = row[column];
        return want === null
          ? got !== null && got !== undefined
          : Number.isNaN(Number(want))
            ? String(got) !== want
            : Number(got) !== Number(want);
      });
      expect(differing).toEqual([]);
    },
  );
});
