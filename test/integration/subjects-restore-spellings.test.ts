/**
 * A restore of an older backup never resurrects an erased subject, whatever spelling the request used: the
 * erasure matched rows by `key_column = $1::text::<type>` (the cast normalizes the key text), and it records the
 * HMAC of the key's canonical text in that type, which the restore compares with HMAC(key_column::text) — an
 * upper-case uuid or '042' for a numeric key is erased live and stays erased after the restore.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { restoreBackup } from '../../functions/actions/backup/restore/index.ts';
import { loadErasureReplay } from '../../functions/actions/subjects/erasure-replay.ts';
import { createSubjectRequest } from '../../functions/actions/subjects/requests.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW, type RunPolicy } from '../support/fixture.ts';

const KEY = 'review replay key';
const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e';

async function seed(db: TestDatabase): Promise<void> {
  await migrateLedger(db);
  await db.pool.query(`
    DROP SCHEMA IF EXISTS rv CASCADE; CREATE SCHEMA rv; DELETE FROM lifecycle.subject_requests;
    CREATE TABLE rv.accounts (id uuid PRIMARY KEY, email text NOT NULL);
    CREATE TABLE rv.members (no numeric PRIMARY KEY, name text NOT NULL);
    INSERT INTO rv.accounts VALUES ('${UUID}', 'victim@mail.example');
    INSERT INTO rv.accounts SELECT gen_random_uuid(), 'other' || g || '@mail.example' FROM generate_series(1, 20) g;
    INSERT INTO rv.members SELECT g, 'member ' || g FROM generate_series(1, 50) g;`);
}

function policy(table: string, keyColumn: string) {
  return {
    name: 'gdpr',
    action: 'subjects',
    subjects: { keyName: 'subject', tables: [{ table, keyColumn, action: 'delete' }] },
  } as LifecycleConfigInput['policies'][number];
}

async function eraseThenRestore(
  fixture: { database: TestDatabase; runPolicy: RunPolicy; s3: S3Client; bucket: string },
  table: string,
  keyColumn: string,
  subjectKey: string,
): Promise<void> {
  const { database: db, runPolicy, s3, bucket } = fixture;
  const manifest = await writeTestBackup({ db, s3, bucket, policy: 'nightly', tables: ['rv.*'] });
  await createSubjectRequest(db.pool, {
    policy: 'gdpr',
    kind: 'erase',
    subjectKey,
    hashKey: KEY,
    dueDays: 30,
    requestedAt: new Date(NOW.getTime() - 60_000),
  });
  const count = async () =>
    Number((await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0]?.n);
  const before = await count();
  const run = await runPolicy(testConfig([policy(table, keyColumn)]), 'gdpr', { deps: { hashKey: KEY } });
  expect(run.status).toBe('succeeded');
  // The live erasure did delete the subject's row (the cast normalizes the key text).
  expect(await count()).toBe(before - 1);
  const client = await db.pool.connect();
  try {
    await restoreBackup({
      db: client,
      s3,
      bucket,
      manifest,
      mode: 'data-only',
      ifExists: 'truncate',
      erasures: await loadErasureReplay(client, manifest.startedAt, KEY),
    });
  } finally {
    client.release();
  }
}

describe('erasure replay after a restore', () => {
  it('does not resurrect a uuid subject whose erasure was requested in upper case', async ({
    database,
    runPolicy,
    s3,
    bucket,
  }) => {
    const db = database;
    const fixture = { database, runPolicy, s3, bucket };
    await seed(db);
    await eraseThenRestore(fixture, 'rv.accounts', 'id', UUID.toUpperCase());
    // The erasure itself worked on the live table (the cast normalizes the case)…
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM rv.accounts WHERE id = $1::uuid`,
      [UUID],
    );
    // …but the restore must not bring the subject back.
    expect(rows[0]?.n).toBe('0');
  });

  it("does not resurrect a numeric subject whose erasure was requested as '042'", async ({
    database,
    runPolicy,
    s3,
    bucket,
  }) => {
    const db = database;
    const fixture = { database, runPolicy, s3, bucket };
    await seed(db);
    await eraseThenRestore(fixture, 'rv.members', 'no', '042');
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM rv.members WHERE no = 42`,
    );
    expect(rows[0]?.n).toBe('0');
  });
});
