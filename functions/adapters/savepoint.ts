/**
 * One statement (or a few) under a tighter timeout inside the open transaction, in a savepoint, so that
 * running out of that time undoes only this work and the transaction goes on.
 */
import type { Queryable } from './catalog.ts';

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
 * Runs `work` in savepoint `name` with `timeout.setting` at `timeout.ms`. Resolves `{ done: true, value }`, or
 * `{ done: false }` when the timeout expired (the savepoint's work is rolled back; ROLLBACK TO also undoes the
 * SET LOCAL). Any other error passes through and leaves the transaction aborted, as usual.
 */
export async function withLocalTimeout<T>(
  db: Queryable,
  name: string,
  timeout: LocalTimeout,
  work: () => Promise<T>,
): Promise<{ done: true; value: T } | { done: false }> {
  await db.query(`SAVEPOINT ${name}; SET LOCAL ${timeout.setting} = '${Math.trunc(timeout.ms)}ms'`);
  try {
    const value = await work();
    await db.query(
      `RELEASE SAVEPOINT ${name}; SET LOCAL ${timeout.setting} = '${Math.trunc(timeout.restoreMs)}ms'`,
    );
    return { done: true, value };
  } catch (error) {
    if ((error as { code?: string }).code !== EXPIRED[timeout.setting]) throw error;
    await db.query(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`);
    return { done: false };
  }
}
