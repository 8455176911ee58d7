/**
 * Turns a lock or statement timeout into what it was: "waited 2004 ms for a lock on public.events held by
 * pid 4242 (AccessExclusiveLock; …)". The connection that timed out notes the statement, its duration and
 * its backend on the error (cheaply, nothing is queried then: timeouts the chunk loop retries locally cost
 * nothing more). Only an error that fails a step is explained, from a short side connection that reads
 * pg_locks and pg_stat_activity while the holder most likely still holds its lock.
 */
import pg from 'pg';
import { parseQualifiedName, quoteIdent } from '../../lib/contracts/identifiers.ts';
import { TransientDatabaseError } from '../core/errors.ts';
import { describeLockWait, type RelationLock, tupleWaitOf } from '../core/lock-conflicts.ts';

const LOCK_WAIT = Symbol('pg-lifecycle.lock-wait');

/** What the timed-out connection knew: enough to look for the holders afterwards. */
export interface TimeoutContext {
  readonly statement: string;
  readonly elapsedMs: number;
  /** The backend that waited (excluded from the holders). */
  readonly backendPid: number | undefined;
  /** How to reach the same database for the look-up. */
  readonly config: pg.ClientConfig;
}

interface TimeoutError extends Error {
  readonly code: string;
  readonly where?: string | undefined;
  [LOCK_WAIT]?: () => Promise<string>;
}

/** lock_timeout (55P03), or a statement_timeout (57014; not a cancel requested by a user or an administrator). */
export function isTimeout(error: unknown): error is TimeoutError {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === '55P03' || (code === '57014' && /statement timeout/.test(String(message)));
}

/**
 * Attaches to a timeout error how to explain it: a closure (not enumerable, and what it captures, the
 * connection config with its password, is not reachable by inspecting or serializing the error).
 */
export function noteTimeout(error: TimeoutError, context: TimeoutContext): void {
  Object.defineProperty(error, LOCK_WAIT, {
    value: () => lookUp(error, context),
    enumerable: false,
    configurable: true,
  });
}

function findNoted(error: unknown): (() => Promise<string>) | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const explain = isTimeout(current) ? current[LOCK_WAIT] : undefined;
    if (explain) return explain;
    current = current.cause;
  }
  return undefined;
}

/** The look-up's own bounds: it reads only catalog views and must not become the next thing waiting. */
const LOOKUP_OPTIONS = '-c lock_timeout=1000 -c statement_timeout=5000';

/** Other sessions' locks on relations of this database, oldest transactions first, as one JSON text. */
const RELATION_LOCKS = `
  SELECT coalesce(json_agg(x ORDER BY x.xact_start NULLS LAST, x.pid), '[]')::text AS locks FROM (
    SELECT l.pid, l.mode, l.granted, format('%I.%I', n.nspname, c.relname) AS relation,
           array_remove(ARRAY[c.relname::text, t.relname::text]
             || ARRAY(SELECT a.relname::text FROM pg_partition_ancestors(coalesce(i.indrelid, c.oid)) p
                        JOIN pg_class a ON a.oid = p.relid), NULL) AS names,
           nullif(s.application_name, '') AS "applicationName", s.state, s.xact_start
      FROM pg_locks l
      JOIN pg_class c ON c.oid = l.relation
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_index i ON i.indexrelid = c.oid
      LEFT JOIN pg_class t ON t.oid = i.indrelid
      LEFT JOIN pg_stat_activity s ON s.pid = l.pid
     WHERE l.locktype = 'relation'
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.pid <> pg_backend_pid() AND l.pid IS DISTINCT FROM $1::int) x`;

/**
 * Sessions whose transaction holds the row at `tid` of the relation named `relname` (its xmax: one locker's
 * transaction id, or a multixact of several), among those holding a row-level lock on that table.
 * Undefined when that cannot be read (privileges, a row since gone): the caller then names every session
 * holding a row-level lock on the table.
 */
async function readRowHolders(
  side: pg.Client,
  relname: string,
  tid: string,
  locks: readonly RelationLock[],
): Promise<number[] | undefined> {
  const onTable = locks.filter((l) => l.granted && l.mode !== 'AccessShareLock' && l.names[0] === relname);
  const lockers = [...new Set(onTable.map((l) => l.pid))];
  for (const relation of new Set(onTable.map((l) => l.relation))) {
    try {
      const { rows } = await side.query<{ xmax: string }>(
        `SELECT c.xmax::text AS xmax FROM ONLY ${quoteRelation(relation)} AS c WHERE c.ctid = $1::tid`,
        [tid],
      );
      const xmax = rows[0]?.xmax;
      if (!xmax || xmax === '0') continue;
      // xmax is a transaction id or a multixact id; which one only the tuple header says. Both counters may
      // reach the same number, so a match counts only among the sessions holding a row lock on the table.
      for (const statement of [
        `SELECT pid::text FROM pg_locks WHERE locktype = 'transactionid' AND granted AND transactionid::text = $1`,
        `SELECT l.pid::text FROM pg_get_multixact_members($1::xid) m
           JOIN pg_locks l ON l.locktype = 'transactionid' AND l.granted AND l.transactionid = m.xid`,
      ]) {
        const found = await side
          .query<{ pid: string }>(statement, [xmax])
          .then(({ rows: holders }) =>
            holders.map((h) => Number(h.pid)).filter((pid) => lockers.includes(pid)),
          )
          .catch(() => []);
        if (found.length > 0) return found;
      }
    } catch {
      // No SELECT privilege, or the relation is gone: fall back to the table-level holders.
    }
  }
  return undefined;
}

/** `schema.table` as format('%I.%I') printed it, quoted again for a statement. */
function quoteRelation(relation: string): string {
  const parts = parseQualifiedName(relation);
  return parts.map((p) => quoteIdent(p.name)).join('.');
}

async function lookUp(error: TimeoutError, context: TimeoutContext): Promise<string> {
  const side = new pg.Client({
    ...context.config,
    options: `${context.config.options ?? ''} ${LOOKUP_OPTIONS}`.trim(),
    connectionTimeoutMillis: 5_000,
  });
  side.on('error', () => undefined);
  try {
    // Inside the try: a failed connect must end the client too.
    await side.connect();
    const { rows } = await side.query<{ locks: string }>(RELATION_LOCKS, [context.backendPid ?? null]);
    const locks = JSON.parse(rows[0]?.locks ?? '[]') as RelationLock[];
    const tuple = tupleWaitOf(error.where);
    const rowHolders = tuple ? await readRowHolders(side, tuple.relation, tuple.tid, locks) : undefined;
    return describeLockWait({
      sqlstate: error.code,
      elapsedMs: context.elapsedMs,
      statement: context.statement,
      tupleRelation: tuple?.relation,
      locks,
      rowHolders,
    });
  } finally {
    await side.end().catch(() => undefined);
  }
}

/**
 * When `error` is (or wraps, as TransientDatabaseError) a noted lock/statement timeout: a
 * TransientDatabaseError whose message names the relations and the sessions holding the conflicting locks.
 * Anything else, or a look-up that fails, returns `error` unchanged: the explanation never hides the error.
 *
 * The error stays a TransientDatabaseError, retried by Step Functions: a lock is normally held for a while
 * (a migration, a long transaction), every attempt waits at most the policy's lock_timeout and its backend
 * has stopped waiting before the step returns, and nothing was written before the lease (Start) or the
 * waiting chunk rolled back (Chunk), so an attempt that times out again costs only its wait.
 */
export async function explainTimeout(error: unknown): Promise<unknown> {
  if (!(isTimeout(error) || error instanceof TransientDatabaseError)) return error;
  const explain = findNoted(error);
  if (!explain) return error;
  try {
    const cause = error instanceof TransientDatabaseError ? error.cause : error;
    const fields =
      error instanceof TransientDatabaseError
        ? { sqlstate: error.sqlstate, table: error.table, policy: error.policy }
        : { sqlstate: error.code };
    return new TransientDatabaseError(await explain(), { ...fields, cause });
  } catch {
    return error;
  }
}
