/**
 * A restored backup never brings an erased subject back: a backup taken before an erasure, restored over the
 * live tables afterwards, comes back without the subject's rows (deleted again) and with its masked columns
 * masked again — done from the erasure's proof and the subject's keyed hash (the ledger no longer holds the key),
 * children first, after every table is loaded and before the restore reports success. Without the hash key such
 * a restore is refused before anything is written.
 */
import { restoreBackup } from '../../functions/actions/backup/restore/index.ts';
import { loadErasureReplay } from '../../functions/actions/subjects/erasure-replay.ts';
import { createSubjectRequest } from '../../functions/actions/subjects/requests.ts';
import { resolveClientConfig, withClient } from '../../functions/commons/database.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

const KEY = 'restore replay key';

async function seed(db: TestDatabase): Promise<void> {
  await migrateLedger(db);
  await db.pool.query(`
    DROP SCHEMA IF EXISTS crm CASCADE; CREATE SCHEMA crm; DELETE FROM lifecycle.subject_requests;
    CREATE TABLE crm.people (id bigint PRIMARY KEY, email text NOT NULL);
    CREATE TABLE crm.notes (id serial PRIMARY KEY, person bigint REFERENCES crm.people (id) ON DELETE SET NULL, body text);
    INSERT INTO crm.people SELECT g, 'p' || g || '@mail.example' FROM generate_series(1, 50) g;
    INSERT INTO crm.notes (person, body) SELECT 1 + g % 50, 'about p' || (1 + g % 50) FROM generate_series(1, 200) g;`);
}

const policy = {
  name: 'gdpr',
  action: 'subjects',
  subjects: {
    keyName: 'person_id',
    tables: [
      { table: 'crm.people', keyColumn: 'id', action: 'delete' },
      {
        table: 'crm.notes',
        keyColumn: 'person',
        action: 'anonymize',
        anonymize: { columns: { body: { strategy: 'fixed', value: '[erased]' } } },
      },
    ],
  },
} as LifecycleConfigInput['policies'][number];

async function subjectRows(db: TestDatabase): Promise<{ people: number; notes: number }> {
  const { rows } = await db.pool.query<{ people: string; notes: string }>(
    `SELECT (SELECT count(*) FROM crm.people WHERE id = 7)::text AS people,
            (SELECT count(*) FROM crm.notes WHERE body = 'about p7')::text AS notes`,
  );
  return { people: Number(rows[0]?.people), notes: Number(rows[0]?.notes) };
}

describe('restoring a backup taken before an erasure', () => {
  it('erases the subject again before it reports success', async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    // Prepare: back up, then erase subject 7.
    await seed(db);
    const manifest = await writeTestBackup({ db, s3, bucket, policy: 'nightly', tables: ['crm.*'] });
    await createSubjectRequest(db.pool, {
      policy: 'gdpr',
      kind: 'erase',
      subjectKey: '7',
      hashKey: KEY,
      dueDays: 30,
      requestedAt: new Date(NOW.getTime() - 60_000),
    });
    expect((await runPolicy(testConfig([policy]), 'gdpr', { deps: { hashKey: KEY } })).status).toBe(
      'succeeded',
    );
    expect(await subjectRows(db)).toEqual({ people: 0, notes: 0 });

    // Act: the old backup over the live tables, on a connection set up as `pg-lifecycle restore` sets it up
    // (every type read as text).
    const result = await withClient(await resolveClientConfig({ DATABASE_URL: db.url }), async (client) =>
      restoreBackup({
        db: client,
        s3,
        bucket,
        manifest,
        mode: 'data-only',
        ifExists: 'truncate',
        erasures: await loadErasureReplay(client, manifest.startedAt, KEY),
      }),
    );

    // Assess: the rest restored, subject 7 not.
    expect(await subjectRows(db)).toEqual({ people: 0, notes: 0 });
    expect(result.tables.map((t) => [t.target, t.rows, t.erased])).toEqual([
      ['"crm"."people"', 50, 1],
      ['"crm"."notes"', 200, 4],
    ]);
    const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM crm.people`);
    expect(rows[0]?.n).toBe('49');
  });

  it('is refused without the hash key before anything is written', async ({ database: db, runPolicy }) => {
    await seed(db);
    await createSubjectRequest(db.pool, {
      policy: 'gdpr',
      kind: 'erase',
      subjectKey: '9',
      hashKey: KEY,
      dueDays: 30,
      requestedAt: new Date(NOW.getTime() - 60_000),
    });
    await runPolicy(testConfig([policy]), 'gdpr', { deps: { hashKey: KEY } });

    await expect(loadErasureReplay(db.pool, new Date(0).toISOString(), undefined)).rejects.toThrow(
      /1 erasures completed since this backup was taken must be done again/,
    );
  });
  it('lists in the proof each backup that still holds the subject, with the day it expires', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: a real backup run of the mapped tables, kept 30 days, then an erasure.
    await seed(db);
    const nightly = {
      name: 'nightly',
      action: 'backup',
      backup: { tables: ['crm.*'], compression: 'gzip', level: 1, retentionDays: 30 },
    } as LifecycleConfigInput['policies'][number];
    const backup = await runPolicy(testConfig([nightly, policy]), 'nightly');
    expect(backup.status).toBe('succeeded');
    await createSubjectRequest(db.pool, {
      policy: 'gdpr',
      kind: 'erase',
      subjectKey: '11',
      hashKey: KEY,
      dueDays: 30,
      requestedAt: new Date(NOW.getTime() - 60_000),
    });

    // Act
    await runPolicy(testConfig([nightly, policy]), 'gdpr', { deps: { hashKey: KEY } });

    // Assess
    const { rows } = await db.pool.query<{ backups: Array<Record<string, string>> }>(
      `SELECT proof->'backups' AS backups FROM lifecycle.subject_requests WHERE status = 'completed'`,
    );
    const listed = rows[0]?.backups ?? [];
    expect(listed.map((b) => [b.policy, b.backupId])).toEqual([
      ['nightly', backup.summary?.backup?.backupId],
    ]);
    const days = (Date.parse(listed[0]?.expiresAt ?? '') - Date.parse(listed[0]?.takenAt ?? '')) / 86_400_000;
    expect(days).toBe(30);
  });
});
