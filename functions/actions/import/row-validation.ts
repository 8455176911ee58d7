/**
 * Inserting a batch of source rows so that each row the target refuses is set aside with its reason and the
 * others go in: one INSERT … SELECT for the batch's key range in a savepoint; when the target refuses a row
 * (a data exception: a failed cast, a value too long; an integrity violation: NOT NULL, CHECK, foreign key,
 * a unique key other than the import key; an exception a trigger raised), the range is rolled back to the
 * savepoint and halved until the refused rows stand alone. PostgreSQL itself is the validator: every rule
 * the target enforces is applied, evaluated per row, with no copy of those rules here. A batch with no bad
 * row costs one statement; each bad row about 2·log2(batch) more.
 *
 * Errors that are not about a row (timeouts, lock waits, serialization failures, a lost connection) are not
 * rejects: they propagate and the chunk rolls back as any chunk does.
 */
import type { Queryable } from '../../adapters/transactions.ts';
import { describeError, isPostgresError } from '../../core/redact-database-error.ts';

/** One source row the target refused. */
export interface RejectedRow {
  /** The source key's values, as text, in key order. */
  readonly key: ReadonlyArray<string>;
  readonly sqlstate: string;
  /** The server's error without data values. */
  readonly reason: string;
  readonly column: string | null;
  readonly constraint: string | null;
}

export interface BatchOutcome {
  /** Source rows the batch covered. */
  examined: number;
  inserted: number;
  /** Rows whose target key was already there (ON CONFLICT DO NOTHING). */
  skipped: number;
  readonly rejected: RejectedRow[];
}

/** SQLSTATE classes and codes that are a row's own fault. */
function isRowError(error: unknown): boolean {
  if (!isPostgresError(error)) return false;
  const errorClass = error.code.slice(0, 2);
  // 22 data exception, 23 integrity constraint violation, P0 a PL/pgSQL RAISE (a trigger refusing the row).
  return errorClass === '22' || errorClass === '23' || errorClass === 'P0';
}

const SAVEPOINT = 'pg_lifecycle_import_rows';

/**
 * Inserts the rows of `keys` (the batch, in walk order) with `insertSql` (parameters: the low key's
 * values, then the high key's), inside the caller's open transaction.
 */
export async function insertBatch(
  tx: Queryable,
  statements: { readonly insertSql: string; readonly alreadyImportedSql: string },
  keys: ReadonlyArray<ReadonlyArray<string>>,
): Promise<BatchOutcome> {
  const outcome: BatchOutcome = { examined: 0, inserted: 0, skipped: 0, rejected: [] };
  if (keys.length > 0) await insertRange(tx, statements, keys, 0, keys.length - 1, outcome);
  return outcome;
}

/** Whether the refused row is already in the target by its mapped key (a mapping that fails to compute is not). */
async function alreadyImported(tx: Queryable, sql: string, key: ReadonlyArray<string>): Promise<boolean> {
  await tx.query(`SAVEPOINT ${SAVEPOINT}`);
  try {
    const { rows } = await tx.query<{ found: string }>(sql, [...key]);
    await tx.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    return rows[0]?.found === 'true';
  } catch (error) {
    if (!isRowError(error)) throw error;
    await tx.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`);
    return false;
  }
}

async function insertRange(
  tx: Queryable,
  statements: { readonly insertSql: string; readonly alreadyImportedSql: string },
  keys: ReadonlyArray<ReadonlyArray<string>>,
  low: number,
  high: number,
  outcome: BatchOutcome,
): Promise<void> {
  const { insertSql } = statements;
  const lowKey = keys[low] as ReadonlyArray<string>;
  const highKey = keys[high] as ReadonlyArray<string>;
  await tx.query(`SAVEPOINT ${SAVEPOINT}`);
  let inserted: number;
  try {
    const result = await tx.query(insertSql, [...lowKey, ...highKey]);
    inserted = result.rowCount ?? 0;
  } catch (error) {
    if (!isRowError(error)) throw error;
    await tx.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`);
    if (low === high) {
      outcome.examined += 1;
      if (await alreadyImported(tx, statements.alreadyImportedSql, lowKey)) outcome.skipped += 1;
      else outcome.rejected.push(rejectOf(lowKey, error));
      return;
    }
    const middle = low + Math.floor((high - low) / 2);
    await insertRange(tx, statements, keys, low, middle, outcome);
    await insertRange(tx, statements, keys, middle + 1, high, outcome);
    return;
  }
  await tx.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
  const rows = high - low + 1;
  outcome.examined += rows;
  outcome.inserted += inserted;
  // A row inserted concurrently into the source inside the range would make inserted exceed the keys read.
  outcome.skipped += Math.max(0, rows - inserted);
}

function rejectOf(key: ReadonlyArray<string>, error: unknown): RejectedRow {
  const fields = error as { code?: string; column?: string; constraint?: string };
  return {
    key,
    sqlstate: fields.code ?? 'XX000',
    reason: describeError(error),
    column: fields.column ?? null,
    constraint: fields.constraint ?? null,
  };
}
