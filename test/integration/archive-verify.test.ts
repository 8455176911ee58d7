/** `pg-lifecycle verify`: an independent audit of the archive against the ledger finds tampering and loss. */
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyArchiveRun } from '../../bin/local/verify-archive.ts';
import { ledgerObjects, readObject, runLocally, testConfig } from '../support/archive.ts';
import { seedEvents } from '../support/archive-guarantees.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createTestBucket, testS3Client } from '../support/s3.ts';

let db: TestDatabase;
let s3: S3Client;
let bucket: string;
const NOW = new Date('2026-11-23T12:00:00.000Z');

beforeAll(async () => {
  db = await createTestDatabase('archive_verify');
  s3 = testS3Client();
  bucket = await createTestBucket('archive-verify');
});
afterAll(async () => {
  s3?.destroy();
  await db?.drop();
});

describe('archive verification', () => {
  it('passes on an intact archive and names each changed, missing or unlisted object', async () => {
    // Prepare
    await seedEvents(db.pool, 'events', 1500, NOW);
    const rowsBefore = Number((await db.pool.query('SELECT count(*) AS n FROM public.events')).rows[0].n);
    const config = testConfig([
      {
        name: 'audited',
        table: 'public.events',
        action: 'archive',
        timeColumn: 'created_at',
        retention: 'P90D',
      },
    ]);
    const result = await runLocally({
      config,
      policyName: 'audited',
      deps: { databaseUrl: db.url, bucket, s3, now: () => NOW },
    });
    const rowsAfter = Number((await db.pool.query('SELECT count(*) AS n FROM public.events')).rows[0].n);
    const runId = result.summary?.runId as string;

    // Act / Assess: intact.
    const intact = await verifyArchiveRun(db.pool, s3, bucket, {
      policy: 'audited',
      runId,
      rowsBefore,
      rowsAfter,
    });
    expect(intact).toMatchObject({ ok: true, problems: [], rowsInObjects: rowsBefore - rowsAfter });

    // Prepare: flip one byte of one object (same length), delete another, drop a stray object under the prefix.
    const [first, second] = await ledgerObjects(db.pool, runId);
    if (!first || !second) throw new Error('expected at least two objects');
    const body = await readObject(s3, bucket, first.key);
    body[10] = (body[10] ?? 0) ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: first.key, Body: body }));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: second.key }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'archive/audited/stray.parquet', Body: 'x' }));

    // Act
    const tampered = await verifyArchiveRun(db.pool, s3, bucket, { policy: 'audited' });

    // Assess
    expect(tampered.ok).toBe(false);
    const report = tampered.problems.join('\n');
    expect(report).toContain(`${first.key}: SHA-256 differs from the ledger`);
    expect(report).toContain(`${second.key}: in the ledger but not in S3`);
    expect(report).toContain('archive/audited/stray.parquet: in S3 but not in the ledger (orphan)');
  });
});
