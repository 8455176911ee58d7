import { S3Client } from '@aws-sdk/client-s3';
import { AWS_CLIENT_TIMEOUTS } from './aws-clients.ts';

/**
 * The S3 client. The SDK reads AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL itself; a custom endpoint means a
 * local S3 server, which needs path-style addressing (no wildcard DNS for bucket subdomains).
 */
export function createS3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  const localEndpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  return new S3Client({
    ...AWS_CLIENT_TIMEOUTS,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(localEndpoint ? { forcePathStyle: true } : {}),
  });
}
