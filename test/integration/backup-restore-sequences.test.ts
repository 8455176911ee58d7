/**
 * A data-only restore sets the sequence positions of the tables it reloads — but never moves back a sequence
 * that another table's default still uses: that table's next insert would get an id it already holds.
 */
import { restoreBackup } from '../../functions/actions/backup/restore/index.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { describe, expect, it } from '../support/fixture.ts';

describe('data-only restore and shared sequences', () => {
  it('does not move back a sequence another table uses', async ({ database, s3, bucket }) => {
    await database.pool.query(`
      CREATE SEQUENCE public.ids;
      CREATE TABLE public.a (id bigint PRIMARY KEY DEFAULT nextval('public.ids'), v text);
      CREATE TABLE public.b (id bigint PRIMARY KEY DEFAULT nextval('public.ids'), v text);
      ALTER SEQUENCE public.ids OWNED BY public.a.id;
      INSERT INTO public.a (v) SELECT 'a' FROM generate_series(1, 10);
      INSERT INTO public.b (v) SELECT 'b' FROM generate_series(1, 10);`);
    const manifest = await writeTestBackup({
      db: database,
      s3,
      bucket,
      policy: 'nightly',
      tables: ['public.*'],
    });
    // After the backup, life goes on in b.
    await database.pool.query(`INSERT INTO public.b (v) SELECT 'later' FROM generate_series(1, 50)`);
    const client = await database.pool.connect();
    try {
      await restoreBackup({
        db: client,
        s3,
        bucket,
        manifest,
        mode: 'data-only',
        tables: ['public.a'],
        ifExists: 'truncate',
      });
    } finally {
      client.release();
    }
    const next = await database.pool.query<{ id: string }>(
      `INSERT INTO public.b (v) VALUES ('next') RETURNING id`,
    );
    expect(Number(next.rows[0]?.id)).toBe(71);
    expect(Number((await database.pool.query('SELECT count(*) FROM public.a')).rows[0]?.count)).toBe(10);
  });

  it('moves back a sequence only the reloaded table uses, to the backup’s position', async ({
    database,
    s3,
    bucket,
  }) => {
    await database.pool.query(`
      CREATE TABLE public.solo (id bigserial PRIMARY KEY, v text);
      INSERT INTO public.solo (v) SELECT 's' FROM generate_series(1, 10);`);
    const manifest = await writeTestBackup({
      db: database,
      s3,
      bucket,
      policy: 'solo',
      tables: ['public.solo'],
    });
    await database.pool.query(`INSERT INTO public.solo (v) SELECT 'later' FROM generate_series(1, 50)`);
    const client = await database.pool.connect();
    try {
      await restoreBackup({ db: client, s3, bucket, manifest, mode: 'data-only', ifExists: 'truncate' });
    } finally {
      client.release();
    }
    const next = await database.pool.query<{ id: string }>(
      `INSERT INTO public.solo (v) VALUES ('next') RETURNING id`,
    );
    expect(Number(next.rows[0]?.id)).toBe(11);
  });
});
