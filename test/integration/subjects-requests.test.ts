/**
 * Subject requests beyond the happy path: a request inserted by the application with a wrong hash, a key that does
 * not fit the column (fails alone, the key nowhere in errors), and a subject's row held by
 * another session.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { createSubjectRequest, listSubjectRequests } from '../../functions/actions/subjects/requests.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

const KEY = 'review requests key';

async function seed(db: TestDatabase): Promise<void> {
  await migrateLedger(db);
  await db.pool.query(`
    DROP SCHEMA IF EXISTS rq CASCADE; CREATE SCHEMA rq; DELETE FROM lifecycle.subject_requests;
    CREATE TABLE rq.users (id bigint PRIMARY KEY, email text NOT NULL);
    INSERT INTO rq.users SELECT g, 'u' || g || '@mail.example' FROM generate_series(1, 50) g;`);
}

const policy = (chunking?: unknown) =>
  ({
    name: 'gdpr',
    action: 'subjects',
    ...(chunking ? { chunking } : {}),
    subjects: { keyName: 'user_id', tables: [{ table: 'rq.users', keyColumn: 'id', action: 'delete' }] },
  }) as LifecycleConfigInput['policies'][number];

async function request(db: TestDatabase, subjectKey: string) {
  return (
    await createSubjectRequest(db.pool, {
      policy: 'gdpr',
      kind: 'erase',
      subjectKey,
      hashKey: KEY,
      dueDays: 30,
      requestedAt: new Date(NOW.getTime() - 60_000),
    })
  ).request;
}

describe('subject requests made and processed', () => {
  it('replaces an application-inserted subject_hash that is not the HMAC of its key with the right one', async ({
    database: db,
    runPolicy,
  }) => {
    await seed(db);
    // The application hashed with the wrong key (or of the wrong text): the README lets it insert directly.
    const wrongHash = createHmac('sha256', 'some other key').update('5').digest('hex');
    const requestId = randomUUID();
    await db.pool.query(
      `INSERT INTO lifecycle.subject_requests (request_id, policy, kind, subject_hash, subject_key, requested_at, due_at)
       VALUES ($1, 'gdpr', 'erase', $2, '5', $3, $3::timestamptz + interval '30 days')`,
      [requestId, wrongHash, new Date(NOW.getTime() - 60_000).toISOString()],
    );

    await runPolicy(testConfig([policy()]), 'gdpr', { deps: { hashKey: KEY } });

    // A completed erasure whose hash does not identify its subject can never be replayed after a restore (the
    // key is cleared, only the wrong hash stays): the request must not complete with it.
    const done = (await listSubjectRequests(db.pool, 'gdpr')).find((r) => r.requestId === requestId);
    const rightHash = createHmac('sha256', KEY).update('5').digest('hex');
    expect(done?.status).toBe('completed');
    expect(done?.subjectHash).toBe(rightHash);
  });

  it('keeps a request pending, not failed, while another session holds the subject’s row', async ({
    database: db,
    runPolicy,
  }) => {
    await seed(db);
    const erase = await request(db, '42');
    const holder = await db.pool.connect();
    let result: Awaited<ReturnType<typeof runPolicy>>;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM rq.users WHERE id = 42 FOR UPDATE');
      const started = Date.now();
      result = await runPolicy(testConfig([policy({ lockTimeoutMs: 200 })]), 'gdpr', {
        deps: { hashKey: KEY },
      });
      expect(Date.now() - started).toBeLessThan(60_000);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    const done = (await listSubjectRequests(db.pool, 'gdpr')).find((r) => r.requestId === erase.requestId);
    expect(done?.status).toBe('pending');
    expect(await db.pool.query(`SELECT 1 FROM rq.users WHERE id = 42`)).toHaveProperty('rowCount', 1);
    expect(JSON.stringify(result)).not.toContain('u42@');
  });

  it('fails an out-of-range bigint key alone, without the key in the request error or the run result', async ({
    database: db,
    runPolicy,
  }) => {
    await seed(db);
    const huge = '98765432109876543210987';
    const bad = await request(db, huge);
    const good = await request(db, '3');
    const result = await runPolicy(testConfig([policy()]), 'gdpr', { deps: { hashKey: KEY } });
    expect(result.status).toBe('succeeded');
    const requests = await listSubjectRequests(db.pool, 'gdpr');
    const failed = requests.find((r) => r.requestId === bad.requestId);
    expect(failed?.status).toBe('failed');
    expect(failed?.error).not.toContain(huge);
    expect(JSON.stringify(result)).not.toContain(huge);
    expect(requests.find((r) => r.requestId === good.requestId)?.status).toBe('completed');
  });
});
