/**
 * Named errors. Step Functions matches Retry/Catch on `error.name` (the Lambda `errorType`), so the
 * names are the contract: retryable ones are listed in `RetryableErrorNames` (lib/contracts/payloads.ts),
 * everything else is terminal and recorded as the run's failure.
 */
import { carriesRowValues, describeDatabaseError, isPostgresError } from './redact-database-error.ts';

/**
 * What an error knows about where it happened, besides its message. Names and codes only, never a row value
 * (functions/core/redact-database-error.ts): the fields reach logs (Powertools prints an error's own fields)
 * and whatever inspects the error.
 */
export interface LifecycleErrorOptions extends ErrorOptions {
  /** The policy whose run failed. */
  readonly policy?: string | undefined;
  /** The table at fault, `schema.table` as the catalog names it (or as the config wrote it, when not found). */
  readonly table?: string | undefined;
  /** The SQLSTATE of the server error behind this one. */
  readonly sqlstate?: string | undefined;
}

/**
 * The base of every error a run step throws. Step Functions sees only `name` (the Lambda `errorType`) and
 * `message` (`errorMessage`); the structured fields are for logs and callers that inspect the error.
 */
export abstract class LifecycleError extends Error {
  // Names are spelled out (not taken from the class) because minified bundles rename classes.
  abstract override readonly name: string;
  readonly policy: string | undefined;
  readonly table: string | undefined;
  readonly sqlstate: string | undefined;

  constructor(message: string, options: LifecycleErrorOptions = {}) {
    const { policy, table, sqlstate, ...errorOptions } = options;
    // Only a `cause` that was given becomes an own property, as with a plain Error.
    super(message, errorOptions);
    this.policy = policy;
    this.table = table;
    this.sqlstate = sqlstate;
  }
}

/**
 * Connection loss, lock/statement timeout, serialization failure, too many connections: try again. A lock
 * or statement timeout names the relations and the sessions holding the conflicting locks
 * (functions/commons/lock-wait.ts). It is retried at Start too: each attempt waits at most the policy's
 * lock_timeout, its backend has stopped waiting before the step returns, and nothing was written yet.
 */
export class TransientDatabaseError extends LifecycleError {
  override readonly name = 'TransientDatabaseError';
}

/**
 * A chunk's statement ran past the time its transaction had left of `targetTransactionMs` (the statement
 * timeout the action set from core/batch-size.ts statementBudgetMs fired). The chunk loop rolls the chunk
 * back and takes it again at half the rows, at once: sizing from the last chunks said it would fit, the
 * server is slower now. `cause` is the server's statement-timeout error.
 */
export class TransactionBudgetError extends LifecycleError {
  override readonly name = 'TransactionBudgetError';
}

/** S3 throttling, 5xx, network errors, or an uploaded object that failed verification: try again. */
export class TransientStorageError extends LifecycleError {
  override readonly name = 'TransientStorageError';
}

/** Another AWS service (Glue) throttled or failed on its side: try again. */
export class TransientServiceError extends LifecycleError {
  override readonly name = 'TransientServiceError';
}

/** Table, column or key missing or unusable: fix the config. */
export class CatalogError extends LifecycleError {
  override readonly name = 'CatalogError';
}

/** The filter expression was refused (static screen or EXPLAIN against the table). */
export class InvalidFilterError extends LifecycleError {
  override readonly name = 'InvalidFilterError';
}

/** Another run of the same policy holds the lease. */
export class LeaseHeldError extends LifecycleError {
  override readonly name = 'LeaseHeldError';
}

/** This run no longer holds its lease (it expired and another run took it over). */
export class LeaseLostError extends LifecycleError {
  override readonly name = 'LeaseLostError';
}

/** The bucket is missing or not accessible: nothing was deleted. */
export class StorageConfigurationError extends LifecycleError {
  override readonly name = 'StorageConfigurationError';
}

/**
 * An object the ledger lists is not what S3 holds (length or SHA-256 differ, or it is gone), found before
 * locking it with Object Lock: the object was replaced or damaged after its chunk committed. It is left
 * unlocked (locking would protect the wrong bytes) and the run fails so that a person looks.
 */
export class ArchiveObjectMismatchError extends LifecycleError {
  override readonly name = 'ArchiveObjectMismatchError';
}

/**
 * Other tables reference the purged table with ON DELETE NO ACTION / RESTRICT and no child policy covers
 * them, or a referencing row still exists when its parent is deleted. Nothing of that chunk was deleted.
 */
export class ForeignKeyError extends LifecycleError {
  override readonly name = 'ForeignKeyError';
}

/**
 * The chunk query would read the whole table on every chunk (no btree index leads with the time column). Set the
 * policy's `allowSeqScan: true` or start the run with `--force` to go ahead anyway. Nothing was written.
 */
export class MissingIndexError extends LifecycleError {
  override readonly name = 'MissingIndexError';
}

/** One privilege the run's database role lacks, on one object, and what needs it. */
export interface MissingPrivilege {
  /**
   * `DELETE`, `CREATE`… as PostgreSQL names it, `ownership` (the role must own the object) or `membership`
   * (the role must be a member of the object, a role).
   */
  readonly privilege: string;
  /** The object, quoted as PostgreSQL quotes it: `public.events`, `database app`, `schema lifecycle`. */
  readonly object: string;
  /** What the run does that needs it. */
  readonly reason: string;
}

/**
 * The database role lacks a privilege the run needs (checked at Start before the ledger is migrated, a
 * lease taken or a run row written): nothing was changed. Grant what `missing` lists and run again.
 */
export class InsufficientPrivilegeError extends LifecycleError {
  override readonly name = 'InsufficientPrivilegeError';

  constructor(
    readonly role: string,
    readonly missing: readonly MissingPrivilege[],
  ) {
    const lacks = (m: MissingPrivilege) =>
      m.privilege === 'ownership'
        ? `does not own ${m.object}`
        : m.privilege === 'membership'
          ? `is not a member of ${m.object}`
          : `lacks ${m.privilege} on ${m.object}`;
    super(`${missing.map((m) => `role ${role} ${lacks(m)} (${m.reason})`).join('; ')}. Nothing was changed.`);
  }
}

/**
 * The throttle reads replica lag from CloudWatch and a listed replica has no recent datapoint (wrong
 * identifier, a primary, or a replica that stopped reporting). No chunk ran after the reading.
 */
export class ReplicaLagUnavailableError extends LifecycleError {
  override readonly name = 'ReplicaLagUnavailableError';
}

/** Input that does not match a payload schema: a bug or a hand-made execution input. */
export class InvalidPayloadError extends LifecycleError {
  override readonly name = 'InvalidPayloadError';
}

/**
 * The anonymize hash key is missing (no PG_LIFECYCLE_HASH_KEY locally, no secret in AWS) or unreadable. The
 * key itself is never part of the message.
 */
export class HashKeyError extends LifecycleError {
  override readonly name = 'HashKeyError';
}

/**
 * The database secret (Secrets Manager) is missing or not an RDS secret. Its text is never quoted: the
 * message names the secret and, at most, the fields at fault.
 */
export class DatabaseSecretError extends LifecycleError {
  override readonly name = 'DatabaseSecretError';
}

/**
 * PostgreSQL refused a statement for a reason a retry would not fix (a cast failing on a row, a constraint
 * violated by a trigger, a missing privilege…). The message keeps the SQLSTATE and the identifiers
 * PostgreSQL names, never a data value (functions/core/redact-database-error.ts); the same facts are fields.
 */
export class DatabaseError extends LifecycleError {
  override readonly name = 'DatabaseError';
  /** The SQLSTATE (also `sqlstate`), as `code` so that checks written against pg's errors keep working. */
  readonly code: string;
  readonly column: string | undefined;
  readonly constraint: string | undefined;

  constructor(
    error: Error & { code: string; table?: string; schema?: string; column?: string; constraint?: string },
  ) {
    // A value-bearing server error is not kept as the cause: whatever serializes causes would print it.
    super(describeDatabaseError(error), {
      ...serverErrorFields(error),
      ...(carriesRowValues(error) ? {} : { cause: error }),
    });
    this.code = error.code;
    this.column = error.column;
    this.constraint = error.constraint;
  }
}

/** The SQLSTATE and the table a server error names (identifiers the server sets, never values). */
function serverErrorFields(error: { code: string; table?: string; schema?: string }): LifecycleErrorOptions {
  return {
    sqlstate: error.code,
    table: error.table ? `${error.schema ? `${error.schema}.` : ''}${error.table}` : undefined,
  };
}

const TRANSIENT_SQLSTATE_PREFIXES = ['08', '40', '53', '57P'];
const TRANSIENT_SQLSTATES = new Set(['55P03', '57014', '55006']);

/**
 * Classifies a pg/network error: transient ones become `TransientDatabaseError`, any other error the server
 * sent `DatabaseError` (or `ForeignKeyError`), each with a message that quotes no row value; anything else
 * passes through.
 */
export function classifyDatabaseError(error: unknown): unknown {
  if (error instanceof LifecycleError) return error;
  if (isPostgresError(error)) {
    const code = error.code;
    const cause = { ...serverErrorFields(error), ...(carriesRowValues(error) ? {} : { cause: error }) };
    if (code === '23503') {
      // A row still referenced by a NO ACTION / RESTRICT foreign key: the chunk rolled back, nothing was lost.
      return new ForeignKeyError(
        `${describeDatabaseError(error)}; rows of this table are still referenced (archive or purge the referencing rows first)`,
        cause,
      );
    }
    if (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_SQLSTATE_PREFIXES.some((p) => code.startsWith(p))) {
      return new TransientDatabaseError(describeDatabaseError(error), cause);
    }
    return new DatabaseError(error);
  }
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') {
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) {
      return new TransientDatabaseError(`${code}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (
    error instanceof Error &&
    /Connection terminated|connection timeout|Client has encountered a connection error/i.test(error.message)
  ) {
    return new TransientDatabaseError(error.message, { cause: error });
  }
  return error;
}
