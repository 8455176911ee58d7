/**
 * The scheduled restore drill (`backup.drill`) as its schedule runs it: the synthesized drill state machine,
 * run locally with the real drill handler, against a backup the real backup action made through its own state
 * machine. What the on-call relies on: a good backup passes and the execution succeeds; a damaged backup, or no
 * backup at all, fails the execution (the drill alarm fires); each drill that ran is in lifecycle.restore_drills
 * and leaves no scratch schema.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { parseManifest } from '../../functions/actions/backup/manifest.ts';
import type { DrillStepDependencies } from '../../functions/actions/backup/scheduled-drill.ts';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { runDrillLocally } from '../../functions/local-runner/local-drill.ts';
import { type AslDefinition, synthesizeDrillDefinition } from '../../functions/local-runner/synthesize.ts';
import { silentLogger } from '../../functions/run/dependencies.ts';
import { DrillStateNames } from '../../lib/contracts/restore-drill-payloads.ts';
import { testConfig } from '../support/archive.ts';
import { beforeAll, describe, expect, it, NOW } from '../support/fixture.ts';

const config = testConfig([
  {
    name: 'nightly',
    action: 'backup',
    schedule: 'cron(0 1 * * ? *)',
    backup: { tables: ['shop.*'], level: 1, partMiB: 1, drill: { schedule: 'cron(0 4 ? * SUN *)' } },
  },
  {
    name: 'never-run',
    action: 'backup',
    backup: { tables: ['shop.*'], drill: { schedule: 'cron(0 5 ? * SUN *)' } },
  },
]);

let definition: AslDefinition;

beforeAll(async ({ database }) => {
  await database.pool.query(`
    CREATE SCHEMA shop;
    CREATE TABLE shop.customers (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
    INSERT INTO shop.customers (name) SELECT 'customer ' || g FROM generate_series(1, 3000) g;
    CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer int NOT NULL REFERENCES shop.customers (id),
                              total numeric, at timestamptz);
    INSERT INTO shop.orders SELECT g, 1 + g % 3000, g / 7.0, timestamptz '2026-01-01 00:00:00.000001+00' + g * interval '1 s'
      FROM generate_series(1, 20000) g;`);
  definition = await synthesizeDrillDefinition(config, 'nightly');
});

describe('scheduled restore drill', () => {
  it('is a Drill task whose result decides between DrillSucceeded and DrillFailed', () => {
    expect(definition.StartAt).toBe(DrillStateNames.drill);
    expect(definition.States[DrillStateNames.failed]).toMatchObject({
      Type: 'Fail',
      Error: 'RestoreDrillFailed',
      CausePath: '$.cause',
    });
  });

  const drillOf =
    (database: { url: string }, s3: DrillStepDependencies['s3'], bucket: string, policy: string) =>
    (): DrillStepDependencies => ({
      connect: async () => connect(await resolveClientConfig({ DATABASE_URL: database.url })),
      s3,
      bucket,
      policy,
      log: silentLogger,
    });

  async function drillRows(pool: { query: (sql: string) => Promise<{ rows: unknown[] }> }) {
    const { rows } = await pool.query(
      `SELECT policy, backup_id, status, error, finished_at IS NOT NULL AS finished FROM lifecycle.restore_drills ORDER BY started_at`,
    );
    return rows as Array<{
      policy: string;
      backup_id: string;
      status: string;
      error: string | null;
      finished: boolean;
    }>;
  }

  async function scratchSchemas(pool: { query: (sql: string) => Promise<{ rows: unknown[] }> }) {
    const { rows } = await pool.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pgl_drill_%'`);
    return rows;
  }

  it('passes on the backup the backup action just made, recorded, scratch schema dropped', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: a real backup through the chunk-loop state machine.
    const backup = await runPolicy(config, 'nightly');
    expect(backup.summary?.status).toBe('succeeded');

    // Act
    const result = await runDrillLocally({
      config,
      policyName: 'nightly',
      definition,
      dependencies: drillOf(database, s3, bucket, 'nightly'),
    });

    // Assess
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.output).toMatchObject({
      policy: 'nightly',
      backupId: backup.summary?.backup?.backupId,
      status: 'passed',
      tables: 2,
      failedTables: [],
      scratchDropped: true,
    });
    expect(await drillRows(database.pool)).toEqual([
      {
        policy: 'nightly',
        backup_id: backup.summary?.backup?.backupId,
        status: 'passed',
        error: null,
        finished: true,
      },
    ]);
    expect(await scratchSchemas(database.pool)).toEqual([]);
  });

  it('fails the execution (RestoreDrillFailed) on a damaged backup, and records why', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: a new latest backup (an hour later: ids sort by time), one byte of one of its parts flipped.
    const backup = await runPolicy(config, 'nightly', {
      deps: { now: () => new Date(NOW.getTime() + 3_600_000) },
    });
    const manifestKey = backup.summary?.backup?.manifestKey ?? '';
    const manifestBody = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }));
    const manifest = parseManifest((await manifestBody.Body?.transformToString()) ?? '');
    const part = manifest.tables.find((t) => t.parts.length > 0)?.parts[0];
    if (!part) throw new Error('the backup has no part');
    const original = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: part.key }));
    const bytes = Buffer.from((await original.Body?.transformToByteArray()) ?? new Uint8Array());
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: part.key, Body: bytes }));

    // Act
    const result = await runDrillLocally({
      config,
      policyName: 'nightly',
      definition,
      dependencies: drillOf(database, s3, bucket, 'nightly'),
    });

    // Assess: the execution failed at DrillFailed with the drill's reason; the drill is recorded failed.
    expect(result.status).toBe('failed');
    expect(result.error).toBe('RestoreDrillFailed');
    expect(result.cause).toContain(`of backup ${manifest.backupId}`);
    expect(result.output?.status).toBe('failed');
    const rows = await drillRows(database.pool);
    expect(rows.at(-1)).toMatchObject({ backup_id: manifest.backupId, status: 'failed', finished: true });
    expect(rows.at(-1)?.error).toBeTruthy();
    expect(await scratchSchemas(database.pool)).toEqual([]);
  });

  it('fails the execution when the policy has no backup to drill, recording nothing', async ({
    database,
    s3,
    bucket,
  }) => {
    const before = (await drillRows(database.pool)).length;

    const result = await runDrillLocally({
      config,
      policyName: 'never-run',
      definition,
      dependencies: drillOf(database, s3, bucket, 'never-run'),
    });

    expect(result.status).toBe('failed');
    expect(result.error).toBe('BackupNotFoundError');
    expect(result.output).toBeUndefined();
    expect((await drillRows(database.pool)).length).toBe(before);
  });
});
