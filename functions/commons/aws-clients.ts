/**
 * Timeouts for every AWS client of the handlers. The SDK's default is to wait forever: a VPC without a route
 * to S3, Secrets Manager or Glue would then hang each step until the Lambda timeout, instead of failing
 * fast with a retryable error that names the service.
 */
export const AWS_CLIENT_TIMEOUTS = {
  requestHandler: {
    /** Establishing the TCP/TLS connection. */
    connectionTimeout: 5_000,
    /** Socket inactivity while a request or response is in flight (not the whole transfer). */
    requestTimeout: 60_000,
  },
  maxAttempts: 3,
} as const;
