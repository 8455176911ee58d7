/** The S3 object store against a real S3 API server: integrity checks that do not trust the server. */
import { randomBytes } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MULTIPART_THRESHOLD_BYTES,
  S3ObjectStore,
  sha256Hex,
} from '../../functions/adapters/archive-store.ts';
import { readObject } from '../support/archive.ts';
import { createTestBucket, testS3Client } from '../support/s3.ts';

let s3: S3Client;
let bucket: string;

beforeAll(async () => {
  s3 = testS3Client();
  bucket = await createTestBucket('store');
});
afterAll(() => s3?.destroy());

describe('S3 object store', () => {
  it.each([
    ['single PUT', 200_000],
    ['multipart', MULTIPART_THRESHOLD_BYTES * 2 + 12_345],
  ])('%s: uploads byte-exact and verifies by HEAD and by read-back', async (_label, size) => {
    // Prepare
    const store = new S3ObjectStore(s3, bucket);
    const body = new Uint8Array(randomBytes(size));
    const sha256 = sha256Hex(body);
    const key = `archive/t/${size}.parquet`;
    // Act
    await store.put(key, body, sha256, { rows: '1' });
    // Assess
    await store.verify({ key, bytes: body.byteLength, sha256 }, 'head');
    await store.verify({ key, bytes: body.byteLength, sha256 }, 'read-back');
    expect(sha256Hex(await readObject(s3, bucket, key))).toBe(sha256);
  });

  it('detects an object that differs from what was sent, whatever the server says', async () => {
    // Prepare: the server holds other bytes under the key (as after a corrupting proxy or a concurrent writer).
    const store = new S3ObjectStore(s3, bucket);
    const body = new Uint8Array(randomBytes(50_000));
    const sha256 = sha256Hex(body);
    const key = 'archive/t/corrupt.parquet';
    const other = new Uint8Array(body);
    other[100] = (other[100] ?? 0) ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: other, Metadata: { sha256 } }));
    // Act / Assess: same length and same claimed checksum metadata; only a read-back can tell.
    await expect(store.verify({ key, bytes: body.byteLength, sha256 }, 'read-back')).rejects.toThrow(
      /content sha256 does not match/,
    );
    await expect(store.verify({ key, bytes: body.byteLength + 1, sha256 }, 'head')).rejects.toMatchObject({
      name: 'TransientStorageError',
    });
  });

  it('reports a missing bucket as a configuration error', async () => {
    const store = new S3ObjectStore(s3, `missing-${Date.now()}`);
    await expect(store.checkBucket()).rejects.toMatchObject({ name: 'StorageConfigurationError' });
  });
});
