/**
 * `restore --mode data-only --if-exists truncate` empties and reloads its targets in one transaction: when a
 * load then fails (here its content checksum, the target's numeric(10,1) rounding the backup's values), the
 * targets keep the rows they had — a restore that fails never leaves a table emptied.
 */
import type { BackupManifest } from '../../functions/actions/backup/manifest.ts';
import { restoreBackup } from '../../functions/actions/backup/restore/index.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';

let manifest: BackupManifest;

beforeAll(async ({ database, s3, bucket }) => {
  await database.pool.query(`
    CREATE SCHEMA src;
    CREATE TABLE src.t (id int PRIMARY KEY, v numeric);
    CREATE TABLE src.u (id int PRIMARY KEY, v text);
    INSERT INTO src.t SELECT g, g + 0.25 FROM generate_series(1, 50) g;
    INSERT INTO src.u SELECT g, 'u' || g FROM generate_series(1, 20) g;`);
  manifest = await writeTestBackup({ db: database, s3, bucket, policy: 'nightly', tables: ['src.*'] });
});

describe('restore --if-exists truncate', () => {
  it('keeps every target’s rows when a load after the TRUNCATE fails', async ({ database, s3, bucket }) => {
    await database.pool.query(`
      CREATE SCHEMA dst;
      CREATE TABLE dst.t (id int PRIMARY KEY, v numeric(10,1));
      CREATE TABLE dst.u (id int PRIMARY KEY, v text);
      INSERT INTO dst.t SELECT g, 1000 + g FROM generate_series(1, 7) g;
      INSERT INTO dst.u SELECT g, 'kept' FROM generate_series(1, 3) g;`);
    const client = await database.pool.connect();
    try {
      await expect(
        restoreBackup({
          db: client,
          s3,
          bucket,
          manifest,
          mode: 'data-only',
          intoSchema: 'dst',
          ifExists: 'truncate',
        }),
      ).rejects.toThrow(/rolled back/);
    } finally {
      client.release();
    }
    const { rows } = await database.pool.query<{ t: number; u: number }>(
      'SELECT (SELECT count(*)::int FROM dst.t) AS t, (SELECT count(*)::int FROM dst.u) AS u',
    );
    expect(rows[0]).toEqual({ t: 7, u: 3 });
  });

  it('replaces every target’s rows when all loads check out', async ({ database, s3, bucket }) => {
    await database.pool.query(`
      CREATE SCHEMA dst2;
      CREATE TABLE dst2.t (id int PRIMARY KEY, v numeric);
      CREATE TABLE dst2.u (id int PRIMARY KEY, v text);
      INSERT INTO dst2.t SELECT g, 1000 + g FROM generate_series(1, 7) g;`);
    const client = await database.pool.connect();
    try {
      const result = await restoreBackup({
        db: client,
        s3,
        bucket,
        manifest,
        mode: 'data-only',
        intoSchema: 'dst2',
        ifExists: 'truncate',
      });
      expect(result.tables.map((t) => [t.target, t.rows])).toEqual([
        ['"dst2"."t"', 50],
        ['"dst2"."u"', 20],
      ]);
    } finally {
      client.release();
    }
    const { rows } = await database.pool.query<{ t: number; u: number }>(
      'SELECT (SELECT count(*)::int FROM dst2.t) AS t, (SELECT count(*)::int FROM dst2.u) AS u',
    );
    expect(rows[0]).toEqual({ t: 50, u: 20 });
  });
});
