/**
 * Runs a backup's schema.sql or post-data.sql on the restore's connection the way `psql -1 -f` would, with two
 * differences that matter when the target is a live database (a drill, a restore next to the original):
 * - one transaction, and every `SET` of the file made `SET LOCAL`: a failure leaves nothing behind, and the
 *   caller's session keeps its own settings (search_path, timeouts) afterwards;
 * - the file's `lock_timeout = 0` is replaced by a bound: a foreign key to a table the backup does not hold
 *   locks that table, and an unbounded wait there would queue every writer of it behind the restore.
 *   Statements themselves are unbounded (statement_timeout 0): an index over a large table takes its time.
 * The files hold no row values; an error names the statement's number and its first words.
 */
import type { Queryable } from '../../../adapters/transactions.ts';
import { classifyDatabaseError } from '../../../core/errors.ts';
import { describeError } from '../../../core/redact-database-error.ts';
import { splitStatements } from '../sql-text.ts';
import { RestoreDdlError, RestoreTargetError } from './errors.ts';

/** The file's own timeouts, which the restore's replace. */
const OWN_TIMEOUT = /^SET\s+(statement_timeout|lock_timeout)\s*=/i;
const SESSION_SET = /^SET\s+(?!LOCAL\b|SESSION\b)/i;

export interface RunDdlOptions {
  /** What the file is, for errors: `schema.sql`. */
  readonly label: string;
  readonly lockTimeoutMs: number;
}

/** The statements that run: the file's, each `SET` local to the transaction, its own timeouts dropped. */
export function ddlStatements(text: string): string[] {
  return splitStatements(text)
    .filter((statement) => !OWN_TIMEOUT.test(statement))
    .map((statement) => statement.replace(SESSION_SET, 'SET LOCAL '));
}

export async function runDdl(db: Queryable, text: string, options: RunDdlOptions): Promise<void> {
  const statements = ddlStatements(text);
  await db.query('BEGIN');
  try {
    await db.query(
      `SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', $1, true)`,
      [`${Math.trunc(options.lockTimeoutMs)}ms`],
    );
    for (const [index, statement] of statements.entries()) {
      try {
        await db.query(statement);
      } catch (error) {
        const start = statement.replace(/\s+/g, ' ').slice(0, 80);
        const failure = classifyDatabaseError(error);
        // 42P07/42710: an object of that name exists (a type, a sequence): the target was not empty after all.
        const code = (error as { code?: unknown }).code;
        const message = `${options.label}, statement ${index + 1} (${start}…): ${describeError(failure)}`;
        if (code === '42P07' || code === '42710') throw new RestoreTargetError(message, { cause: failure });
        throw new RestoreDdlError(message, { cause: failure });
      }
    }
    await db.query('COMMIT');
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
