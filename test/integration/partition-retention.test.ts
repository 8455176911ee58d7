/**
 * Partition-aware retention end to end: the synthesized state machine, run locally with the real handlers,
 * against a real PostgreSQL and S3 API server. Monthly partitions lying wholly before the cutoff are
 * archived (archive) and detached and dropped (or kept) as units; the partition straddling the cutoff, the
 * DEFAULT partition and the last partition stay, and the chunk loop takes their eligible rows.
 */
import { S3ObjectStore } from '../../functions/adapters/archive-store.ts';
import { testConfig } from '../support/archive.ts';
import {
  expectArchiveGuarantees,
  FaultInjectingStore,
  failOnce,
  idKeyedScope,
  runRecord,
  tableKeys,
} from '../support/archive-guarantees.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';
import {
  idsWhere,
  monthlyPartitionNames,
  PARTITION_CUTOFF,
  partitionedTablePolicy,
  partitionsOf,
  runPartitionedTablePolicy,
  seedPartitioned,
} from '../support/partitioned.ts';

async function units(db: TestDatabase, runId: string | undefined) {
  const { rows } = await db.pool.query<{
    partition_name: string;
    state: string;
    detach_mode: string | null;
    rows: string;
    objects: number;
    kept_as: string | null;
    bound_to: string;
    rows_estimated: boolean;
  }>(
    `SELECT partition_name, state, detach_mode, rows::text, objects, kept_as, bound_to, rows_estimated
       FROM lifecycle.partition_units WHERE finished_by = $1 ORDER BY bound_to`,
    [runId ?? '00000000-0000-0000-0000-000000000000'],
  );
  return rows;
}

describe('partition retention: purge', () => {
  it('drops the partitions wholly before the cutoff (DETACH CONCURRENTLY) and purges the straddling one by rows', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare
    const table = 'purge_events';
    await seedPartitioned(db.pool, table, { first: '2025-10-01', last: '2027-01-01', from: '2025-10-01' });
    const eligible = await idsWhere(db, table, `created_at < '${PARTITION_CUTOFF}'`);
    const kept = await idsWhere(db, table, `created_at >= '${PARTITION_CUTOFF}'`);

    // Act: exact counts, so the units' rows can be checked against the rows seeded (the default records
    // estimates: partition-retention-counts.test.ts).
    const result = await runPartitionedTablePolicy(
      { runPolicy, definition },
      'purge',
      'events-purge',
      table,
      {
        overrides: { partitions: { count: 'exact' } },
      },
    );

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(eligible.length);
    expect(await idsWhere(db, table)).toEqual(kept);
    const dropped = monthlyPartitionNames(table, '2025-10-01', '2026-07-01');
    expect(await partitionsOf(db, table)).toEqual(monthlyPartitionNames(table, '2026-08-01', '2027-01-01'));
    const recorded = await units(db, result.summary?.runId);
    expect(recorded.map((u) => u.partition_name)).toEqual(dropped.map((n) => `"public"."${n}"`));
    expect(recorded.every((u) => u.state === 'dropped' && u.detach_mode === 'concurrently')).toBe(true);
    expect(recorded.some((u) => u.rows_estimated)).toBe(false);
    // The partitions' rows plus the straddling partition's chunked rows are the run's rows.
    const inDropped = recorded.reduce((sum, u) => sum + Number(u.rows), 0);
    expect(inDropped).toBe((await idsBefore('2026-08-01', eligible)).length);
    const chunks = await db.pool.query<{ rows: string }>(
      'SELECT sum(rows)::text AS rows FROM lifecycle.chunks WHERE run_id = $1',
      [result.summary?.runId],
    );
    expect(Number(chunks.rows[0]?.rows)).toBe(eligible.length);
    const tables = await db.pool.query(`SELECT 1 FROM pg_class WHERE relname = ANY ($1)`, [dropped]);
    expect(tables.rowCount).toBe(0);
  });

  it('keeps partitions a foreign key references directly and purges their rows by chunks instead', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare: a table referencing one old leaf partition itself (not the parent).
    const table = 'leaf_ref_events';
    await seedPartitioned(db.pool, table, { first: '2026-05-01', last: '2026-12-01', from: '2026-05-01' });
    await db.pool.query(`DROP TABLE IF EXISTS public.leaf_ref_notes`);
    await db.pool.query(`
      CREATE TABLE public.leaf_ref_notes (
        id integer PRIMARY KEY, event_id bigint NOT NULL, event_at timestamptz NOT NULL,
        FOREIGN KEY (event_id, event_at) REFERENCES public.${table}_2026_05 (id, created_at) ON DELETE CASCADE)`);
    const eligible = await idsWhere(db, table, `created_at < '${PARTITION_CUTOFF}'`);
    const kept = await idsWhere(db, table, `created_at >= '${PARTITION_CUTOFF}'`);

    // Act
    const result = await runPartitionedTablePolicy(
      { runPolicy, definition },
      'purge',
      'leaf-ref-purge',
      table,
    );

    // Assess: every eligible row purged through chunks, no partition detached or dropped.
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(eligible.length);
    expect(await idsWhere(db, table)).toEqual(kept);
    expect(await partitionsOf(db, table)).toEqual(monthlyPartitionNames(table, '2026-05-01', '2026-12-01'));
    expect(await units(db, result.summary?.runId)).toEqual([]);
  });

  it('count: "exact" drops a partition too large to count in countTimeoutMs with the planner estimate, flagged', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare: one old partition of 400 000 rows (counting takes far more than 1 ms) and the current one.
    const table = 'big_events';
    await db.pool.query(`DROP TABLE IF EXISTS public.${table} CASCADE`);
    await db.pool.query(`
      CREATE TABLE public.${table} (id bigint NOT NULL, created_at timestamptz NOT NULL)
        PARTITION BY RANGE (created_at);
      CREATE INDEX ON public.${table} (created_at);
      CREATE TABLE public.${table}_2026_01 PARTITION OF public.${table}
        FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00');
      CREATE TABLE public.${table}_2026_11 PARTITION OF public.${table}
        FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00');`);
    await db.pool.query(
      `INSERT INTO public.${table}
       SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '5 seconds' FROM generate_series(1, 400000) g
       UNION ALL SELECT 500000 + g, timestamptz '2026-11-20 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 10) g`,
    );
    await db.pool.query(`ANALYZE public.${table}`);

    // Act
    const result = await runPartitionedTablePolicy({ runPolicy, definition }, 'purge', 'big-purge', table, {
      overrides: { partitions: { count: 'exact', countTimeoutMs: 1 } },
    });

    // Assess: dropped, its rows recorded as the (flagged) estimate; the current partition untouched.
    expect(result.failure).toBeUndefined();
    expect(await partitionsOf(db, table)).toEqual([`${table}_2026_11`]);
    expect(await idsWhere(db, table)).toHaveLength(10);
    const [unit] = await units(db, result.summary?.runId);
    expect(unit?.state).toBe('dropped');
    expect(unit?.rows_estimated).toBe(true);
    expect(Math.abs(Number(unit?.rows) - 400_000)).toBeLessThan(20_000);
    expect(result.summary?.rows).toBe(Number(unit?.rows));
  });

  it('never drops the DEFAULT partition nor the last partition; with a DEFAULT it detaches under a lock', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare: every range partition lies before the cutoff; old rows also sit in the DEFAULT partition.
    const table = 'purge_default';
    await seedPartitioned(db.pool, table, {
      first: '2026-01-01',
      last: '2026-04-01',
      from: '2025-12-01',
      withDefault: true,
    });
    const eligible = await idsWhere(db, table, `created_at < '${PARTITION_CUTOFF}'`);
    const kept = await idsWhere(db, table, `created_at >= '${PARTITION_CUTOFF}'`);
    // Right before each commit (units and chunks alike), can the application still read the table?
    const readable: boolean[] = [];
    const beforeCommit = async () => {
      const reader = await db.pool.connect();
      try {
        await reader.query(`SET lock_timeout = '200ms'`);
        await reader.query(`SELECT count(*) FROM public.${table}`);
        readable.push(true);
      } catch {
        readable.push(false);
      } finally {
        await reader.query('RESET lock_timeout').catch(() => undefined);
        reader.release();
      }
    };

    // Act
    const result = await runPartitionedTablePolicy(
      { runPolicy, definition },
      'purge',
      'default-purge',
      table,
      { deps: { hooks: { beforeCommit } } },
    );

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(eligible.length);
    expect(await idsWhere(db, table)).toEqual(kept);
    expect(await partitionsOf(db, table)).toEqual([`${table}_2026_04`, `${table}_default`]);
    const recorded = await units(db, result.summary?.runId);
    expect(recorded.map((u) => u.partition_name)).toEqual(
      monthlyPartitionNames(table, '2026-01-01', '2026-03-01').map((n) => `"public"."${n}"`),
    );
    expect(recorded.every((u) => u.detach_mode === 'locked')).toBe(true);
    // The parent's lock ends with each DETACH: counting, checking and dropping the partition block no reader.
    expect(readable.length).toBeGreaterThanOrEqual(3);
    expect(readable.every(Boolean)).toBe(true);
  });

  it('keepDetached moves the retired partitions, with their rows, to detachedSchema', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare
    const table = 'purge_keep';
    await seedPartitioned(db.pool, table, { first: '2026-05-01', last: '2026-12-01', from: '2026-05-01' });
    await db.pool.query('CREATE SCHEMA IF NOT EXISTS retired');
    const inMay = await idsWhere(db, table, `created_at < '2026-06-01'`);

    // Act
    const result = await runPartitionedTablePolicy({ runPolicy, definition }, 'purge', 'keep-purge', table, {
      overrides: {
        partitions: { keepDetached: true, detachedSchema: 'retired' },
      },
    });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(await partitionsOf(db, table)).toEqual(monthlyPartitionNames(table, '2026-08-01', '2026-12-01'));
    const recorded = await units(db, result.summary?.runId);
    expect(recorded.map((u) => [u.state, u.kept_as])).toEqual(
      monthlyPartitionNames(table, '2026-05-01', '2026-07-01').map((n) => ['kept', `"retired"."${n}"`]),
    );
    const moved = await tableKeys(db.pool, `SELECT id::text AS k FROM retired.${table}_2026_05 ORDER BY id`);
    expect(moved).toEqual(inMay);
  });
});

/** Of `eligible`, those older than `bound` (ids grow with time in these tables). */
async function idsBefore(bound: string, eligible: readonly string[]): Promise<string[]> {
  const first = new Date('2025-10-01T00:00:00Z').getTime();
  const end = new Date(`${bound}T00:00:00Z`).getTime();
  const count = Math.ceil((end - first) / (6 * 3600 * 1000));
  return eligible.filter((id) => Number(id) < count);
}

describe('partition retention: archive', () => {
  it('archives each old partition into its Hive partition, then drops it; the straddling one is chunked', async ({
    services,
  }) => {
    const { db } = services;
    // Prepare
    const table = 'archive_events';
    await seedPartitioned(db.pool, table, { first: '2025-10-01', last: '2027-01-01', from: '2025-10-01' });
    const scope = idKeyedScope(services, 'events-archive', table);
    const before = await tableKeys(db.pool, scope.tableKeysSql);
    const eligible = await idsWhere(db, table, `created_at < '${PARTITION_CUTOFF}'`);

    // Act
    const result = await runPartitionedTablePolicy(services, 'archive', 'events-archive', table);

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(eligible.length);
    const state = await expectArchiveGuarantees(scope, before);
    expect([...state.archivedKeys].sort()).toEqual([...eligible].sort());
    expect(await partitionsOf(db, table)).toEqual(monthlyPartitionNames(table, '2026-08-01', '2027-01-01'));
    const recorded = await units(db, result.summary?.runId);
    expect(recorded).toHaveLength(10);
    expect(recorded.every((u) => u.state === 'dropped' && u.objects === 1)).toBe(true);
    // One object per dropped month, in that month's Hive partition, holding exactly that partition's rows.
    const byMonth = new Map(state.objects.map((o) => [o.partition, o]));
    for (const unit of recorded) {
      const month = unit.partition_name.match(/_(\d{4})_(\d{2})"$/);
      const object = byMonth.get(`year=${month?.[1]}/month=${month?.[2]}`);
      expect(object?.rows).toBe(Number(unit.rows));
    }
    expect(await runRecord(db.pool, result.summary?.runId)).toMatchObject({ status: 'succeeded' });
  });

  it('archives by leaf chunks with a filter that names the table (the leaf is read under its name)', async ({
    services,
  }) => {
    const { db } = services;
    // Prepare: a filter keeps partition retention off, so chunks work leaf by leaf.
    const table = 'archive_named';
    await seedPartitioned(db.pool, table, { first: '2026-05-01', last: '2026-12-01', from: '2026-05-01' });
    const scope = idKeyedScope(services, 'named-archive', table);
    const before = await tableKeys(db.pool, scope.tableKeysSql);
    const eligible = await idsWhere(db, table, `created_at < '${PARTITION_CUTOFF}' AND id % 3 <> 0`);

    // Act
    const result = await runPartitionedTablePolicy(services, 'archive', 'named-archive', table, {
      overrides: { filter: `${table}.id % 3 <> 0` },
    });

    // Assess
    expect(result.failure).toBeUndefined();
    const state = await expectArchiveGuarantees(scope, before);
    expect([...state.archivedKeys].sort()).toEqual([...eligible].sort());
  });

  it('a failed upload during a partition drops nothing and loses nothing; a retry completes', async ({
    services,
  }) => {
    const { db, s3, bucket, runPolicy, definition } = services;
    // Prepare
    const table = 'archive_fault';
    await seedPartitioned(db.pool, table, { first: '2026-03-01', last: '2026-12-01', from: '2026-03-01' });
    const scope = idKeyedScope(services, 'fault-archive', table);
    const before = await tableKeys(db.pool, scope.tableKeysSql);
    const partitionsBefore = await partitionsOf(db, table);
    const eligible = await idsWhere(db, table, `created_at < '${PARTITION_CUTOFF}'`);
    const config = testConfig([partitionedTablePolicy('archive', 'fault-archive', table)]);
    // The second object (April's partition) fails with a terminal error: March is already archived and dropped.
    const store = new FaultInjectingStore(new S3ObjectStore(s3, bucket), {
      put: failOnce(2, () => new Error('injected upload failure')),
    });

    // Act 1
    const failed = await runPolicy(config, 'fault-archive', {
      definition,
      deps: { store, bucket: undefined },
    });

    // Assess 1: the run failed, April is still attached with all its rows, nothing is lost or orphaned.
    expect(failed.status).toBe('failed');
    expect(store.faultedKeys).toHaveLength(1);
    expect(await partitionsOf(db, table)).toEqual(partitionsBefore.slice(1));
    await expectArchiveGuarantees(scope, before);
    expect(
      await idsWhere(db, table, `created_at >= '2026-04-01' AND created_at < '2026-05-01'`),
    ).toHaveLength(120);

    // Act 2
    const retried = await runPolicy(config, 'fault-archive', { definition });

    // Assess 2
    expect(retried.failure).toBeUndefined();
    const state = await expectArchiveGuarantees(scope, before);
    expect([...state.archivedKeys].sort()).toEqual([...eligible].sort());
    expect(await partitionsOf(db, table)).toEqual(monthlyPartitionNames(table, '2026-08-01', '2026-12-01'));
    // Writes to a dropped partition's range now fail loudly (no partition), never land unarchived.
    await expect(
      db.pool.query(`INSERT INTO public.${table} VALUES (-1, '2026-04-15', 'late')`),
    ).rejects.toThrow(/no partition/);
  });
});
