/**
 * Parallel workers (`parallelism` > 1): Start splits the eligible rows into time ranges, the synthesized
 * machine's Distributed Map runs one chunk loop per range (inline, the same definition, in the local
 * interpreter), Finish runs once. The guarantees are those of a single worker: no row lost, none archived
 * twice, S3 = ledger, lease released; plus what is new: the ranges are disjoint, ordered, cover every
 * eligible row, all done, and their workers really ran at the same time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { S3ObjectStore } from '../../functions/adapters/archive-store.ts';
import { STEP_SLOT_NAMESPACE } from '../../functions/adapters/step-slots.ts';
import { InvalidPayloadError, TransientDatabaseError } from '../../functions/core/errors.ts';
import { synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import { WorkerStateNames } from '../../lib/contracts/payloads.ts';
import { testConfig } from '../support/archive.ts';
import {
  expectArchiveGuarantees,
  FaultInjectingStore,
  failOnce,
  idKeyedScope,
  runRecord,
  runsOfPolicy,
  seedEvents,
  tableKeys,
} from '../support/archive-guarantees.ts';
import {
  eventArchivePolicy,
  expectCompleteArchive,
  it,
  type PreparedEventArchive,
  sorted,
} from '../support/event-archive.ts';
import { describe, expect, NOW } from '../support/fixture.ts';
import { runCliInProcess } from '../support/leases.ts';
import {
  finishedUnits,
  idsWhere,
  monthlyPartitionNames,
  PARTITION_CUTOFF,
  partitionedTablePolicy,
  partitionsOf,
  seedPartitioned,
} from '../support/partitioned.ts';

interface RangeRecord {
  range_no: number;
  lower_bound: string | null;
  upper_bound: string;
  done: boolean;
  rows: number;
  chunks: number;
}

async function rangesOf(pool: pg.Pool, runId: string | undefined): Promise<RangeRecord[]> {
  const { rows } = await pool.query<RangeRecord>(
    `SELECT range_no, lower_bound, upper_bound, done, rows::int, chunks
       FROM lifecycle.run_ranges WHERE run_id = $1 ORDER BY range_no`,
    [runId],
  );
  return rows;
}

/** The time (ISO-8601 UTC, as range bounds are written) of each row of `ids`, read before the run. */
async function timesOf(pool: pg.Pool, table: string, ids: readonly string[]): Promise<string[]> {
  const { rows } = await pool.query<{ t: string }>(
    `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t
       FROM public.${table} WHERE id::text = ANY ($1::text[])`,
    [ids],
  );
  return rows.map((r) => r.t);
}

/** Each range took exactly the rows whose time lies in [lower, upper): none of another range, none left out. */
function expectRowsPerRange(ranges: readonly RangeRecord[], times: readonly string[]): void {
  for (const range of ranges) {
    const inside = times.filter(
      (t) => (range.lower_bound === null || t >= range.lower_bound) && t < range.upper_bound,
    );
    expect(range.rows, `range ${range.range_no} [${range.lower_bound}, ${range.upper_bound})`).toBe(
      inside.length,
    );
  }
}

/**
 * A step budget within which a step takes exactly one chunk whatever the machine's speed (another needs 1 s left
 * plus twice the last chunk's time: run-chunks.ts, pacing.ts `restsInStep`), and the most time that chunk can
 * have before the step is aborted.
 */
const ONE_CHUNK_PER_STEP_MS = 1_000;

/** The events archive of `prepared` with `parallelism` workers (same table, same chunks). */
function parallel(prepared: PreparedEventArchive, parallelism: number) {
  return testConfig([eventArchivePolicy(prepared.scope.policy, prepared.table, { parallelism })]);
}

describe('parallel workers', () => {
  it('archives every eligible row once across 4 workers, each in its own range', async ({
    events,
    services,
  }) => {
    // Prepare: the events table (1,641 of 2,000 rows eligible), parallelism 4.
    const prepared = await events.prepare('parallel-archive', { rows: 2000 });
    const times = await timesOf(services.db.pool, prepared.table, prepared.eligible);
    const config = parallel(prepared, 4);
    const definition = await synthesizeDefinition(config, 'parallel-archive');

    // Act
    const result = await services.runPolicy(config, 'parallel-archive', { definition, chunkBudgetMs: 1_100 });

    // Assess: the single-worker guarantees, then the ranges.
    await expectCompleteArchive({ ...prepared, config }, result);
    const map = definition.States[WorkerStateNames.workers] as {
      ItemProcessor: { ProcessorConfig: { Mode: string } };
      MaxConcurrency: number;
    };
    expect(map.ItemProcessor.ProcessorConfig.Mode).toBe('DISTRIBUTED');
    expect(map.MaxConcurrency).toBe(4);
    expect(result.maxConcurrentChunks, 'workers ran at the same time').toBeGreaterThan(1);
    const ranges = await rangesOf(services.db.pool, result.summary?.runId);
    expect(ranges.length).toBe(4);
    expect(ranges[0]?.lower_bound).toBeNull();
    expect(ranges.at(-1)?.upper_bound).toBe(result.summary?.cutoff);
    for (const [index, range] of ranges.entries()) {
      expect(range.done, `range ${index} done`).toBe(true);
      if (index > 0) expect(range.lower_bound).toBe(ranges[index - 1]?.upper_bound);
      // About equal shares (a sample's quantiles): none below half of an even share.
      expect(range.rows).toBeGreaterThan(prepared.eligible.length / 8);
    }
    expectRowsPerRange(ranges, times);
    const status = await runCliInProcess(services.db, ['status', '--policy', 'parallel-archive', '--json']);
    const listed = JSON.parse(status.stdout) as {
      runs: Array<{ ranges?: Array<{ done: boolean; rows: number }> }>;
    };
    expect(listed.runs[0]?.ranges?.map((r) => [r.done, r.rows])).toEqual(ranges.map((r) => [true, r.rows]));
    const text = await runCliInProcess(services.db, ['status', '--policy', 'parallel-archive']);
    expect(text.stdout).toContain(`${prepared.eligible.length} rows`);
    expect(text.stdout).toContain('ranges 4/4 done');
    const run = await services.db.pool.query<{ cursor: unknown }>(
      'SELECT cursor FROM lifecycle.runs WHERE run_id = $1',
      [result.summary?.runId],
    );
    expect(run.rows[0]?.cursor, 'a parallel run keeps its cursors per range').toBeNull();
  });

  it('purges with 3 workers and leaves exactly the rows within retention', async ({ services }) => {
    // Prepare: 3,000 events, one every 6 hours back from NOW; a year's retention.
    await seedEvents(services.db.pool, 'parallel_purge', 3000, NOW);
    const keep = await services.db.pool.query<{ id: string }>(
      `SELECT id::text FROM public.parallel_purge WHERE created_at >= $1::timestamptz - interval '1 year' ORDER BY id`,
      [NOW.toISOString()],
    );
    const config = testConfig([
      {
        name: 'parallel-purge',
        table: 'public.parallel_purge',
        action: 'purge',
        timeColumn: 'created_at',
        retention: 'P1Y',
        parallelism: 3,
        chunking: { initialRows: 150, minRows: 150, maxRows: 150 },
      },
    ]);

    // Act
    const result = await services.runPolicy(config, 'parallel-purge', { chunkBudgetMs: 1_100 });

    // Assess
    expect(result.failure).toBeUndefined();
    const left = await services.db.pool.query<{ id: string }>(
      'SELECT id::text FROM public.parallel_purge ORDER BY id',
    );
    expect(left.rows.map((r) => r.id)).toEqual(keep.rows.map((r) => r.id));
    expect(result.summary?.rows).toBe(3000 - keep.rows.length);
    const ranges = await rangesOf(services.db.pool, result.summary?.runId);
    expect(ranges.length).toBe(3);
    expect(ranges.every((r) => r.done)).toBe(true);
    expect(ranges.reduce((sum, r) => sum + r.rows, 0)).toBe(3000 - keep.rows.length);
  });

  it('retries a worker whose chunk failed transiently, the others going on', async ({ events, services }) => {
    // Prepare
    const prepared = await events.prepare('parallel-transient', { rows: 2000 });
    const config = parallel(prepared, 3);
    let commits = 0;

    // Act: the 4th chunk commit of the run (some worker's) fails once, as a dropped connection would.
    const result = await services.runPolicy(config, 'parallel-transient', {
      chunkBudgetMs: 1_100,
      deps: {
        hooks: {
          beforeCommit: () => {
            commits++;
            if (commits === 4) throw new TransientDatabaseError('injected: connection lost before COMMIT');
          },
        },
      },
    });

    // Assess
    expect(commits).toBeGreaterThan(4);
    await expectCompleteArchive({ ...prepared, config }, result);
  });

  it('fails the run with a worker’s terminal error, loses nothing, and the next run finishes the rest', async ({
    events,
    services,
  }) => {
    // Prepare
    const prepared = await events.prepare('parallel-terminal', { rows: 2000 });
    const config = parallel(prepared, 3);
    const store = new FaultInjectingStore(new S3ObjectStore(services.s3, services.bucket), {
      put: failOnce(3, () => new InvalidPayloadError('injected: a terminal error in one worker')),
    });

    // Act
    const failed = await services.runPolicy(config, 'parallel-terminal', {
      chunkBudgetMs: 1_100,
      deps: { store },
    });
    const afterFailure = await runRecord(services.db.pool, failed.failure?.runId);
    // The failed run keeps its lease until its other workers' Lambdas could have ended; then it expires.
    const kept = await services.db.pool.query(
      `SELECT 1 FROM lifecycle.leases WHERE policy = 'parallel-terminal' AND expires_at > now() + interval '5 minutes'`,
    );
    await services.db.pool.query(
      `UPDATE lifecycle.leases SET expires_at = now() - interval '1 second' WHERE policy = 'parallel-terminal'`,
    );
    const second = await services.runPolicy(config, 'parallel-terminal', { chunkBudgetMs: 1_100 });

    // Assess: the worker's own error is the run's; then all is archived exactly once over the two runs.
    expect(failed.status).toBe('failed');
    expect(failed.failure?.error).toBe('InvalidPayloadError');
    expect(afterFailure).toMatchObject({ status: 'failed', error_name: 'InvalidPayloadError' });
    expect(kept.rowCount, 'lease kept after the failure').toBe(1);
    expect(second.status).toBe('succeeded');
    const runs = await runsOfPolicy(services.db.pool, 'parallel-terminal');
    expect(runs.map((r) => r.status)).toEqual(['failed', 'succeeded']);
    const state = await expectArchiveGuarantees(prepared.scope, prepared.before);
    expect(sorted(state.archivedKeys)).toEqual(sorted(prepared.eligible));
    expect(Number(afterFailure?.rows) + (second.summary?.rows ?? 0)).toBe(prepared.eligible.length);
  });

  it('splits into ranges of about equal eligible rows, the filter included', async ({ events, services }) => {
    // Prepare: a filter that keeps only even ids eligible.
    const prepared = await events.prepare('parallel-filter', { rows: 2000 });
    const eligible = prepared.eligible.filter((id) => Number(id) % 2 === 0);
    const times = await timesOf(services.db.pool, prepared.table, eligible);
    const config = testConfig([
      eventArchivePolicy('parallel-filter', prepared.table, { filter: 'id % 2 = 0', parallelism: 5 }),
    ]);

    // Act
    const result = await services.runPolicy(config, 'parallel-filter', { chunkBudgetMs: 1_100 });

    // Assess: exactly the filtered rows, each range exactly its interval's, none empty.
    expect(result.status).toBe('succeeded');
    const state = await expectArchiveGuarantees(prepared.scope, prepared.before);
    expect(sorted(state.archivedKeys)).toEqual(sorted(eligible));
    const ranges = await rangesOf(services.db.pool, result.summary?.runId);
    expect(ranges.length).toBe(5);
    expectRowsPerRange(ranges, times);
    for (const range of ranges) expect(range.rows).toBeGreaterThan(eligible.length / 10);
  });

  it('retires whole partitions in range 0 and chunks the straddling ones in the others', async ({
    services,
  }) => {
    // Prepare: monthly partitions 2025-10 … 2027-01, a row every 6 hours; July 2026 and before lie wholly
    // before the cutoff, August 2026 straddles it.
    const { db } = services;
    await seedPartitioned(db.pool, 'parallel_parts', {
      first: '2025-10-01',
      last: '2027-01-01',
      from: '2025-10-01',
    });
    const kept = await idsWhere(db, 'parallel_parts', `created_at >= '${PARTITION_CUTOFF}'`);
    const purged = await idsWhere(db, 'parallel_parts', `created_at < '${PARTITION_CUTOFF}'`);
    const config = testConfig([
      partitionedTablePolicy('purge', 'parallel-parts', 'parallel_parts', { parallelism: 4 }),
    ]);

    // Act
    const result = await services.runPolicy(config, 'parallel-parts', { chunkBudgetMs: 1_100 });

    // Assess: the partitions went as units, the rest row by row, exactly the rows past retention.
    expect(result.failure).toBeUndefined();
    expect(await idsWhere(db, 'parallel_parts')).toEqual(kept);
    expect(result.summary?.rows).toBe(purged.length);
    expect(await partitionsOf(db, 'parallel_parts')).toEqual(
      monthlyPartitionNames('parallel_parts', '2026-08-01', '2027-01-01'),
    );
    const ranges = await rangesOf(db.pool, result.summary?.runId);
    expect(ranges[0]?.upper_bound, 'range 0 ends where the retired partitions end').toBe(
      '2026-08-01T00:00:00.000000Z',
    );
    expect(ranges.length).toBeGreaterThan(1);
    expect(ranges.every((r) => r.done)).toBe(true);
    const units = await finishedUnits(db, result.summary?.runId);
    expect(units.map((u) => u.name)).toEqual(
      monthlyPartitionNames('parallel_parts', '2025-10-01', '2026-07-01').map((name) => `"public"."${name}"`),
    );
  });

  it('archives a partitioned table with workers: units and chunks, every row once', async ({ services }) => {
    // Prepare
    const { db, s3, bucket } = services;
    await seedPartitioned(db.pool, 'parallel_parts_archive', {
      first: '2026-03-01',
      last: '2027-01-01',
      from: '2026-03-01',
    });
    const before = await idsWhere(db, 'parallel_parts_archive');
    const eligible = await idsWhere(db, 'parallel_parts_archive', `created_at < '${PARTITION_CUTOFF}'`);
    const config = testConfig([
      partitionedTablePolicy('archive', 'parallel-parts-archive', 'parallel_parts_archive', {
        parallelism: 3,
      }),
    ]);

    // Act
    const result = await services.runPolicy(config, 'parallel-parts-archive', { chunkBudgetMs: 1_100 });

    // Assess
    expect(result.failure).toBeUndefined();
    const scope = {
      ...idKeyedScope({ db, s3, bucket }, 'parallel-parts-archive', 'parallel_parts_archive'),
    };
    const state = await expectArchiveGuarantees(scope, before);
    expect(sorted(state.archivedKeys)).toEqual(sorted(eligible));
    expect(result.summary?.rows).toBe(eligible.length);
  });

  it('plans its ranges in a dry run and writes nothing', async ({ events, services }) => {
    // Prepare
    const prepared = await events.prepare('parallel-plan', { rows: 2000 });
    const config = parallel(prepared, 4);

    // Act
    const result = await services.runPolicy(config, 'parallel-plan', { dryRun: true });

    // Assess: four ranges from the oldest row to the cutoff, nothing archived, no run row.
    expect(result.status).toBe('dry_run');
    const ranges = result.summary?.plan?.ranges ?? [];
    expect(ranges.length).toBe(4);
    expect(ranges[0]?.from).toBeNull();
    expect(ranges.at(-1)?.to).toBe(result.summary?.cutoff);
    expect(await tableKeys(services.db.pool, prepared.scope.tableKeysSql)).toHaveLength(
      prepared.before.length,
    );
    const runs = await runsOfPolicy(services.db.pool, 'parallel-plan');
    expect(runs).toEqual([]);
  });

  it('goes on past the workers’ bound: the map runs again, then a new execution continues the run', async ({
    events,
    services,
  }) => {
    // Prepare: 2 steps per worker and per execution (the bound lowered from 1000), one chunk per step.
    const prepared = await events.prepare('parallel-bound', { rows: 2000 });
    const config = parallel(prepared, 2);

    // Act
    const result = await services.runPolicy(config, 'parallel-bound', {
      chunkBudgetMs: ONE_CHUNK_PER_STEP_MS,
      maxIterationsOverride: 2,
    });

    // Assess: the same run over several executions, everything archived once.
    expect(result.failure).toBeUndefined();
    expect(result.executions).toBeGreaterThan(1);
    await expectCompleteArchive({ ...prepared, config }, result);
    const ranges = await rangesOf(services.db.pool, result.summary?.runId);
    expect(ranges.every((r) => r.done)).toBe(true);
    expect(ranges.reduce((sum, r) => sum + r.rows, 0)).toBe(prepared.eligible.length);
  });

  it('caps the chunk steps working at once across workers (defaults.throttle.maxConcurrentSteps)', async ({
    events,
    services,
  }) => {
    // Prepare: 4 workers, at most 2 steps at once; the slots are watched from outside while the run goes on.
    const prepared = await events.prepare('parallel-capped', { rows: 2000 });
    const config = testConfig([eventArchivePolicy('parallel-capped', prepared.table, { parallelism: 4 })], {
      defaults: { throttle: { maxConcurrentSteps: 2, checkEverySeconds: 1 } },
    });
    const seen: number[] = [];
    let running = true;
    const watching = (async () => {
      while (running) {
        const { rows } = await services.db.pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks
            WHERE locktype = 'advisory' AND granted AND classid = $1 AND objsubid = 2`,
          [STEP_SLOT_NAMESPACE],
        );
        seen.push(Number(rows[0]?.n));
        await sleep(5);
      }
    })();

    // Act
    const result = await services
      .runPolicy(config, 'parallel-capped', { chunkBudgetMs: ONE_CHUNK_PER_STEP_MS })
      .finally(() => {
        running = false;
      });
    await watching;

    // Assess
    await expectCompleteArchive({ ...prepared, config }, result);
    expect(Math.max(...seen), 'slots held at once').toBe(2);
  });

  it('waits while every slot is taken, then finishes the run', async ({ events, services }) => {
    // Prepare: one slot, taken by another session.
    const prepared = await events.prepare('parallel-blocked', { rows: 2000 });
    const config = testConfig([eventArchivePolicy('parallel-blocked', prepared.table, { parallelism: 2 })], {
      defaults: { throttle: { maxConcurrentSteps: 1, checkEverySeconds: 1 } },
    });
    const readRun = `SELECT rows::text, status FROM lifecycle.runs WHERE policy = 'parallel-blocked'`;
    const holder = await services.db.pool.connect();
    await holder.query('SELECT pg_advisory_lock($1, 0)', [STEP_SLOT_NAMESPACE]);

    // Act: the run starts while the slot is held, and is let go after a second.
    const running = services.runPolicy(config, 'parallel-blocked', {
      chunkBudgetMs: ONE_CHUNK_PER_STEP_MS,
    });
    let whileHeld: Array<{ rows: string; status: string }> = [];
    try {
      // Once the run is open (after the synth and Start), its workers get a second to try.
      for (let waited = 0; waited < 60_000 && whileHeld.length === 0; waited += 50) {
        await sleep(50);
        whileHeld = (await services.db.pool.query(readRun)).rows;
      }
      await sleep(1_000);
      whileHeld = (await services.db.pool.query(readRun)).rows;
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1, 0)', [STEP_SLOT_NAMESPACE]);
      holder.release();
    }
    const result = await running;

    // Assess: nothing was archived while the slot was held; then everything, once.
    expect(whileHeld).toEqual([{ rows: '0', status: 'running' }]);
    await expectCompleteArchive({ ...prepared, config }, result);
  });
});
