/**
 * Restore drills as the on-call relies on them: a good backup passes (every table's rows and content checksum
 * equal to the manifest, the recovery time measured), a damaged one fails, and a backup whose parts are
 * intact but hold other rows than it claims fails on the checksum; each drill is recorded in
 * lifecycle.restore_drills and its scratch schema is gone afterwards, whatever happened.
 */

import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type BackupManifest, backupKeys } from '../../functions/actions/backup/manifest.ts';
import { restoreDrillsLedger, runDrill } from '../../functions/actions/backup/restore/index.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';

beforeAll(async ({ database }) => {
  await migrateLedger(database);
  await database.pool.query(`
    CREATE TABLE customers (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
    INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 1200) g;
    CREATE TABLE orders (id bigserial PRIMARY KEY, customer int NOT NULL REFERENCES customers (id), total numeric);
    INSERT INTO orders (customer, total) SELECT 1 + g % 1200, g / 7.0 FROM generate_series(1, 2400) g;`);
});

async function drill(database: TestDatabase, s3: S3Client, bucket: string, policy: string) {
  const client = await database.pool.connect();
  try {
    return await runDrill({ db: client, s3, bucket, policy, ledger: restoreDrillsLedger(client) });
  } finally {
    client.release();
  }
}

async function recorded(database: TestDatabase, drillId: string) {
  const { rows } = await database.pool.query<{
    status: string;
    duration_ms: string;
    tables: unknown;
    error: string | null;
    finished: boolean;
  }>(
    `SELECT status, duration_ms::text, tables, error, finished_at IS NOT NULL AS finished
       FROM lifecycle.restore_drills WHERE drill_id = $1`,
    [drillId],
  );
  return rows[0];
}

async function drillSchemas(database: TestDatabase): Promise<string[]> {
  const { rows } = await database.pool.query<{ nspname: string }>(
    `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pgl_drill_%'`,
  );
  return rows.map((r) => r.nspname);
}

async function getBytes(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await (result.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array())));
}

describe('a drill of a good backup', () => {
  it('passes, records the measured time and every table as expected = found, and drops its schema', async ({
    database,
    s3,
    bucket,
  }) => {
    // Prepare
    const manifest = await writeTestBackup({
      db: database,
      s3,
      bucket,
      policy: 'good',
      tables: ['public.*'],
    });

    // Act
    const result = await drill(database, s3, bucket, 'good');

    // Assess
    expect(result).toMatchObject({
      status: 'passed',
      backupId: manifest.backupId,
      scratchDropped: true,
      error: undefined,
    });
    expect(result.tables).toEqual(
      manifest.tables.map((t) => ({
        table: t.table,
        expected: { rows: t.rows, contentChecksum: t.contentChecksum },
        found: { rows: t.rows, contentChecksum: t.contentChecksum },
        ok: true,
      })),
    );
    const row = await recorded(database, result.drillId);
    expect(row).toMatchObject({ status: 'passed', error: null, finished: true, tables: result.tables });
    expect(Number(row?.duration_ms)).toBeGreaterThan(0);
    expect(await drillSchemas(database)).toEqual([]);
  });
});

describe('a drill of a damaged backup', () => {
  it('fails, is recorded as failed with the reason, and leaves no scratch schema', async ({
    database,
    s3,
    bucket,
  }) => {
    // Prepare: a flipped byte in a part.
    const manifest = await writeTestBackup({
      db: database,
      s3,
      bucket,
      policy: 'damaged',
      tables: ['public.*'],
    });
    const key = manifest.tables[1]?.parts[0]?.key as string;
    const bytes = await getBytes(s3, bucket, key);
    bytes[20] = (bytes[20] as number) ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));

    // Act
    const result = await drill(database, s3, bucket, 'damaged');

    // Assess
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/^BackupDamagedError: .*SHA-256 differs/);
    expect(result.tables.every((t) => t.found === null && !t.ok)).toBe(true);
    expect(await recorded(database, result.drillId)).toMatchObject({ status: 'failed', error: result.error });
    expect(await drillSchemas(database)).toEqual([]);
  });
});

describe('a drill of a backup whose parts hold other rows than it claims', () => {
  it('fails on the content checksum of that table, records what it found, and drops the schema it made', async ({
    database,
    s3,
    bucket,
  }) => {
    // Prepare: one value changed in a part, the part re-uploaded and the manifest given its new SHA-256 and
    // length — intact bytes, same row count, other content.
    const manifest = await writeTestBackup({
      db: database,
      s3,
      bucket,
      policy: 'altered',
      tables: ['public.*'],
    });
    const orders = manifest.tables.find((t) => t.table === '"public"."orders"');
    const part = orders?.parts[0];
    if (!orders || !part) throw new Error('no orders part');
    const text = gunzipSync(await getBytes(s3, bucket, part.key)).toString('utf8');
    const altered = gzipSync(Buffer.from(text.replace(/\n1\t2\t/, '\n1\t3\t')));
    expect(altered.length).toBeGreaterThan(0);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: part.key, Body: altered }));
    const edited: BackupManifest = {
      ...manifest,
      tables: manifest.tables.map((t) =>
        t !== orders
          ? t
          : {
              ...t,
              bytes: t.bytes - part.bytes + altered.length,
              parts: t.parts.map((p) =>
                p !== part
                  ? p
                  : {
                      ...p,
                      bytes: altered.length,
                      sha256: createHash('sha256').update(altered).digest('hex'),
                    },
              ),
            },
      ),
    };
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: backupKeys('altered', manifest.backupId).manifest,
        Body: JSON.stringify(edited),
      }),
    );

    // Act
    const result = await drill(database, s3, bucket, 'altered');

    // Assess
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(
      /RestoreIncompleteError: .*RestoreCheckError: "pgl_drill_\w+"."orders": the restored rows are not the backed-up ones/,
    );
    const [customers, ordersResult] = result.tables;
    expect(customers).toMatchObject({ table: '"public"."customers"', ok: true });
    expect(ordersResult).toMatchObject({
      table: '"public"."orders"',
      ok: false,
      found: { rows: orders.rows, contentChecksum: expect.not.stringMatching(orders.contentChecksum) },
    });
    expect(await recorded(database, result.drillId)).toMatchObject({
      status: 'failed',
      tables: result.tables,
    });
    expect(await drillSchemas(database)).toEqual([]);
    expect(result.scratchDropped).toBe(true);
  });
});

describe('a drill after one was killed', () => {
  it('drops the scratch copy the killed drill left and records it failed', async ({
    database,
    s3,
    bucket,
  }) => {
    // Prepare: a drill that started two hours ago and never finished (its Lambda timed out mid-restore).
    await writeTestBackup({ db: database, s3, bucket, policy: 'killed', tables: ['public.*'] });
    const killed = '0b1d5eed-0000-4000-8000-000000000001';
    await database.pool.query(
      `INSERT INTO lifecycle.restore_drills (drill_id, policy, backup_id, started_at)
       VALUES ($1, 'killed', 'x', clock_timestamp() - interval '2 hours');
       CREATE SCHEMA pgl_drill_0b1d5eed; CREATE TABLE pgl_drill_0b1d5eed.customers AS SELECT * FROM customers;`.replace(
        /\$1/,
        `'${killed}'`,
      ),
    );

    // Act
    const result = await drill(database, s3, bucket, 'killed');

    // Assess
    expect(result.status).toBe('passed');
    expect(await drillSchemas(database)).toEqual([]);
    expect(await recorded(database, killed)).toMatchObject({
      status: 'failed',
      finished: true,
      error: `never finished (killed); its scratch schema was dropped by drill ${result.drillId}`,
    });
  });
});

describe('a drill of a table whose foreign key references a table outside the backup', () => {
  it('passes while a live writer holds the referenced table, and names the key it did not recreate', async ({
    database,
    s3,
    bucket,
  }) => {
    // Prepare: orders only; customers stays outside the backup and a writer holds it (ROW EXCLUSIVE, as any
    // INSERT does), which the SHARE ROW EXCLUSIVE lock of ADD FOREIGN KEY would have to wait for.
    const manifest = await writeTestBackup({
      db: database,
      s3,
      bucket,
      policy: 'orders-only',
      tables: ['public.orders'],
    });
    const writer = await database.pool.connect();
    try {
      await writer.query('BEGIN');
      await writer.query('LOCK TABLE customers IN ROW EXCLUSIVE MODE');

      // Act
      const client = await database.pool.connect();
      let result: Awaited<ReturnType<typeof runDrill>>;
      try {
        result = await runDrill({
          db: client,
          s3,
          bucket,
          policy: 'orders-only',
          ledger: restoreDrillsLedger(client),
          lockTimeoutMs: 200,
        });
      } finally {
        client.release();
      }

      // Assess
      expect(result).toMatchObject({ status: 'passed', error: undefined, scratchDropped: true });
      const omitted =
        'restore --into-schema and drills: foreign key "public"."orders" "orders_customer_fkey" → "public"."customers" ' +
        '(a table outside the backup) is not recreated, so a restore next to the original never locks or reads the live table';
      expect(manifest.notIncluded).toContain(omitted);
      expect(result.caveats).toContain(omitted);
    } finally {
      await writer.query('ROLLBACK');
      writer.release();
    }
  });
});
