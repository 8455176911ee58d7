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

export type YieldingResult<T> =
  | {
      readonly value: T;
      /** The watcher could not be opened or failed: the statement ran (or went on) unwatched. */
      readonly unwatched?: string;
    }
  | { readonly yielded: YieldedTo };

/**
 * Lock modes whose waiters a VACUUM or ANALYZE gives way to: those that conflict with the SHARE UPDATE
 * EXCLUSIVE lock it holds for its whole run (DDL, CREATE INDEX, another VACUUM). Not the short ACCESS EXCLUSIVE
 * of VACUUM's truncation, which lets go by itself as soon as anyone (a plain SELECT) queues for it.
 */
const YIELD_TO_MODES = [
  'ShareUpdateExclusiveLock',
  'ShareLock',
  'ShareRowExclusiveLock',
  'ExclusiveLock',
  'AccessExclusiveLock',
];

/**
 * Runs `work` (one statement on `db`) while a watcher connection polls for waiters. A cancelled statement
 * fails with 57014 like a statement timeout: the result tells them apart by whether the watcher cancelled it.
 * Any other outcome of `work` (value or error) is passed through. A watcher that cannot be opened or fails
 * never costs the statement: it runs on unwatched.
 */
export async function yieldingToLockWaiters<T>(
  db: Queryable,
  openWatcher: () => Promise<Watcher>,
  work: () => Promise<T>,
  pollMs = YIELD_POLL_MS,
): Promise<YieldingResult<T>> {
  const { rows } = await db.query<{ pid: number | string }>('SELECT pg_backend_pid() AS pid');
  const pid = Number(rows[0]?.pid);
  if (!Number.isInteger(pid)) throw new Error('pg_backend_pid() returned no pid');
  let watcher: Watcher | undefined;
  let unwatched: string | undefined;
  try {
    watcher = await openWatcher();
  } catch (error) {
    unwatched = `lock waiters not watched: ${error instanceof Error ? error.message : String(error)}`;
  }
  let running = true;
  let yielded: YieldedTo | undefined;
  const watch = watcher
    ? watchWaiters(
        watcher,
        pid,
        pollMs,
        () => running,
        (to) => {
          yielded = to;
        },
      ).catch((error: unknown) => {
        unwatched = `lock waiters no longer watched: ${error instanceof Error ? error.message : String(error)}`;
      })
    : Promise.resolve();
  try {
    const value = await work();
    return unwatched === undefined ? { value } : { value, unwatched };
  } catch (error) {
    running = false;
    // A cancel's 57014 can arrive before the watcher has the answer to its pg_cancel_backend: wait for it.
    await watch;
    if (yielded !== undefined && (error as { code?: string }).code === '57014') return { yielded };
    throw error;
  } finally {
    running = false;
    // Waited for before anything else runs on `db`, so a cancel can only reach the statement it was meant for.
    await watch;
    await watcher?.end().catch(() => undefined);
  }
}

/**
 * Polls until `running()` turns false or it has cancelled the statement. A waiter counts when it waits in a
 * mode of YIELD_TO_MODES for a relation the statement's backend holds a granted lock on, and that backend
 * blocks it: a VACUUM still queued for its own lock is not cancelled for those queued behind it (they would
 * wait on anyway). The cancel goes only to a backend still running a VACUUM or ANALYZE: behind a pooler the
 * pid may have moved on to another session's statement.
 */
async function watchWaiters(
  watcher: Watcher,
  pid: number,
  pollMs: number,
  running: () => boolean,
  onYield: (to: YieldedTo) => void,
): Promise<void> {
  while (running()) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    if (!running()) return;
    const waiting = await watcher.query<{ pid: number | string; mode: string; waited_ms: number | string }>(
      `SELECT w.pid, w.mode,
              coalesce(extract(epoch FROM clock_timestamp() - w.waitstart) * 1000, 0)::float8 AS waited_ms
         FROM pg_locks w
        WHERE NOT w.granted AND w.locktype = 'relation' AND w.mode = ANY ($2::text[])
          AND EXISTS (SELECT 1 FROM pg_locks h
                       WHERE h.pid = $1::int AND h.granted AND h.locktype = 'relation'
                         AND h.database IS NOT DISTINCT FROM w.database AND h.relation = w.relation)
          AND $1::int = ANY (pg_blocking_pids(w.pid))
        ORDER BY w.waitstart NULLS LAST
        LIMIT 1`,
      [pid, YIELD_TO_MODES],
    );
    const waiter = waiting.rows[0];
    // The statement may have ended while we looked: an idle backend ignores a cancel, a later one would not.
    if (waiter === undefined || !running()) continue;
    // Text, not booleans or numbers: the product's connections hand every value back unparsed.
    const cancelled = await watcher.query<{ cancelled: string }>(
      `SELECT pg_cancel_backend(pid)::text AS cancelled FROM pg_stat_activity
        WHERE pid = $1::int AND state = 'active' AND query ~* '^\\s*(VACUUM|ANALYZE)\\M'`,
      [pid],
    );
    if (cancelled.rows[0]?.cancelled !== 'true') continue;
    onYield({ pid: Number(waiter.pid), mode: waiter.mode, waitedMs: Math.round(Number(waiter.waited_ms)) });
    return;
  }
}

/** What a ledger or log says about a statement that gave way. */
export function describeYield(statement: string, to: YieldedTo): string {
  return (
    `${statement} gave way to a session waiting for ${to.mode} on the table (pid ${to.pid}, waited ` +
    `${to.waitedMs} ms), as autovacuum does; the next run or autovacuum does the rest`
  );
}
