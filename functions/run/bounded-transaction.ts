import type { Chunking } from '../../lib/contracts/config.ts';
import type { Queryable } from '../adapters/catalog.ts';

/** BEGIN with the policy's lock and statement timeouts, local to the transaction (SET LOCAL). */
export async function beginBoundedTransaction(db: Queryable, chunking: Chunking): Promise<void> {
  await db.query('BEGIN');
  await db.query(`SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, [
    `${chunking.lockTimeoutMs}ms`,
    `${chunking.statementTimeoutMs}ms`,
  ]);
}
