/**
 * The policy lease (`lifecycle.leases`, sql/001 and sql/007): one run per policy at a time. A run takes it
 * at Start and renews it while alive (TTL arithmetic in lib/contracts/lease.ts); Finish and RecordFailure
 * release it; an expired lease is taken over by the next run; `pg-lifecycle unlock` releases one whose
 * holder is gone. Whoever loses the lease stops at its next ledger write: chunks and partition units commit
 * only while their run is `running`, and taking over or releasing a lease marks its run failed.
 */
import { LeaseHeldError, LeaseLostError } from '../../core/errors.ts';
import type { Queryable } from '../transactions.ts';

/**
 * The backend of the connection a local run keeps open for its whole life. pid alone could be reused by a
 * later backend; pid and backend_start together name one backend only.
 */
export interface LeaseHolderBackend {
  readonly pid: number;
  /** pg_stat_activity.backend_start as the server's text (microseconds kept). */
  readonly backendStart: string;
}

/**
 * The holder backend as pg_stat_activity shows it now: `alive` (same pid, same start), `gone` (no such pid),
 * `pid-reused` (the pid belongs to a later backend), `unreadable` (the pid exists but this role may not see
 * its start time: it needs pg_read_all_stats or the holder's role).
 */
export type HolderBackendState = 'alive' | 'gone' | 'pid-reused' | 'unreadable';

export interface LeaseState {
  readonly policy: string;
  readonly runId: string;
  readonly acquiredAt: string;
  readonly expiresAt: string;
  readonly expired: boolean;
  readonly holder: LeaseHolderBackend | undefined;
  /** Set when the lease records a holder backend. */
  readonly backend:
    | {
        readonly state: HolderBackendState;
        readonly applicationName: string | undefined;
        readonly clientAddr: string | undefined;
        readonly user: string | undefined;
      }
    | undefined;
  readonly runStatus: string | undefined;
  readonly executionId: string | undefined;
}

/** What an operator's release records (lifecycle.lease_releases) and writes into the released run. */
export interface OperatorRelease {
  readonly policy: string;
  readonly runId: string;
  readonly forced: boolean;
  readonly reason: string | undefined;
  readonly osUser: string;
  /** The holder as described to the operator. */
  readonly holder: string;
  /** Why it was judged gone, or why it looked alive (forced). */
  readonly evidence: string;
}

export async function acquireLease(
  db: Queryable,
  lease: { policy: string; runId: string; ttlSeconds: number; holder?: LeaseHolderBackend | undefined },
): Promise<void> {
  const { rows } = await db.query<{ run_id: string; previous: string | null }>(
    `WITH previous AS (SELECT run_id FROM lifecycle.leases WHERE policy = $1 AND expires_at < clock_timestamp())
     INSERT INTO lifecycle.leases (policy, run_id, expires_at, holder_pid, holder_backend_start)
     VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3), $4, $5::timestamptz)
     ON CONFLICT (policy) DO UPDATE
       SET run_id = EXCLUDED.run_id, acquired_at = clock_timestamp(), expires_at = EXCLUDED.expires_at,
           holder_pid = EXCLUDED.holder_pid, holder_backend_start = EXCLUDED.holder_backend_start
       WHERE lifecycle.leases.expires_at < clock_timestamp()
     RETURNING run_id, (SELECT run_id::text FROM previous) AS previous`,
    [
      lease.policy,
      lease.runId,
      lease.ttlSeconds,
      lease.holder?.pid ?? null,
      lease.holder?.backendStart ?? null,
    ],
  );
  const row = rows[0];
  if (!row) {
    const held = await db.query<{ run_id: string; expires_at: string; status: string | null }>(
      `SELECT l.run_id, l.expires_at::text, r.status
         FROM lifecycle.leases l LEFT JOIN lifecycle.runs r USING (run_id) WHERE l.policy = $1`,
      [lease.policy],
    );
    const holder = held.rows[0];
    // A failed parallel run keeps its lease while its other workers may still be stopping (record-failure.ts).
    const what =
      holder?.status === 'failed'
        ? `is held by failed run ${holder.run_id} until ${holder.expires_at} (its workers may still be stopping)`
        : `is already running (run ${holder?.run_id ?? '?'}, lease until ${holder?.expires_at ?? '?'})`;
    throw new LeaseHeldError(
      `policy ${lease.policy} ${what}; one run per policy at a time. If that run is gone: ` +
        `pg-lifecycle unlock --policy ${lease.policy}`,
      { policy: lease.policy },
    );
  }
  if (row.previous) {
    await db.query(
      `UPDATE lifecycle.runs SET status = 'failed', finished_at = clock_timestamp(),
              error_name = 'LeaseExpired', error_cause = 'lease expired; taken over by run ' || $2
        WHERE run_id = $1 AND status = 'running'`,
      [row.previous, lease.runId],
    );
  }
}

/**
 * The heartbeat. Extends the lease while this run still holds it (also an expired one nobody took over);
 * throws LeaseLostError once another run took it over or an operator released it.
 */
export async function renewLease(
  db: Queryable,
  policy: string,
  runId: string,
  ttlSeconds: number,
): Promise<void> {
  const { rowCount } = await db.query(
    // Never shortened: the workers of a parallel run renew it each for its own coming pause.
    `UPDATE lifecycle.leases SET expires_at = greatest(expires_at, clock_timestamp() + make_interval(secs => $3))
      WHERE policy = $1 AND run_id = $2`,
    [policy, runId, ttlSeconds],
  );
  if (rowCount !== 1)
    throw new LeaseLostError(`run ${runId} no longer holds the lease of policy ${policy}`, { policy });
}

/**
 * Records a new holder backend for a run that still holds its lease (its holder connection was ended by
 * the server, a proxy or a failover, and reopened). Returns false when the run no longer holds the lease.
 */
export async function recordLeaseHolder(
  db: Queryable,
  policy: string,
  runId: string,
  holder: LeaseHolderBackend,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE lifecycle.leases SET holder_pid = $3, holder_backend_start = $4::timestamptz
      WHERE policy = $1 AND run_id = $2`,
    [policy, runId, holder.pid, holder.backendStart],
  );
  return rowCount === 1;
}

export async function releaseLease(db: Queryable, policy: string, runId: string): Promise<void> {
  await db.query('DELETE FROM lifecycle.leases WHERE policy = $1 AND run_id = $2', [policy, runId]);
}

/** The policy's lease with its run and holder backend; `forUpdate` locks it (inside a transaction). */
export async function readLease(
  db: Queryable,
  policy: string,
  options: { forUpdate?: boolean } = {},
): Promise<LeaseState | undefined> {
  const { rows } = await db.query<Record<string, string | null>>(
    `SELECT l.run_id::text, l.acquired_at::text, l.expires_at::text,
            (l.expires_at < clock_timestamp())::text AS expired,
            l.holder_pid::text, l.holder_backend_start::text, r.status AS run_status, r.execution_id,
            CASE WHEN l.holder_pid IS NULL THEN NULL
                 WHEN a.pid IS NULL THEN 'gone'
                 WHEN a.backend_start IS NULL THEN 'unreadable'
                 WHEN a.backend_start = l.holder_backend_start THEN 'alive'
                 ELSE 'pid-reused' END AS backend,
            a.application_name, host(a.client_addr) AS client_addr, a.usename
       FROM lifecycle.leases l
       LEFT JOIN lifecycle.runs r ON r.run_id = l.run_id
       LEFT JOIN pg_stat_activity a ON a.pid = l.holder_pid
      WHERE l.policy = $1${options.forUpdate ? ' FOR UPDATE OF l' : ''}`,
    [policy],
  );
  const row = rows[0];
  if (!row) return undefined;
  const holderPid = row.holder_pid;
  const holderStart = row.holder_backend_start;
  const holder = holderPid && holderStart ? { pid: Number(holderPid), backendStart: holderStart } : undefined;
  return {
    policy,
    runId: row.run_id as string,
    acquiredAt: row.acquired_at as string,
    expiresAt: row.expires_at as string,
    expired: row.expired === 'true',
    holder,
    backend: row.backend
      ? {
          state: row.backend as HolderBackendState,
          applicationName: row.application_name ?? undefined,
          clientAddr: row.client_addr ?? undefined,
          user: row.usename ?? undefined,
        }
      : undefined,
    runStatus: row.run_status ?? undefined,
    executionId: row.execution_id ?? undefined,
  };
}

/**
 * Inside the caller's transaction, with the lease locked (readLease forUpdate): deletes the lease, marks its
 * run failed (LeaseReleased, naming the operator and the reason) and records the release. Returns the
 * database role recorded as the releaser.
 */
export async function releaseByOperator(db: Queryable, release: OperatorRelease): Promise<{ role: string }> {
  const { rows } = await db.query<{ role: string }>(
    `WITH released AS (
       DELETE FROM lifecycle.leases WHERE policy = $1 AND run_id = $2 RETURNING acquired_at, expires_at),
     failed AS (
       UPDATE lifecycle.runs
          SET status = 'failed', finished_at = clock_timestamp(), error_name = 'LeaseReleased',
              error_cause = left(format('lease released by pg-lifecycle unlock%s (database role %s, OS user %s): %s; %s',
                                        CASE WHEN $3 THEN ' --force' ELSE '' END, current_user, $4::text,
                                        coalesce($5, 'no reason given'), $7::text), 4000)
        WHERE run_id = $2 AND status = 'running' AND EXISTS (SELECT 1 FROM released)
        RETURNING run_id)
     INSERT INTO lifecycle.lease_releases
       (policy, run_id, released_by_os_user, forced, reason, holder, evidence, lease_acquired_at, lease_expires_at)
     SELECT $1, $2, $4, $3, $5, $6, $7, acquired_at, expires_at FROM released
     RETURNING released_by_role AS role, (SELECT count(*) FROM failed) AS failed`,
    [
      release.policy,
      release.runId,
      release.forced,
      release.osUser,
      release.reason ?? null,
      release.holder,
      release.evidence,
    ],
  );
  const row = rows[0];
  if (!row)
    throw new LeaseLostError(
      `the lease of policy ${release.policy} is no longer held by run ${release.runId}`,
      { policy: release.policy },
    );
  return { role: row.role };
}
