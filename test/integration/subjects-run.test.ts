/**
 * GDPR subject requests end to end: requests recorded (the key hashed), processed by the subjects policy through
 * the synthesized state machine with the real handlers against a real PostgreSQL and S3. Erasure deletes or
 * masks the subject's rows children first and nothing else; export writes the subject's rows to S3 as one JSON
 * document listed in the ledger; the proof holds counts and keys, never the subject's key or values; a reference
 * the mapping does not cover is refused before anything changes; a request that cannot be done fails alone.
 */

import { createHmac } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createSubjectRequest, listSubjectRequests } from '../../functions/actions/subjects/requests.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];
const KEY = 'test hash key for subjects';

async function seedShop(db: TestDatabase, ordersOnDelete = 'SET NULL'): Promise<void> {
  await migrateLedger(db);
  await db.pool.query(`
    DROP SCHEMA IF EXISTS shop CASCADE; CREATE SCHEMA shop;
    CREATE TABLE shop.users (id bigint PRIMARY KEY, email text NOT NULL, "Full Name" text);
    CREATE TABLE shop."User Sessions" (id serial PRIMARY KEY, user_id bigint NOT NULL REFERENCES shop.users (id), ip inet);
    CREATE TABLE shop.orders (id serial PRIMARY KEY, user_id bigint REFERENCES shop.users (id) ON DELETE ${ordersOnDelete},
                              total numeric(10,2) NOT NULL, note text);
    CREATE INDEX ON shop."User Sessions" (user_id); CREATE INDEX ON shop.orders (user_id);
    INSERT INTO shop.users SELECT g, 'user' || g || '@mail.example', 'Name ' || g FROM generate_series(1, 100) g;
    INSERT INTO shop."User Sessions" (user_id, ip) SELECT 1 + g % 100, ('10.0.' || g % 250 || '.1')::inet FROM generate_series(1, 400) g;
    INSERT INTO shop.orders (user_id, total, note) SELECT 1 + g % 100, g * 1.5, 'gift for user' || (1 + g % 100) FROM generate_series(1, 300) g;`);
}

function gdprPolicy(tables?: unknown): PolicyInput {
  return {
    name: 'gdpr',
    action: 'subjects',
    subjects: {
      keyName: 'user_id',
      tables: tables ?? [
        { table: 'shop.users', keyColumn: 'id', action: 'delete' },
        { table: 'shop."User Sessions"', keyColumn: 'user_id', action: 'delete' },
        {
          table: 'shop.orders',
          keyColumn: 'user_id',
          action: 'anonymize',
          anonymize: { columns: { note: { strategy: 'null' } } },
        },
      ],
    },
  } as PolicyInput;
}

async function request(db: TestDatabase, kind: 'erase' | 'export', subjectKey: string) {
  // Asked an hour before the fixture's clock, which the runs use.
  const requestedAt = new Date(NOW.getTime() - 3_600_000);
  const made = await createSubjectRequest(db.pool, {
    policy: 'gdpr',
    kind,
    subjectKey,
    hashKey: KEY,
    dueDays: 30,
    requestedAt,
  });
  return made.request;
}

async function tableText(db: TestDatabase): Promise<string> {
  const { rows } = await db.pool.query<{ t: string }>(
    `SELECT (SELECT string_agg(u::text, '|' ORDER BY id) FROM shop.users u) || '#' ||
            (SELECT string_agg(s::text, '|' ORDER BY id) FROM shop."User Sessions" s) || '#' ||
            (SELECT string_agg(o::text, '|' ORDER BY id) FROM shop.orders o) AS t`,
  );
  return rows[0]?.t ?? '';
}

describe('subject requests', () => {
  it('erases one subject children first, exports another to S3, and proves both without the key', async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    // Prepare
    await seedShop(db);
    const erase = await request(db, 'erase', '42');
    expect(await request(db, 'erase', '42')).toEqual(erase);
    const exported = await request(db, 'export', '7');
    const before = await db.pool.query<{ users: string; sessions: string; orders: string }>(
      `SELECT (SELECT count(*) FROM shop.users)::text AS users, (SELECT count(*) FROM shop."User Sessions")::text AS sessions,
              (SELECT count(*) FROM shop.orders WHERE user_id = 42)::text AS orders`,
    );

    // Act
    const result = await runPolicy(testConfig([gdprPolicy()]), 'gdpr', { deps: { hashKey: KEY } });

    // Assess: the run
    expect(result.status).toBe('succeeded');
    expect(result.summary?.chunks).toBe(2);
    // Erasure: user 42's rows gone or masked, everyone else's as they were.
    const after = await db.pool.query<Record<string, string>>(
      `SELECT (SELECT count(*) FROM shop.users)::text AS users, (SELECT count(*) FROM shop.users WHERE id = 42)::text AS u42,
              (SELECT count(*) FROM shop."User Sessions")::text AS sessions,
              (SELECT count(*) FROM shop."User Sessions" WHERE user_id = 42)::text AS s42,
              (SELECT count(*) FROM shop.orders WHERE user_id = 42)::text AS o42,
              (SELECT count(*) FROM shop.orders WHERE note = 'gift for user42')::text AS notes42,
              (SELECT count(*) FROM shop.orders WHERE note IS NULL)::text AS null_notes`,
    );
    expect(after.rows[0]).toEqual({
      users: String(Number(before.rows[0]?.users) - 1),
      u42: '0',
      sessions: String(Number(before.rows[0]?.sessions) - 4),
      s42: '0',
      o42: '0',
      notes42: '0',
      null_notes: before.rows[0]?.orders,
    });
    // The requests: completed, key forgotten, proof of counts.
    const requests = await listSubjectRequests(db.pool, 'gdpr');
    const erased = requests.find((r) => r.requestId === erase.requestId);
    expect(erased).toMatchObject({ status: 'completed', subjectKey: null, error: null });
    expect(erased?.subjectHash).toBe(createHmac('sha256', KEY).update('42').digest('hex'));
    // Children first (both reference users; among them the catalog's order), then the parent.
    const keyHash = createHmac('sha256', KEY).update('42').digest('hex');
    expect((erased?.proof as { tables: unknown[] } | undefined)?.tables).toEqual([
      { table: '"shop"."User Sessions"', action: 'delete', rows: 4, keyColumn: 'user_id', keyHash },
      {
        table: '"shop"."orders"',
        action: 'anonymize',
        rows: Number(before.rows[0]?.orders),
        keyColumn: 'user_id',
        columns: { '"note"': { strategy: 'null' } },
        keyHash,
      },
      { table: '"shop"."users"', action: 'delete', rows: 1, keyColumn: 'id', keyHash },
    ]);
    expect(JSON.stringify(requests)).not.toMatch(/user42@mail|"42"/);
    // Export: the subject's rows of every table, as stored, in the listed object.
    const done = requests.find((r) => r.requestId === exported.requestId);
    const proof = done?.proof as { export: { key: string; sha256: string; bytes: number } };
    expect(done?.status).toBe('completed');
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: proof.export.key }));
    const document = JSON.parse((await object.Body?.transformToString()) ?? '{}');
    expect(document.tables['"shop"."users"']).toEqual([
      { id: 7, email: 'user7@mail.example', 'Full Name': 'Name 7' },
    ]);
    expect(document.tables['"shop"."User Sessions"']).toHaveLength(4);
    expect(document.tables['"shop"."orders"']).toHaveLength(3);
    const listed = await db.pool.query<{ sha256: string; kind: string }>(
      `SELECT sha256, kind FROM lifecycle.archived_objects WHERE key = $1`,
      [proof.export.key],
    );
    expect(listed.rows).toEqual([{ sha256: proof.export.sha256, kind: 'export' }]);

    // Act again: nothing pending
    const textBefore = await tableText(db);
    const again = await runPolicy(testConfig([gdprPolicy()]), 'gdpr', { deps: { hashKey: KEY } });
    expect(again.status).toBe('succeeded');
    expect(again.summary?.chunks).toBe(0);
    expect(await tableText(db)).toBe(textBefore);
  });

  it('refuses a mapping that leaves a referencing table out, before changing anything', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedShop(db);
    await db.pool.query(`CREATE TABLE shop.reviews (id serial PRIMARY KEY, author bigint REFERENCES shop.users (id));
                         INSERT INTO shop.reviews (author) VALUES (42);`);
    const erase = await request(db, 'erase', '42');
    const before = await tableText(db);

    // Act
    const result = await runPolicy(testConfig([gdprPolicy()]), 'gdpr', { deps: { hashKey: KEY } });

    // Assess
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('CatalogError');
    expect(result.failure?.cause).toContain('"shop"."reviews" references "shop"."users"');
    expect(await tableText(db)).toBe(before);
    expect(
      (await listSubjectRequests(db.pool, 'gdpr')).find((r) => r.requestId === erase.requestId)?.status,
    ).toBe('pending');
  });

  it('fails a request that cannot be done alone, with a reason free of its values, and does the others', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: orders reference users ON DELETE NO ACTION but are only masked: deleting the user must fail.
    await seedShop(db, 'NO ACTION');
    const blocked = await request(db, 'erase', '42');
    const fine = await request(db, 'export', '8');

    // Act
    const result = await runPolicy(testConfig([gdprPolicy()]), 'gdpr', { deps: { hashKey: KEY } });

    // Assess
    expect(result.status).toBe('succeeded');
    const requests = await listSubjectRequests(db.pool, 'gdpr');
    const failed = requests.find((r) => r.requestId === blocked.requestId);
    expect(failed?.status).toBe('failed');
    expect(failed?.error).toMatch(/23503|foreign key/);
    expect(failed?.error).not.toContain('42');
    expect(failed?.subjectKey).toBe('42');
    expect(await db.pool.query('SELECT 1 FROM shop.users WHERE id = 42')).toMatchObject({ rowCount: 1 });
    expect(
      await db.pool.query(`SELECT 1 FROM shop.orders WHERE user_id = 42 AND note IS NOT NULL`),
    ).toMatchObject({ rowCount: 3 });
    expect(requests.find((r) => r.requestId === fine.requestId)?.status).toBe('completed');
  });
  it('plans without changing anything: pending requests, the erasure order, and a key column without an index', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare
    await seedShop(db);
    await db.pool.query(
      `CREATE TABLE shop.notes (user_id bigint, body text); INSERT INTO shop.notes VALUES (42, 'note');`,
    );
    const erase = await request(db, 'erase', '42');
    const before = await tableText(db);
    const tables = [
      { table: 'shop.users', keyColumn: 'id', action: 'delete' },
      { table: 'shop."User Sessions"', keyColumn: 'user_id', action: 'delete' },
      { table: 'shop.orders', keyColumn: 'user_id', action: 'delete' },
      { table: 'shop.notes', keyColumn: 'user_id', action: 'delete' },
    ];

    // Act
    const result = await runPolicy(testConfig([gdprPolicy(tables)]), 'gdpr', {
      dryRun: true,
      deps: { hashKey: KEY },
    });

    // Assess
    expect(result.status).toBe('dry_run');
    expect(result.summary?.plan?.eligibleRows).toBe(1);
    const warnings = result.summary?.plan?.warnings.join('\n') ?? '';
    expect(warnings).toContain('no index leads with the key column of "shop"."notes" (user_id)');
    expect(warnings).not.toContain('"shop"."orders" (user_id)');
    expect(await tableText(db)).toBe(before);
    const requests = await listSubjectRequests(db.pool, 'gdpr');
    expect(requests.find((r) => r.requestId === erase.requestId)?.status).toBe('pending');
  });
});
