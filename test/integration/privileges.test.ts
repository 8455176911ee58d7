/**
 * A database role without a privilege the run needs, through the synthesized state machine (run locally with
 * the real handlers) against a real PostgreSQL and a real S3 API server: Start refuses with
 * InsufficientPrivilegeError naming the privilege and the object before anything is written (no ledger
 * schema, no run row, no lease, table and bucket as they were), and `plan` lists the same refusal. With the
 * documented privileges (SELECT, UPDATE, DELETE on the table; DML on the ledger) the same runs go through.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { seedEvents } from '../support/archive-guarantees.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { describe, expect, hooksOf, NOW, test } from '../support/fixture.ts';
import { seedPartitioned } from '../support/partitioned.ts';
import { snapshotDatabaseAndBucket } from '../support/snapshot.ts';

/** A login role of this test only (roles are server-wide), and its connection URL. */
const role = `lifecycle_app_${randomBytes(4).toString('hex')}`;
let roleUrl: string;

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

async function admin(db: TestDatabase, sql: string): Promise<void> {
  await db.pool.query(sql);
}

/** Runs as the file's role, and a picture of everything they could change. */
interface AsRole {
  /** A run (or plan) of `policy` as the role (or through `url`), on the file's definition. */
  run(policy: PolicyInput, options?: { dryRun?: boolean; url?: string }): Promise<LocalRunResult>;
  /**
   * Everything a run could change, ledger schema or not, in a comparable form: the database's catalog (the
   * role's grants among it) and every table's rows, and the bucket's objects.
   */
  everything(): ReturnType<typeof snapshotDatabaseAndBucket>;
}

const it = test.extend(
  'asRole',
  { scope: 'file' },
  ({ database, s3, bucket, runPolicy, definition }): AsRole => ({
    run: (policy, options = {}) =>
      runPolicy(testConfig([policy]), policy.name, {
        definition,
        dryRun: options.dryRun ?? false,
        deps: { databaseUrl: options.url ?? roleUrl },
      }),
    everything: () => snapshotDatabaseAndBucket(database.url, s3, bucket, { rolePrefix: role }),
  }),
);
const { beforeAll, afterAll } = hooksOf(it);

/** The run was refused at Start: no run id, no chunk, the error naming what is missing. */
function expectRefused(result: LocalRunResult, cause: RegExp): void {
  expect(result.status).toBe('failed');
  expect(result.failure?.error).toBe('InsufficientPrivilegeError');
  expect(result.failure?.cause).toMatch(cause);
  expect(result.failure?.runId).toBeUndefined();
  expect(result.chunkInvocations).toBe(0);
}

beforeAll(async ({ database: db }) => {
  await seedEvents(db.pool, 'events', 1000, NOW);
  await seedEvents(db.pool, 'logs', 1000, NOW);
  await seedPartitioned(db.pool, 'readings', {
    first: '2026-01-01',
    last: '2026-12-01',
    from: '2026-01-01T00:00:00Z',
    now: NOW,
  });
  // What the issue found: a role that may read, lock and create the ledger, but not delete.
  await admin(db, `CREATE ROLE ${role} LOGIN PASSWORD 'app-password'`);
  await admin(
    db,
    `GRANT CREATE ON DATABASE ${pg.escapeIdentifier(new URL(db.url).pathname.slice(1))} TO ${role}`,
  );
  await admin(db, `GRANT SELECT, UPDATE ON public.events, public.logs TO ${role}`);
  await admin(db, `GRANT SELECT, UPDATE, DELETE ON public.readings TO ${role}`);
  const url = new URL(db.url);
  url.username = role;
  url.password = 'app-password';
  roleUrl = url.toString();
});

afterAll(async ({ database: db }) => {
  // The role outlives the file's database, whose grants to it must go before it can.
  const { rowCount } = await db.pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (rowCount === 0) return;
  await admin(db, `DROP OWNED BY ${role}`);
  await admin(db, `DROP ROLE ${role}`);
});

describe('a role without DELETE', () => {
  it.for([
    ['archive', archivePolicy, 'events'],
    ['purge', purgePolicy, 'logs'],
  ] as const)(
    'is refused a first %s before the ledger schema is created',
    async ([, policy, table], { asRole }) => {
      // Prepare
      const before = await asRole.everything();
      expect(before.database.ledger).toBe(false);

      // Act
      const result = await asRole.run(policy);

      // Assess
      expectRefused(result, new RegExp(`^role ${role} lacks DELETE on public\\.${table} \\(`));
      expect(result.failure?.cause).not.toMatch(/lacks (SELECT|UPDATE|CREATE)/);
      expect(await asRole.everything()).toEqual(before);
    },
  );

  it('gets the same refusal from plan, which changes nothing', async ({ asRole }) => {
    // Prepare
    const before = await asRole.everything();

    // Act
    const plan = await asRole.run(archivePolicy, { dryRun: true });

    // Assess
    expect(plan.status).toBe('dry_run');
    expect(plan.summary?.plan?.refusals).toEqual([
      {
        error: 'InsufficientPrivilegeError',
        message: expect.stringMatching(`^role ${role} lacks DELETE on public.events`),
      },
    ]);
    expect(await asRole.everything()).toEqual(before);
  });

  describe('once the ledger exists and the role may use it (but not create anything)', () => {
    beforeAll(async ({ database: db }) => {
      await migrateLedger(db);
      await admin(
        db,
        `REVOKE CREATE ON DATABASE ${pg.escapeIdentifier(new URL(db.url).pathname.slice(1))} FROM ${role}`,
      );
      await admin(db, `GRANT USAGE ON SCHEMA lifecycle TO ${role}`);
      await admin(db, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lifecycle TO ${role}`);
      await admin(db, `GRANT USAGE ON ALL SEQUENCES IN SCHEMA lifecycle TO ${role}`);
    });

    it.for([
      ['archive', archivePolicy, 'events'],
      ['purge', purgePolicy, 'logs'],
    ] as const)(
      'is refused a %s with no run row, no lease and nothing deleted',
      async ([, policy, table], { asRole }) => {
        // Prepare
        const before = await asRole.everything();

        // Act
        const result = await asRole.run(policy);

        // Assess
        expectRefused(
          result,
          new RegExp(`^role ${role} lacks DELETE on public\\.${table} \\(.*\\)\\. Nothing was changed\\.$`),
        );
        expect(await asRole.everything()).toEqual(before);
      },
    );

    it('names every missing ledger privilege too', async ({ database: db, asRole }) => {
      // Prepare
      await admin(db, `REVOKE INSERT ON lifecycle.runs FROM ${role}`);
      const before = await asRole.everything();

      // Act
      let result: LocalRunResult;
      let after: Awaited<ReturnType<AsRole['everything']>>;
      try {
        result = await asRole.run(archivePolicy);
        // Before the grant comes back: the picture holds the role's grants.
        after = await asRole.everything();
      } finally {
        await admin(db, `GRANT INSERT ON lifecycle.runs TO ${role}`);
      }

      // Assess
      expectRefused(result, /lacks DELETE on public\.events .*; role \S+ lacks INSERT on lifecycle\.runs \(/);
      expect(after).toEqual(before);
    });

    it('runs both once DELETE is granted: the documented privileges are enough', async ({
      database: db,
      asRole,
    }) => {
      // Prepare
      await admin(db, `GRANT DELETE ON public.events, public.logs TO ${role}`);

      // Act
      const archived = await asRole.run(archivePolicy);
      const purged = await asRole.run(purgePolicy);

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

    it('refuses a replica-lag guard set in defaults that the role cannot read (no pg_monitor)', async ({
      runPolicy,
      asRole,
    }) => {
      // Prepare: DELETE granted by the test before; the guard comes from defaults.throttle only.
      const before = await asRole.everything();

      // Act
      const result = await runPolicy(
        testConfig([purgePolicy], { defaults: { throttle: { maxReplicaLagSeconds: 30 } } }),
        purgePolicy.name,
        { deps: { databaseUrl: roleUrl } },
      );

      // Assess: the guard would read 0 and hold nothing back; the run is refused with nothing changed.
      expectRefused(
        result,
        new RegExp(`^role ${role} is not a member of role pg_monitor \\(the replica-lag guard`),
      );
      expect(await asRole.everything()).toEqual(before);
    });

    it('refuses partition retention without ownership of the parent and the retired partitions', async ({
      asRole,
    }) => {
      // Prepare
      const before = await asRole.everything();

      // Act
      const plan = await asRole.run(partitionedPurge, { dryRun: true });
      const result = await asRole.run(partitionedPurge);

      // Assess
      const refusal = plan.summary?.plan?.refusals.find((r) => r.error === 'InsufficientPrivilegeError');
      expect(refusal?.message).toMatch(
        new RegExp(`^role ${role} does not own public\\.readings \\(partition retention detaches`),
      );
      expect(refusal?.message).toMatch(/does not own public\.readings_2026_01 \(/);
      expectRefused(result, /does not own public\.readings \(.*partitions\.enabled: false/);
      expect(await asRole.everything()).toEqual(before);
    });
  });
});

describe('a policy whose unqualified table resolves into the ledger', () => {
  it('is refused at Start although the config cannot see it (search_path includes lifecycle)', async ({
    database: db,
    asRole,
  }) => {
    // Prepare: the superuser, so that privileges are not what stops it.
    const url = new URL(db.url);
    url.searchParams.set('options', '-c search_path=lifecycle,public');
    const leases: PolicyInput = {
      ...purgePolicy,
      name: 'leases-purge',
      table: 'leases',
      timeColumn: 'expires_at',
    };
    const before = await asRole.everything();

    // Act
    const result = await asRole.run(leases, { url: url.toString() });

    // Assess
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('CatalogError');
    expect(result.failure?.cause).toMatch(
      /"lifecycle"\."leases": no policy may touch it \(schema lifecycle holds pg-lifecycle's own ledger\)/,
    );
    expect(await asRole.everything()).toEqual(before);
  });
});
