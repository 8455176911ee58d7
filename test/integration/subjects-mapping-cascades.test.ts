/**
 * Erasure deletes the subject's rows and nothing else: a foreign key into a table erasure deletes from that is not
 * made by the key column (a child referencing the parent by another column, a self-reference) would cascade into
 * rows of other subjects, so a mapping with such a CASCADE / SET NULL reference is refused before anything changes.
 */
import { createSubjectRequest, listSubjectRequests } from '../../functions/actions/subjects/requests.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

const KEY = 'review mapping key';

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

function policy(tables: unknown) {
  return {
    name: 'gdpr',
    action: 'subjects',
    subjects: { keyName: 'user_id', tables },
  } as LifecycleConfigInput['policies'][number];
}

async function count(db: TestDatabase, sql: string): Promise<number> {
  return Number((await db.pool.query<{ n: string }>(`SELECT (${sql})::text AS n`)).rows[0]?.n);
}

describe('subject erasure: foreign keys the mapping does not really cover', () => {
  it('does not delete other subjects’ comments on the erased author’s posts (child references parent by another column)', async ({
    database: db,
    runPolicy,
  }) => {
    await migrateLedger(db);
    await db.pool.query(`
      DROP SCHEMA IF EXISTS blog CASCADE; CREATE SCHEMA blog;
      CREATE TABLE blog.posts (id int PRIMARY KEY, author bigint NOT NULL, body text);
      -- comments are mapped by their own author; they reference the post by post_id, not by the key.
      CREATE TABLE blog.comments (id int PRIMARY KEY, author bigint NOT NULL,
                                  post_id int NOT NULL REFERENCES blog.posts (id) ON DELETE CASCADE, body text);
      INSERT INTO blog.posts VALUES (1, 42, 'post by 42'), (2, 7, 'post by 7');
      INSERT INTO blog.comments VALUES (10, 42, 1, 'by 42 on own post'), (11, 7, 1, 'by 7 on 42s post'),
                                       (12, 8, 1, 'by 8 on 42s post'), (13, 42, 2, 'by 42 on 7s post');`);
    const erase = await request(db, '42');

    const result = await runPolicy(
      testConfig([
        policy([
          { table: 'blog.posts', keyColumn: 'author', action: 'delete' },
          { table: 'blog.comments', keyColumn: 'author', action: 'delete' },
        ]),
      ]),
      'gdpr',
      { deps: { hashKey: KEY } },
    );

    // Refused at Start (comments reference posts by post_id, not by the key column), nothing changed:
    // comments 11 and 12 belong to subjects 7 and 8.
    const done = (await listSubjectRequests(db.pool, 'gdpr')).find((r) => r.requestId === erase.requestId);
    const othersLeft = await count(db, `SELECT count(*) FROM blog.comments WHERE author <> 42`);
    expect(result.failure?.error).toBe('CatalogError');
    expect(result.failure?.cause).toContain('would cascade into rows of other subjects');
    expect({ request: done?.status, othersLeft }).toEqual({ request: 'pending', othersLeft: 2 });
  });

  it('does not cascade into other users through a self-reference (users.referred_by → users.id)', async ({
    database: db,
    runPolicy,
  }) => {
    await migrateLedger(db);
    await db.pool.query(`
      DROP SCHEMA IF EXISTS app CASCADE; CREATE SCHEMA app;
      CREATE TABLE app.users (id bigint PRIMARY KEY, referred_by bigint REFERENCES app.users (id) ON DELETE CASCADE,
                              email text);
      INSERT INTO app.users VALUES (42, NULL, 'a@x'), (43, 42, 'b@x'), (44, 43, 'c@x'), (45, NULL, 'd@x');`);
    const erase = await request(db, '42');

    const result = await runPolicy(
      testConfig([policy([{ table: 'app.users', keyColumn: 'id', action: 'delete' }])]),
      'gdpr',
      { deps: { hashKey: KEY } },
    );

    const done = (await listSubjectRequests(db.pool, 'gdpr')).find((r) => r.requestId === erase.requestId);
    const left = await count(db, `SELECT count(*) FROM app.users`);
    // Refused before anything changes: users 43 and 44 are other subjects the cascade would take.
    expect(result.failure?.cause).toContain('"app"."users" references "app"."users"');
    expect({ status: result.status, request: done?.status, left }).toEqual({
      status: 'failed',
      request: 'pending',
      left: 4,
    });
  });
});
