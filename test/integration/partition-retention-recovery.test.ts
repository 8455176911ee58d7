/**
 * Recovery paths of partition retention (archive), end to end through the local state machine with the real
 * handlers, a real PostgreSQL and S3 API server:
 * - a crash after an archive unit's COMMIT and before its DETACH / DROP: the retried step (or the next run)
 *   finishes the unit from the ledger — the partition is dropped, its rows are in the listed objects once;
 * - the out-of-time fallback: a unit that cannot finish within the step's budget rolls back (its uploads
 *   become orphans the Finish step deletes), is marked `chunked`, and the chunk loop archives its rows.
 */
import type pg from 'pg';
import { TransientDatabaseError } from '../../functions/core/errors.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import { runPolicyLocally } from '../../functions/local-runner/local-runner.ts';
import type { ChunkFaultHooks } from '../../functions/run/dependencies.ts';
import { type LedgerObject, readArchivedRows, testConfig } from '../support/archive.ts';
import {
  duplicatesOf,
  expectArchiveGuarantees,
  idKeyedScope,
  runRecord,
  tableKeys,
} from '../support/archive-guarantees.ts';
import type { TestDatabase } from '../support/database.ts';
import { sorted } from '../support/event-archive.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';
import {
  idsWhere,
  PARTITION_CUTOFF,
  partitionedTablePolicy,
  relationExists,
  runPartitionedTablePolicy,
  seedPartitioned,
} from '../support/partitioned.ts';
import { listAllKeys } from '../support/s3.ts';

/** `public.<table>`: monthly partitions March to December 2026, one row every 6 hours from March 1st to NOW. */
function seedMonthly(db: TestDatabase, table: string): Promise<void> {
  return seedPartitioned(db.pool, table, {
    first: '2026-03-01',
    last: '2026-12-01',
    from: '2026-03-01T00:00:00Z',
  });
}

interface UnitRow {
  run_id: string;
  finished_by: string | null;
  state: string;
  rows: string | null;
  objects: number;
  chunk_seq: number | null;
}

async function unitOf(db: TestDatabase, partition: string): Promise<UnitRow[]> {
  const { rows } = await db.pool.query<UnitRow>(
    `SELECT run_id::text, finished_by::text, state, rows::text, objects, chunk_seq
       FROM lifecycle.partition_units WHERE partition_name = $1 ORDER BY started_at`,
    [`"public"."${partition}"`],
  );
  return rows;
}

/** The ledger-listed objects of one chunk of a run (a unit records its objects under its `chunk_seq`). */
async function objectsOfChunk(db: TestDatabase, runId: string, seq: number): Promise<LedgerObject[]> {
  const { rows } = await db.pool.query<LedgerObject>(
    `SELECT key, rows, bytes::int AS bytes, sha256, partition, run_id::text FROM lifecycle.archived_objects
      WHERE run_id = $1 AND chunk_seq = $2 ORDER BY object_id`,
    [runId, seq],
  );
  return rows;
}

describe('partition retention: crash after an archive unit committed, before DETACH / DROP', () => {
  it('the retried step finishes the unit: the partition is dropped, its rows archived exactly once', async ({
    services,
  }) => {
    const { db, s3, bucket } = services;
    // Prepare
    const table = 'crash_retry';
    await seedMonthly(db, table);
    const scope = idKeyedScope(services, 'crash-retry', table);
    const before = await tableKeys(db.pool, scope.tableKeysSql);
    const eligible = await idsWhere(db, table, `created_at < '${PARTITION_CUTOFF}'`);
    const inMarch = await idsWhere(db, table, `created_at < '2026-04-01'`);
    const archivedUnits: string[] = [];
    const hooks: ChunkFaultHooks = {
      afterPartitionArchived: (partition) => {
        archivedUnits.push(partition);
        if (archivedUnits.length === 1) {
          throw new TransientDatabaseError('injected: connection lost after the unit COMMIT');
        }
      },
    };

    // Act
    const result = await runPartitionedTablePolicy(services, 'archive', 'crash-retry', table, {
      deps: { hooks },
    });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(2);
    // March was archived once (the retried step finished it from the ledger; it did not archive it again).
    const months = ['03', '04', '05', '06', '07'].map((m) => `"public"."${table}_2026_${m}"`);
    expect(archivedUnits).toEqual(months);
    const state = await expectArchiveGuarantees(scope, before);
    expect(sorted(state.archivedKeys)).toEqual(sorted(eligible));
    expect(result.summary?.rows).toBe(eligible.length);
    expect(await runRecord(db.pool, result.summary?.runId)).toMatchObject({
      status: 'succeeded',
      rows: String(eligible.length),
    });
    expect(await relationExists(db, `${table}_2026_03`)).toBe(false);
    const [unit] = await unitOf(db, `${table}_2026_03`);
    expect(unit).toMatchObject({
      run_id: result.summary?.runId,
      finished_by: result.summary?.runId,
      state: 'dropped',
      rows: String(inMarch.length),
      objects: 1,
    });
    // Every March row is in the unit's listed object(s), read back from S3, once.
    const unitRows = await readArchivedRows(
      s3,
      bucket,
      await objectsOfChunk(db, result.summary?.runId as string, unit?.chunk_seq as number),
    );
    const unitKeys = unitRows.map(scope.keyOf);
    expect(duplicatesOf(unitKeys)).toEqual([]);
    expect(sorted(unitKeys)).toEqual(sorted(inMarch));
  });

  it.for<[string, string, Record<string, unknown>]>([
    ['with the same policy', 'crash_next_run', {}],
    // Left open, the fenced partition's rows would be archived a second time by the chunk loop.
    [
      'with partition retention turned off meanwhile',
      'crash_next_run_off',
      { partitions: { enabled: false } },
    ],
  ])(
    'after a terminal crash, the next run finishes the unit the failed run started (%s)',
    async ([, table, nextOverrides], { services }) => {
      const { db, s3, bucket, runPolicy, definition } = services;
      // Prepare
      const policyName = table.replaceAll('_', '-');
      await seedMonthly(db, table);
      const scope = idKeyedScope(services, policyName, table);
      const before = await tableKeys(db.pool, scope.tableKeysSql);
      const eligible = await idsWhere(db, table, `created_at < '${PARTITION_CUTOFF}'`);
      const inMarch = await idsWhere(db, table, `created_at < '2026-04-01'`);
      const config = testConfig([partitionedTablePolicy('archive', policyName, table)]);
      const hooks: ChunkFaultHooks = {
        afterPartitionArchived: () => {
          throw new Error('injected: terminal failure after the unit COMMIT');
        },
      };

      // Act 1
      const failed = await runPolicy(config, policyName, { definition, deps: { hooks } });

      // Assess 1: March is archived (listed, counted into the failed run) and fenced, still attached.
      expect(failed.status).toBe('failed');
      const [open] = await unitOf(db, `${table}_2026_03`);
      expect(open).toMatchObject({ state: 'archived', finished_by: null, rows: String(inMarch.length) });
      expect(await idsWhere(db, table, `created_at < '2026-04-01'`)).toEqual(inMarch);
      await expect(
        db.pool.query(`INSERT INTO public.${table} VALUES (-1, '2026-03-15', 'late')`),
      ).rejects.toThrow(/pg_lifecycle_archived_fence/);

      // Act 2
      const next = await runPartitionedTablePolicy(services, 'archive', policyName, table, {
        overrides: nextOverrides,
      });

      // Assess 2
      expect(next.failure).toBeUndefined();
      const state = await expectArchiveGuarantees(scope, before);
      expect(sorted(state.archivedKeys)).toEqual(sorted(eligible));
      expect(await relationExists(db, `${table}_2026_03`)).toBe(false);
      const [unit] = await unitOf(db, `${table}_2026_03`);
      expect(unit).toMatchObject({
        run_id: open?.run_id,
        finished_by: next.summary?.runId,
        state: 'dropped',
        rows: String(inMarch.length),
      });
      const unitKeys = (
        await readArchivedRows(
          s3,
          bucket,
          await objectsOfChunk(db, open?.run_id as string, open?.chunk_seq as number),
        )
      ).map(scope.keyOf);
      expect(sorted(unitKeys)).toEqual(sorted(inMarch));
      // Each run counts what it archived: March in the failed run, the rest in the next one.
      expect(await runRecord(db.pool, open?.run_id)).toMatchObject({ rows: String(inMarch.length) });
      expect(next.summary?.rows).toBe(eligible.length - inMarch.length);
    },
  );
});

describe('partition retention: an archived partition whose write fence was removed', () => {
  it('is not dropped: a late row written meanwhile is not in the archive', async ({
    database: db,
    runPolicy,
    definition,
  }) => {
    // Prepare: March archived and fenced by a run that then failed.
    const table = 'unfenced';
    const policyName = 'unfenced';
    await seedMonthly(db, table);
    const config = testConfig([partitionedTablePolicy('archive', policyName, table)]);
    const failed = await runPolicy(config, policyName, {
      definition,
      deps: {
        hooks: {
          afterPartitionArchived: () => {
            throw new Error('injected: terminal failure after the unit COMMIT');
          },
        },
      },
    });
    expect(failed.status).toBe('failed');
    // An operator lifts the fence to let a late row in, and deletes an archived row (the count stays lower).
    await db.pool.query(`ALTER TABLE public.${table}_2026_03 DROP CONSTRAINT pg_lifecycle_archived_fence`);
    await db.pool.query(`INSERT INTO public.${table} VALUES (-1, '2026-03-15', 'late')`);
    await db.pool.query(
      `DELETE FROM public.${table} WHERE id = (SELECT min(id) FROM public.${table}_2026_03 WHERE id > 0)`,
    );

    // Act
    const next = await runPolicy(config, policyName, { definition });

    // Assess: the run stops on the unit; the partition and its late row are still there.
    expect(next.status).toBe('failed');
    expect(next.failure?.error).toBe('PartitionRetentionError');
    expect(next.failure?.cause).toContain('lost its write fence');
    expect(await relationExists(db, `${table}_2026_03`)).toBe(true);
    expect(await idsWhere(db, table, 'id = -1')).toEqual(['-1']);
  });
});

describe('partition retention: a unit that cannot finish within the step falls back to chunks', () => {
  it('rolls the unit back, marks it chunked, and the chunk loop archives its rows exactly once', async ({
    database: db,
    s3,
    bucket,
    definition,
  }) => {
    // Prepare: day-sized objects and 50-row FETCHes, so April's unit has uploaded objects when time runs out.
    const table = 'out_of_time';
    await seedMonthly(db, table);
    const policyName = 'out-of-time';
    const scope = idKeyedScope({ db, s3, bucket }, policyName, table);
    const before = await tableKeys(db.pool, scope.tableKeysSql);
    const eligible = await idsWhere(db, table, `created_at < '${PARTITION_CUTOFF}'`);
    const inApril = await idsWhere(db, table, `created_at >= '2026-04-01' AND created_at < '2026-05-01'`);
    const config = testConfig([
      partitionedTablePolicy('archive', policyName, table, {
        chunking: { initialRows: 50, minRows: 50, maxRows: 50 },
        archive: { partitionBy: 'day' },
      }),
    ]);
    // The step's clock says "no time left" at the second time check after April's cursor is declared
    // (after one FETCH of 50 rows, i.e. 12 whole days uploaded as objects), once.
    const april = `"public"."${table}_2026_04"`;
    let armed = false;
    let fired = false;
    let checks = 0;
    const uploaded: string[] = [];
    const base = localDependencies({
      databaseUrl: db.url,
      bucket,
      s3,
      now: () => NOW,
      hooks: {
        afterUpload: (key) => {
          uploaded.push(key);
        },
      },
    });
    const uploadedBeforeAbort: string[] = [];

    // Act
    const result = await runPolicyLocally({
      config,
      policyName,
      definition,
      pauseMs: 0,
      retryIntervalMs: 0,
      dependencies: (context) => {
        const deps = base(context);
        return {
          ...deps,
          connect: async () => {
            const client = await deps.connect();
            const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
            (client as { query: unknown }).query = (...args: unknown[]) => {
              const text = typeof args[0] === 'string' ? args[0] : '';
              if (!fired && text.startsWith('DECLARE pg_lifecycle_partition') && text.includes(april)) {
                armed = true;
              }
              return query(...args);
            };
            return client as pg.Client;
          },
          remainingMs: () => {
            if (armed && ++checks === 2) {
              armed = false;
              fired = true;
              uploadedBeforeAbort.push(...uploaded);
              return 0;
            }
            return deps.remainingMs();
          },
        };
      },
    });

    // Assess
    expect(fired).toBe(true);
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    const state = await expectArchiveGuarantees(scope, before);
    expect(sorted(state.archivedKeys)).toEqual(sorted(eligible));
    expect(result.summary?.rows).toBe(eligible.length);
    const runId = result.summary?.runId as string;
    // April: rolled back and left to the chunk loop (still attached, now empty); the other old months dropped.
    const [aprilUnit] = await unitOf(db, `${table}_2026_04`);
    expect(aprilUnit).toMatchObject({ run_id: runId, state: 'chunked', rows: null, chunk_seq: null });
    expect(await relationExists(db, `${table}_2026_04`)).toBe(true);
    expect(await idsWhere(db, table, `created_at >= '2026-04-01' AND created_at < '2026-05-01'`)).toEqual([]);
    for (const month of ['03', '05', '06', '07']) {
      expect((await unitOf(db, `${table}_2026_${month}`))[0]?.state, month).toBe('dropped');
      expect(await relationExists(db, `${table}_2026_${month}`), month).toBe(false);
    }
    // The aborted unit's uploads (March's objects excluded) were orphans: deleted, never listed.
    const listed = new Set(state.objects.map((o) => o.key));
    const aborted = uploadedBeforeAbort.filter((key) => key.includes('/month=04/'));
    expect(aborted.length).toBeGreaterThanOrEqual(12);
    expect(aborted.filter((key) => listed.has(key))).toEqual([]);
    for (const key of aborted) expect(await listAllKeys(s3, bucket, key)).toEqual([]);
    expect(result.summary?.orphansRemoved).toBeGreaterThanOrEqual(aborted.length);
    // April's rows are in objects of the chunk loop (not of any unit), each exactly once.
    const { rows: unitSeqs } = await db.pool.query<{ seq: number }>(
      `SELECT chunk_seq AS seq FROM lifecycle.partition_units WHERE run_id = $1 AND chunk_seq IS NOT NULL`,
      [runId],
    );
    const { rows: chunkObjects } = await db.pool.query<LedgerObject>(
      `SELECT key, rows, bytes::int AS bytes, sha256, partition, run_id::text FROM lifecycle.archived_objects
        WHERE run_id = $1 AND NOT (chunk_seq = ANY ($2::int[])) ORDER BY object_id`,
      [runId, unitSeqs.map((r) => r.seq)],
    );
    const chunkKeys = (await readArchivedRows(s3, bucket, chunkObjects)).map(scope.keyOf);
    expect(duplicatesOf(chunkKeys)).toEqual([]);
    const chunked = new Set(chunkKeys);
    expect(inApril.filter((id) => !chunked.has(id))).toEqual([]);
  });
});
