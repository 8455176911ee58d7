import type { GetMetricDataCommand, GetMetricDataCommandOutput } from '@aws-sdk/client-cloudwatch';
import { describe, expect, it } from 'vitest';
import {
  LAG_LOOKBACK_MS,
  type MetricDataClient,
  readCloudWatchReplicaLagSeconds,
} from '../../functions/adapters/cloudwatch-replica-lag.ts';
import { CloudWatchLagSchema, LifecycleConfigSchema, resolveChunking } from '../../lib/contracts/config.ts';

const NOW = new Date('2026-11-23T12:00:00.000Z');

/** A CloudWatch stand-in (the service cannot run here): answers from `pages`, records each request. */
function fakeCloudWatch(pages: Array<Partial<GetMetricDataCommandOutput> | Error>) {
  const requests: GetMetricDataCommand['input'][] = [];
  const client: MetricDataClient = {
    send: async (command) => {
      requests.push(command.input);
      const page = pages.shift();
      if (page instanceof Error) throw page;
      return { $metadata: {}, ...page } as GetMetricDataCommandOutput;
    },
  };
  return { client, requests };
}

describe('replica lag from CloudWatch', () => {
  it('asks for each replica’s one-minute maximum of the last five minutes and returns the largest latest value', async () => {
    const { client, requests } = fakeCloudWatch([
      {
        MetricDataResults: [
          { Id: 'lag0', Values: [3, 50] },
          { Id: 'lag1', Values: [12.5, 1] },
        ],
      },
    ]);
    const source = CloudWatchLagSchema.parse({
      dbInstanceIdentifiers: ['orders-replica-1', 'orders-replica-2'],
    });

    const lag = await readCloudWatchReplicaLagSeconds(client, source, NOW);

    // The latest (first, newest-first) values are 3 and 12.5: the older 50 does not count.
    expect(lag).toBe(12.5);
    expect(requests).toHaveLength(1);
    const request = requests[0];
    expect(request?.StartTime).toEqual(new Date(NOW.getTime() - LAG_LOOKBACK_MS));
    expect(request?.EndTime).toEqual(NOW);
    expect(request?.ScanBy).toBe('TimestampDescending');
    expect(request?.MetricDataQueries?.map((q) => q.MetricStat)).toEqual([
      {
        Metric: {
          Namespace: 'AWS/RDS',
          MetricName: 'ReplicaLag',
          Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'orders-replica-1' }],
        },
        Period: 60,
        Stat: 'Maximum',
      },
      {
        Metric: {
          Namespace: 'AWS/RDS',
          MetricName: 'ReplicaLag',
          Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'orders-replica-2' }],
        },
        Period: 60,
        Stat: 'Maximum',
      },
    ]);
  });

  it('reads AuroraReplicaLag in milliseconds and follows NextToken pages', async () => {
    const { client, requests } = fakeCloudWatch([
      { MetricDataResults: [{ Id: 'lag0', Values: [] }], NextToken: 'page-2' },
      { MetricDataResults: [{ Id: 'lag0', Values: [2500] }] },
    ]);
    const source = CloudWatchLagSchema.parse({
      metric: 'AuroraReplicaLag',
      dbInstanceIdentifiers: ['aurora-reader'],
    });

    expect(await readCloudWatchReplicaLagSeconds(client, source, NOW)).toBe(2.5);
    expect(requests.map((r) => r.NextToken)).toEqual([undefined, 'page-2']);
  });

  it('fails with ReplicaLagUnavailableError, naming the instance, when a replica has no datapoint', async () => {
    const { client } = fakeCloudWatch([
      {
        MetricDataResults: [
          { Id: 'lag0', Values: [1] },
          { Id: 'lag1', Values: [] },
        ],
      },
    ]);
    const source = CloudWatchLagSchema.parse({ dbInstanceIdentifiers: ['replica-a', 'orders-primary'] });

    await expect(readCloudWatchReplicaLagSeconds(client, source, NOW)).rejects.toMatchObject({
      name: 'ReplicaLagUnavailableError',
      message: expect.stringContaining('DB instance orders-primary'),
    });
  });

  it('reads -1 (replication not running) as no reading, not as no lag', async () => {
    const { client } = fakeCloudWatch([{ MetricDataResults: [{ Id: 'lag0', Values: [-1] }] }]);
    const source = CloudWatchLagSchema.parse({ dbInstanceIdentifiers: ['replica-a'] });

    await expect(readCloudWatchReplicaLagSeconds(client, source, NOW)).rejects.toMatchObject({
      name: 'ReplicaLagUnavailableError',
      message: expect.stringContaining('value -1: replication not running'),
    });
  });

  it('retries throttling (TransientServiceError) but not access denied', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), {
      name: 'Throttling',
      $metadata: { httpStatusCode: 400 },
      $retryable: { throttling: true },
    });
    const denied = Object.assign(new Error('not authorized to perform: cloudwatch:GetMetricData'), {
      name: 'AccessDenied',
      $metadata: { httpStatusCode: 403 },
    });
    const source = CloudWatchLagSchema.parse({ dbInstanceIdentifiers: ['replica-a'] });

    await expect(
      readCloudWatchReplicaLagSeconds(fakeCloudWatch([throttled]).client, source, NOW),
    ).rejects.toMatchObject({ name: 'TransientServiceError' });
    await expect(
      readCloudWatchReplicaLagSeconds(fakeCloudWatch([denied]).client, source, NOW),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('validates the config: RDS identifiers only, at least one, and carries the source into the run', () => {
    const policy = (throttle: unknown) => ({
      sandbox: true,
      policies: [
        {
          name: 'sessions-purge',
          action: 'purge',
          table: 'public.sessions',
          timeColumn: 'last_seen',
          retention: 'P30D',
          throttle,
        },
      ],
    });
    for (const ids of [[], ['orders_replica'], ['1replica'], ['replica-'], ['a--b'], ['x'.repeat(64)]]) {
      const parsed = LifecycleConfigSchema.safeParse(
        policy({ maxReplicaLagSeconds: 30, cloudWatch: { dbInstanceIdentifiers: ids } }),
      );
      expect(parsed.success, JSON.stringify(ids)).toBe(false);
    }
    expect(
      LifecycleConfigSchema.safeParse(
        policy({
          maxReplicaLagSeconds: 30,
          cloudWatch: { metric: 'ReplicationLag', dbInstanceIdentifiers: ['a'] },
        }),
      ).success,
    ).toBe(false);
    const config = LifecycleConfigSchema.parse(
      policy({ maxReplicaLagSeconds: 30, cloudWatch: { dbInstanceIdentifiers: ['orders-replica-1'] } }),
    );
    expect(resolveChunking(config, config.policies[0] as never).throttle).toEqual({
      maxReplicaLagSeconds: 30,
      checkEverySeconds: 30,
      cloudWatch: { metric: 'ReplicaLag', dbInstanceIdentifiers: ['orders-replica-1'] },
    });
  });
});
