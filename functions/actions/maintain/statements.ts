/**
 * The maintenance statements, each alone on an autocommit connection (VACUUM and REINDEX CONCURRENTLY refuse
 * to run in a transaction block), under its own statement_timeout and the policy's lock_timeout: every lock
 * they wait for, the virtual-transaction locks REINDEX CONCURRENTLY waits on for older snapshots included,
 * gives up after lockTimeoutMs. A timed-out or refused statement is an outcome to record, not a failure of
 * the run; only a lost connection (or the like) is thrown, for the step to be retried.
 */
import type { Queryable } from '../../adapters/transactions.ts';
import { classifyDatabaseError, TransientDatabaseError } from '../../core/errors.ts';
import { describeError } from '../../core/redact-database-error.ts';

/** Time a failed REINDEX's clean-up may take; the caller keeps it back from the REINDEX's own bound. */
export const CLEANUP_TIMEOUT_MS = 20_000;

export type StatementOutcome = 'done' | 'timed-out' | 'lock-timeout' | 'failed';

export interface StatementResult {
  readonly outcome: StatementOutcome;
  readonly durationMs: number;
  /** What went wrong: SQLSTATE and names, never a value. */
  readonly error?: string;
}

export interface StatementBounds {
  readonly timeoutMs: number;
  readonly lockTimeoutMs: number;
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
  try {
    await db.query(sql);
    return { outcome: 'done', durationMs: elapsed() };
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
