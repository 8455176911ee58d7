/**
 * Archive end to end: the synthesized state machine, run locally with the real handlers, against a real
 * PostgreSQL and a real S3 API server.
 */
import { policyDigest } from '../../lib/contracts/policy-digest.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { ledgerObjects, readArchivedRows, testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';
import { listAllKeys } from '../support/s3.ts';

async function seedCountingResults(db: TestDatabase, rows: number): Promise<void> {
  await db.pool.query(`DROP TABLE IF EXISTS public.counting_results`);
  await db.pool.query(`
    CREATE TABLE public.counting_results (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      camera_id integer NOT NULL,
      count_type text NOT NULL,
      value numeric(12,4),
      created_at timestamptz NOT NULL)`);
  await db.pool.query(`CREATE INDEX ON public.counting_results (created_at)`);
  // Four years back from NOW, microsecond timestamps, every 7th row critical.
  await db.pool.query(
    `INSERT INTO public.counting_results (camera_id, count_type, value, created_at)
     SELECT g % 17, CASE WHEN g % 7 = 0 THEN 'critical' ELSE 'people' END, (g * 1.2345)::numeric(12,4),
            $2::timestamptz - (g * (interval '4 years' / $1)) - (g % 1000) * interval '1 microsecond'
       FROM generate_series(1, $1) AS g`,
    [rows, NOW.toISOString()],
  );
}

/** An archive policy of `public.counting_results` by `created_at`, two years' retention, and `fields`. */
function countingResultsPolicy(name: string, fields: Record<string, unknown> = {}) {
  return {
    name,
    table: 'public.counting_results',
    action: 'archive' as const,
    timeColumn: 'created_at',
    retention: 'P2Y',
    ...fields,
  };
}

describe('archive run', () => {
  it('archives exactly the eligible rows, each once, with nothing left over', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare
    await seedCountingResults(db, 6000);
    const before = await db.pool.query(
      `SELECT id::text, value::text, created_at FROM public.counting_results ORDER BY id`,
    );
    const eligible = await db.pool.query<{ id: string }>(
      `SELECT id::text FROM public.counting_results WHERE created_at < $1::timestamptz - interval 'P2Y' AND count_type <> 'critical'`,
      [NOW.toISOString()],
    );
    const config = testConfig([
      countingResultsPolicy('counting-results', {
        filter: "count_type <> 'critical'",
        chunking: { initialRows: 500, minRows: 100, maxRows: 1000 },
      }),
    ]);

    // Act
    const result = await runPolicy(config, 'counting-results', { chunkBudgetMs: 2_000 });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.summary?.rows).toBe(eligible.rowCount);
    const after = await db.pool.query<{ id: string }>(`SELECT id::text FROM public.counting_results`);
    const objects = await ledgerObjects(db.pool, result.summary?.runId);
    const archived = await readArchivedRows(s3, bucket, objects);
    // Conservation: before = after + archived, and the archived ids are exactly the eligible ones.
    expect((after.rowCount ?? 0) + archived.length).toBe(before.rowCount);
    const archivedIds = archived.map((r) => String(r.id)).sort();
    expect(new Set(archivedIds).size).toBe(archivedIds.length);
    expect(archivedIds).toEqual(eligible.rows.map((r) => r.id).sort());
    // No orphans: S3 holds exactly the ledger-listed objects.
    const keys = await listAllKeys(s3, bucket, 'archive/counting-results/');
    expect(keys.sort()).toEqual(objects.map((o) => o.key).sort());
    // Every object's rows lie in its Hive partition, and each chunk stays inside one partition: one object per chunk.
    for (const object of objects) {
      expect(object.key).toContain(`/public.counting_results/${object.partition}/`);
    }
    const chunks = await db.pool.query(`SELECT count(*)::int AS n FROM lifecycle.chunks WHERE run_id = $1`, [
      result.summary?.runId,
    ]);
    expect(objects).toHaveLength(chunks.rows[0].n);
    const partitions = new Set(objects.map((o) => o.partition));
    expect(partitions.size).toBeGreaterThan(12);
    const run = await db.pool.query(`SELECT status, rows FROM lifecycle.runs WHERE run_id = $1`, [
      result.summary?.runId,
    ]);
    expect(run.rows[0]).toMatchObject({ status: 'succeeded', rows: String(eligible.rowCount) });
    const leases = await db.pool.query(`SELECT * FROM lifecycle.leases`);
    expect(leases.rowCount).toBe(0);
    expect(result.executions).toBe(1);
  });

  it('continues as a new execution past the iteration bound, keeping one run, one lease and one cutoff', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare
    await seedCountingResults(db, 3000);
    const eligible = await db.pool.query(
      `SELECT count(*)::int AS n FROM public.counting_results WHERE created_at < $1::timestamptz - interval 'P2Y'`,
      [NOW.toISOString()],
    );
    const config = testConfig([
      countingResultsPolicy('continued', { chunking: { initialRows: 100, minRows: 100, maxRows: 100 } }),
    ]);
    // Each continuation's Start checks the policy it carries against the deployed one, as in AWS.
    const { policy, chunking } = buildExecutionInput(config, 'continued', 'schedule', false);
    const deployedPolicies = { continued: policyDigest(policy, chunking) };
    // Act: a budget that fits one chunk per step (the step keeps 1 s + 2 chunks in reserve) and 3 steps per execution.
    const result = await runPolicy(config, 'continued', {
      chunkBudgetMs: 1050,
      maxIterationsOverride: 3,
      deps: { deployedPolicies },
    });
    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.executions).toBeGreaterThan(2);
    expect(result.summary?.rows).toBe(eligible.rows[0].n);
    const runs = await db.pool.query(
      `SELECT count(*)::int AS n FROM lifecycle.runs WHERE policy = 'continued'`,
    );
    expect(runs.rows[0].n).toBe(1);
    const objects = await ledgerObjects(db.pool, result.summary?.runId);
    const archived = await readArchivedRows(s3, bucket, objects);
    // Each eligible row exactly once: as many rows as ids, as many ids as eligible rows.
    expect(archived).toHaveLength(eligible.rows[0].n);
    expect(new Set(archived.map((r) => String(r.id))).size).toBe(eligible.rows[0].n);
  });

  it('dry run reports the eligible rows and changes nothing: rows, ledger, objects', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare
    await seedCountingResults(db, 2000);
    const count = async () =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM public.counting_results`)).rows[0].n;
    const ledgerRuns = async () =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM lifecycle.runs`)).rows[0].n;
    const rowsBefore = await count();
    const runsBefore = await ledgerRuns();
    const keysBefore = await listAllKeys(s3, bucket);
    const expected = await db.pool.query(
      `SELECT count(*)::int AS n FROM public.counting_results WHERE created_at < $1::timestamptz - interval 'P2Y' AND count_type <> 'critical'`,
      [NOW.toISOString()],
    );
    const config = testConfig([countingResultsPolicy('dry', { filter: "count_type <> 'critical'" })]);
    // Act
    // No bucket: planning an archive needs none.
    const result = await runPolicy(config, 'dry', { dryRun: true, deps: { bucket: undefined } });
    // Assess
    expect(result.status).toBe('dry_run');
    expect(result.summary?.eligibleRows).toBe(expected.rows[0].n);
    expect(await count()).toBe(rowsBefore);
    expect(await ledgerRuns()).toBe(runsBefore);
    expect(await listAllKeys(s3, bucket)).toEqual(keysBefore);
  });

  it('continues as a new execution when the execution grows old, before its timeout', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: a clock that moves 5 hours per reading, so the execution is "old" after a few steps.
    await seedCountingResults(db, 3000);
    const config = testConfig([
      countingResultsPolicy('aging', { chunking: { initialRows: 100, minRows: 100, maxRows: 100 } }),
    ]);
    const eligibleAtStart = await db.pool.query(
      `SELECT count(*)::int AS n FROM public.counting_results WHERE created_at < $1::timestamptz - interval 'P2Y'`,
      [NOW.toISOString()],
    );
    let readings = 0;
    const clock = () => new Date(NOW.getTime() + readings++ * 5 * 3600_000);
    // Act: one chunk per step (see above); the cutoff is computed from the first reading only.
    const result = await runPolicy(config, 'aging', { chunkBudgetMs: 1050, deps: { now: clock } });
    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.executions).toBeGreaterThan(1);
    const runs = await db.pool.query(
      `SELECT count(*)::int AS n, max(rows)::int AS rows FROM lifecycle.runs WHERE policy = 'aging'`,
    );
    expect(runs.rows[0].n).toBe(1);
    // Exactly the rows eligible at the first reading: a cutoff taken again later would archive more.
    expect(runs.rows[0].rows).toBe(eligibleAtStart.rows[0].n);
    const eligible = await db.pool.query(
      `SELECT count(*)::int AS n FROM public.counting_results WHERE created_at < $1::timestamptz - interval 'P2Y'`,
      [NOW.toISOString()],
    );
    expect(eligible.rows[0].n).toBe(0);
  });
});
