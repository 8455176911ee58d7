/**
 * Replica lag from CloudWatch, for replicas pg_stat_replication cannot see (Aurora replicas share storage
 * and do not stream WAL; cross-region RDS replicas may sit behind another). The throttle compares the
 * largest of the replicas' latest one-minute maxima with its limit.
 */
import {
  GetMetricDataCommand,
  type GetMetricDataCommandOutput,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import type { CloudWatchLag } from '../../lib/contracts/config.ts';
import { mapServiceError } from '../commons/aws-service-errors.ts';
import { ReplicaLagUnavailableError } from '../core/errors.ts';

/** What the reader needs of a CloudWatchClient (tests hand in their own). */
export interface MetricDataClient {
  send(command: GetMetricDataCommand): Promise<GetMetricDataCommandOutput>;
}

/** RDS publishes these metrics every minute, sometimes a few minutes late: look back this far. */
export const LAG_LOOKBACK_MS = 5 * 60_000;

/**
 * The largest lag (seconds) over `source.dbInstanceIdentifiers`, each instance's latest datapoint within
 * LAG_LOOKBACK_MS. An instance without any datapoint fails with ReplicaLagUnavailableError (a wrong
 * identifier, a primary, or a replica that stopped reporting): the guard never guesses "no lag".
 */
export async function readCloudWatchReplicaLagSeconds(
  client: MetricDataClient,
  source: CloudWatchLag,
  now: Date,
): Promise<number> {
  const queries: MetricDataQuery[] = source.dbInstanceIdentifiers.map((id, i) => ({
    Id: `lag${i}`,
    MetricStat: {
      Metric: {
        Namespace: 'AWS/RDS',
        MetricName: source.metric,
        Dimensions: [{ Name: 'DBInstanceIdentifier', Value: id }],
      },
      Period: 60,
      Stat: 'Maximum',
    },
    ReturnData: true,
  }));
  const latest = new Map<string, number>();
  let nextToken: string | undefined;
  do {
    let output: GetMetricDataCommandOutput;
    try {
      output = await client.send(
        new GetMetricDataCommand({
          StartTime: new Date(now.getTime() - LAG_LOOKBACK_MS),
          EndTime: now,
          ScanBy: 'TimestampDescending',
          MetricDataQueries: queries,
          NextToken: nextToken,
        }),
      );
    } catch (error) {
      throw mapServiceError(error, `CloudWatch GetMetricData (${source.metric})`);
    }
    for (const result of output.MetricDataResults ?? []) {
      const value = result.Values?.[0];
      // Newest first: the first page that has a value for an id holds its latest one.
      if (result.Id && value !== undefined && !latest.has(result.Id)) latest.set(result.Id, value);
    }
    nextToken = output.NextToken;
  } while (nextToken);

  let lagSeconds = 0;
  source.dbInstanceIdentifiers.forEach((id, i) => {
    const value = latest.get(`lag${i}`);
    // A negative value (RDS reports -1 when replication is not running) is no reading of the lag either.
    if (value === undefined || value < 0) {
      throw new ReplicaLagUnavailableError(
        `no ${source.metric} reading for DB instance ${id} (${value === undefined ? 'no datapoint' : `value ${value}: replication not running`}) in the last ${LAG_LOOKBACK_MS / 60_000} minutes: ` +
          `check throttle.cloudWatch (${source.metric === 'ReplicaLag' ? 'RDS read replicas report ReplicaLag' : 'Aurora replicas report AuroraReplicaLag'}; list the replicas, not the primary)`,
      );
    }
    // AuroraReplicaLag is in milliseconds, ReplicaLag in seconds.
    lagSeconds = Math.max(lagSeconds, source.metric === 'AuroraReplicaLag' ? value / 1000 : value);
  });
  return lagSeconds;
}
