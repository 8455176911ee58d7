/**
 * A live run whose lease is taken from it, through the synthesized state machine against a real PostgreSQL
 * and S3: released by `unlock --force`, or taken over after it expired, it stops at its next ledger write
 * (LeaseLostError) and no row is lost or archived twice; the ledger keeps who took the lease and why.
 */
import { unlockCommand } from '../../bin/cli/unlock-command.ts';
import { resolveClientConfig, withClient } from '../../functions/commons/database.ts';
import { testConfig } from '../support/archive.ts';
import { expectArchiveGuarantees, runRecord, seedEvents } from '../support/archive-guarantees.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { beforeAll, it, YEAR_IN_CHUNKS_OF_100 } from '../support/event-archive.ts';
import { describe, expect, NOW } from '../support/fixture.ts';
import { liveBackend, openRun } from '../support/leases.ts';

beforeAll(async ({ database: db }) => {
  await migrateLedger(db);
});

/** `pg-lifecycle unlock` on a connection of its own; a local run's lease never needs Step Functions. */
async function unlock(
  db: TestDatabase,
  policy: string,
  options: { force: boolean; reason?: string; osUser: string },
) {
  return withClient(await resolveClientConfig({ DATABASE_URL: db.url }), (client) =>
    unlockCommand(client, {
      policy,
      force: options.force,
      reason: options.reason,
      osUser: options.osUser,
      sfnFor: () => {
        throw new Error('a local run needs no Step Functions');
      },
    }),
  );
}

describe('a live run whose lease is taken from it', () => {
  it('stops at its next ledger write, keeping every row exactly once', async ({
    database: db,
    runPolicy,
    events,
  }) => {
    // Prepare
    const { config, before, eligible, scope } = await events.prepare('fenced', YEAR_IN_CHUNKS_OF_100);
    const byBob = { reason: 'testing the fence', osUser: 'ops-bob' };
    let commits = 0;
    let refusedWhileAlive: string | undefined;

    // Act: after the second chunk commits, an operator releases the lease of the still-running run.
    const result = await runPolicy(config, 'fenced', {
      deps: {
        hooks: {
          afterCommit: async () => {
            if (++commits !== 2) return;
            refusedWhileAlive = (await unlock(db, 'fenced', { ...byBob, force: false })).outcome;
            await unlock(db, 'fenced', { ...byBob, force: true });
          },
        },
      },
    });

    // Assess
    expect(refusedWhileAlive).toBe('refused');
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('LeaseLostError');
    const run = await runRecord(db.pool, result.failure?.runId);
    // RecordFailure does not overwrite who released the lease.
    expect(run).toMatchObject({ status: 'failed', error_name: 'LeaseReleased', chunks: '2' });
    const state = await expectArchiveGuarantees(scope, before);
    // Exactly the two chunks committed before the release; the chunk after it rolled back.
    expect(state.archivedKeys).toHaveLength(Number(run?.rows));
    expect(state.objects.every((o) => o.run_id === result.failure?.runId)).toBe(true);

    // Act: the next run finishes the work.
    const next = await runPolicy(config, 'fenced');
    expect(next.status).toBe('succeeded');
    const final = await expectArchiveGuarantees(scope, before);
    expect(final.archivedKeys.sort()).toEqual([...eligible].sort());
  });

  it('an expired lease is taken over by the next run without unlock (its run marked LeaseExpired)', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: a run that stopped renewing (the holder connection is alive: only expiry counts here).
    await seedEvents(db.pool, 'expired', 200, NOW);
    const live = await liveBackend(db);
    try {
      const stale = await openRun(db, 'expired', { backend: live.backend });
      await db.pool.query(
        `UPDATE lifecycle.leases SET expires_at = clock_timestamp() - interval '1 second' WHERE policy = 'expired'`,
      );
      const config = testConfig([
        {
          name: 'expired',
          table: 'public.expired',
          action: 'archive',
          timeColumn: 'created_at',
          retention: 'P1Y',
        },
      ]);

      // Act
      const next = await runPolicy(config, 'expired');

      // Assess
      expect(next.status).toBe('succeeded');
      expect(await runRecord(db.pool, stale)).toMatchObject({ status: 'failed', error_name: 'LeaseExpired' });
    } finally {
      await live.client.end();
    }
  });

  it('keeps a live local run unlockable only by --force when the server ends its holder connection', async ({
    database: db,
    runPolicy,
    events,
  }) => {
    // Prepare: six chunks of 100.
    const { config, before, eligible, scope } = await events.prepare('reheld', YEAR_IN_CHUNKS_OF_100);
    const holderOf = async () =>
      (
        await db.pool.query<{ pid: number | null }>(
          `SELECT holder_pid AS pid FROM lifecycle.leases WHERE policy = 'reheld'`,
        )
      ).rows[0]?.pid ?? null;
    let commits = 0;
    let ended: number | null = null;
    let reheldBy: number | null = null;
    let outcome: string | undefined;

    // Act: after the second chunk, an idle-connection killer (or a failover) ends the holder connection.
    const result = await runPolicy(config, 'reheld', {
      deps: {
        hooks: {
          afterCommit: async () => {
            if (++commits !== 2) return;
            ended = await holderOf();
            await db.pool.query('SELECT pg_terminate_backend($1)', [ended]);
            // The runner records its new holder backend in the lease (the old pid is replaced, never cleared).
            // A timeout throws here and fails the run: see result.failure below.
            await expect.poll(holderOf, { timeout: 15_000 }).not.toBe(ended);
            reheldBy = await holderOf();
            outcome = (await unlock(db, 'reheld', { force: false, osUser: 'ops-carol' })).outcome;
          },
        },
      },
    });

    // Assess: a new holder backend was recorded, unlock refused, and the run went on to the end.
    expect(result.failure).toBeUndefined();
    expect(ended).not.toBeNull();
    expect(reheldBy).not.toBeNull();
    expect(reheldBy).not.toBe(ended);
    expect(outcome).toBe('refused');
    expect(result.status).toBe('succeeded');
    const state = await expectArchiveGuarantees(scope, before);
    expect(state.archivedKeys.length).toBe(eligible.length);
  });
});
