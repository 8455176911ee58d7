/**
 * Named errors of the Parquet mapping and encoding. Step Functions matches Retry/Catch on `error.name`,
 * so every name is spelled out (minified bundles rename classes). None of them is retryable: the same
 * rows would fail the same way.
 */
import { LifecycleError } from '../errors.ts';

/** Where a value error happened; filled in by the encoder, which knows the column and the row. */
export interface ValueLocation {
  readonly column: string;
  /** Zero-based index of the row in the batch being encoded. */
  readonly row: number;
}

/** A single value could not be converted. */
abstract class ParquetValueError extends LifecycleError {
  abstract override readonly name: string;
  /** Set once the encoder has attached the column and row (see {@link locateValueError}). */
  location: ValueLocation | undefined;
}

/**
 * The text does not have the shape the fixed session settings produce (DateStyle=ISO, TimeZone=UTC,
 * bytea_output=hex, ...). Points at a session that was not configured as expected, not at the data.
 */
export class PgTextParseError extends ParquetValueError {
  override readonly name = 'PgTextParseError';
}

/**
 * A valid PostgreSQL value that the column's Parquet type cannot hold exactly: NaN in numeric(p,s), a
 * timestamp beyond the int64 microsecond range, a multi-dimensional value in a LIST column, ... Writing
 * anything else would silently change archived data, so the batch fails instead.
 */
export class UnrepresentableValueError extends ParquetValueError {
  override readonly name = 'UnrepresentableValueError';
}

/** The requested compression codec needs something this runtime lacks (ZSTD before Node 22.15). */
export class CompressionUnavailableError extends LifecycleError {
  override readonly name = 'CompressionUnavailableError';
}

/** Rows or plan that do not fit together (row width differs from the plan, no columns, duplicate names). */
export class ParquetInputError extends LifecycleError {
  override readonly name = 'ParquetInputError';
}

/**
 * Prefixes a value error with its column and row so the failure names the data. Other errors pass
 * through untouched.
 */
export function locateValueError(error: unknown, column: string, row: number): unknown {
  if (error instanceof ParquetValueError && error.location === undefined) {
    error.location = { column, row };
    error.message = `column ${JSON.stringify(column)}, row ${row}: ${error.message}`;
  }
  return error;
}
