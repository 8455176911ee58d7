/**
 * What `backups list` and `--backup ID|latest` tell an operator: every backup of a policy with its time,
 * tables, rows, bytes, consistency and expiry; one without a manifest (a run that failed or is still running)
 * or with an unreadable one listed as incomplete and never chosen as `latest`; an unknown id, an incomplete
 * one and a missing bucket each refused by name.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { backupKeys } from '../../functions/actions/backup/manifest.ts';
import {
  BackupIncompleteError,
  BackupNotFoundError,
  findBackup,
  listBackups,
} from '../../functions/actions/backup/restore/index.ts';
import { StorageConfigurationError } from '../../functions/core/errors.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';

const AT = (day: number) => new Date(Date.UTC(2026, 10, day, 1, 0, 0));

let ids: { oldest: string; good: string; broken: string; failed: string; weekly: string };

beforeAll(async ({ database, s3, bucket }) => {
  await database.pool.query(`CREATE TABLE items (id int PRIMARY KEY, name text);
    INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 700) g;`);
  const take = (policy: string, day: number, options: { manifest?: boolean } = {}) =>
    writeTestBackup({
      db: database,
      s3,
      bucket,
      policy,
      tables: ['public.items'],
      at: AT(day),
      retentionDays: 30,
      ...options,
    });
  const oldest = await take('daily', 20);
  const good = await take('daily', 21);
  const broken = await take('daily', 22);
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: backupKeys('daily', broken.backupId).manifest,
      Body: '{"formatVersion": 1',
    }),
  );
  // The newest: its run stopped before writing the manifest.
  const failed = await take('daily', 23, { manifest: false });
  const weekly = await take('weekly', 21);
  ids = {
    oldest: oldest.backupId,
    good: good.backupId,
    broken: broken.backupId,
    failed: failed.backupId,
    weekly: weekly.backupId,
  };
});

describe('listBackups', () => {
  it('lists every backup of the policy, oldest first, incomplete ones with the reason', async ({
    s3,
    bucket,
  }) => {
    const backups = await listBackups(s3, bucket, { policy: 'daily' });

    expect(backups.map((b) => [b.backupId, b.status, b.reason])).toEqual([
      [ids.oldest, 'complete', undefined],
      [ids.good, 'complete', undefined],
      [ids.broken, 'incomplete', 'unreadable-manifest'],
      [ids.failed, 'incomplete', 'no-manifest'],
    ]);
    expect(backups[1]).toMatchObject({
      policy: 'daily',
      time: '2026-11-21T01:00:00.000Z',
      tables: 1,
      rows: 700,
      consistency: 'snapshot',
      retentionDays: 30,
      expiresAt: '2026-12-22T00:00:00.000Z',
    });
    expect(backups[1]?.bytes).toBeGreaterThan(0);
    expect(backups[2]?.problem).toMatch(/not JSON/);
    expect(backups[3]).toMatchObject({
      time: '2026-11-23T01:00:00Z',
      problem: expect.stringMatching(/no manifest.json/),
    });
  });

  it('lists every policy’s backups without --policy', async ({ s3, bucket }) => {
    const backups = await listBackups(s3, bucket);

    expect(backups.map((b) => `${b.policy}/${b.backupId}`)).toEqual([
      `daily/${ids.oldest}`,
      `daily/${ids.good}`,
      `daily/${ids.broken}`,
      `daily/${ids.failed}`,
      `weekly/${ids.weekly}`,
    ]);
  });

  it('says the bucket is missing', async ({ s3 }) => {
    await expect(listBackups(s3, 'no-such-bucket-pg-lifecycle', { policy: 'daily' })).rejects.toThrow(
      StorageConfigurationError,
    );
  });
});

describe('findBackup', () => {
  it('takes the newest complete backup for latest, passing over incomplete ones', async ({ s3, bucket }) => {
    expect((await findBackup(s3, bucket, 'daily', 'latest')).backupId).toBe(ids.good);
  });

  it('refuses an unknown id, an incomplete one, and a policy without a complete backup, by name', async ({
    s3,
    bucket,
  }) => {
    await expect(findBackup(s3, bucket, 'daily', '20261101T000000Z-00000000')).rejects.toMatchObject({
      name: 'BackupNotFoundError',
      message: `no backup 20261101T000000Z-00000000 under s3://${bucket}/backup/daily/ (newest: ${[ids.failed, ids.broken, ids.good, ids.oldest].join(', ')})`,
    });
    await expect(findBackup(s3, bucket, 'daily', ids.failed)).rejects.toThrow(BackupIncompleteError);
    await expect(findBackup(s3, bucket, 'daily', '../weekly')).rejects.toThrow(/is not a backup id/);
    await expect(findBackup(s3, bucket, 'monthly', 'latest')).rejects.toThrow(BackupNotFoundError);
    await expect(findBackup(s3, bucket, 'monthly', 'latest')).rejects.toThrow(
      `no backup of policy "monthly" under s3://${bucket}/backup/monthly/`,
    );
  });
});
