/** Replica lag, for the chunk loop's throttle. */
import type { Queryable } from './transactions.ts';

/**
 * The largest replay lag (seconds) over the standbys connected to this server; 0 without standbys or when
 * every standby has caught up (replay_lag is NULL then). Other sessions' lag needs pg_monitor or
 * pg_read_all_stats: without it the columns read NULL, i.e. 0.
 */
export async function readReplicaLagSeconds(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ lag: string }>(
    `SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::float8::text AS lag FROM pg_stat_replication`,
  );
  return Number(rows[0]?.lag ?? 0);
}
