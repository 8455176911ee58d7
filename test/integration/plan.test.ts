/**
 * The plan (dry run) end to end, through the synthesized state machine with the real handlers: what it
 * reports (eligible rows, bytes, oldest row, referencing tables with counts, EXPLAIN, whole-table scans),
 * that it changes nothing (rows, ledger — not even the lifecycle schema on a fresh database —, S3), and
 * the refusal of real runs whose chunk query scans a large table (MissingIndexError, --force, allowSeqScan).
 */

import { formatReport, toReport } from '../../bin/cli/run-command.ts';
import { FULL_SCAN_REFUSAL_MIN_BYTES } from '../../functions/core/full-scan.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';
import { listAllKeys } from '../support/s3.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

/**
 * devices (200; 1-120 retired two years ago) ← device_notes (ON DELETE CASCADE, 3 per device) and
 * device_alerts (NO ACTION, 1 per device for devices 1-40).
 */
async function seedDevices(db: TestDatabase): Promise<void> {
  await db.pool.query(`
    CREATE TABLE public.devices (
      id integer PRIMARY KEY, retired_at timestamptz NOT NULL, label text NOT NULL);
    CREATE INDEX ON public.devices (retired_at);
    CREATE TABLE public.device_notes (
      id integer PRIMARY KEY,
      device_id integer NOT NULL CONSTRAINT notes_device_fk REFERENCES public.devices (id) ON DELETE CASCADE);
    CREATE TABLE public.device_alerts (
      id integer PRIMARY KEY,
      device_id integer NOT NULL CONSTRAINT alerts_device_fk REFERENCES public.devices (id),
      raised_at timestamptz NOT NULL DEFAULT now());`);
  await db.pool.query(
    `INSERT INTO public.devices
     SELECT g, $1::timestamptz - CASE WHEN g <= 120 THEN interval '2 years' + g * interval '1 hour' ELSE interval '1 day' END,
            repeat('x', 40)
       FROM generate_series(1, 200) g`,
    [NOW.toISOString()],
  );
  await db.pool.query(
    `INSERT INTO public.device_notes SELECT g, (g - 1) / 3 + 1 FROM generate_series(1, 600) g`,
  );
  await db.pool.query(
    `INSERT INTO public.device_alerts (id, device_id) SELECT g, g FROM generate_series(1, 40) g`,
  );
  await db.pool.query(`ANALYZE public.devices`);
}

/** `public.readings` without any index on created_at, large enough that a whole-table chunk query refuses. */
async function seedUnindexedReadings(db: TestDatabase, rows: number, eligible: number): Promise<void> {
  await db.pool.query(`DROP TABLE IF EXISTS public.readings`);
  await db.pool.query(`
    CREATE TABLE public.readings (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, body text NOT NULL)`);
  await db.pool.query(
    `INSERT INTO public.readings
     SELECT g, $2::timestamptz - CASE WHEN g <= $3 THEN interval '400 days' ELSE interval '1 day' END,
            repeat(md5(g::text), 3)
       FROM generate_series(1, $1) g`,
    [rows, NOW.toISOString(), eligible],
  );
  await db.pool.query(`ANALYZE public.readings`);
}

const devicesPolicy = (overrides: Partial<PolicyInput> = {}): PolicyInput =>
  ({
    name: 'devices-purge',
    action: 'purge',
    table: 'public.devices',
    timeColumn: 'retired_at',
    retention: 'P1Y',
    ...overrides,
  }) as PolicyInput;

const readingsPolicy = (overrides: Partial<PolicyInput> = {}): PolicyInput =>
  ({
    name: 'readings-purge',
    action: 'purge',
    table: 'public.readings',
    timeColumn: 'created_at',
    retention: 'P1Y',
    ...overrides,
  }) as PolicyInput;

const count = async (db: TestDatabase, table: string) =>
  (await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;

const lifecycleSchemaExists = async (db: TestDatabase) =>
  (await db.pool.query(`SELECT to_regnamespace('lifecycle') IS NOT NULL AS present`)).rows[0]
    .present as boolean;

describe('plan (dry run)', () => {
  it('reports cutoff, eligible rows, bytes, oldest row, referencing tables and EXPLAIN, and changes nothing', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: a fresh database, no ledger yet.
    await seedDevices(db);
    expect(await lifecycleSchemaExists(db)).toBe(false);
    const before = {
      devices: await count(db, 'public.devices'),
      notes: await count(db, 'public.device_notes'),
      alerts: await count(db, 'public.device_alerts'),
      keys: await listAllKeys(s3, bucket),
    };
    const archive: PolicyInput = {
      name: 'devices-archive',
      action: 'archive',
      table: 'public.devices',
      timeColumn: 'retired_at',
      retention: 'P1Y',
    };
    // Two configs: one config may not purge a table as soon as it archives it (the purge would outrun it).
    const purgeConfig = testConfig([devicesPolicy()]);
    const archiveConfig = testConfig([archive]);

    // Act: the purge plan is given the bucket as well (runPolicy gives one to archive policies only).
    const purgePlan = await runPolicy(purgeConfig, 'devices-purge', { dryRun: true, deps: { bucket, s3 } });
    const archivePlan = await runPolicy(archiveConfig, 'devices-archive', { dryRun: true });

    // Assess: the plan.
    expect(purgePlan.status).toBe('dry_run');
    const plan = purgePlan.summary?.plan;
    expect(plan).toMatchObject({
      cutoff: '2025-11-23T12:00:00.000000Z',
      eligibleRows: 120,
      oldest: '2024-11-18 12:00:00+00',
      fullTableScan: false,
    });
    expect(purgePlan.summary?.eligibleRows).toBe(120);
    // 120 rows of a 40-character label, an int and a timestamptz: tens of bytes each, not kilobytes.
    expect(plan?.estimatedBytes).toBeGreaterThan(120 * 50);
    expect(plan?.estimatedBytes).toBeLessThan(120 * 200);
    expect(plan?.foreignKeys).toEqual([
      {
        table: '"public"."device_alerts"',
        constraint: 'alerts_device_fk',
        onDelete: 'no action',
        referencingRows: 40,
      },
      {
        table: '"public"."device_notes"',
        constraint: 'notes_device_fk',
        onDelete: 'cascade',
        referencingRows: 360,
      },
    ]);
    expect(plan?.explain.join('\n')).toMatch(/Limit/);
    expect(plan?.warnings).toContainEqual(expect.stringContaining('360 rows of "public"."device_notes"'));
    // The purge would refuse: NO ACTION references without a child policy. The plan says so instead of failing.
    expect(plan?.refusals).toEqual([
      {
        error: 'ForeignKeyError',
        message: expect.stringContaining('"public"."device_alerts" (constraint alerts_device_fk'),
      },
    ]);
    expect(archivePlan.status).toBe('dry_run');
    // An archive would refuse the CASCADE child: its rows would go with the archived ones, unarchived.
    expect(archivePlan.summary?.plan?.refusals).toEqual([
      {
        error: 'ForeignKeyError',
        message: expect.stringContaining(
          'refusing to archive "public"."devices": deleting its rows would make PostgreSQL delete or change rows of "public"."device_notes" (constraint notes_device_fk, ON DELETE CASCADE)',
        ),
      },
    ]);
    expect(archivePlan.summary?.plan?.warnings).toContainEqual(
      expect.stringContaining('40 rows of "public"."device_alerts" still reference eligible rows'),
    );

    // Assess: it reads well in the CLI.
    const text = formatReport(toReport(purgePlan, 'purge'));
    expect(text).toContain('devices-purge: dry run, cutoff 2025-11-23T12:00:00.000000Z, 120 rows eligible');
    expect(text).toContain('eligible      120 rows, about');
    expect(text).toContain(
      'referenced by "public"."device_notes" (notes_device_fk, ON DELETE CASCADE): 360 rows',
    );
    expect(text).toContain('A RUN WOULD REFUSE: ForeignKeyError');

    // Assess: nothing changed, nothing was created.
    expect(await count(db, 'public.devices')).toBe(before.devices);
    expect(await count(db, 'public.device_notes')).toBe(before.notes);
    expect(await count(db, 'public.device_alerts')).toBe(before.alerts);
    expect(await lifecycleSchemaExists(db)).toBe(false);
    expect(await listAllKeys(s3, bucket)).toEqual(before.keys);
  });

  it('names the child policy that covers a NO ACTION reference', async ({ database: db, runPolicy }) => {
    // Prepare: the tables of the previous test.
    const alerts: PolicyInput = {
      name: 'alerts-purge',
      action: 'purge',
      table: 'public.device_alerts',
      timeColumn: 'raised_at',
      retention: 'P1Y',
    };
    const config = testConfig([
      devicesPolicy({ children: ['alerts-purge'] } as Partial<PolicyInput>),
      alerts,
    ]);

    // Act
    const result = await runPolicy(config, 'devices-purge', { dryRun: true });

    // Assess
    expect(result.summary?.plan?.refusals).toEqual([]);
    expect(result.summary?.plan?.foreignKeys[0]).toMatchObject({
      table: '"public"."device_alerts"',
      childPolicy: 'alerts-purge',
    });
    expect(await lifecycleSchemaExists(db)).toBe(false);
  });
});

describe('whole-table chunk queries', () => {
  it('warns in the plan and refuses a real run (MissingIndexError) when no index leads with timeColumn', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedUnindexedReadings(db, 110_000, 500);
    const size = await db.pool.query(`SELECT pg_relation_size('public.readings')::bigint AS bytes`);
    expect(Number(size.rows[0].bytes)).toBeGreaterThan(FULL_SCAN_REFUSAL_MIN_BYTES);
    const config = testConfig([readingsPolicy()]);

    // Act
    const plan = await runPolicy(config, 'readings-purge', { dryRun: true });
    const run = await runPolicy(config, 'readings-purge');

    // Assess
    expect(plan.summary?.plan).toMatchObject({ eligibleRows: 500, fullTableScan: true });
    expect(plan.summary?.plan?.explain.join('\n')).toMatch(/Seq Scan on readings/);
    expect(plan.summary?.plan?.warnings).toEqual([
      expect.stringMatching(
        /scans all of "public"."readings" .* no btree index leads with "created_at"; a run refuses/,
      ),
    ]);
    expect(plan.summary?.plan?.refusals.map((r) => r.error)).toEqual(['MissingIndexError']);
    expect(run.status).toBe('failed');
    expect(run.failure?.error).toBe('MissingIndexError');
    expect(run.failure?.cause).toContain('allowSeqScan');
    expect(run.failure?.runId).toBeUndefined();
    expect(await count(db, 'public.readings')).toBe(110_000);
  });

  it('refuses when the only index on timeColumn is BRIN (each chunk would read every eligible row)', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: the same large table, with a BRIN index on created_at (and nearly every row eligible).
    await seedUnindexedReadings(db, 110_000, 100_000);
    await db.pool.query(`CREATE INDEX readings_created_at_brin ON public.readings USING brin (created_at)`);
    await db.pool.query(`ANALYZE public.readings`);
    const config = testConfig([readingsPolicy()]);

    // Act
    const plan = await runPolicy(config, 'readings-purge', { dryRun: true });
    const run = await runPolicy(config, 'readings-purge');

    // Assess
    expect(plan.summary?.plan).toMatchObject({ fullTableScan: true });
    expect(plan.summary?.plan?.refusals.map((r) => r.error)).toEqual(['MissingIndexError']);
    expect(run.failure?.error).toBe('MissingIndexError');
    expect(await count(db, 'public.readings')).toBe(110_000);
  });

  it('runs anyway with --force or allowSeqScan, and plans --force without a refusal', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedUnindexedReadings(db, 110_000, 500);

    // Act
    const forcedPlan = await runPolicy(testConfig([readingsPolicy()]), 'readings-purge', {
      dryRun: true,
      force: true,
    });
    const forced = await runPolicy(testConfig([readingsPolicy()]), 'readings-purge', { force: true });
    await seedUnindexedReadings(db, 110_000, 300);
    const allowed = await runPolicy(
      testConfig([readingsPolicy({ allowSeqScan: true } as Partial<PolicyInput>)]),
      'readings-purge',
    );

    // Assess
    expect(forcedPlan.summary?.plan?.refusals).toEqual([]);
    expect(forcedPlan.summary?.plan?.warnings).toEqual([expect.stringContaining('--force was given')]);
    expect(forced.failure).toBeUndefined();
    expect(forced.summary?.rows).toBe(500);
    expect(allowed.failure).toBeUndefined();
    expect(allowed.summary?.rows).toBe(300);
    expect(await count(db, 'public.readings')).toBe(110_000 - 300);
  });

  it('lets a small table without a time index run, with a warning in its plan', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedUnindexedReadings(db, 2_000, 100);
    const config = testConfig([readingsPolicy()]);

    // Act
    const plan = await runPolicy(config, 'readings-purge', { dryRun: true });
    const run = await runPolicy(config, 'readings-purge');

    // Assess
    expect(plan.summary?.plan?.fullTableScan).toBe(true);
    expect(plan.summary?.plan?.warnings).toEqual([expect.stringContaining('small enough to scan')]);
    expect(plan.summary?.plan?.refusals).toEqual([]);
    expect(run.failure).toBeUndefined();
    expect(run.summary?.rows).toBe(100);
  });
});
