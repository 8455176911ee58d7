/** S3 helpers for tests, against the endpoint the global setup provides. */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';

/** A path-style client for `inject('s3Endpoint')` with dummy credentials (local servers accept any). */
export function testS3Client(): S3Client {
  return new S3Client({
    endpoint: inject('s3Endpoint'),
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    forcePathStyle: true,
  });
}

/** Creates a uniquely named bucket and returns its name. */
export async function createTestBucket(prefix = 'test'): Promise<string> {
  const cleanPrefix = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+/, '')
    .slice(0, 40);
  const bucket = `${cleanPrefix || 'test'}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const client = testS3Client();
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return bucket;
}

/** Every key in `bucket` (under `prefix`), across all ListObjectsV2 pages, in listing order. */
export async function listAllKeys(client: S3Client, bucket: string, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix })) {
    for (const object of page.Contents ?? []) {
      if (object.Key !== undefined) keys.push(object.Key);
    }
  }
  return keys;
}
