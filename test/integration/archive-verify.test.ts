/** `pg-lifecycle verify`: an independent audit of the archive against the ledger finds tampering and loss. */
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { verifyArchiveRun } from '../../bin/local/verify-archive.ts';
import { ledgerObjects, readObject, testConfig } from '../support/archive.ts';
import { seedEvents } from '../support/archive-guarantees.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';
import { testS3Client } from '../support/s3.ts';

describe('archive verification', () => {
  it('passes on an intact archive and names each changed, missing or unlisted object', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
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
    const result = await runPolicy(config, 'audited');
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

describe('verification of objects in cold storage', () => {
  it('checks Glacier / Deep Archive objects by their attributes instead of reading them, and says so', async ({
    database: db,
    bucket,
    runPolicy,
  }) => {
    // Prepare: a real archive; then a client that reports two of its objects in cold storage classes, as
    // S3 lists them after a lifecycle transition. fauxqs 1.9.2 has no storage classes (it lists everything
    // as STANDARD) and no GetObjectAttributes (it answers with the object's bytes), so the listing's class
    // and the attributes answer (size and full-object SHA-256, as S3 keeps them for a single PUT with
    // ChecksumSHA256) are filled in here; listing the bucket and reading the other objects are real.
    await seedEvents(db.pool, 'cold_events', 1500, NOW);
    const config = testConfig([
      {
        name: 'cold',
        table: 'public.cold_events',
        action: 'archive',
        timeColumn: 'created_at',
        retention: 'P90D',
      },
    ]);
    await runPolicy(config, 'cold');
    const objects = await ledgerObjects(db.pool);
    const [deep, tiered, ...rest] = objects.filter((o) => o.key.startsWith('archive/cold/'));
    if (!deep || !tiered || rest.length === 0) throw new Error('expected at least three objects');
    const attributes = new Map<string, { size: number; sha256: string }>(
      [deep, tiered].map((o) => [o.key, { size: o.bytes, sha256: o.sha256 }]),
    );
    const reads: string[] = [];
    const client = testS3Client();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        if (context.commandName === 'GetObjectAttributesCommand') {
          const object = attributes.get(input.Key ?? '');
          const output = {
            ObjectSize: object?.size,
            Checksum: {
              ChecksumSHA256: Buffer.from(object?.sha256 ?? '', 'hex').toString('base64'),
              ChecksumType: 'FULL_OBJECT',
            },
            StorageClass: input.Key === deep.key ? 'DEEP_ARCHIVE' : 'INTELLIGENT_TIERING',
            $metadata: {},
          };
          return { response: {}, output } as never;
        }
        if (context.commandName === 'GetObjectCommand') {
          reads.push(input.Key ?? '');
          // Intelligent-Tiering's archive tiers list as INTELLIGENT_TIERING and refuse a read.
          if (input.Key === tiered.key)
            throw Object.assign(new Error('The operation is not valid for the object storage class'), {
              name: 'InvalidObjectState',
            });
        }
        const result = await next(args);
        if (context.commandName === 'ListObjectsV2Command') {
          const output = result.output as { Contents?: Array<{ Key?: string; StorageClass?: string }> };
          for (const item of output.Contents ?? [])
            if (item.Key === deep.key) item.StorageClass = 'DEEP_ARCHIVE';
        }
        return result;
      },
      { step: 'initialize', name: 'coldStorage' },
    );

    // Act
    const intact = await verifyArchiveRun(db.pool, client, bucket, { policy: 'cold' });
    attributes.set(deep.key, { size: deep.bytes + 1, sha256: deep.sha256 });
    const resized = await verifyArchiveRun(db.pool, client, bucket, { policy: 'cold' });
    client.destroy();

    // Assess
    expect(intact).toMatchObject({ ok: true, problems: [] });
    expect(intact.checkedByAttributes).toEqual([
      { key: deep.key, storageClass: 'DEEP_ARCHIVE', compared: 'sha256' },
      { key: tiered.key, storageClass: 'INTELLIGENT_TIERING', compared: 'sha256' },
    ]);
    expect(intact.rowsInColdObjects).toBe(deep.rows + tiered.rows);
    expect(intact.rowsInObjects).toBe(rest.reduce((sum, o) => sum + o.rows, 0));
    expect(reads).not.toContain(deep.key);
    expect(resized.ok).toBe(false);
    expect(resized.problems).toEqual([`${deep.key}: ${deep.bytes + 1} bytes, ledger says ${deep.bytes}`]);
  });
});
