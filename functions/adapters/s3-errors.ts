/**
 * S3 errors as the lifecycle's errors: its own module so that the S3 adapters (archive-store.ts,
 * object-versions.ts) share it without importing each other.
 */
import { S3ServiceException } from '@aws-sdk/client-s3';
import { StorageConfigurationError, TransientStorageError } from '../core/errors.ts';

/** Missing bucket / access denied are configuration problems; everything else is worth a retry. */
export function mapS3Error(error: unknown, what: string): Error {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode ?? 0;
    if (
      error.name === 'NoSuchBucket' ||
      error.name === 'AccessDenied' ||
      status === 403 ||
      (status === 404 && what.startsWith('bucket'))
    ) {
      return new StorageConfigurationError(`${what}: ${error.name} (${status})`, { cause: error });
    }
    return new TransientStorageError(`${what}: ${error.name} (${status})`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new TransientStorageError(`${what}: ${message}`, { cause: error });
}
