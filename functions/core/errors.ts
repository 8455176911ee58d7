/**
 * Named errors. Step Functions matches Retry/Catch on `error.name` (the Lambda `errorType`), so the
 * names are the contract: retryable ones are listed in `RetryableErrorNames` (lib/contracts/payloads.ts),
 * everything else is terminal and recorded as the run's failure.
 */
abstract class LifecycleError extends Error {
  // Names are spelled out (not taken from the class) because minified bundles rename classes.
  abstract override readonly name: string;
}

/** Connection loss, lock/statement timeout, serialization failure, too many connections: try again. */
export class TransientDatabaseError extends LifecycleError {
  override readonly name = 'TransientDatabaseError';
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

const TRANSIENT_SQLSTATE_PREFIXES = ['08', '40', '53', '57P'];
const TRANSIENT_SQLSTATES = new Set(['55P03', '57014', '55006']);

/** Classifies a pg/network error: transient ones become `TransientDatabaseError`, others pass through. */
export function classifyDatabaseError(error: unknown): unknown {
  if (error instanceof LifecycleError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === '23503') {
    // A row still referenced by a NO ACTION / RESTRICT foreign key: the chunk rolled back, nothing was lost.
    return new ForeignKeyError(
      `${(error as Error).message}; rows of this table are still referenced (archive or purge the referencing rows first)`,
      { cause: error },
    );
  }
  if (typeof code === 'string') {
    if (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_SQLSTATE_PREFIXES.some((p) => code.startsWith(p))) {
      return new TransientDatabaseError(`${code}: ${(error as Error).message}`, { cause: error });
    }
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
