/**
 * Archive objects in S3. Integrity is ours to prove: the SHA-256 is computed locally, sent so that S3
 * verifies it on receipt, stored in object metadata and the ledger, and checked again after the upload
 * (length + checksum from HEAD, or a full read-back) before the chunk's rows may be deleted. Committed
 * objects can be locked (S3 Object Lock) after a check that S3 still holds the ledger's bytes, and objects
 * in cold storage classes are checked by their attributes (size, full-object SHA-256) instead of a read.
 */
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectAttributesCommand,
  type GetObjectAttributesCommandOutput,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  type ObjectLockConfiguration,
  PutObjectCommand,
  PutObjectRetentionCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  ArchiveObjectMismatchError,
  LifecycleError,
  StorageConfigurationError,
  TransientStorageError,
} from '../core/errors.ts';
import { deleteEveryVersion } from './object-versions.ts';
import { mapS3Error } from './s3-errors.ts';

export { mapS3Error } from './s3-errors.ts';

/**
 * Default largest single PUT: bodies above it go up in parts. S3 takes 5 GiB in one PUT, local servers and
 * proxies often far less; the Lambdas raise it to {@link S3_SINGLE_PUT_MAX_BYTES}.
 */
export const MULTIPART_THRESHOLD_BYTES = 8 * 1024 * 1024;

/**
 * S3's largest single PUT. In one PUT, S3 checks and keeps the full-object SHA-256 we send; a multipart
 * upload keeps only a checksum of the parts' checksums, which cannot be compared with the ledger's SHA-256
 * when a cold object is checked without reading it (see {@link S3ObjectStore.checkByAttributes}).
 */
export const S3_SINGLE_PUT_MAX_BYTES = 5 * 1024 * 1024 * 1024;

/** Storage classes whose objects cannot be read without a restore (Glacier Flexible Retrieval, Deep Archive). */
const COLD_STORAGE_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'DEEP_ARCHIVE']);

/** An object in this storage class must be restored before GetObject can read it. */
export function isColdStorageClass(storageClass: string | undefined): boolean {
  return storageClass !== undefined && COLD_STORAGE_CLASSES.has(storageClass);
}

/** What to check of the bucket before a run touches a row. */
export interface BucketCheck {
  /** List under this prefix (the policy's) instead of HeadBucket, which needs ListBucket on the whole bucket. */
  readonly prefix?: string;
  /** The bucket must have S3 Object Lock enabled and no default retention (the policy locks its listed objects). */
  readonly objectLock?: boolean;
}

/** An S3 Object Lock retention. */
export interface Retention {
  readonly mode: 'GOVERNANCE' | 'COMPLIANCE';
  readonly until: Date;
}

/** What GetObjectAttributes told about an object compared with the ledger. */
export interface AttributesCheck {
  readonly storageClass: string;
  /** `sha256`: S3's full-object SHA-256 matched the ledger's; `size only`: S3 holds no comparable checksum. */
  readonly compared: 'sha256' | 'size only';
  readonly problems: string[];
}

export type VerifyMode = 'head' | 'read-back';

export interface StoredObject {
  readonly key: string;
  readonly bytes: number;
  readonly sha256: string;
}

export function sha256Hex(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The operations a chunk needs; tests wrap it to inject faults. */
export interface ObjectStore {
  readonly bucket: string;
  /**
   * The S3 client under the store, for writers that stream (a backup part's multipart upload of unknown
   * length); absent from stores that are not S3.
   */
  readonly s3Client?: S3Client;
  /** Fails with StorageConfigurationError when the bucket is missing, not accessible or not as `check` needs. */
  checkBucket(check?: BucketCheck): Promise<void>;
  put(key: string, body: Uint8Array, sha256: string, metadata: Record<string, string>): Promise<void>;
  verify(object: StoredObject, mode: VerifyMode): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Deletes every stored version and delete marker of `key`, then checks nothing of it is left: in a versioned
   * bucket a plain {@link delete} only hides the bytes behind a delete marker, and they stay readable by
   * VersionId until the noncurrent-version expiry. Without versioning it is the plain delete.
   * @returns how many versions were deleted (1 for the plain delete of an unversioned object)
   */
  deleteEveryVersion(key: string): Promise<number>;
  /**
   * Locks the object S3 holds under `object.key`, after checking it is the ledger's (length, SHA-256), until
   * `retention.until`. Absent from stores that cannot lock; a policy with objectLock then fails.
   */
  retain?(object: StoredObject, retention: Retention): Promise<void>;
}

/** Options of an {@link S3ObjectStore}. */
export interface S3ObjectStoreOptions {
  /** Bodies above this go up in parts. @default MULTIPART_THRESHOLD_BYTES */
  readonly singlePutMaxBytes?: number;
}

export class S3ObjectStore implements ObjectStore {
  private readonly singlePutMaxBytes: number;
  readonly s3Client: S3Client;

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    options: S3ObjectStoreOptions = {},
  ) {
    this.s3Client = client;
    this.singlePutMaxBytes = Math.min(
      options.singlePutMaxBytes ?? MULTIPART_THRESHOLD_BYTES,
      S3_SINGLE_PUT_MAX_BYTES,
    );
  }

  /** Fails with StorageConfigurationError when the bucket is missing or not ours; run before any delete. */
  async checkBucket(check: BucketCheck = {}): Promise<void> {
    try {
      // A listing of one key under the prefix proves the bucket exists and is ours to use, with a grant
      // bounded to the prefix (s3:prefix condition); HeadBucket needs ListBucket on every key.
      await this.client.send(
        check.prefix === undefined
          ? new HeadBucketCommand({ Bucket: this.bucket })
          : new ListObjectsV2Command({ Bucket: this.bucket, Prefix: check.prefix, MaxKeys: 1 }),
      );
    } catch (error) {
      throw mapS3Error(error, `bucket ${this.bucket}`);
    }
    if (check.objectLock) await this.checkObjectLockEnabled();
  }

  /**
   * Object Lock must be enabled, with no default retention rule: a default retention locks every PUT on
   * upload, before the ledger lists it, so the orphan of a rolled-back chunk could not be removed (under
   * COMPLIANCE by nobody until the date passes).
   */
  private async checkObjectLockEnabled(): Promise<void> {
    let configuration: ObjectLockConfiguration | undefined;
    try {
      const result = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket }));
      configuration = result.ObjectLockConfiguration;
    } catch (error) {
      if ((error as Error).name !== 'ObjectLockConfigurationNotFoundError')
        throw mapS3Error(error, `bucket ${this.bucket}`);
    }
    if (configuration?.ObjectLockEnabled !== 'Enabled') {
      throw new StorageConfigurationError(
        `bucket ${this.bucket} has no S3 Object Lock enabled: the policy's objectLock cannot lock its objects ` +
          '(enable Object Lock on the bucket, or remove objectLock from the policy)',
      );
    }
    const rule = configuration.Rule?.DefaultRetention;
    if (rule) {
      const period = rule.Years !== undefined ? `${rule.Years} years` : `${rule.Days ?? '?'} days`;
      throw new StorageConfigurationError(
        `bucket ${this.bucket} has an S3 Object Lock default retention rule (${rule.Mode ?? '?'}, ${period}): ` +
          'it would lock every upload, the orphans of rolled-back chunks included, before the ledger lists it ' +
          "(remove the bucket's default retention; the policy's objectLock locks each listed object)",
      );
    }
  }

  async put(key: string, body: Uint8Array, sha256: string, metadata: Record<string, string>): Promise<void> {
    try {
      if (body.byteLength > this.singlePutMaxBytes) {
        // Each part is checksummed by S3; the whole-object SHA-256 stays ours (metadata + verify).
        await new Upload({
          client: this.client,
          partSize: MULTIPART_THRESHOLD_BYTES,
          queueSize: 2,
          leavePartsOnError: false,
          params: {
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentType: 'application/vnd.apache.parquet',
            ChecksumAlgorithm: 'SHA256',
            Metadata: { ...metadata, sha256 },
          },
        }).done();
        return;
      }
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: body.byteLength,
          ContentType: 'application/vnd.apache.parquet',
          ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
          Metadata: { ...metadata, sha256 },
        }),
      );
    } catch (error) {
      throw mapS3Error(error, `upload of ${key}`);
    }
  }

  async verify(object: StoredObject, mode: VerifyMode): Promise<void> {
    const problem = mode === 'head' ? await this.verifyByHead(object) : await this.verifyByReadBack(object);
    if (problem) throw new TransientStorageError(`verification of ${object.key} failed: ${problem}`);
  }

  private async verifyByHead(object: StoredObject): Promise<string | undefined> {
    let head: HeadObjectCommandOutput;
    try {
      head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: object.key, ChecksumMode: 'ENABLED' }),
      );
    } catch (error) {
      throw mapS3Error(error, `verification of ${object.key}`);
    }
    // Full-object SHA-256 from S3 itself when it has one (multipart uploads report a composite instead).
    return headMismatch(head, object);
  }

  private async verifyByReadBack(object: StoredObject): Promise<string | undefined> {
    try {
      const result = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: object.key }));
      const body = await result.Body?.transformToByteArray();
      if (!body) return 'empty body';
      if (body.byteLength !== object.bytes) return `length ${body.byteLength} != ${object.bytes}`;
      if (sha256Hex(body) !== object.sha256) return 'content sha256 does not match';
      return undefined;
    } catch (error) {
      throw mapS3Error(error, `read-back of ${object.key}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      throw mapS3Error(error, `delete of ${key}`);
    }
  }

  async deleteEveryVersion(key: string): Promise<number> {
    try {
      return await deleteEveryVersion(this.client, this.bucket, key);
    } catch (error) {
      // The adapter maps S3's errors itself (mapS3Error); anything else is mapped here.
      if (error instanceof LifecycleError) throw error;
      throw mapS3Error(error, `delete of every version of ${key}`);
    }
  }

  async retain(object: StoredObject, retention: Retention): Promise<void> {
    let head: HeadObjectCommandOutput;
    try {
      head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: object.key, ChecksumMode: 'ENABLED' }),
      );
    } catch (error) {
      if ((error as Error).name === 'NotFound' || (error as Error).name === 'NoSuchKey')
        throw new ArchiveObjectMismatchError(
          `${object.key}: listed in the ledger but missing from the bucket`,
        );
      throw mapS3Error(error, `lock of ${object.key}`);
    }
    const problem = headMismatch(head, object);
    if (problem)
      throw new ArchiveObjectMismatchError(`${object.key}: not locked, S3 holds other bytes (${problem})`);
    try {
      // The version just checked, not whatever is current when the call lands.
      await this.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.bucket,
          Key: object.key,
          VersionId: head.VersionId,
          Retention: { Mode: retention.mode, RetainUntilDate: retention.until },
        }),
      );
    } catch (error) {
      // 400: the bucket has no Object Lock (InvalidRequest); retrying cannot help.
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 400)
        throw new StorageConfigurationError(`lock of ${object.key}: ${error.name} (400)`, { cause: error });
      throw mapS3Error(error, `lock of ${object.key}`);
    }
  }

  /**
   * Checks an object without reading it (GetObjectAttributes: size, checksum, storage class), for objects in
   * cold storage classes that GetObject cannot read without a restore.
   */
  async checkByAttributes(object: StoredObject): Promise<AttributesCheck> {
    let attributes: GetObjectAttributesCommandOutput;
    try {
      attributes = await this.client.send(
        new GetObjectAttributesCommand({
          Bucket: this.bucket,
          Key: object.key,
          ObjectAttributes: ['ObjectSize', 'Checksum', 'StorageClass'],
        }),
      );
    } catch (error) {
      throw mapS3Error(error, `attributes of ${object.key}`);
    }
    return compareAttributes(object, attributes);
  }
}

/** Why a HEAD response is not the ledger's object (undefined when it is). */
function headMismatch(head: HeadObjectCommandOutput, object: StoredObject): string | undefined {
  if (head.ContentLength !== object.bytes) return `length ${head.ContentLength} != ${object.bytes}`;
  if (head.Metadata?.sha256 !== object.sha256) return 'sha256 metadata does not match';
  const expected = Buffer.from(object.sha256, 'hex').toString('base64');
  if (head.ChecksumSHA256 && !head.ChecksumSHA256.includes('-') && head.ChecksumSHA256 !== expected)
    return 'S3 checksum does not match';
  return undefined;
}

/**
 * GetObjectAttributes against the ledger: the size always; the SHA-256 when S3 keeps a full-object one (a
 * single PUT with ChecksumSHA256). A multipart upload's checksum (`<base64>-<parts>`, type COMPOSITE) is a
 * checksum of the parts' checksums and cannot be compared; such an object is checked by size only.
 */
export function compareAttributes(
  object: StoredObject,
  attributes: Pick<GetObjectAttributesCommandOutput, 'ObjectSize' | 'Checksum' | 'StorageClass'>,
): AttributesCheck {
  const problems: string[] = [];
  if (attributes.ObjectSize !== object.bytes)
    problems.push(`${object.key}: ${attributes.ObjectSize ?? 'unknown'} bytes, ledger says ${object.bytes}`);
  const checksum = attributes.Checksum?.ChecksumSHA256;
  const fullObject =
    checksum !== undefined && !checksum.includes('-') && attributes.Checksum?.ChecksumType !== 'COMPOSITE';
  if (fullObject && checksum !== Buffer.from(object.sha256, 'hex').toString('base64'))
    problems.push(`${object.key}: S3's SHA-256 differs from the ledger`);
  return {
    storageClass: attributes.StorageClass ?? 'STANDARD',
    compared: fullObject ? 'sha256' : 'size only',
    problems,
  };
}
