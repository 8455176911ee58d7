/**
 * Archive objects in S3. Integrity is ours to prove: the SHA-256 is computed locally, sent so that S3
 * verifies it on receipt, stored in object metadata and the ledger, and checked again after the upload
 * (length + checksum from HEAD, or a full read-back) before the chunk's rows may be deleted.
 */
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StorageConfigurationError, TransientStorageError } from '../core/errors.ts';

/** Bodies above this go up in parts (S3 allows 5 GB in one PUT, but local servers and proxies often far less). */
export const MULTIPART_THRESHOLD_BYTES = 8 * 1024 * 1024;

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
  /** Fails with StorageConfigurationError when the bucket is missing or not accessible. */
  checkBucket(): Promise<void>;
  put(key: string, body: Uint8Array, sha256: string, metadata: Record<string, string>): Promise<void>;
  verify(object: StoredObject, mode: VerifyMode): Promise<void>;
  delete(key: string): Promise<void>;
}

export class S3ObjectStore implements ObjectStore {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
  ) {}

  /** Fails with StorageConfigurationError when the bucket is missing or not ours; run before any delete. */
  async checkBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      throw mapS3Error(error, `bucket ${this.bucket}`);
    }
  }

  async put(key: string, body: Uint8Array, sha256: string, metadata: Record<string, string>): Promise<void> {
    try {
      if (body.byteLength > MULTIPART_THRESHOLD_BYTES) {
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
    if (head.ContentLength !== object.bytes) return `length ${head.ContentLength} != ${object.bytes}`;
    if (head.Metadata?.sha256 !== object.sha256) return 'sha256 metadata does not match';
    const expected = Buffer.from(object.sha256, 'hex').toString('base64');
    // Full-object SHA-256 from S3 itself when it has one (multipart uploads report a composite instead).
    if (head.ChecksumSHA256 && !head.ChecksumSHA256.includes('-') && head.ChecksumSHA256 !== expected) {
      return 'S3 checksum does not match';
    }
    return undefined;
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
}

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
