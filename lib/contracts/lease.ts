/**
 * The policy lease (`lifecycle.leases`): one run per policy. Its time to live is short and a live run keeps
 * renewing it (a heartbeat at the start of every step, before every chunk and partition unit, and at the end
 * of every Chunk step for the Pause that follows), so a killed run blocks its policy for minutes, not for a
 * fixed long TTL; `pg-lifecycle unlock` releases it at once when its holder is provably gone.
 *
 * The TTL only has to outlast the longest stretch in which a live run cannot renew:
 *
 *     a step that hangs until its Lambda timeout                  STEP_TIMEOUT_SECONDS       300 s
 *   + the longest Step Functions retry delay before its retry     MAX_RETRY_DELAY_SECONDS     60 s
 *   + the retried step's cold start, secret read and connect      STEP_STARTUP_SECONDS        60 s
 *     before its first heartbeat
 *   = LEASE_TTL_SECONDS                                                                     420 s (7 min)
 *
 * and the renewal at the end of a Chunk step adds the coming Pause (`waitSeconds`: pauseSeconds, a pacing rest
 * left to the Pause state, or the throttle's check interval) on top; a pacing rest inside a step is part of the
 * step's own time. ContinueAsNew fits too: StartExecution retries wait at most
 * 2 + 4 + 8 + 16 + 32 + 60 s, and the new execution's Start renews the lease.
 *
 * A run that stalls longer (several Lambda timeouts in a row) keeps its lease until another run claims the
 * expired lease; it then stops at its next ledger write (LeaseLostError). The TTL trades waiting time, never
 * safety: every chunk commits only while its run is still `running` in the ledger.
 *
 * test/cdk/lease-ttl.test.ts checks the synthesized Lambda timeouts and retry delays against these numbers.
 */

/** Lambda timeout of every step (LifecycleFunction's default); a step cannot run longer without renewing. */
export const STEP_TIMEOUT_SECONDS = 300;

/** The longest delay Step Functions waits before retrying a task (LAMBDA_RETRY's maxDelay). */
export const MAX_RETRY_DELAY_SECONDS = 60;

/** Cold start, Secrets Manager and a TLS connection before a step's first heartbeat. */
export const STEP_STARTUP_SECONDS = 60;

/** Time to live of a lease renewed by a live run. */
export const LEASE_TTL_SECONDS = STEP_TIMEOUT_SECONDS + MAX_RETRY_DELAY_SECONDS + STEP_STARTUP_SECONDS;

/** TTL of a renewal made just before the state machine waits `waitSeconds` (0 for any other renewal). */
export function leaseTtlSeconds(waitSeconds = 0): number {
  return LEASE_TTL_SECONDS + Math.max(0, waitSeconds);
}
