/** The S3 object store against a real S3 API server: integrity checks that do not trust the server. */
import { randomBytes } from 'node:crypto';
import {
  HeadObjectCommand,
  type ObjectLockConfiguration,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareAttributes,
  isColdStorageClass,
  MULTIPART_THRESHOLD_BYTES,
  S3_SINGLE_PUT_MAX_BYTES,
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

/**
 * A client of the local S3 server that records every request it sends and answers the Object Lock requests
 * itself: fauxqs 1.9.2 has no Object Lock (it keeps no lock configuration and would store a
 * PutObjectRetention body as the object) and no versions. GetObjectLockConfiguration returns `lockConfiguration`;
 * PutObjectRetention is recorded, never sent; a HEAD's real answer gets the version id a versioned bucket reports.
 */
function objectLockClient(lockConfiguration: ObjectLockConfiguration = { ObjectLockEnabled: 'Enabled' }) {
  const requests: Array<{ command: string; input: Record<string, unknown> }> = [];
  const client = testS3Client();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      requests.push({ command: context.commandName ?? '', input: args.input as Record<string, unknown> });
      if (context.commandName === 'GetObjectLockConfigurationCommand')
        return {
          response: {},
          output: { $metadata: {}, ObjectLockConfiguration: lockConfiguration },
        } as never;
      if (context.commandName === 'PutObjectRetentionCommand')
        return { response: {}, output: { $metadata: {} } } as never;
      const result = await next(args);
      if (context.commandName !== 'HeadObjectCommand') return result;
      return { ...result, output: { ...(result.output as object), VersionId: 'version-checked' } } as never;
    },
    { step: 'initialize', name: 'answerObjectLock' },
  );
  const sent = (command: string) => requests.filter((r) => r.command === command).map((r) => r.input);
  return { client, sent };
}

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
    // The policy-scoped check (a listing of its prefix, what the Start function's grant allows) alike.
    await expect(store.checkBucket({ prefix: 'archive/p/' })).rejects.toMatchObject({
      name: 'StorageConfigurationError',
    });
  });

  it('checks the bucket by listing the policy prefix, and refuses objectLock on a bucket without Object Lock', async () => {
    // Prepare: fauxqs 1.9.2 accepts CreateBucket with Object Lock but keeps no lock configuration, like a
    // bucket created without it.
    const store = new S3ObjectStore(s3, bucket);

    // Act / Assess
    await expect(store.checkBucket({ prefix: 'archive/p/' })).resolves.toBeUndefined();
    await expect(store.checkBucket({ prefix: 'archive/p/', objectLock: true })).rejects.toThrow(
      `bucket ${bucket} has no S3 Object Lock enabled: the policy's objectLock cannot lock its objects`,
    );
  });

  it('accepts a bucket with Object Lock enabled and refuses one whose default retention would lock every upload', async () => {
    // Prepare: the bucket's lock configuration as S3 reports it (see objectLockClient).
    const enabled = objectLockClient();
    const defaulted = objectLockClient({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } },
    });

    // Act / Assess: orphans of rolled-back chunks must stay deletable.
    await expect(
      new S3ObjectStore(enabled.client, bucket).checkBucket({ prefix: 'archive/p/', objectLock: true }),
    ).resolves.toBeUndefined();
    const refused = new S3ObjectStore(defaulted.client, bucket).checkBucket({
      prefix: 'archive/p/',
      objectLock: true,
    });
    await expect(refused).rejects.toMatchObject({
      name: 'StorageConfigurationError',
      message: expect.stringContaining(
        `bucket ${bucket} has an S3 Object Lock default retention rule (COMPLIANCE, 30 days)`,
      ),
    });
    expect(defaulted.sent('GetObjectLockConfigurationCommand')).toEqual([{ Bucket: bucket }]);
    enabled.client.destroy();
    defaulted.client.destroy();
  });

  it('uploads in one PUT up to singlePutMaxBytes (the Lambdas: S3 keeps the full-object SHA-256), in parts above', async () => {
    // Prepare: 9 MiB, above the 8 MiB default and below fauxqs' 11 MiB single-PUT limit.
    const body = new Uint8Array(randomBytes(9 * 1024 * 1024));
    const sha256 = sha256Hex(body);
    const single = new S3ObjectStore(s3, bucket, { singlePutMaxBytes: S3_SINGLE_PUT_MAX_BYTES });
    const parts = new S3ObjectStore(s3, bucket);

    // Act
    await single.put('archive/t/single.parquet', body, sha256, {});
    await parts.put('archive/t/parts.parquet', body, sha256, {});

    // Assess: a multipart ETag ends in -<parts>.
    const etag = async (key: string) =>
      (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag;
    expect(await etag('archive/t/single.parquet')).not.toMatch(/-\d+"$/);
    expect(await etag('archive/t/parts.parquet')).toMatch(/-2"$/);
    for (const key of ['archive/t/single.parquet', 'archive/t/parts.parquet'])
      expect(sha256Hex(await readObject(s3, bucket, key))).toBe(sha256);
  });

  it("refuses to lock an object that is not the ledger's, before any lock call, and leaves it as it is", async () => {
    // Prepare: other bytes under the key than the ledger recorded; and a key with no object at all.
    const { client, sent } = objectLockClient();
    const store = new S3ObjectStore(client, bucket);
    const body = new Uint8Array(randomBytes(40_000));
    const sha256 = sha256Hex(body);
    const key = 'archive/t/replaced.parquet';
    const other = new Uint8Array(randomBytes(40_001));
    await store.put(key, other, sha256Hex(other), {});
    const retention = { mode: 'COMPLIANCE' as const, until: new Date('2036-01-01T00:00:00Z') };

    // Act / Assess
    await expect(store.retain({ key, bytes: body.byteLength, sha256 }, retention)).rejects.toMatchObject({
      name: 'ArchiveObjectMismatchError',
      message: expect.stringContaining('not locked, S3 holds other bytes (length 40001 != 40000)'),
    });
    await expect(
      store.retain({ key: 'archive/t/gone.parquet', bytes: 1, sha256 }, retention),
    ).rejects.toMatchObject({
      name: 'ArchiveObjectMismatchError',
      message: expect.stringContaining('missing'),
    });
    client.destroy();
    expect(sent('HeadObjectCommand')).toHaveLength(2);
    expect(sent('PutObjectRetentionCommand')).toEqual([]);
    expect(sha256Hex(await readObject(s3, bucket, key))).toBe(sha256Hex(other));
  });

  it('locks the exact version it checked, with the mode and date asked for', async () => {
    // Prepare: the lock request is answered by objectLockClient instead of sent, and the real HEAD's answer
    // gets a version id; the upload and the check against the ledger are real.
    const { client, sent } = objectLockClient();
    const store = new S3ObjectStore(client, bucket);
    const body = new Uint8Array(randomBytes(30_000));
    const sha256 = sha256Hex(body);
    const key = 'archive/t/locked.parquet';
    await store.put(key, body, sha256, {});
    const until = new Date('2036-01-01T00:00:00Z');

    // Act
    await store.retain({ key, bytes: body.byteLength, sha256 }, { mode: 'GOVERNANCE', until });
    client.destroy();

    // Assess
    expect(sent('PutObjectRetentionCommand')).toEqual([
      {
        Bucket: bucket,
        Key: key,
        VersionId: 'version-checked',
        Retention: { Mode: 'GOVERNANCE', RetainUntilDate: until },
      },
    ]);
  });
});

describe('checking an object by its attributes (cold storage, no read)', () => {
  const object = { key: 'archive/p/a.parquet', bytes: 1234, sha256: 'ab'.repeat(32) };
  const fullObject = Buffer.from(object.sha256, 'hex').toString('base64');

  it.each([
    ['STANDARD', false],
    ['STANDARD_IA', false],
    ['GLACIER_IR', false],
    ['INTELLIGENT_TIERING', false],
    ['GLACIER', true],
    ['DEEP_ARCHIVE', true],
    [undefined, false],
  ])('%s needs a restore before a read: %s', (storageClass, cold) => {
    expect(isColdStorageClass(storageClass)).toBe(cold);
  });

  it.each([
    [
      'size and full-object SHA-256 match',
      { ObjectSize: 1234, Checksum: { ChecksumSHA256: fullObject, ChecksumType: 'FULL_OBJECT' as const } },
      { compared: 'sha256', problems: [] },
    ],
    [
      'the SHA-256 differs',
      { ObjectSize: 1234, Checksum: { ChecksumSHA256: Buffer.alloc(32).toString('base64') } },
      { compared: 'sha256', problems: [`${object.key}: S3's SHA-256 differs from the ledger`] },
    ],
    [
      'the size differs',
      { ObjectSize: 99, Checksum: { ChecksumSHA256: fullObject } },
      { compared: 'sha256', problems: [`${object.key}: 99 bytes, ledger says 1234`] },
    ],
    [
      'a multipart upload (composite checksum)',
      {
        ObjectSize: 1234,
        Checksum: { ChecksumSHA256: `${fullObject}-3`, ChecksumType: 'COMPOSITE' as const },
      },
      { compared: 'size only', problems: [] },
    ],
    ['no checksum at all', { ObjectSize: 1234 }, { compared: 'size only', problems: [] }],
  ])('%s', (_name, attributes, expected) => {
    // Act
    const check = compareAttributes(object, { ...attributes, StorageClass: 'DEEP_ARCHIVE' });

    // Assess
    expect(check).toEqual({ storageClass: 'DEEP_ARCHIVE', ...expected });
  });
});
