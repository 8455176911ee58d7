/**
 * `pg-lifecycle subject …` as an operator uses it (the real CLI, in process, against a real PostgreSQL): no hash
 * key, or a key that is not a value of the key column's type, is a clear usage error that records nothing; a request asked twice is one request; `status` never prints the
 * subject's key; `process` runs the subjects policy and the request completes.
 */
import { createHash } from 'node:crypto';
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
    // Another spelling of the same bigint key: the same subject, the same request.
    vi.stubEnv('PG_LIFECYCLE_HASH_KEY', KEY);
    const respelled = await runCliInProcess(db, [
      'subject',
      'request',
      '--erase',
      '017',
      '--json',
      '--config',
      config,
    ]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(JSON.parse(second.stdout).requestId).toBe(JSON.parse(first.stdout).requestId);
    expect(JSON.parse(respelled.stdout).requestId).toBe(JSON.parse(first.stdout).requestId);
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

  it('status --presign gives a URL that downloads the export document exactly; a bad lifetime is a usage error', async ({
    database: db,
    bucket,
  }) => {
    // Prepare: an export request, processed.
    await migrateLedger(db);
    await db.pool.query(`CREATE SCHEMA IF NOT EXISTS club; CREATE TABLE IF NOT EXISTS club.members (id bigint PRIMARY KEY, name text);
                         INSERT INTO club.members VALUES (5, 'member 5') ON CONFLICT DO NOTHING;`);
    const config = writeConfig();
    vi.stubEnv('PG_LIFECYCLE_HASH_KEY', KEY);
    const made = await runCliInProcess(db, [
      'subject',
      'request',
      '--export',
      '5',
      '--json',
      '--config',
      config,
    ]);
    expect(made.code).toBe(0);
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
    expect(processed.code).toBe(0);

    // Act
    const status = await runCliInProcess(db, [
      'subject',
      'status',
      '--presign',
      '600',
      '--json',
      '--config',
      config,
    ]);
    const badLifetime = await runCliInProcess(db, [
      'subject',
      'status',
      '--presign',
      '8d',
      '--config',
      config,
    ]);

    // Assess: the URL serves the very document the proof names (length and SHA-256).
    expect(status.code).toBe(0);
    const view = (JSON.parse(status.stdout) as Array<Record<string, unknown>>).find(
      (v) => v.requestId === JSON.parse(made.stdout).requestId,
    ) as { exportUrl: string; proof: { export: { key: string; bytes: number; sha256: string } } };
    expect(view.exportUrl).toContain(encodeURI(view.proof.export.key).replace(/\//g, '/'));
    expect(view.exportUrl).toMatch(/X-Amz-Expires=600/);
    const response = await fetch(view.exportUrl);
    expect(response.status).toBe(200);
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(view.proof.export.bytes);
    expect(createHash('sha256').update(body).digest('hex')).toBe(view.proof.export.sha256);
    expect(JSON.parse(body.toString('utf8')).tables['"club"."members"']).toEqual([
      { id: 5, name: 'member 5' },
    ]);
    // Without --presign, no URL is printed (it would hand the subject's data to whoever reads the output).
    const plain = await runCliInProcess(db, ['subject', 'status', '--json', '--config', config]);
    expect(plain.stdout).not.toContain('X-Amz-Signature');
    expect(badLifetime.code).toBe(2);
    expect(badLifetime.stderr).toContain('--presign takes');
  });
});
