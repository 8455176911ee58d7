/**
 * `pg-lifecycle unlock` against a real PostgreSQL: a lease is released only when its holder is provably
 * gone (a local run's backend no longer exists, pid reuse included; an AWS run's execution is not running,
 * followed through ContinueAsNew), refused otherwise unless --force, and every release is recorded with
 * who and why (lease-fence.test.ts: what happens to a live run whose lease is taken). Only the Step Functions API is faked (test/support/fake-sfn.ts); everything else is real.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { HolderCheckError, unlockCommand } from '../../bin/cli/unlock-command.ts';
import { listMigrations } from '../../functions/adapters/migrations.ts';
import { resolveClientConfig, withClient } from '../../functions/commons/database.ts';
import { runRecord } from '../support/archive-guarantees.ts';
import { createTestDatabase, migrateLedger, type TestDatabase } from '../support/database.ts';
import { type FakeAnswer, fakeSfn } from '../support/fake-sfn.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';
import {
  leaseOf,
  liveBackend,
  openRun,
  releasesOf,
  runCliInProcess,
  waitUntilBackendGone,
} from '../support/leases.ts';

const MACHINE = 'arn:aws:states:eu-west-1:123456789012:execution:PgLifecycle-chunk-loop';

beforeAll(async ({ database: db }) => {
  await migrateLedger(db);
});

/** unlockCommand on the CLI's own kind of connection, with a faked Step Functions. */
async function unlockWith(
  db: TestDatabase,
  policy: string,
  respond: (arn: string) => FakeAnswer,
  options: { force?: boolean; reason?: string } = {},
) {
  const sfn = fakeSfn((_target, body) => respond(String(body.executionArn)));
  const regions: string[] = [];
  const result = await withClient(await resolveClientConfig({ DATABASE_URL: db.url }), (client) =>
    unlockCommand(client, {
      policy,
      force: options.force ?? false,
      reason: options.reason,
      osUser: 'ops-alice',
      sfnFor: (region) => {
        regions.push(region);
        return sfn.client;
      },
    }),
  );
  return { result, described: sfn.requests.map((r) => String(r.body.executionArn)), regions };
}

const execution = (arn: string, status: string) => ({
  executionArn: arn,
  stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:PgLifecycle-chunk-loop',
  status,
  startDate: 1_700_000_000,
  ...(status === 'RUNNING' ? {} : { stopDate: 1_700_000_100 }),
});

describe('unlock of a local run', () => {
  it('refuses while the holder backend is connected, releases once it is gone, and records who and why', async ({
    database: db,
  }) => {
    // Prepare
    const live = await liveBackend(db);
    const runId = await openRun(db, 'local-killed', { backend: live.backend });

    // Act: the holder is alive
    const refused = await runCliInProcess(db, ['unlock', '--policy', 'local-killed']);

    // Assess
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`run ${runId}`);
    expect(refused.stderr).toContain(`pid ${live.backend.pid}`);
    expect(refused.stderr).toContain('still connected');
    expect(refused.stderr).toContain('--force');
    expect(await leaseOf(db, 'local-killed')).toBe(runId);
    expect((await runRecord(db.pool, runId))?.status).toBe('running');

    // Act: the runner's process dies, its backend with it
    await live.client.end();
    await waitUntilBackendGone(db, live.backend.pid);
    const released = await runCliInProcess(db, [
      'unlock',
      '--policy',
      'local-killed',
      '--reason',
      'runner host was rebooted',
    ]);

    // Assess
    expect(released.code).toBe(0);
    expect(released.stdout).toContain('released the lease of policy local-killed');
    expect(await leaseOf(db, 'local-killed')).toBeUndefined();
    const run = await runRecord(db.pool, runId);
    expect(run).toMatchObject({ status: 'failed', error_name: 'LeaseReleased' });
    expect(run?.error_cause).toContain('database role postgres');
    expect(run?.error_cause).toContain(`OS user ${userInfo().username}`);
    expect(run?.error_cause).toContain('runner host was rebooted');
    expect(await releasesOf(db, 'local-killed')).toEqual([
      expect.objectContaining({
        run_id: runId,
        forced: false,
        reason: 'runner host was rebooted',
        released_by_role: 'postgres',
        released_by_os_user: userInfo().username,
        evidence: expect.stringContaining(`no database backend has pid ${live.backend.pid}`),
      }),
    ]);
  });

  it('is not fooled by a reused pid: same pid, another backend start, is a gone holder', async ({
    database: db,
  }) => {
    // Prepare: the lease names a backend whose pid now belongs to another (later) connection.
    const other = await liveBackend(db);
    try {
      const earlier = (
        await db.pool.query<{ t: string }>(`SELECT ($1::timestamptz - interval '1 second')::text AS t`, [
          other.backend.backendStart,
        ])
      ).rows[0]?.t as string;
      const runId = await openRun(db, 'pid-reused', {
        backend: { pid: other.backend.pid, backendStart: earlier },
      });

      // Act
      const released = await runCliInProcess(db, ['unlock', '--policy', 'pid-reused', '--json']);

      // Assess
      expect(released.code).toBe(0);
      expect(JSON.parse(released.stdout)).toMatchObject({
        outcome: 'released',
        runId,
        holderState: 'gone',
        forced: false,
        evidence: expect.stringContaining('belongs to a later backend'),
      });
      expect(await leaseOf(db, 'pid-reused')).toBeUndefined();
    } finally {
      await other.client.end();
    }
  });

  it('releases a live holder only with --force, and says so in the ledger', async ({ database: db }) => {
    // Prepare
    const live = await liveBackend(db);
    try {
      const runId = await openRun(db, 'forced', { backend: live.backend });

      // Act
      const forced = await runCliInProcess(db, [
        'unlock',
        '--policy',
        'forced',
        '--force',
        '--reason',
        'stuck on a hung NFS',
      ]);

      // Assess
      expect(forced.code).toBe(0);
      expect(forced.stdout).toContain('by force');
      expect((await runRecord(db.pool, runId))?.error_cause).toContain('unlock --force');
      expect(await releasesOf(db, 'forced')).toEqual([
        expect.objectContaining({ forced: true, evidence: expect.stringContaining('still connected') }),
      ]);
    } finally {
      await live.client.end();
    }
  });

  it('says plainly when there is nothing to unlock, and refuses a policy the ledger has never seen', async ({
    database: db,
  }) => {
    const none = await runCliInProcess(db, ['unlock', '--policy', 'local-killed']);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('holds no lease');

    const unknown = await runCliInProcess(db, ['unlock', '--policy', 'no-such-policy']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no policy "no-such-policy" in the ledger');

    const bad = await runCliInProcess(db, ['unlock', '--policy', 'x', '--reason', 'two\nlines']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--reason must be one line');
  });

  it.for<[string, string]>([
    ['a line separator', 'two\u2028lines'],
    ['a right-to-left override', 'ok \u202Edesrever'],
    ['a zero-width space', 'looks\u200Bfine'],
  ])(
    'refuses a --reason with %s: the ledger keeps only visible text',
    async ([, reason], { database: db }) => {
      // Act
      const bad = await runCliInProcess(db, ['unlock', '--policy', 'local-killed', '--reason', reason]);

      // Assess
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--reason must be one line of 1 to 500 printable characters');
    },
  );
});

describe('unlock on a ledger with a pending migration', () => {
  let stale: TestDatabase;
  const migrations = listMigrations();
  const last = migrations.at(-1)?.version as string;

  beforeAll(async () => {
    // A ledger migrated by an older pg-lifecycle: every migration but the newest.
    stale = await createTestDatabase('unlock-stale');
    const dir = mkdtempSync(join(tmpdir(), 'pgl-sql-'));
    for (const migration of migrations.slice(0, -1))
      writeFileSync(join(dir, `${migration.version}.sql`), migration.sql);
    try {
      await migrateLedger(stale, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  afterAll(async () => {
    await stale?.drop();
  });

  it('refuses and asks for `pg-lifecycle migrate`: an emergency command runs no DDL', async () => {
    // Act
    const refused = await runCliInProcess(stale, ['unlock', '--policy', 'any-policy']);

    // Assess
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`lacks migration ${last}: run \`pg-lifecycle migrate\` first`);
    const { rows } = await stale.pool.query<{ version: string }>(
      'SELECT version FROM lifecycle.schema_migrations WHERE version = $1',
      [last],
    );
    expect(rows).toEqual([]);
  });
});

describe('unlock of a run in Step Functions', () => {
  it('refuses while the execution runs and releases once it was aborted', async ({ database: db }) => {
    // Prepare
    const arn = `${MACHINE}:schedule-1`;
    const runId = await openRun(db, 'aws-aborted', { executionId: arn });

    // Act
    const running = await unlockWith(db, 'aws-aborted', (a) => execution(a, 'RUNNING'));

    // Assess
    expect(running.result).toMatchObject({ outcome: 'refused', holderState: 'alive' });
    expect(running.result.message).toContain(`${arn} is RUNNING`);
    expect(running.regions).toEqual(['eu-west-1']);
    expect(await leaseOf(db, 'aws-aborted')).toBe(runId);

    // Act
    const aborted = await unlockWith(db, 'aws-aborted', (a) => execution(a, 'ABORTED'));

    // Assess
    expect(aborted.result).toMatchObject({ outcome: 'released', holderState: 'gone', forced: false });
    expect(await leaseOf(db, 'aws-aborted')).toBeUndefined();
    expect(await runRecord(db.pool, runId)).toMatchObject({ status: 'failed', error_name: 'LeaseReleased' });
    expect((await releasesOf(db, 'aws-aborted'))[0]?.evidence).toContain('ABORTED');
  });

  it('follows ContinueAsNew: a succeeded execution whose continuation runs holds the lease', async ({
    database: db,
  }) => {
    // Prepare
    const first = `${MACHINE}:schedule-2`;
    const runId = await openRun(db, 'aws-continued', { executionId: first });
    const second = `${MACHINE}:${runId}-g2`;
    const third = `${MACHINE}:${runId}-g3`;

    // Act
    const continued = await unlockWith(db, 'aws-continued', (a) =>
      a === first ? execution(a, 'SUCCEEDED') : execution(a, 'RUNNING'),
    );

    // Assess
    expect(continued.result).toMatchObject({ outcome: 'refused', holderState: 'alive' });
    expect(continued.described).toEqual([first, second]);

    // Act: g2 succeeded too and did not continue (no g3): the run is gone.
    const ended = await unlockWith(db, 'aws-continued', (a) =>
      a === third ? { error: 'ExecutionDoesNotExist' } : execution(a, 'SUCCEEDED'),
    );

    // Assess
    expect(ended.described).toEqual([first, second, third]);
    expect(ended.result).toMatchObject({ outcome: 'released', holderState: 'gone' });
  });

  it('cannot prove an execution Step Functions does not know gone: refused, then forced', async ({
    database: db,
  }) => {
    const runId = await openRun(db, 'aws-unknown', { executionId: `${MACHINE}:elsewhere` });

    const refused = await unlockWith(db, 'aws-unknown', () => ({ error: 'ExecutionDoesNotExist' }));
    expect(refused.result).toMatchObject({ outcome: 'refused', holderState: 'unknown' });
    expect(refused.result.message).toContain('cannot prove that it is gone');

    const forced = await unlockWith(db, 'aws-unknown', () => ({ error: 'ExecutionDoesNotExist' }), {
      force: true,
      reason: 'execution was in the old account',
    });
    expect(forced.result).toMatchObject({ outcome: 'released', forced: true });
    expect((await runRecord(db.pool, runId))?.error_cause).toContain('OS user ops-alice');
  });

  it('fails without touching the lease when Step Functions cannot be asked', async ({ database: db }) => {
    const runId = await openRun(db, 'aws-denied', { executionId: `${MACHINE}:schedule-3` });

    await expect(
      unlockWith(db, 'aws-denied', () => ({ error: 'AccessDeniedException', message: 'not authorized' })),
    ).rejects.toThrow(HolderCheckError);

    expect(await leaseOf(db, 'aws-denied')).toBe(runId);
    expect((await runRecord(db.pool, runId))?.status).toBe('running');
  });
});
