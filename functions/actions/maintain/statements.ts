/**
 * The maintenance statements, each alone on an autocommit connection (VACUUM and REINDEX CONCURRENTLY refuse
 * to run in a transaction block), under its own statement_timeout and the policy's lock_timeout: every lock
 * they wait for, the virtual-transaction locks REINDEX CONCURRENTLY waits on for older snapshots included,
 * gives up after lockTimeoutMs. A timed-out or refused statement is an outcome to record, not a failure of
 * the run; only a lost connection (or the like) is thrown, for the step to be retried.
 */
import { pgBool } from '../../adapters/catalog.ts';
import { describeYield, type Watcher, yieldingToLockWaiters } from '../../adapters/lock-yield.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { classifyDatabaseError, TransientDatabaseError } from '../../core/errors.ts';
import { describeError } from '../../core/redact-database-error.ts';

/** Time a failed REINDEX's clean-up may take; the caller keeps it back from the REINDEX's own bound. */
export const CLEANUP_TIMEOUT_MS = 20_000;

export type StatementOutcome = 'done' | 'timed-out' | 'lock-timeout' | 'failed' | 'yielded';

export interface StatementResult {
  readonly outcome: StatementOutcome;
  readonly durationMs: number;
  /** What went wrong: SQLSTATE and names, never a value. */
  readonly error?: string;
  /**
   * SKIP_LOCKED's WARNINGs ("skipping vacuum of … --- lock not available"): the statement did not wait for
   * a relation another session (an autovacuum, most often) holds, and left it alone.
   */
  readonly skippedLocked?: readonly string[];
}

/** A notice the server sent during a statement (pg's 'notice' event). */
interface Notice {
  readonly code?: string;
  readonly severity?: string;
  readonly message?: string;
}

/** Whether a notice is VACUUM's or ANALYZE's SKIP_LOCKED warning that a relation's lock was not available. */
export function isSkippedLockNotice(notice: Notice): boolean {
  return notice.code === '55P03' || /^skipping .* lock not available/.test(notice.message ?? '');
}

interface NoticeSource {
  on(event: 'notice', listener: (notice: Notice) => void): unknown;
  off(event: 'notice', listener: (notice: Notice) => void): unknown;
}

const noticeSource = (db: Queryable): NoticeSource | undefined => {
  const candidate = db as unknown as Partial<NoticeSource>;
  return typeof candidate.on === 'function' && typeof candidate.off === 'function'
    ? (candidate as NoticeSource)
    : undefined;
};

export interface StatementBounds {
  readonly timeoutMs: number;
  readonly lockTimeoutMs: number;
  /** Give way to lock waiters (VACUUM, ANALYZE), watched from a connection this opens: lock-yield.ts. */
  readonly yieldTo?: () => Promise<Watcher>;
}

/** Runs one statement (simple protocol: no parameters) under `bounds`, then restores the session's own. */
export async function runBounded(
  db: Queryable,
  sql: string,
  bounds: StatementBounds,
): Promise<StatementResult> {
  await db.query(`SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false)`, [
    `${Math.trunc(bounds.timeoutMs)}ms`,
    `${Math.trunc(Math.min(bounds.lockTimeoutMs, bounds.timeoutMs))}ms`,
  ]);
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const skipped: string[] = [];
  const onNotice = (notice: Notice) => {
    if (isSkippedLockNotice(notice)) skipped.push(notice.message ?? 'lock not available');
  };
  const notices = noticeSource(db);
  notices?.on('notice', onNotice);
  try {
    const openWatcher = bounds.yieldTo;
    if (openWatcher) {
      // A watcher that could not be opened leaves the statement unwatched (result.unwatched), as before this
      // existed: not worth failing a maintenance statement for.
      const result = await yieldingToLockWaiters(db, openWatcher, () => db.query(sql));
      if ('yielded' in result)
        return {
          outcome: 'yielded',
          durationMs: elapsed(),
          error: describeYield(sql.split(' ')[0] ?? 'statement', result.yielded),
        };
    } else {
      await db.query(sql);
    }
    return {
      outcome: 'done',
      durationMs: elapsed(),
      ...(skipped.length > 0 ? { skippedLocked: skipped } : {}),
    };
  } catch (thrown) {
    const code = (thrown as { code?: string }).code;
    if (code === '57014')
      return { outcome: 'timed-out', durationMs: elapsed(), error: `exceeded ${bounds.timeoutMs} ms` };
    if (code === '55P03')
      return {
        outcome: 'lock-timeout',
        durationMs: elapsed(),
        error: `a lock was not granted within ${bounds.lockTimeoutMs} ms (lockTimeoutMs)`,
      };
    const error = classifyDatabaseError(thrown);
    // The connection is gone or the server is shutting down: the step fails and is retried.
    if (error instanceof TransientDatabaseError || code === undefined) throw error;
    return { outcome: 'failed', durationMs: elapsed(), error: describeError(error) };
  } finally {
    notices?.off('notice', onNotice);
    await db.query('RESET statement_timeout; RESET lock_timeout').catch(() => undefined);
  }
}

/**
 * Invalid `_ccnew`/`_ccold` indexes of a table (a REINDEX CONCURRENTLY cancelled midway leaves them), by
 * quoted qualified name.
 */
export async function listLeftoverIndexes(db: Queryable, tableOid: string): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE i.indrelid = $1::oid AND NOT i.indisvalid AND c.relname ~ '_cc(new|old)[0-9]*$'`,
    [tableOid],
  );
  return rows.map((r) => r.name);
}

/**
 * REINDEX INDEX CONCURRENTLY; when it stops midway, the invalid copy it was building (and any old index it
 * had already swapped out) is dropped with DROP INDEX CONCURRENTLY, so that nothing of ours is left to slow
 * every write. Leftovers that were there before are someone else's: reported elsewhere, never dropped.
 */
export async function reindexConcurrently(
  db: Queryable,
  table: { oid: string },
  qualifiedIndex: string,
  bounds: StatementBounds,
): Promise<StatementResult & { readonly cleanup?: string }> {
  const before = new Set(await listLeftoverIndexes(db, table.oid));
  const result = await runBounded(db, `REINDEX INDEX CONCURRENTLY ${qualifiedIndex}`, bounds);
  if (result.outcome === 'done') return result;
  const ours = (await listLeftoverIndexes(db, table.oid)).filter((name) => !before.has(name));
  const dropped: string[] = [];
  for (const name of ours) {
    const drop = await runBounded(db, `DROP INDEX CONCURRENTLY IF EXISTS ${name}`, {
      timeoutMs: CLEANUP_TIMEOUT_MS,
      lockTimeoutMs: bounds.lockTimeoutMs,
    });
    dropped.push(`${name} ${drop.outcome === 'done' ? 'dropped' : `not dropped (${drop.error})`}`);
  }
  return dropped.length > 0 ? { ...result, cleanup: dropped.join('; ') } : result;
}

/**
 * Leftovers of an earlier REINDEX CONCURRENTLY of this very index (`<index>_ccnew`, `_ccold`, numbered), valid
 * or not, by name. While one exists the index is not rebuilt again: each attempt that stops midway would leave
 * one more copy that every write keeps up to date.
 */
export async function leftoversOf(db: Queryable, tableOid: string, indexName: string): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.relname AS name
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = $1::oid AND left(c.relname, length($2)) = $2
        AND substr(c.relname, length($2) + 1) ~ '^_cc(new|old)[0-9]*$'
      ORDER BY 1`,
    [tableOid, indexName],
  );
  return rows.map((r) => r.name);
}

/**
 * Why a REINDEX CONCURRENTLY of the table's index should not start now, or undefined. It waits for every
 * transaction of the database older than its phases (and for the writers of the table), so it would likely
 * stop midway and leave a copy behind: a VACUUM working on the table (an autovacuum: our lock request would
 * cancel it), a lock on the table or its indexes that conflicts with REINDEX's or waits, a transaction (or a
 * snapshot) of this database open longer than lockTimeoutMs.
 */
export async function reindexObstacle(
  db: Queryable,
  tableOid: string,
  lockTimeoutMs: number,
): Promise<string | undefined> {
  const vacuum = await db.query('SELECT 1 FROM pg_stat_progress_vacuum WHERE relid = $1::oid', [tableOid]);
  if ((vacuum.rowCount ?? 0) > 0) return 'a VACUUM (autovacuum?) is working on the table';
  const { rows: locks } = await db.query<{ pid: number; mode: string; granted: boolean | string }>(
    `SELECT l.pid, l.mode, l.granted
       FROM pg_locks l
      WHERE l.locktype = 'relation' AND l.pid <> pg_backend_pid()
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND (l.relation = $1::oid OR l.relation IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::oid))
        AND (NOT l.granted OR l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock'))
      ORDER BY l.granted, l.pid
      LIMIT 1`,
    [tableOid],
  );
  const lock = locks[0];
  if (lock)
    return `locked by another session (pid ${lock.pid}, ${lock.mode}${pgBool(lock.granted) ? '' : ' waiting'})`;
  const { rows: old } = await db.query<{ pid: number; seconds: number }>(
    `SELECT pid, extract(epoch FROM now() - coalesce(xact_start, state_change))::float8 AS seconds
       FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_type IS DISTINCT FROM 'autovacuum worker'
        AND (xact_start < now() - make_interval(secs => $1::float8 / 1000)
          OR (xact_start IS NULL AND backend_xmin IS NOT NULL
              AND state_change < now() - make_interval(secs => $1::float8 / 1000)))
      ORDER BY 2 DESC
      LIMIT 1`,
    [lockTimeoutMs],
  );
  const open = old[0];
  if (open)
    return `a transaction of this database has been open for ${Number(open.seconds).toFixed(0)} s (pid ${open.pid}), longer than lockTimeoutMs ${lockTimeoutMs}: REINDEX CONCURRENTLY would wait for it`;
  return undefined;
}
