/**
 * A run's VACUUM or ANALYZE gives way to lock waiters, as autovacuum does. Both hold a SHARE UPDATE EXCLUSIVE
 * lock on the table for as long as they run (much longer when paced); a manual one never lets go, so a
 * migration's ALTER TABLE queues behind it and every query on the table queues behind the ALTER. Autovacuum
 * is cancelled when someone waits for its lock; here a second connection looks for sessions waiting on the
 * statement's backend (holding the lock, or queued ahead of them) and cancels the statement when it sees one.
 */
import type { Queryable } from './transactions.ts';

/** How often the watcher looks: a waiter waits at most about this long, plus the cancel's own latency. */
export const YIELD_POLL_MS = 100;

/** The session given way to (never its statement: it may hold row values). */
export interface YieldedTo {
  readonly pid: number;
  /** The lock mode it waited for, e.g. AccessExclusiveLock. */
  readonly mode: string;
  /** How long it had waited when the statement was cancelled, ms. */
  readonly waitedMs: number;
}

export interface Watcher extends Queryable {
  end(): Promise<void>;
}

export type YieldingResult<T> = { readonly value: T } | { readonly yielded: YieldedTo };

/**
 * Runs `work` (one statement on `db`) while a watcher connection polls for waiters. A cancelled statement
 * fails with 57014 like a statement timeout: the result tells them apart by whether the watcher cancelled it.
 * Any other outcome of `work` (value or error) is passed through.
 */
export async function yieldingToLockWaiters<T>(
  db: Queryable,
  openWatcher: () => Promise<Watcher>,
  work: () => Promise<T>,
  pollMs = YIELD_POLL_MS,
): Promise<YieldingResult<T>> {
  const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const pid = rows[0]?.pid;
  if (pid === undefined) throw new Error('pg_backend_pid() returned no row');
  const watcher = await openWatcher();
  let running = true;
  let yielded: YieldedTo | undefined;
  const watch = (async () => {
    while (running) {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      if (!running) return;
      const waiting = await watcher.query<{ pid: number; mode: string; waited_ms: number }>(
        `SELECT l.pid, l.mode,
                coalesce(extract(epoch FROM clock_timestamp() - l.waitstart) * 1000, 0)::float8 AS waited_ms
           FROM pg_locks l
          WHERE NOT l.granted AND $1::int = ANY (pg_blocking_pids(l.pid))
          ORDER BY l.waitstart NULLS LAST
          LIMIT 1`,
        [pid],
      );
      const waiter = waiting.rows[0];
      // The statement may have ended while we looked: an idle backend ignores a cancel, a later one would not.
      if (waiter === undefined || !running) continue;
      yielded = { pid: waiter.pid, mode: waiter.mode, waitedMs: Math.round(waiter.waited_ms) };
      await watcher.query('SELECT pg_cancel_backend($1::int)', [pid]);
      return;
    }
  })();
  try {
    const value = await work();
    return { value };
  } catch (error) {
    if (yielded !== undefined && (error as { code?: string }).code === '57014') return { yielded };
    throw error;
  } finally {
    running = false;
    // Waited for before anything else runs on `db`, so a cancel can only reach the statement it was meant for.
    await watch.catch(() => undefined);
    await watcher.end().catch(() => undefined);
  }
}

/** What a ledger or log says about a statement that gave way. */
export function describeYield(statement: string, to: YieldedTo): string {
  return (
    `${statement} gave way to a session waiting for ${to.mode} on the table (pid ${to.pid}, waited ` +
    `${to.waitedMs} ms), as autovacuum does; the next run or autovacuum does the rest`
  );
}
