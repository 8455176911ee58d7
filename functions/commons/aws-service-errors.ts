import { TransientServiceError } from '../core/errors.ts';

/**
 * Throttling, 5xx and network errors of an AWS service (Glue, CloudWatch) are worth a retry
 * (`TransientServiceError`); anything else (access denied, bad input) passes through as terminal.
 */
export function mapServiceError(error: unknown, what: string): unknown {
  const meta =
    (error as { $metadata?: { httpStatusCode?: number }; $retryable?: unknown; name?: string }) ?? {};
  const status = meta.$metadata?.httpStatusCode ?? 0;
  if (
    meta.$retryable ||
    status >= 500 ||
    status === 429 ||
    meta.name === 'ThrottlingException' ||
    status === 0
  ) {
    return new TransientServiceError(`${what}: ${(error as Error).message}`, { cause: error });
  }
  return error;
}
