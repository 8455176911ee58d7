/**
 * The replica-lag guard through the synthesized state machine with the real handlers: while the (injected)
 * lag is above the limit no chunk runs and the Pause state waits the check interval; then the run goes on
 * and completes.
 */
import type { GetMetricDataCommand, GetMetricDataCommandOutput } from '@aws-sdk/client-cloudwatch';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { beforeAll, describe, expect, it, NOW } from '../support/fixture.ts';

beforeAll(async ({ database: db }) => {
  await db.pool.query(`
    CREATE TABLE public.samples (id bigint PRIMARY KEY, created_at timestamptz NOT NULL);
    CREATE INDEX ON public.samples (created_at);`);
  await db.pool.query(
    `INSERT INTO public.samples SELECT g, $1::timestamptz - g * interval '1 day' FROM generate_series(1, 1000) g`,
    [NOW.toISOString()],
  );
});

describe('replica-lag throttle', () => {
  it('runs no chunk while a replica lags, waits the check interval, then continues and completes', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: lag above the limit on the 1st, 2nd and 6th reading; every chunk commit is logged in between.
    const lagScript = [40, 40, 0, 0, 0, 40];
    const events: string[] = [];
    const openTransactions: number[] = [];
    let reads = 0;
    const readAt: Array<{ lagging: boolean; at: number }> = [];
    const replicaLagSeconds = async () => {
      const lag = lagScript[reads++] ?? 0;
      events.push(lag > 10 ? 'lagging' : 'ok');
      readAt.push({ lagging: lag > 10, at: performance.now() });
      if (reads === 1) {
        // At the first check of a step no chunk transaction is open.
        const { rows } = await db.pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
        );
        openTransactions.push(rows[0].n);
      }
      return lag;
    };
    const config = testConfig([
      {
        name: 'samples-purge',
        action: 'purge',
        table: 'public.samples',
        timeColumn: 'created_at',
        retention: 'P100D',
        chunking: { initialRows: 100, minRows: 100, maxRows: 100, pauseSeconds: 0 },
        throttle: { maxReplicaLagSeconds: 10, checkEverySeconds: 1 },
        vacuum: { enabled: false },
      },
    ]);
    const started = performance.now();

    // Act: the Pause state's own wait (no pauseMs override), so lagging checks really wait.
    const result = await runPolicy(config, 'samples-purge', {
      pauseMs: undefined,
      deps: { replicaLagSeconds, hooks: { afterCommit: () => void events.push('commit') } },
    });

    // Assess
    const elapsedMs = performance.now() - started;
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.summary?.rows).toBe(900);
    expect(await db.pool.query(`SELECT count(*)::int AS n FROM public.samples`)).toMatchObject({
      rows: [{ n: 100 }],
    });
    // Two lagging checks before the first chunk: nothing committed until the lag cleared.
    expect(events.slice(0, 3)).toEqual(['lagging', 'lagging', 'ok']);
    expect(openTransactions).toEqual([0]);
    // The mid-run lagging check: only the chunk already in flight commits before the next check.
    const sixth = events.indexOf('lagging', 2);
    expect(sixth).toBeGreaterThan(2);
    const afterSixth = events.slice(sixth + 1);
    const nextCheck = afterSixth.findIndex((e) => e !== 'commit');
    expect(afterSixth.slice(0, nextCheck).length).toBeLessThanOrEqual(1);
    // Three lagging checks, each followed by the 1 s wait before the next check (a run that ignored the
    // lag would check again at once).
    expect(readAt.filter((r) => r.lagging)).toHaveLength(3);
    readAt.forEach((read, i) => {
      const next = readAt[i + 1];
      if (read.lagging && next) expect(next.at - read.at).toBeGreaterThanOrEqual(1000);
    });
    expect(readAt[readAt.length - 1]?.lagging).toBe(false);
    expect(elapsedMs).toBeGreaterThanOrEqual(3000);
    // One step per lagging check, besides those that ran chunks.
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(4);
  });

  it('reads the lag from CloudWatch when configured: waits while an Aurora replica lags, fails clearly without data', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: a CloudWatch stand-in (the service cannot run here) answering AuroraReplicaLag in ms.
    await db.pool.query(`DELETE FROM public.samples`);
    await db.pool.query(
      `INSERT INTO public.samples SELECT g, $1::timestamptz - g * interval '1 day' FROM generate_series(1, 1000) g`,
      [NOW.toISOString()],
    );
    const answers: Array<number | undefined> = [45_000, 2_000];
    const asked: string[][] = [];
    const cloudWatch = {
      send: async (command: GetMetricDataCommand) => {
        asked.push(
          (command.input.MetricDataQueries ?? []).map(
            (q) => `${q.MetricStat?.Metric?.MetricName}:${q.MetricStat?.Metric?.Dimensions?.[0]?.Value}`,
          ),
        );
        const value = answers.length > 0 ? answers.shift() : 0;
        return {
          $metadata: {},
          MetricDataResults: [{ Id: 'lag0', Values: value === undefined ? [] : [value] }],
        } as GetMetricDataCommandOutput;
      },
    };
    const policy: LifecycleConfigInput['policies'][number] = {
      name: 'samples-purge',
      action: 'purge',
      table: 'public.samples',
      timeColumn: 'created_at',
      retention: 'P100D',
      chunking: { initialRows: 300, minRows: 100, maxRows: 300 },
      throttle: {
        maxReplicaLagSeconds: 10,
        checkEverySeconds: 1,
        cloudWatch: { metric: 'AuroraReplicaLag', dbInstanceIdentifiers: ['orders-reader-1'] },
      },
      vacuum: { enabled: false },
    };
    const config = testConfig([policy]);

    // Act 1: 45 s behind, then 2 s: one wait, then the run completes.
    const result = await runPolicy(config, 'samples-purge', { deps: { cloudWatch } });

    // Assess 1
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(900);
    expect(asked[0]).toEqual(['AuroraReplicaLag:orders-reader-1']);
    expect(asked.length).toBeGreaterThanOrEqual(3);
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(2);

    // Act 2: the replica reports nothing (a wrong identifier): the run fails before deleting anything.
    await db.pool.query(
      `INSERT INTO public.samples SELECT g, $1::timestamptz - g * interval '1 day' FROM generate_series(101, 1000) g`,
      [NOW.toISOString()],
    );
    answers.push(undefined);
    const failed = await runPolicy(config, 'samples-purge', { deps: { cloudWatch } });

    // Assess 2
    expect(failed.status).toBe('failed');
    expect(failed.failure?.error).toBe('ReplicaLagUnavailableError');
    expect(failed.failure?.cause).toContain('orders-reader-1');
    expect(await db.pool.query(`SELECT count(*)::int AS n FROM public.samples`)).toMatchObject({
      rows: [{ n: 1000 }],
    });
  });
});
