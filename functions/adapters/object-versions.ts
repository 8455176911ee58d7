/**
 * An object's every stored version, for an erasure: in a versioned bucket a plain DeleteObject only hides the
 * current version behind a delete marker, and the subject's rows would stay readable (GetObject with the old
 * VersionId) until the noncurrent-version expiry rule ran. So each version and delete marker of the exact key
 * is deleted by its VersionId; a bucket without versioning lists none, and the plain delete is the real one.
 */
import {
  DeleteObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectVersionsCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mapS3Error } from './s3-errors.ts';

/** What a rewrite must carry over to the new object, and the version it read. */
export interface ObjectHead {
  readonly versionId: string | undefined;
  readonly etag: string | undefined;
  /** STANDARD when S3 reports none. */
  readonly storageClass: string;
  readonly serverSideEncryption: HeadObjectCommandOutput['ServerSideEncryption'];
  readonly kmsKeyId: string | undefined;
  readonly bucketKeyEnabled: boolean | undefined;
  readonly contentType: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  /** The `x-amz-restore` header: a restore of a cold object requested or done. */
  readonly restore: string | undefined;
  /** Object Lock retention, when the version is locked. */
  readonly retainUntil: Date | undefined;
  /** An Object Lock legal hold is on. */
  readonly legalHold: boolean;
  readonly contentLength: number | undefined;
}

/** HEAD of `key`; undefined when there is no current version. */
export async function headObject(s3: S3Client, bucket: string, key: string): Promise<ObjectHead | undefined> {
  let head: HeadObjectCommandOutput;
  try {
    head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    if (error instanceof S3ServiceException && (error.name === 'NotFound' || error.name === 'NoSuchKey'))
      return undefined;
    throw mapS3Error(error, `HEAD ${key}`);
  }
  return {
    versionId: head.VersionId,
    etag: head.ETag,
    storageClass: head.StorageClass ?? 'STANDARD',
    serverSideEncryption: head.ServerSideEncryption,
    kmsKeyId: head.SSEKMSKeyId,
    bucketKeyEnabled: head.BucketKeyEnabled,
    contentType: head.ContentType,
    metadata: head.Metadata ?? {},
    restore: head.Restore,
    retainUntil: head.ObjectLockRetainUntilDate,
    legalHold: head.ObjectLockLegalHoldStatus === 'ON',
    contentLength: head.ContentLength,
  };
}

/** The VersionIds of `key` exactly (versions and delete markers); none in a bucket without versioning. */
export async function listVersionIds(s3: S3Client, bucket: string, key: string): Promise<string[]> {
  const ids: string[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  try {
    for (;;) {
      const page = await s3.send(
        new ListObjectVersionsCommand({
          Bucket: bucket,
          Prefix: key,
          KeyMarker: keyMarker,
          VersionIdMarker: versionMarker,
        }),
      );
      for (const entry of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        // The prefix also matches longer keys (x.parquet2): only the exact key is ours to delete. 'null' is the
        // version written before versioning was enabled, deleted by that id like any other.
        if (entry.Key === key && entry.VersionId) ids.push(entry.VersionId);
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
  } catch (error) {
    throw mapS3Error(error, `listing the versions of ${key}`);
  }
  return ids;
}

/**
 * Deletes every version and delete marker of `key`, then checks nothing of it is left.
 * @returns how many versions were deleted (1 for the plain delete of an unversioned object, 0 when none was there)
 * @throws TransientStorageError (via mapS3Error) when S3 refuses or a version is still listed (Object Lock)
 */
export async function deleteEveryVersion(s3: S3Client, bucket: string, key: string): Promise<number> {
  const ids = await listVersionIds(s3, bucket, key);
  if (ids.length === 0) {
    // S3 lists an unversioned bucket's objects too (VersionId 'null'): nothing listed is nothing stored. A server
    // without the versions API (the local one) lists nothing either way, so HEAD says whether a plain object is
    // there. A 403 there is S3 without s3:ListBucket on a missing key: the listing already said it is absent. No
    // DELETE for an absent key: in a versioned bucket it would add a delete marker, a version of its own.
    if (!(await headIfAllowed(s3, bucket, key))) return 0;
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      throw mapS3Error(error, `deleting ${key}`);
    }
    if (await headIfAllowed(s3, bucket, key))
      throw mapS3Error(new Error(`${key} is still stored after its deletion`), `deleting ${key}`);
    return 1;
  }
  try {
    for (const versionId of ids)
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  } catch (error) {
    throw mapS3Error(error, `deleting the versions of ${key}`);
  }
  // The listing is the proof (HEAD cannot see noncurrent versions, and a new one written meanwhile shows here).
  const left = await listVersionIds(s3, bucket, key);
  if (left.length > 0)
    throw mapS3Error(
      new Error(`${left.length} version(s) of ${key} are still stored after their deletion`),
      `deleting the versions of ${key}`,
    );
  return ids.length;
}

/** HEAD, with a 403 read as "not there" (only after a listing found nothing: see deleteEveryVersion). */
async function headIfAllowed(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if (error instanceof S3ServiceException) {
      if (error.name === 'NotFound' || error.name === 'NoSuchKey') return false;
      if (error.$metadata.httpStatusCode === 403) return false;
    }
    throw mapS3Error(error, `HEAD ${key}`);
  }
}
