/**
 * restore-archive end to end: a table of every common type archived by the real archive action (through the
 * local state machine), then brought back through the real CLI into empty copies of the table, compared row
 * for row by PostgreSQL's own text of each row. Then what an operator relies on: a second run restores
 * nothing twice, --where selects by key, a corrupted object fails before any row reaches the target, unsafe
 * or wrong input is refused with exit 2 before anything is written.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { readObject, testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';
import { runCliInProcess } from '../support/leases.ts';

const SOURCE = 'public."Typed Rows"';
const RANGE = ['--from', '2000-01-01', '--to', '2030-01-01T00:00:00Z'];

const rowsText = async (db: TestDatabase, table: string, where = ''): Promise<string[]> =>
  (await db.pool.query<{ t: string }>(`SELECT t::text AS t FROM ${table} AS t ${where} ORDER BY 1`)).rows.map(
    (r) => r.t,
  );

const copyOf = async (db: TestDatabase, name: string) =>
  db.pool.query(`CREATE TABLE public.${name} (LIKE ${SOURCE} INCLUDING ALL)`);

let source: string[];
let objectKeys: string[];

describe('restore-archive', () => {
  beforeAll(async ({ database: db, runPolicy }) => {
    await db.pool.query(`
      CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN public.positive AS integer CHECK (VALUE > 0);
      CREATE TABLE ${SOURCE} (
        id bigint PRIMARY KEY, "CreatedAt" timestamptz NOT NULL, small smallint, "Big Number" bigint,
        money_ish numeric(12,4), wide numeric(38,10), free numeric, f4 real, f8 double precision, flag boolean,
        "Note Text" text, code varchar(20), fixed char(5), uid uuid, doc jsonb, raw_json json, blob bytea,
        day date, local_ts timestamp, at_time time, at_timetz timetz, span interval, addr inet, net cidr,
        feeling public.mood, pos public.positive, tags text[], counts integer[], prices numeric(6,2)[],
        stamps timestamptz[])`);
    await db.pool.query(`
      INSERT INTO ${SOURCE}
      SELECT g, timestamptz '2020-01-01 00:00:00.000001+00' + g * interval '17 hours 3.123457 seconds',
        (g % 32000 - 16000)::smallint, g::bigint * 3002399751580331 + 1, round((g * 12.3457 - 5000)::numeric, 4),
        ('12345678901234567890.' || lpad(g::text, 10, '0'))::numeric(38,10),
        CASE WHEN g % 7 = 0 THEN 'NaN'::numeric ELSE ('-0.000' || g || '1234567890123456789')::numeric END,
        CASE g % 5 WHEN 0 THEN 'NaN'::real WHEN 1 THEN '-Infinity'::real ELSE (g / 3.0)::real END,
        CASE g % 4 WHEN 0 THEN 'Infinity'::float8 WHEN 1 THEN '-0'::float8 ELSE g * pi() * 1e10 END,
        g % 3 = 0, E'O''Brien – Nguyễn \\\\ tab\\there\\nline "q" ' || g, 'code-' || g, left('ab' || g, 5),
        md5(g::text)::uuid, jsonb_build_object('g', g, 'nested', jsonb_build_array(1, 'two', null), 's', E'x"y\\n'),
        ('{"b": 1,  "a": [' || g || ']}')::json, decode(lpad(to_hex(g), 8, '0') || '005c0a09', 'hex'),
        CASE WHEN g % 50 = 0 THEN date '0044-03-15 BC' ELSE date '2020-02-29' + g END,
        CASE WHEN g % 60 = 0 THEN 'infinity'::timestamp ELSE timestamp '2019-12-31 23:59:59.999999' + g * interval '1.000001 second' END,
        time '00:00:00.000001' + g * interval '13 seconds', timetz '12:00:00.5+05:30',
        make_interval(years => g % 3, days => g, secs => g / 7.0), ('10.0.' || g % 256 || '.1')::inet,
        ('10.' || g % 256 || '.0.0/16')::cidr, (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::public.mood, g,
        ARRAY['a,b', 'c"d', NULL, g::text, '', E'back\\\\slash'], ARRAY[g, NULL, -g], ARRAY[1.5, NULL, -g]::numeric(6,2)[],
        ARRAY[timestamptz '2020-01-01 00:00:00.000001+00', NULL]
      FROM generate_series(1, 600) AS g`);
    // NULL in every nullable column, and the extremes.
    await db.pool.query(`
      INSERT INTO ${SOURCE} (id, "CreatedAt") VALUES (0, '2020-06-01 00:00:00.5+00');
      INSERT INTO ${SOURCE} (id, "CreatedAt", small, "Big Number", money_ish, f8, day, tags, counts, "Note Text", free)
      VALUES (-1, '2000-01-01 00:00:00+00', -32768, -9223372036854775808, -99999999.9999, '5e-324', '-infinity', '{}', '{}', '', '-Infinity'),
             (-2, '2000-01-01 00:00:00+00', 32767, 9223372036854775807, 99999999.9999, '1e308', '9999-12-31', '{NULL}', '{NULL}', repeat('é', 10000), 'Infinity')`);
    // Not archived (after the cutoff): never restored.
    await db.pool.query(`INSERT INTO ${SOURCE} (id, "CreatedAt") VALUES (100000, '2026-11-20 00:00:00+00')`);
    source = await rowsText(db, SOURCE, `WHERE "CreatedAt" < '2024-11-23 12:00:00+00'`);
    for (const name of ['"Typed Copy"', 'few', 'corrupt', 'strict']) await copyOf(db, name);
    await db.pool.query(`CREATE TABLE public.narrow (id bigint PRIMARY KEY, "CreatedAt" timestamptz)`);
    const config = testConfig([
      {
        name: 'typed',
        table: SOURCE,
        action: 'archive',
        timeColumn: '"CreatedAt"',
        retention: 'P2Y',
        chunking: { initialRows: 150, minRows: 100, maxRows: 200 },
      },
      { name: 'trim', table: 'public.few', action: 'purge', timeColumn: '"CreatedAt"', retention: 'P2Y' },
    ]);
    const result = await runPolicy(config, 'typed');
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(source.length);
    const purge = await runPolicy(config, 'trim');
    expect(purge.failure).toBeUndefined();
    objectKeys = (
      await db.pool.query<{ key: string }>(
        `SELECT key FROM lifecycle.archived_objects ORDER BY min_time::timestamptz, object_id`,
      )
    ).rows.map((r) => r.key);
    expect(objectKeys.length).toBeGreaterThan(2);
  }, 120_000);

  it('restores every archived row with exact values, and nothing twice', async ({ database: db, bucket }) => {
    // Act
    const first = await runCliInProcess(db, [
      'restore-archive',
      '--policy',
      'typed',
      '--bucket',
      bucket,
      ...RANGE,
      '--into',
      'public."Typed Copy"',
      '--json',
    ]);
    const second = await runCliInProcess(db, [
      'restore-archive',
      '--policy',
      'typed',
      '--bucket',
      bucket,
      ...RANGE,
      '--into',
      'public."Typed Copy"',
      '--json',
    ]);

    // Assess
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report).toMatchObject({
      target: '"public"."Typed Copy"',
      objectsConsidered: objectKeys.length,
      objectsRestored: objectKeys.length,
      objectsSkipped: 0,
      rowsStaged: source.length,
      rowsInserted: source.length,
      rowsSkippedByConflict: 0,
    });
    expect(await rowsText(db, 'public."Typed Copy"')).toEqual(source);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({
      objectsConsidered: objectKeys.length,
      objectsSkipped: objectKeys.length,
      objectsRestored: 0,
      rowsInserted: 0,
    });
    const recorded = await db.pool.query<{ n: string; inserted: string }>(
      `SELECT count(*)::text AS n, sum(rows_inserted)::text AS inserted FROM lifecycle.restored_objects
        WHERE target_table = '"public"."Typed Copy"'`,
    );
    expect(recorded.rows[0]).toEqual({ n: String(objectKeys.length), inserted: String(source.length) });
  });

  it('selects rows by key with --where, and ON CONFLICT covers a wider rerun', async ({
    database: db,
    bucket,
  }) => {
    // Act
    const some = await runCliInProcess(db, [
      'restore-archive',
      '--policy=typed',
      `--bucket=${bucket}`,
      ...RANGE,
      '--where',
      'few.id IN (-2, 0, 5, 77) OR "Note Text" = \'\'',
      '--into',
      'few',
      '--json',
    ]);
    const all = await runCliInProcess(db, [
      'restore-archive',
      '--policy=typed',
      `--bucket=${bucket}`,
      ...RANGE,
      '--into',
      'few',
      '--json',
    ]);

    // Assess
    expect(some.code).toBe(0);
    expect(JSON.parse(some.stdout)).toMatchObject({
      rowsStaged: source.length,
      rowsSelected: 5,
      rowsInserted: 5,
    });
    // The predicate restored part of each object: a run without one still reads them all.
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({
      objectsSkipped: 0,
      rowsInserted: source.length - 5,
      rowsSkippedByConflict: 5,
    });
    expect(await rowsText(db, 'public.few')).toEqual(source);
  });

  it('fails on a corrupted object before any row reaches the target', async ({
    database: db,
    s3,
    bucket,
  }) => {
    // Prepare: one byte flipped in the first object of the range.
    const key = objectKeys[0] as string;
    const original = await readObject(s3, bucket, key);
    const damaged = new Uint8Array(original);
    const at = Math.floor(damaged.length / 2);
    damaged[at] = (damaged[at] as number) ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: damaged }));

    // Act
    const result = await runCliInProcess(db, [
      'restore-archive',
      '--policy',
      'typed',
      '--bucket',
      bucket,
      ...RANGE,
      '--into',
      'corrupt',
    ]);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: original }));

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ArchivedObjectIntegrityError');
    expect(result.stderr).toContain('SHA-256');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM public.corrupt')).rows[0].n).toBe(0);
    const recorded = await db.pool.query(
      `SELECT 1 FROM lifecycle.restored_objects WHERE target_table = '"public"."corrupt"'`,
    );
    expect(recorded.rowCount).toBe(0);
  });

  it.for<[string, string[], string]>([
    ['a volatile function', ['--where', 'random() < 0.5', '--into', 'corrupt'], 'UnsafePredicateError'],
    [
      'a second statement',
      ['--where', 'true; DROP TABLE public.corrupt', '--into', 'corrupt'],
      'UnsafePredicateError',
    ],
    [
      'a subquery writing',
      ['--where', `id IN (SELECT id FROM (DELETE FROM public.few RETURNING id) d)`, '--into', 'corrupt'],
      'UnsafePredicateError',
    ],
    ['an unknown column', ['--where', 'nope = 1', '--into', 'corrupt'], 'UnsafePredicateError'],
    ['an unknown --into table', ['--into', 'public.missing'], 'RestoreArchiveTargetError'],
    ['a table without the archived columns', ['--into', 'narrow'], 'lacks the archived column(s) small'],
    ['a ledger table', ['--into', 'lifecycle.runs'], 'RestoreArchiveTargetError'],
    ['a reversed range', ['--from', '2030-01-01', '--to', '2000-01-01'], 'InvalidTimeRangeError'],
    ['an unreadable time', ['--from', 'yesterday-ish', '--to', '2000-01-01'], 'InvalidTimeRangeError'],
  ])('refuses %s with exit 2, writing nothing', async ([, extra, error], { database: db, bucket }) => {
    // Act
    const result = await runCliInProcess(db, [
      'restore-archive',
      '--policy',
      'typed',
      '--bucket',
      bucket,
      ...RANGE,
      ...extra,
    ]);

    // Assess
    expect({ code: result.code, stderr: result.stderr }).toMatchObject({
      code: 2,
      stderr: expect.stringContaining(error),
    });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM public.corrupt')).rows[0].n).toBe(0);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM public.few')).rows[0].n).toBe(source.length);
  });

  it('refuses an unknown policy and a policy that is not an archive', async ({ database: db, bucket }) => {
    const unknown = await runCliInProcess(db, [
      'restore-archive',
      '--policy',
      'nope',
      '--bucket',
      bucket,
      ...RANGE,
    ]);
    const purge = await runCliInProcess(db, [
      'restore-archive',
      '--policy',
      'trim',
      '--bucket',
      bucket,
      ...RANGE,
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no policy "nope"');
    expect(purge.code).toBe(2);
    expect(purge.stderr).toContain('not an archive policy');
  });

  it('refuses a table without a primary key unless --allow-no-key, and then restores nothing twice', async ({
    database: db,
    bucket,
  }) => {
    // Prepare
    await db.pool.query(`CREATE TABLE public.nokey (LIKE ${SOURCE})`);
    const args = [
      'restore-archive',
      '--policy=typed',
      `--bucket=${bucket}`,
      ...RANGE,
      '--into=nokey',
      '--json',
    ];

    // Act
    const refused = await runCliInProcess(db, args);
    const first = await runCliInProcess(db, [...args, '--allow-no-key']);
    const second = await runCliInProcess(db, [...args, '--allow-no-key']);

    // Assess
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('has no primary key');
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ objectsSkipped: objectKeys.length, rowsInserted: 0 });
    expect(await rowsText(db, 'public.nokey')).toEqual(source);
  });

  it('rolls an object back on a constraint error and never prints its row values', async ({
    database: db,
    bucket,
  }) => {
    // Prepare: the target refuses the archived text values.
    await db.pool.query(
      `ALTER TABLE public.strict ADD CONSTRAINT no_irish CHECK ("Note Text" NOT LIKE 'O''Brien%')`,
    );

    // Act
    const result = await runCliInProcess(db, [
      'restore-archive',
      '--policy=typed',
      `--bucket=${bucket}`,
      ...RANGE,
      '--into=strict',
    ]);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no_irish');
    expect(result.stderr).not.toContain('Brien');
    expect(result.stderr).not.toContain('Failing row');
    // Objects before the failing one (the year-2000 month: ids -1, -2) stay restored and recorded; the failing
    // one left nothing, and a rerun resumes at it.
    const recorded = await db.pool.query<{ key: string; rows_inserted: number }>(
      `SELECT key, rows_inserted FROM lifecycle.restored_objects WHERE target_table = '"public"."strict"'`,
    );
    expect(recorded.rows).toEqual([{ key: objectKeys[0], rows_inserted: 2 }]);
    expect(await rowsText(db, 'public.strict')).toEqual(await rowsText(db, 'public.few', 'WHERE id < 0'));
  });

  // Last: it puts the archived rows back into the policy's own table.
  it("says that rows restored into the policy's own table are archived again by its next run", async ({
    database: db,
    bucket,
    runPolicy,
  }) => {
    // Act
    const restored = await runCliInProcess(db, [
      'restore-archive',
      '--policy=typed',
      `--bucket=${bucket}`,
      ...RANGE,
    ]);
    const archivedBefore = objectKeys.length;
    const again = await runPolicy(
      testConfig([
        {
          name: 'typed',
          table: SOURCE,
          action: 'archive',
          timeColumn: '"CreatedAt"',
          retention: 'P2Y',
          chunking: { initialRows: 150, minRows: 100, maxRows: 200 },
        },
      ]),
      'typed',
    );

    // Assess: the note is printed, and it is true — the same rows now sit in a second set of objects.
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain("is the policy's own table and these rows are past its retention");
    expect(again.summary?.rows).toBe(source.length);
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM lifecycle.archived_objects WHERE kind = 'archive-copy'`,
    );
    expect(Number(rows[0]?.n)).toBeGreaterThan(archivedBefore);
  });
});
