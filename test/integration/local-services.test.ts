import { createHash, randomBytes } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '../support/database.ts';
import { createTestBucket, listAllKeys, testS3Client } from '../support/s3.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('local PostgreSQL', () => {
  it('gives each test database its own catalog, and drop() removes it', async () => {
    const [first, second] = await Promise.all([
      createTestDatabase('isolation_a'),
      createTestDatabase('isolation_b'),
    ]);
    const names: string[] = [];
    try {
      await first.pool.query('CREATE TABLE only_in_first (id bigint)');
      const visible = async (pool: pg.Pool) => {
        const { rows } = await pool.query<{ name: string; present: boolean }>(
          "SELECT current_database() AS name, to_regclass('public.only_in_first') IS NOT NULL AS present",
        );
        names.push(rows[0]?.name ?? '');
        return rows[0]?.present;
      };
      expect(await visible(first.pool)).toBe(true);
      expect(await visible(second.pool)).toBe(false);
      expect(names[0]).not.toBe(names[1]);
    } finally {
      await Promise.all([first.drop(), second.drop()]);
    }

    const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
    await admin.connect();
    try {
      const { rows } = await admin.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [names]);
      expect(rows).toEqual([]);
    } finally {
      await admin.end();
    }
  });
});

describe('local S3', () => {
  const client = testS3Client();
  afterAll(() => client.destroy());

  it('round-trips a 1 MiB random object byte for byte', async () => {
    const bucket = await createTestBucket('round-trip');
    const body = randomBytes(1024 * 1024);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'data/blob.bin', Body: body }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'other/ignored.bin', Body: 'x' }));

    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'data/blob.bin' }));
    const read = await response.Body?.transformToByteArray();

    expect(read?.byteLength).toBe(body.byteLength);
    expect(sha256(read ?? new Uint8Array())).toBe(sha256(body));
    expect(await listAllKeys(client, bucket, 'data/')).toEqual(['data/blob.bin']);
  });
});
