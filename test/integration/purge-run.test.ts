/**
 * Purge end to end: the synthesized state machine, run locally with the real handlers, against a real
 * PostgreSQL. Conservation, concurrent writers, foreign keys (refusal and child policies run first),
 * post-purge VACUUM and dry run.
 */
import type { Context } from 'aws-lambda';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import { runChunks } from '../../functions/run/run-chunks.ts';
import { startRun } from '../../functions/run/start-run.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { type runLocally, testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

/** `public.app_logs`: one row every 6 hours back from NOW; every 5th row is critical (kept by the filter). */
async function seedLogs(
  db: TestDatabase,
  rows: number,
  options: { primaryKey?: boolean } = {},
): Promise<void> {
  const key = options.primaryKey === false ? '' : ' PRIMARY KEY';
  await db.pool.query(`DROP TABLE IF EXISTS public.app_logs`);
  await db.pool.query(`
    CREATE TABLE public.app_logs (
      id bigint NOT NULL${key},
      created_at timestamptz NOT NULL,
      level text NOT NULL,
      counter integer NOT NULL DEFAULT 0,
      message text NOT NULL)`);
  await db.pool.query(`CREATE INDEX ON public.app_logs (created_at)`);
  await db.pool.query(
    `INSERT INTO public.app_logs (id, created_at, level, message)
     SELECT g, $2::timestamptz - g * interval '6 hours' - (g % 997) * interval '1 microsecond',
            CASE WHEN g % 5 = 0 THEN 'critical' ELSE 'info' END, md5(g::text)
       FROM generate_series(1, $1) AS g`,
    [rows, NOW.toISOString()],
  );
  await db.pool.query(`ANALYZE public.app_logs`);
}

const ELIGIBLE = `created_at < $1::timestamptz - interval 'P90D' AND level <> 'critical'`;

async function ids(db: TestDatabase, where = 'true', params: unknown[] = []): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string }>(
    `SELECT id::text AS id FROM public.app_logs WHERE ${where} ORDER BY id`,
    params,
  );
  return rows.map((r) => r.id);
}

function logsPolicy(overrides: Partial<PolicyInput> = {}): PolicyInput {
  return {
    name: 'logs-purge',
    action: 'purge',
    table: 'public.app_logs',
    timeColumn: 'created_at',
    retention: 'P90D',
    filter: "level <> 'critical'",
    chunking: { initialRows: 300, minRows: 100, maxRows: 500 },
    ...overrides,
  } as PolicyInput;
}

async function lastVacuum(db: TestDatabase, table: string): Promise<string | null> {
  const { rows } = await db.pool.query<{ last_vacuum: string | null }>(
    `SELECT last_vacuum::text FROM pg_stat_user_tables WHERE relid = $1::regclass`,
    [table],
  );
  return rows[0]?.last_vacuum ?? null;
}

describe('purge run', () => {
  it('deletes exactly the eligible rows, keeps everything newer or preserved by the filter, and vacuums', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedLogs(db, 4000);
    const before = await ids(db);
    const eligible = await ids(db, ELIGIBLE, [NOW.toISOString()]);
    expect(eligible.length).toBeGreaterThan(2000);
    const config = testConfig([logsPolicy()]);

    // Act
    const result = await runPolicy(config, 'logs-purge', { chunkBudgetMs: 2_000 });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.summary).toMatchObject({ rows: eligible.length, objects: 0, bytes: 0 });
    const after = await ids(db);
    const gone = new Set(eligible);
    expect(after).toEqual(before.filter((id) => !gone.has(id)));
    expect(await ids(db, ELIGIBLE, [NOW.toISOString()])).toEqual([]);
    // The ledger's chunks add up to the run's rows.
    const chunks = await db.pool.query<{ rows: string; n: number }>(
      `SELECT sum(rows)::text AS rows, count(*)::int AS n FROM lifecycle.chunks WHERE run_id = $1`,
      [result.summary?.runId],
    );
    expect(Number(chunks.rows[0]?.rows)).toBe(eligible.length);
    expect(chunks.rows[0]?.n).toBe(result.summary?.chunks);
    // More than 20 % of the table went: VACUUM (ANALYZE) ran and is recorded in the ledger and the summary.
    expect(result.summary?.maintenance).toMatchObject({
      vacuumed: true,
      reason: 'done',
      rowsDeleted: eligible.length,
      rowsBefore: 4000,
      deadTuplesAfter: 0,
    });
    expect(await lastVacuum(db, 'public.app_logs')).not.toBeNull();
    // VACUUM makes the purged rows' space reusable but keeps it: the report says how much (estimated from
    // pg_stats row widths; about 70 % of the heap held purged rows).
    const m = result.summary?.maintenance;
    expect(m?.heapBytesBefore).toBeGreaterThan(0);
    expect(m?.heapBytesAfter).toBeGreaterThan(0);
    expect(m?.estimatedBloatBytesAfter).toBeGreaterThan(0.4 * (m?.heapBytesAfter ?? 0));
    expect(m?.estimatedBloatBytesAfter).toBeLessThan(m?.heapBytesAfter ?? 0);
    const ledger = await db.pool.query<{ maintenance: { vacuumed: boolean }; table_rows_before: string }>(
      `SELECT maintenance, table_rows_before::text FROM lifecycle.runs WHERE run_id = $1`,
      [result.summary?.runId],
    );
    expect(ledger.rows[0]).toMatchObject({ maintenance: { vacuumed: true }, table_rows_before: '4000' });
    const leases = await db.pool.query(`SELECT 1 FROM lifecycle.leases`);
    expect(leases.rowCount).toBe(0);
  });

  it('purges a table without a primary key (ctid order) and records no VACUUM below the threshold', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedLogs(db, 3000, { primaryKey: false });
    const before = await ids(db);
    const eligible = await ids(db, ELIGIBLE, [NOW.toISOString()]);
    const config = testConfig([logsPolicy({ vacuum: { afterFraction: 0.95 } } as Partial<PolicyInput>)]);

    // Act
    const result = await runPolicy(config, 'logs-purge');

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(eligible.length);
    const gone = new Set(eligible);
    expect(await ids(db)).toEqual(before.filter((id) => !gone.has(id)));
    expect(result.summary?.maintenance).toMatchObject({ vacuumed: false, reason: 'below-threshold' });
    expect(await lastVacuum(db, 'public.app_logs')).toBeNull();
  });

  it('never makes concurrent inserts and updates fail (SKIP LOCKED, short transactions)', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedLogs(db, 20_000);
    const eligibleBefore = await ids(db, ELIGIBLE, [NOW.toISOString()]);
    const kept = await ids(db, `NOT (${ELIGIBLE})`, [NOW.toISOString()]);
    const config = testConfig([logsPolicy({ chunking: { initialRows: 200, minRows: 100, maxRows: 200 } })]);
    const writer = await db.pool.connect();
    const errors: string[] = [];
    let writes = 0;
    let stop = false;
    const inserted: string[] = [];
    const writing = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          // An old row (eligible: this run may or may not take it) and a new one (must stay).
          const id = String(1_000_000 + i);
          await writer.query(
            `INSERT INTO public.app_logs (id, created_at, level, message) VALUES ($1, $2::timestamptz - interval '1 day', 'info', 'new')`,
            [id, NOW.toISOString()],
          );
          inserted.push(id);
          // Updates hit old (eligible) rows that the purge is deleting, in their own transactions.
          await writer.query(`UPDATE public.app_logs SET counter = counter + 1 WHERE id = $1`, [
            eligibleBefore[(i * 37) % eligibleBefore.length],
          ]);
          await writer.query('BEGIN');
          await writer.query(`UPDATE public.app_logs SET counter = counter + 1 WHERE id = $1`, [
            kept[(i * 13) % kept.length],
          ]);
          await writer.query(`UPDATE public.app_logs SET counter = counter + 1 WHERE id = $1`, [
            eligibleBefore[(i * 53) % eligibleBefore.length],
          ]);
          await writer.query('COMMIT');
          writes += 4;
        } catch (error) {
          errors.push((error as Error).message);
          await writer.query('ROLLBACK').catch(() => undefined);
        }
      }
    })();

    // Act
    let result: Awaited<ReturnType<typeof runLocally>>;
    try {
      result = await runPolicy(config, 'logs-purge', { chunkBudgetMs: 3_000 });
    } finally {
      stop = true;
      await writing;
      writer.release();
    }

    // Assess
    expect(errors).toEqual([]);
    expect(writes).toBeGreaterThan(20);
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    // Nothing that was not eligible is gone, every inserted row is there, and rows left eligible are only
    // those skipped while a writer held them.
    const after = new Set(await ids(db));
    expect(kept.filter((id) => !after.has(id))).toEqual([]);
    expect(inserted.filter((id) => !after.has(id))).toEqual([]);
    const stillEligible = eligibleBefore.filter((id) => after.has(id));
    expect((result.summary?.rows ?? 0) + stillEligible.length).toBe(eligibleBefore.length);
  });

  it('dry run reports the eligible rows and changes nothing', async ({ database: db, runPolicy }) => {
    // Prepare
    await seedLogs(db, 2000);
    const before = await ids(db);
    const eligible = await ids(db, ELIGIBLE, [NOW.toISOString()]);
    const runs = async () => (await db.pool.query(`SELECT count(*)::int AS n FROM lifecycle.runs`)).rows[0].n;
    const runsBefore = await runs();

    // Act
    const result = await runPolicy(testConfig([logsPolicy()]), 'logs-purge', { dryRun: true });

    // Assess
    expect(result.status).toBe('dry_run');
    expect(result.summary?.eligibleRows).toBe(eligible.length);
    expect(await ids(db)).toEqual(before);
    expect(await runs()).toBe(runsBefore);
    expect(await lastVacuum(db, 'public.app_logs')).toBeNull();
  });
});

describe('purge with a hand-made execution input', () => {
  it('refuses a continuation that moves the cutoff of a running run, and a step given another cutoff', async ({
    database: db,
  }) => {
    // Prepare: a run opened as the state machine opens it.
    await seedLogs(db, 2000);
    const before = await ids(db);
    const config = testConfig([logsPolicy()]);
    const deps = localDependencies({ databaseUrl: db.url, now: () => NOW })({
      getRemainingTimeInMillis: () => 60_000,
    } as Context);
    const input = buildExecutionInput(config, 'logs-purge', 'local', false);
    const state = await startRun(deps, { input });
    const forgedCutoff = '9999-01-01T00:00:00.000000Z';

    // Act + Assess: both refused (one after the other: each owns the run while it works).
    await expect(
      startRun(deps, {
        input: {
          ...input,
          continuation: {
            runId: state.runId,
            cutoff: forgedCutoff,
            cursor: null,
            batchRows: 500,
            generation: 1,
          },
        },
      }),
    ).rejects.toMatchObject({ name: 'InvalidPayloadError' });
    await expect(runChunks(deps, { ...state, cutoff: forgedCutoff })).rejects.toMatchObject({
      name: 'InvalidPayloadError',
    });
    // Not a row deleted.
    expect(await ids(db)).toEqual(before);
    await db.pool.query(`UPDATE lifecycle.runs SET status = 'failed' WHERE run_id = $1`, [state.runId]);
    await db.pool.query(`DELETE FROM lifecycle.leases`);
  });
});

describe('purge and foreign keys', () => {
  /**
   * cameras (100; 1-50 retired two years ago, 51-100 ten days ago) ← camera_readings (NO ACTION, 10 per
   * camera, as old as their camera's retirement) and camera_notes (ON DELETE CASCADE, 2 per camera).
   */
  async function seedCameras(db: TestDatabase): Promise<void> {
    await db.pool.query(`DROP TABLE IF EXISTS public.camera_notes, public.camera_readings, public.cameras`);
    await db.pool.query(`
      CREATE TABLE public.cameras (id integer PRIMARY KEY, retired_at timestamptz NOT NULL);
      CREATE TABLE public.camera_readings (
        id integer PRIMARY KEY,
        camera_id integer NOT NULL CONSTRAINT readings_camera_fk REFERENCES public.cameras (id),
        created_at timestamptz NOT NULL);
      CREATE TABLE public.camera_notes (
        id integer PRIMARY KEY,
        camera_id integer NOT NULL REFERENCES public.cameras (id) ON DELETE CASCADE,
        note text NOT NULL);`);
    await db.pool.query(
      `INSERT INTO public.cameras SELECT g, $1::timestamptz - CASE WHEN g <= 50 THEN interval '2 years' ELSE interval '10 days' END
         FROM generate_series(1, 100) g`,
      [NOW.toISOString()],
    );
    await db.pool.query(
      `INSERT INTO public.camera_readings SELECT g, (g - 1) / 10 + 1, c.retired_at - (g % 10) * interval '1 hour'
         FROM generate_series(1, 1000) g JOIN public.cameras c ON c.id = (g - 1) / 10 + 1`,
    );
    await db.pool.query(
      `INSERT INTO public.camera_notes SELECT g, (g - 1) / 2 + 1, 'note' FROM generate_series(1, 200) g`,
    );
  }

  const camerasPolicy = (children?: string[]): PolicyInput =>
    ({
      name: 'cameras-purge',
      action: 'purge',
      table: 'public.cameras',
      timeColumn: 'retired_at',
      retention: 'P1Y',
      ...(children ? { children } : {}),
    }) as PolicyInput;
  const readingsPolicy: PolicyInput = {
    name: 'readings-purge',
    action: 'purge',
    table: 'public.camera_readings',
    timeColumn: 'created_at',
    retention: 'P1Y',
  };
  const count = async (db: TestDatabase, table: string) =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;

  it('refuses before deleting anything when a NO ACTION child table has no child policy', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedCameras(db);
    const config = testConfig([camerasPolicy(), readingsPolicy]);

    // Act
    const result = await runPolicy(config, 'cameras-purge');

    // Assess
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('ForeignKeyError');
    expect(result.failure?.cause).toContain(
      '"public"."camera_readings" (constraint readings_camera_fk, ON DELETE NO ACTION)',
    );
    expect(result.failure?.cause).not.toContain('camera_notes');
    expect(result.failure?.runId).toBeUndefined();
    expect(await count(db, 'public.cameras')).toBe(100);
    expect(await count(db, 'public.camera_notes')).toBe(200);
    const runs = await db.pool.query(`SELECT 1 FROM lifecycle.runs WHERE policy = 'cameras-purge'`);
    expect(runs.rowCount).toBe(0);
  });

  it('purges the parent after its child policy ran first; CASCADE children follow their parents', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedCameras(db);
    const config = testConfig([camerasPolicy(['readings-purge']), readingsPolicy]);

    // Act 1: the parent before its child: still-referenced rows stop the chunk, which rolls back.
    const early = await runPolicy(config, 'cameras-purge');
    // Assess 1
    expect(early.failure?.error).toBe('ForeignKeyError');
    expect(early.failure?.cause).toContain('run the child policies first');
    expect(await count(db, 'public.cameras')).toBe(100);

    // Act 2: children first, then the parent.
    const child = await runPolicy(config, 'readings-purge');
    const parent = await runPolicy(config, 'cameras-purge');

    // Assess 2
    expect(child.failure).toBeUndefined();
    expect(child.summary?.rows).toBe(500);
    expect(parent.failure).toBeUndefined();
    expect(parent.summary?.rows).toBe(50);
    const left = await db.pool.query<{ id: number }>(`SELECT min(id)::int AS id FROM public.cameras`);
    expect(left.rows[0]?.id).toBe(51);
    expect(await count(db, 'public.cameras')).toBe(50);
    expect(await count(db, 'public.camera_readings')).toBe(500);
    expect(await count(db, 'public.camera_notes')).toBe(100);
  });
});
