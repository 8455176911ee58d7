/**
 * The connection that stands for a local run in its lease. It stays open, idle, for the whole run (every
 * execution and continuation), so its backend lives exactly as long as the runner's process: when the
 * process dies (SIGKILL, a crash, a closed laptop), PostgreSQL ends the backend as soon as the socket closes.
 * The lease records the backend's pid and backend_start; `pg-lifecycle unlock` releases the lease once no
 * backend has both (see functions/adapters/ledger/leases.ts).
 */
import type pg from 'pg';
import type { LeaseHolderBackend } from '../adapters/ledger/leases.ts';

export interface LeaseHolderConnection {
  readonly holder: LeaseHolderBackend;
  /** The open connection (the runner also reads a failed run's totals on it). */
  readonly client: pg.Client;
  close(): Promise<void>;
}

/** Opens the holder connection; its application_name tells an operator in pg_stat_activity what it is. */
export async function openLeaseHolder(
  connect: () => Promise<pg.Client>,
  policy: string,
): Promise<LeaseHolderConnection> {
  const client = await connect();
  try {
    // At most 63 bytes survive (NAMEDATALEN); the policy name is [a-z0-9-], so this is plain ASCII.
    await client.query(`SELECT set_config('application_name', $1, false)`, [
      `pg-lifecycle run ${policy}`.slice(0, 63),
    ]);
    // The backend must end when the runner does, and only then: no idle timeout may end it early (the run
    // would look gone while alive), and TCP keepalives end it within ~2 minutes of a runner host that vanished
    // without closing its socket (power loss, network cut) instead of the kernel's 2 hours.
    await client.query(
      `SELECT set_config('tcp_keepalives_idle', '60', false), set_config('tcp_keepalives_interval', '10', false),
              set_config('tcp_keepalives_count', '6', false)`,
    );
    await client.query(
      `SELECT set_config('idle_session_timeout', '0', false) WHERE current_setting('server_version_num')::int >= 140000`,
    );
    const { rows } = await client.query<{ pid: string; backend_start: string }>(
      'SELECT pid::text, backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()',
    );
    const row = rows[0];
    if (!row) throw new Error('pg_stat_activity does not list this connection');
    return {
      holder: { pid: Number(row.pid), backendStart: row.backend_start },
      client,
      close: () => client.end().catch(() => undefined),
    };
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}
