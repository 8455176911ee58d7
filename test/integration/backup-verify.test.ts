/**
 * A damaged backup is found, named, and never half restored: each corruption (a deleted part, a truncated
 * part, a flipped byte, an object the manifest does not list, a manifest edited) is reported by verifyBackup
 * under its own kind, and a restore of it fails before a single row is written (its target schema is never
 * created). A backup that is intact verifies clean against the bucket and the ledger.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type BackupManifest, backupKeys } from '../../functions/actions/backup/manifest.ts';
import {
  BackupDamagedError,
  BackupManifestError,
  findBackup,
  restoreBackup,
  verifyBackup,
} from '../../functions/actions/backup/restore/index.ts';
import { Ledger } from '../../functions/adapters/ledger/index.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';

const POLICY = 'verify-me';

beforeAll(async ({ database }) => {
  await migrateLedger(database);
  await database.pool.query(`
    CREATE SCHEMA shop;
    CREATE TABLE shop.items (id int PRIMARY KEY, name text NOT NULL, price numeric);
    INSERT INTO shop.items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 3000) g;
    CREATE TABLE shop.notes (body text);
    INSERT INTO shop.notes SELECT 'note ' || g FROM generate_series(1, 500) g;`);
});

async function backup(database: TestDatabase, s3: S3Client, bucket: string): Promise<BackupManifest> {
  const manifest = await writeTestBackup({
    db: database,
    s3,
    bucket,
    policy: POLICY,
    tables: ['shop.*'],
    ledger: true,
  });
  expect(manifest.tables.find((t) => t.table === '"shop"."items"')?.parts.length).toBeGreaterThan(2);
  return manifest;
}

async function getBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await (result.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array())));
}

async function putBytes(s3: S3Client, bucket: string, key: string, body: Buffer | string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** The second part of shop.items: a middle part, neither the first nor the last. */
function middlePart(manifest: BackupManifest) {
  const part = manifest.tables.find((t) => t.table === '"shop"."items"')?.parts[1];
  if (!part) throw new Error('no middle part');
  return part;
}

async function editManifest(
  s3: S3Client,
  bucket: string,
  manifest: BackupManifest,
  edit: (json: BackupManifest) => unknown,
): Promise<void> {
  const key = backupKeys(POLICY, manifest.backupId).manifest;
  const json = JSON.parse((await getBytes(s3, bucket, key)).toString('utf8')) as BackupManifest;
  await putBytes(s3, bucket, key, JSON.stringify(edit(json)));
}

const schemaExists = async (database: TestDatabase, schema: string) =>
  (await database.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1;

describe('verify --backup on an intact backup', () => {
  it('reads every part, counts its rows and agrees with the ledger', async ({ database, s3, bucket }) => {
    const manifest = await backup(database, s3, bucket);

    const result = await verifyBackup(
      s3,
      bucket,
      { policy: POLICY, backupId: manifest.backupId },
      {
        ledger: new Ledger(database.pool),
      },
    );

    expect(result).toMatchObject({ ok: true, problems: [], rowsCounted: 3500, ledger: 'checked' });
    expect(result.partsChecked).toBe(manifest.tables.reduce((n, t) => n + t.parts.length, 0));
  });
});

type Corruption = (context: { s3: S3Client; bucket: string; manifest: BackupManifest }) => Promise<void>;

const corruptions: Array<{
  name: string;
  corrupt: Corruption;
  /** The kinds verify must report (the ledger's view of the same damage included). */
  kinds: string[];
  /** What the restore fails with, before writing anything. */
  restoreError: RegExp;
}> = [
  {
    name: 'a deleted part',
    corrupt: async ({ s3, bucket, manifest }) => {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: middlePart(manifest).key }));
    },
    kinds: ['missing-part'],
    restoreError: /listed for "shop"."items", not in the bucket/,
  },
  {
    name: 'a truncated part',
    corrupt: async ({ s3, bucket, manifest }) => {
      const key = middlePart(manifest).key;
      const bytes = await getBytes(s3, bucket, key);
      await putBytes(s3, bucket, key, bytes.subarray(0, Math.floor(bytes.length / 2)));
    },
    kinds: ['part-length'],
    restoreError: /bytes in the bucket, the manifest lists/,
  },
  {
    name: 'a flipped byte',
    corrupt: async ({ s3, bucket, manifest }) => {
      const key = middlePart(manifest).key;
      const bytes = await getBytes(s3, bucket, key);
      const at = Math.floor(bytes.length / 2);
      bytes[at] = (bytes[at] as number) ^ 0x01;
      await putBytes(s3, bucket, key, bytes);
    },
    kinds: ['part-sha256'],
    restoreError: /SHA-256 differs from the manifest's/,
  },
  {
    name: 'a manifest whose part SHA-256 was edited',
    corrupt: ({ s3, bucket, manifest }) =>
      editManifest(s3, bucket, manifest, (m) => {
        const part = middlePart(m) as { sha256: string };
        part.sha256 = 'f'.repeat(64);
        return m;
      }),
    // SHA256SUMS still has the part's true SHA-256: it no longer matches the manifest either.
    kinds: ['part-sha256', 'ledger', 'part-list'],
    restoreError: /SHA-256 differs from the manifest's/,
  },
  {
    name: 'a manifest whose row counts were edited consistently',
    corrupt: ({ s3, bucket, manifest }) =>
      editManifest(s3, bucket, manifest, (m) => {
        const table = m.tables.find((t) => t.table === '"shop"."items"') as {
          rows: number;
          contentChecksum: string;
        };
        const part = middlePart(m) as { rows: number };
        part.rows += 1;
        table.rows += 1;
        table.contentChecksum = table.contentChecksum.replace(/^md5-64:\d+:/, `md5-64:${table.rows}:`);
        return m;
      }),
    kinds: ['part-rows', 'ledger'],
    restoreError: /holds \d+ rows, the manifest lists \d+/,
  },
];

describe.each(corruptions)('$name', ({ corrupt, kinds, restoreError }) => {
  it('is named by verify and fails the restore before anything is written', async ({
    database,
    s3,
    bucket,
  }) => {
    // Prepare
    const manifest = await backup(database, s3, bucket);
    await corrupt({ s3, bucket, manifest });
    const target = `restored_${manifest.backupId.slice(-8)}`;

    // Act
    const verification = await verifyBackup(
      s3,
      bucket,
      { policy: POLICY, backupId: manifest.backupId },
      {
        ledger: new Ledger(database.pool),
      },
    );
    const client = await database.pool.connect();
    let restoreFailure: unknown;
    try {
      await restoreBackup({
        db: client,
        s3,
        bucket,
        manifest: await findBackup(s3, bucket, POLICY, manifest.backupId),
        mode: 'full',
        intoSchema: target,
        ifExists: 'fail',
      });
    } catch (error) {
      restoreFailure = error;
    } finally {
      client.release();
    }

    // Assess
    expect(verification.ok).toBe(false);
    expect([...new Set(verification.problems.map((p) => p.kind))].sort()).toEqual([...kinds].sort());
    // Each problem is about the damaged part (or the list of parts that names it).
    const named = [middlePart(manifest).key, backupKeys(POLICY, manifest.backupId).checksums];
    expect(verification.problems.every((p) => named.includes(p.key ?? ''))).toBe(true);
    expect(restoreFailure).toBeInstanceOf(BackupDamagedError);
    expect((restoreFailure as Error).message).toMatch(restoreError);
    expect(await schemaExists(database, target)).toBe(false);
  });
});

describe('an object under the backup prefix that the manifest does not list', () => {
  it('is reported by verify; the restore reads only listed parts and succeeds', async ({
    database,
    s3,
    bucket,
  }) => {
    const manifest = await backup(database, s3, bucket);
    const stray = `${backupKeys(POLICY, manifest.backupId).base}data/shop.items/part-99999.sql.gz`;
    await putBytes(s3, bucket, stray, 'not a part');

    const verification = await verifyBackup(s3, bucket, manifest, { ledger: new Ledger(database.pool) });
    const client = await database.pool.connect();
    try {
      const result = await restoreBackup({
        db: client,
        s3,
        bucket,
        manifest,
        mode: 'full',
        intoSchema: `extra_${manifest.backupId.slice(-8)}`,
        ifExists: 'fail',
      });
      expect(result.tables.map((t) => t.rows)).toEqual([3000, 500]);
    } finally {
      client.release();
    }

    expect(verification.problems).toEqual([
      {
        kind: 'unlisted-object',
        key: stray,
        message: `${stray}: under the backup's prefix but not in its manifest (10 bytes)`,
      },
    ]);
  });
});

describe('a parts.txt listing a part the manifest does not hold', () => {
  it('is reported by verify: a shell restore would load it', async ({ database, s3, bucket }) => {
    const manifest = await backup(database, s3, bucket);
    const key = backupKeys(POLICY, manifest.backupId).partsList;
    await putBytes(
      s3,
      bucket,
      key,
      `${(await getBytes(s3, bucket, key)).toString('utf8')}data/shop.items/extra.sql.gz\n`,
    );

    const verification = await verifyBackup(s3, bucket, manifest);

    expect(verification.problems).toEqual([
      { kind: 'part-list', key, message: `${key}: does not list exactly the manifest's parts` },
    ]);
  });
});

describe('a manifest edited so it no longer adds up', () => {
  it('is reported by verify as the manifest, and no restore trusts it', async ({ database, s3, bucket }) => {
    const manifest = await backup(database, s3, bucket);
    await editManifest(s3, bucket, manifest, (m) => {
      (m.tables[0] as { rows: number }).rows += 5;
      return m;
    });

    const verification = await verifyBackup(s3, bucket, { policy: POLICY, backupId: manifest.backupId });

    expect(verification).toMatchObject({ ok: false, ledger: 'not-checked' });
    expect(verification.problems).toEqual([
      expect.objectContaining({
        kind: 'manifest',
        message: expect.stringMatching(/tables\.0\.rows: is \d+ but the parts hold/),
      }),
    ]);
    await expect(findBackup(s3, bucket, POLICY, manifest.backupId)).rejects.toThrow(BackupManifestError);
  });
});
