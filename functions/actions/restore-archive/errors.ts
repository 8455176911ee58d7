/**
 * What `restore-archive` can refuse or find. Two families: input errors (`RestoreArchiveInputError`: the
 * policy, time range, predicate or target named cannot be restored as asked; nothing was read into the
 * database — the CLI exits 2) and failures (an object is damaged or not what the ledger lists, a count does
 * not add up — exit 1, the object's transaction rolled back). Messages name keys, columns and counts, never
 * a row value.
 */
import { LifecycleError } from '../../core/errors.ts';

/** The request cannot be carried out as given; nothing was written. */
export abstract class RestoreArchiveInputError extends LifecycleError {}

/** No archive policy of that name in the ledger, or the policy is not an archive. */
export class UnknownArchivePolicyError extends RestoreArchiveInputError {
  override readonly name = 'UnknownArchivePolicyError';
}

/** `--from` / `--to` missing, unreadable or not an increasing range. */
export class InvalidTimeRangeError extends RestoreArchiveInputError {
  override readonly name = 'InvalidTimeRangeError';
}

/** `--where` fails the filter screen, does not parse on the table, or calls what a filter may not. */
export class UnsafePredicateError extends RestoreArchiveInputError {
  override readonly name = 'UnsafePredicateError';
}

/**
 * The target cannot take the archived rows: missing, without the archived columns, without a primary key
 * (unless allowed), in the ledger's schema.
 */
export class RestoreArchiveTargetError extends RestoreArchiveInputError {
  override readonly name = 'RestoreArchiveTargetError';
}

/** S3 holds other bytes than the ledger lists (length or SHA-256), or the object is gone. */
export class ArchivedObjectIntegrityError extends LifecycleError {
  override readonly name = 'ArchivedObjectIntegrityError';
}

/** The object's Parquet is not what the archive writes: an unknown column shape, a footer without types. */
export class ArchivedObjectFormatError extends LifecycleError {
  override readonly name = 'ArchivedObjectFormatError';
}

/** Rows staged differ from the Parquet row count or the ledger's: the object's transaction rolled back. */
export class RestoreCountMismatchError extends LifecycleError {
  override readonly name = 'RestoreCountMismatchError';
}

/**
 * A restore stopped after it had committed objects (each restored whole and recorded): not bad input any more,
 * a failure part way (exit 1). Running it again goes on where it stopped.
 */
export class RestoreArchivePartialError extends LifecycleError {
  override readonly name = 'RestoreArchivePartialError';
}
