/**
 * Transactions on a connection the caller holds: a chunk's (bounded by the policy's timeouts), a plan's
 * (read-only, always rolled back), and a tighter timeout for part of an open one (a savepoint), so that
 * running out of that time undoes only that part and the transaction goes on.
 */
import type pg from 'pg';
import type { Chunking } from '../../lib/contracts/config.ts';

/** What the adapters need of a connection: a client, a transaction's client or a pool. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** BEGIN with the policy's lock and statement timeouts, local to the transaction (SET LOCAL). */
export async function beginBoundedTransaction(db: Queryable, chunking: Chunking): Promise<void> {
  await db.query('BEGIN');
  await db.query(`SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, [
    `${chunking.lockTimeoutMs}ms`,
    `${chunking.statementTimeoutMs}ms`,
  ]);
}

/** Runs `work` in a READ ONLY transaction bounded by `timeoutMs`, always rolled back. */
export async function readOnly<T>(db: Queryable, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  await db.query('BEGIN READ ONLY');
  try {
    await db.query(`SELECT set_config('statement_timeout', $1, true)`, [`${timeoutMs}ms`]);
    return await work();
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
  }
}

export interface LocalTimeout {
  /** `lock_timeout` or `statement_timeout`. */
  readonly setting: 'lock_timeout' | 'statement_timeout';
  /** The tighter value for `work`. */
  readonly ms: number;
  /** The transaction's own value, set again afterwards: a SET LOCAL made in a savepoint survives RELEASE. */
  readonly restoreMs: number;
}

/** SQLSTATE each setting raises when its time runs out. */
const EXPIRED: Record<LocalTimeout['setting'], string> = {
  lock_timeout: '55P03',
  statement_timeout: '57014',
};

/**
 * Runs `work` in savepoint `name` with `timeout.setting` at `timeout.ms`, inside the open transaction.
 * Resolves `{ done: true, value }`, or `{ done: false }` when the timeout expired or `work` failed with one of
 * `alsoOn`'s SQLSTATEs (the savepoint's work is rolled back; ROLLBACK TO also undoes the SET LOCAL). Any other
 * error passes through and leaves the transaction aborted, as usual.
 */
export async function withLocalTimeout<T>(
  db: Queryable,
  name: string,
  timeout: LocalTimeout,
  work: () => Promise<T>,
  alsoOn: readonly string[] = [],
): Promise<{ done: true; value: T } | { done: false }> {
  await db.query(`SAVEPOINT ${name}; SET LOCAL ${timeout.setting} = '${Math.trunc(timeout.ms)}ms'`);
  try {
    const value = await work();
    await db.query(
      `RELEASE SAVEPOINT ${name}; SET LOCAL ${timeout.setting} = '${Math.trunc(timeout.restoreMs)}ms'`,
    );
    return { done: true, value };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== EXPIRED[timeout.setting] && !alsoOn.includes(code as string)) throw error;
    await db.query(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`);
    return { done: false };
  }
}
