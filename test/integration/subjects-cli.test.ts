/**
 * `pg-lifecycle subject …` as an operator uses it (the real CLI, in process, against a real PostgreSQL): no hash
 * key, or a key that is not a value of the key column's type, is a clear usage error that records nothing; a request asked twice is one request; `status` never prints the
 * subject's key; `process` runs the subjects policy and the request completes.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { migrateLedger } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';
import { runCliInProcess } from '../support/leases.ts';

const KEY = 'cli hash key';

function writeConfig(): string {
  const path = join(tmpdir(), `subjects-cli-${process.pid}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      sandbox: true,
      policies: [
        {
          name: 'gdpr',
          action: 'subjects',
          subjects: {
            keyName: 'member',
            tables: [{ table: 'club.members', keyColumn: 'id', action: 'delete' }],
          },
        },
      ],
    }),
  );
  return path;
}

describe('pg-lifecycle subject', () => {
  it('records, shows without the key, and processes a request; refuses without a hash key', async ({
    database: db,
    bucket,
  }) => {
    // Prepare
    await migrateLedger(db);
    await db.pool.query(`CREATE SCHEMA club; CREATE TABLE club.members (id bigint PRIMARY KEY, name text);
                         INSERT INTO club.members SELECT g, 'member ' || g FROM generate_series(1, 20) g;`);
    const config = writeConfig();
    const requests = async () =>
      Number(
        (await db.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM lifecycle.subject_requests'))
          .rows[0]?.n,
      );

    // Act + Assess: no key
    const noKey = await runCliInProcess(db, ['subject', 'request', '--erase', '17', '--config', config]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('PG_LIFECYCLE_HASH_KEY');
    expect(await requests()).toBe(0);

    // A key that is not a value of the key column's type: refused, nothing recorded
    vi.stubEnv('PG_LIFECYCLE_HASH_KEY', KEY);
    const notBigint = await runCliInProcess(db, ['subject', 'request', '--erase', 'abc', '--config', config]);
    expect(notBigint.code).toBe(2);
    expect(notBigint.stderr).toContain('is not a value of "club"."members".id (bigint)');
    expect(await requests()).toBe(0);

    // Asked twice: one request
    vi.stubEnv('PG_LIFECYCLE_HASH_KEY', KEY);
    const first = await runCliInProcess(db, [
      'subject',
      'request',
      '--erase',
      '17',
      '--json',
      '--config',
      config,
    ]);
    vi.stubEnv('PG_LIFECYCLE_HASH_KEY', KEY);
    const second = await runCliInProcess(db, [
      'subject',
      'request',
      '--erase',
      '17',
      '--json',
      '--config',
      config,
    ]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(JSON.parse(second.stdout).requestId).toBe(JSON.parse(first.stdout).requestId);
    expect(await requests()).toBe(1);

    // status: no key field
    const status = await runCliInProcess(db, ['subject', 'status', '--json', '--config', config]);
    const views = JSON.parse(status.stdout) as Array<Record<string, unknown>>;
    expect(views).toHaveLength(1);
    expect(views[0]).toMatchObject({ kind: 'erase', status: 'pending', overdue: false });
    expect(Object.keys(views[0] ?? {})).not.toContain('subjectKey');

    // process: the member is gone, the request completed
    vi.stubEnv('PG_LIFECYCLE_HASH_KEY', KEY);
    const processed = await runCliInProcess(db, [
      'subject',
      'process',
      '--bucket',
      bucket,
      '--json',
      '--config',
      config,
    ]);
    expect(processed.stderr).toBe('');
    expect(processed.code).toBe(0);
    const after = await runCliInProcess(db, ['subject', 'status', '--json', '--config', config]);
    expect(JSON.parse(after.stdout)[0]).toMatchObject({ status: 'completed' });
    const left = await db.pool.query('SELECT 1 FROM club.members WHERE id = 17');
    expect(left.rowCount).toBe(0);
  });
});
