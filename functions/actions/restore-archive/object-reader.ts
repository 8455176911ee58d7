/**
 * Reads one archive object and proves it is the one the ledger lists (length and SHA-256) before anything
 * decodes it. An archive object is one chunk's rows (at most the policy's maxChunkBytes of row text), so it is
 * read whole.
 */
import { GetObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mapS3Error, sha256Hex } from '../../adapters/archive-store.ts';
import { ArchivedObjectIntegrityError } from './errors.ts';
import type { ListedObject } from './ledger.ts';

export interface VerifiedObject {
  readonly body: Uint8Array;
  readonly versionId: string | undefined;
  readonly etag: string | undefined;
}

export async function readVerifiedObject(
  s3: S3Client,
  object: Pick<ListedObject, 'bucket' | 'key' | 'bytes' | 'sha256'>,
): Promise<VerifiedObject> {
  let body: Uint8Array;
  let versionId: string | undefined;
  let etag: string | undefined;
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: object.bucket, Key: object.key }));
    if (!response.Body) throw new ArchivedObjectIntegrityError(`${object.key}: S3 returned no body`);
    body = await response.Body.transformToByteArray();
    versionId = response.VersionId;
    etag = response.ETag;
  } catch (error) {
    if (error instanceof ArchivedObjectIntegrityError) throw error;
    if (error instanceof S3ServiceException && error.name === 'NoSuchKey') {
      throw new ArchivedObjectIntegrityError(
        `${object.key}: listed in the ledger but not in s3://${object.bucket} (deleted or expired)`,
        { cause: error },
      );
    }
    if (error instanceof S3ServiceException && error.name === 'InvalidObjectState') {
      throw new ArchivedObjectIntegrityError(
        `${object.key}: in a cold storage class (Glacier Flexible Retrieval / Deep Archive) and not restored; ` +
          'restore it in S3 first (RestoreObject), then run restore-archive again',
        { cause: error },
      );
    }
    throw mapS3Error(error, `reading ${object.key}`);
  }
  if (body.byteLength !== object.bytes) {
    throw new ArchivedObjectIntegrityError(
      `${object.key}: ${body.byteLength} bytes in S3, the ledger lists ${object.bytes}; nothing of it was restored`,
    );
  }
  if (sha256Hex(body) !== object.sha256) {
    throw new ArchivedObjectIntegrityError(
      `${object.key}: SHA-256 differs from the ledger's; nothing of it was restored`,
    );
  }
  return { body, versionId, etag };
}
