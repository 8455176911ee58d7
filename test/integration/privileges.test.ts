/**
 * A database role without a privilege the run needs, through the synthesized state machine (run locally with
 * the real handlers) against a real PostgreSQL and a real S3 API server: Start refuses with
 * InsufficientPrivilegeError naming the privilege and the object before anything is written (no ledger
 * schema, no run row, no lease, table and bucket as they were), and `plan` lists the same refusal. With the
 * documented privileges (SELECT, UPDATE, DELETE on the table; DML on the ledger) the same runs go through.
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import { type AslDefinition, synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { runLocally, testConfig } from '../support/archive.ts';
import { seedEvents } from '../support/archive-guarantees.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { seedPartitioned } from '../support/partitioned.ts';
import { createTestBucket, testS3Client } from '../support/s3.ts';
import { snapshotDatabaseAndBucket } from '../support/snapshot.ts';

let db: TestDatabase;
let s3: S3Client;
let bucket: string;
let definition: AslDefinition;
/** A login role of this test only (roles are server-wide), and its connection URL. */
const role = `lifecycle_app_${randomBytes(4).toString('hex')}`;
let roleUrl: string;

const NOW = new Date('2026-11-23T12:00:00.000Z');
const CHUNKING = { initialRows: 200, minRows: 200, maxRows: 200 };

type PolicyInput = LifecycleConfigInput['policies'][number];
const archivePolicy: PolicyInput = {
  name: 'events-archive',
  action: 'archive',
  table: 'public.events',
  timeColumn: 'created_at',
  retention: 'P90D',
  chunking: CHUNKING,
};
const purgePolicy: PolicyInput = {
  name: 'logs-purge',
  action: 'purge',
  table: 'public.logs',
  timeColumn: 'created_at',
  retention: 'P90D',
  chunking: CHUNKING,
};
const partitionedPurge: PolicyInput = {
  name: 'readings-purge',
  action: 'purge',
  table: 'public.readings',
  timeColumn: 'created_at',
  retention: 'P90D',
};

async function admin(sql: string): Promise<void> {
  await db.pool.query(sql);
}

/**
 * Everything a run could change, ledger schema or not, in a comparable form: the database's catalog (the
 * role's grants among it) and every table's rows, and the bucket's objects.
 */
const everything = () => snapshotDatabaseAndBucket(db.url, s3, bucket, { rolePrefix: role });

function run(policy: PolicyInput, options: { dryRun?: boolean; url?: string } = {}): Promise<LocalRunResult> {
  return runLocally({
    config: testConfig([policy]),
    policyName: policy.name,
    definition,
    dryRun: options.dryRun ?? false,
    deps: { databaseUrl: options.url ?? roleUrl, bucket, s3, now: () => NOW },
  });
}

/** The run was refused at Start: no run id, no chunk, the error naming what is missing. */
function expectRefused(result: LocalRunResult, cause: RegExp): void {
  expect(result.status).toBe('failed');
  expect(result.failure?.error).toBe('InsufficientPrivilegeError');
  expect(result.failure?.cause).toMatch(cause);
  expect(result.failure?.runId).toBeUndefined();
  expect(result.chunkInvocations).toBe(0);
}

beforeAll(async () => {
  db = await createTestDatabase('privileges');
  s3 = testS3Client();
  bucket = await createTestBucket('privileges');
  definition = await synthesizeDefinition(testConfig([archivePolicy]));
  await seedEvents(db.pool, 'events', 1000, NOW);
  await seedEvents(db.pool, 'logs', 1000, NOW);
  await seedPartitioned(db.pool, 'readings', {
    first: '2026-01-01',
    last: '2026-12-01',
    from: '2026-01-01T00:00:00Z',
    now: NOW,
  });
  // What the issue found: a role that may read, lock and create the ledger, but not delete.
  await admin(`CREATE ROLE ${role} LOGIN PASSWORD 'app-password'`);
  await admin(
    `GRANT CREATE ON DATABASE ${pg.escapeIdentifier(new URL(db.url).pathname.slice(1))} TO ${role}`,
  );
  await admin(`GRANT SELECT, UPDATE ON public.events, public.logs TO ${role}`);
  await admin(`GRANT SELECT, UPDATE, DELETE ON public.readings TO ${role}`);
  const url = new URL(db.url);
  url.username = role;
  url.password = 'app-password';
  roleUrl = url.toString();
});

afterAll(async () => {
  s3?.destroy();
  await db?.drop();
  const adminClient = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await adminClient.connect();
  try {
    await adminClient.query(`DROP ROLE IF EXISTS ${role}`);
  } finally {
    await adminClient.end();
  }
});

describe('a role without DELETE', () => {
  it.each([
    ['archive', archivePolicy, 'events'],
    ['purge', purgePolicy, 'logs'],
  ])('is refused a first %s before the ledger schema is created', async (_action, policy, table) => {
    // Prepare
    const before = await everything();
    expect(before.database.ledger).toBe(false);

    // Act
    const result = await run(policy);

    // Assess
    expectRefused(result, new RegExp(`^role ${role} lacks DELETE on public\\.${table} \\(`));
    expect(result.failure?.cause).not.toMatch(/lacks (SELECT|UPDATE|CREATE)/);
    expect(await everything()).toEqual(before);
  });

  it('gets the same refusal from plan, which changes nothing', async () => {
    // Prepare
    const before = await everything();

    // Act
    const plan = await run(archivePolicy, { dryRun: true });

    // Assess
    expect(plan.status).toBe('dry_run');
    expect(plan.summary?.plan?.refusals).toEqual([
      {
        error: 'InsufficientPrivilegeError',
        message: expect.stringMatching(`^role ${role} lacks DELETE on public.events`),
      },
    ]);
    expect(await everything()).toEqual(before);
  });

  describe('once the ledger exists and the role may use it (but not create anything)', () => {
    beforeAll(async () => {
      const client = await db.pool.connect();
      try {
        await applyMigrations(client);
      } finally {
        client.release();
      }
      await admin(
        `REVOKE CREATE ON DATABASE ${pg.escapeIdentifier(new URL(db.url).pathname.slice(1))} FROM ${role}`,
      );
      await admin(`GRANT USAGE ON SCHEMA lifecycle TO ${role}`);
      await admin(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lifecycle TO ${role}`);
      await admin(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA lifecycle TO ${role}`);
    });

    it.each([
      ['archive', archivePolicy, 'events'],
      ['purge', purgePolicy, 'logs'],
    ])('is refused a %s with no run row, no lease and nothing deleted', async (_action, policy, table) => {
      // Prepare
      const before = await everything();

      // Act
      const result = await run(policy);

      // Assess
      expectRefused(
        result,
        new RegExp(`^role ${role} lacks DELETE on public\\.${table} \\(.*\\)\\. Nothing was changed\\.$`),
      );
      expect(await everything()).toEqual(before);
    });

    it('names every missing ledger privilege too', async () => {
      // Prepare
      await admin(`REVOKE INSERT ON lifecycle.runs FROM ${role}`);
      const before = await everything();

      // Act
      let result: LocalRunResult;
      let after: Awaited<ReturnType<typeof everything>>;
      try {
        result = await run(archivePolicy);
        // Before the grant comes back: the picture holds the role's grants.
        after = await everything();
      } finally {
        await admin(`GRANT INSERT ON lifecycle.runs TO ${role}`);
      }

      // Assess
      expectRefused(result, /lacks DELETE on public\.events .*; role \S+ lacks INSERT on lifecycle\.runs \(/);
      expect(after).toEqual(before);
    });

    it('runs both once DELETE is granted: the documented privileges are enough', async () => {
      // Prepare
      await admin(`GRANT DELETE ON public.events, public.logs TO ${role}`);

      // Act
      const archived = await run(archivePolicy);
      const purged = await run(purgePolicy);

      // Assess
      expect(archived.status).toBe('succeeded');
      expect(purged.status).toBe('succeeded');
      expect(archived.summary?.rows).toBeGreaterThan(0);
      expect(purged.summary?.rows).toBeGreaterThan(0);
      // Not the table's owner: PostgreSQL skips the VACUUM with a mere WARNING; the ledger says so.
      const { rows } = await db.pool.query<{
        maintenance: { vacuumed: boolean; reason: string; error?: string };
      }>('SELECT maintenance FROM lifecycle.runs WHERE run_id = $1', [purged.summary?.runId]);
      expect(rows[0]?.maintenance).toMatchObject({
        vacuumed: false,
        reason: 'failed',
        error: `skipped: role ${role} cannot VACUUM public.logs (not its owner)`,
      });
    });

    it('refuses a replica-lag guard set in defaults that the role cannot read (no pg_monitor)', async () => {
      // Prepare: DELETE granted by the test before; the guard comes from defaults.throttle only.
      const before = await everything();

      // Act
      const result = await runLocally({
        config: testConfig([purgePolicy], { defaults: { throttle: { maxReplicaLagSeconds: 30 } } }),
        policyName: purgePolicy.name,
        deps: { databaseUrl: roleUrl, bucket, s3, now: () => NOW },
      });

      // Assess: the guard would read 0 and hold nothing back; the run is refused with nothing changed.
      expectRefused(
        result,
        new RegExp(`^role ${role} is not a member of role pg_monitor \\(the replica-lag guard`),
      );
      expect(await everything()).toEqual(before);
    });

    it('refuses partition retention without ownership of the parent and the retired partitions', async () => {
      // Prepare
      const before = await everything();

      // Act
      const plan = await run(partitionedPurge, { dryRun: true });
      const result = await run(partitionedPurge);

      // Assess
      const refusal = plan.summary?.plan?.refusals.find((r) => r.error === 'InsufficientPrivilegeError');
      expect(refusal?.message).toMatch(
        new RegExp(`^role ${role} does not own public\\.readings \\(partition retention detaches`),
      );
      expect(refusal?.message).toMatch(/does not own public\.readings_2026_01 \(/);
      expectRefused(result, /does not own public\.readings \(.*partitions\.enabled: false/);
      expect(await everything()).toEqual(before);
    });
  });
});

describe('a policy whose unqualified table resolves into the ledger', () => {
  it('is refused at Start although the config cannot see it (search_path includes lifecycle)', async () => {
    // Prepare: the superuser, so that privileges are not what stops it.
    const url = new URL(db.url);
    url.searchParams.set('options', '-c search_path=lifecycle,public');
    const leases: PolicyInput = {
      ...purgePolicy,
      name: 'leases-purge',
      table: 'leases',
      timeColumn: 'expires_at',
    };
    const before = await everything();

    // Act
    const result = await run(leases, { url: url.toString() });

    // Assess
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('CatalogError');
    expect(result.failure?.cause).toMatch(
      /"lifecycle"\."leases": no policy may touch it \(schema lifecycle holds pg-lifecycle's own ledger\)/,
    );
    expect(await everything()).toEqual(before);
  });
});
