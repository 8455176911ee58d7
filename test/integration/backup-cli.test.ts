/**
 * The backup commands as an operator runs them: exit codes (0 done, 1 a problem found or a failure, 2 bad
 * input with nothing written), the --json shapes scripts read, and the refusals that name what is wrong.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';
import { runCliInProcess } from '../support/leases.ts';

const POLICY = 'cli-nightly';
let backupId: string;

beforeAll(async ({ database, s3, bucket }) => {
  await migrateLedger(database);
  await database.pool.query(`
    CREATE TABLE accounts (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, owner text NOT NULL);
    INSERT INTO accounts (owner) SELECT 'owner ' || g FROM generate_series(1, 800) g;
    CREATE TABLE ledger_lines (id bigserial PRIMARY KEY, account int NOT NULL REFERENCES accounts (id), amount numeric);
    INSERT INTO ledger_lines (account, amount) SELECT 1 + g % 800, g FROM generate_series(1, 1600) g;`);
  backupId = (
    await writeTestBackup({
      db: database,
      s3,
      bucket,
      policy: POLICY,
      tables: ['public.*'],
      ledger: true,
      retentionDays: 30,
    })
  ).backupId;
});

const cli = (database: TestDatabase, args: string[]) => runCliInProcess(database, args);
const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;
const count = async (database: TestDatabase, table: string) =>
  Number((await database.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0]?.n);

describe('pg-lifecycle backups list', () => {
  it('prints every backup of the policy as JSON', async ({ database, bucket }) => {
    const result = await cli(database, ['backups', 'list', '--policy', POLICY, '--bucket', bucket, '--json']);

    expect(result.code).toBe(0);
    expect(json(result.stdout)).toEqual({
      bucket,
      backups: [
        expect.objectContaining({
          policy: POLICY,
          backupId,
          status: 'complete',
          tables: 2,
          rows: 2400,
          consistency: 'snapshot',
          retentionDays: 30,
          expiresAt: expect.any(String),
        }),
      ],
    });
  });

  it('exits 2 naming a bucket that does not exist', async ({ database }) => {
    const result = await cli(database, ['backups', 'list', '--bucket', 'no-such-bucket-pg-lifecycle']);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/StorageConfigurationError: .*NoSuchBucket/);
  });
});

describe('pg-lifecycle verify --backup', () => {
  it('exits 0 with the verification as JSON, the ledger compared', async ({ database, bucket }) => {
    const result = await cli(database, [
      'verify',
      '--backup',
      'latest',
      '--policy',
      POLICY,
      '--bucket',
      bucket,
      '--json',
    ]);

    expect(result.code).toBe(0);
    expect(json(result.stdout)).toMatchObject({
      policy: POLICY,
      backupId,
      ok: true,
      problems: [],
      rowsCounted: 2400,
      ledger: 'checked',
    });
  });

  it('exits 1 and names the problem when an object the manifest does not list is there', async ({
    database,
    s3,
    bucket,
  }) => {
    // Prepare: a second backup with a stray object, so the first stays intact for the other tests.
    const other = await writeTestBackup({
      db: database,
      s3,
      bucket,
      policy: 'cli-stray',
      tables: ['public.accounts'],
      ledger: true,
    });
    const stray = `backup/cli-stray/${other.backupId}/stray.txt`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: stray, Body: 'x' }));

    const result = await cli(database, [
      'verify',
      '--backup',
      other.backupId,
      '--policy',
      'cli-stray',
      '--bucket',
      bucket,
    ]);

    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`PROBLEMS\n  - unlisted-object: ${stray}`);
  });

  it.for([
    [
      'verify with a malformed --backup',
      ['verify', '--backup', '../x/y'],
      /--backup "..\/x\/y" is not a backup id/,
    ],
    [
      'restore with an empty --into-schema',
      ['restore', '--backup', 'latest', '--into-schema', ''],
      /--into-schema "" must not be empty/,
    ],
    [
      'restore --table without data-only',
      ['restore', '--backup', 'latest', '--table', 'public.accounts'],
      /--table restores data only/,
    ],
  ] as Array<[string, string[], RegExp]>)(
    'exits 2 for %s before reaching S3 (the bucket does not even exist)',
    async ([, args, message], { database }) => {
      const result = await cli(database, [
        ...args,
        '--policy',
        POLICY,
        '--bucket',
        'pg-lifecycle-no-such-bucket',
      ]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/bucket/i);
    },
  );

  it('exits 2 for an unknown backup id', async ({ database, bucket }) => {
    const result = await cli(database, [
      'verify',
      '--backup',
      '20200101T000000Z-00000000',
      '--policy',
      POLICY,
      '--bucket',
      bucket,
    ]);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/BackupNotFoundError: no backup 20200101T000000Z-00000000/);
  });
});

describe('pg-lifecycle restore', () => {
  const restore = (bucket: string, ...extra: string[]) => [
    'restore',
    '--backup',
    'latest',
    '--policy',
    POLICY,
    '--bucket',
    bucket,
    ...extra,
  ];

  it('restores next to the original and prints the tables as JSON', async ({ database, bucket }) => {
    const result = await cli(database, restore(bucket, '--into-schema', 'cli copy', '--json'));

    expect(result.code).toBe(0);
    expect(json(result.stdout)).toMatchObject({
      policy: POLICY,
      backupId,
      mode: 'full',
      intoSchema: 'cli copy',
      tables: [
        {
          table: '"public"."accounts"',
          target: '"cli copy"."accounts"',
          rows: 800,
          contentChecksum: expect.any(String),
        },
        {
          table: '"public"."ledger_lines"',
          target: '"cli copy"."ledger_lines"',
          rows: 1600,
          contentChecksum: expect.any(String),
        },
      ],
    });
    expect(await count(database, '"cli copy".ledger_lines')).toBe(1600);
  });

  it.for([
    ['an unknown backup id', ['--backup', '20200101T000000Z-00000000'], /BackupNotFoundError/],
    [
      'a bad --mode',
      ['--mode', 'everything'],
      /--mode "everything": must be one of full, data-only, schema-only/,
    ],
    [
      'a bad --if-exists',
      ['--mode', 'data-only', '--if-exists', 'merge'],
      /--if-exists "merge": must be one of/,
    ],
    [
      'an unknown --table',
      ['--mode', 'data-only', '--table', 'public.nope', '--into-schema', 'cli copy'],
      /--table public.nope: no such table/,
    ],
    ['tables a full restore would create that exist', ['--into-schema', 'cli copy'], /already exist/],
    [
      'a non-empty target without --if-exists',
      [
        '--mode',
        'data-only',
        '--table',
        'public.accounts',
        '--table',
        'public.ledger_lines',
        '--into-schema',
        'cli copy',
      ],
      /"cli copy"."accounts" is not empty \(--if-exists truncate or append\)/,
    ],
  ] as Array<[string, string[], RegExp]>)(
    'exits 2 for %s and writes nothing',
    async ([, args, message], { database, bucket }) => {
      // restore() puts --backup latest first; a later --backup wins in parseArgs.
      const result = await cli(database, restore(bucket, ...args));

      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(await count(database, '"cli copy".accounts')).toBe(800);
      expect(await count(database, '"cli copy".ledger_lines')).toBe(1600);
    },
  );

  it('takes several --table and --if-exists truncate', async ({ database, bucket }) => {
    await database.pool.query(`DELETE FROM "cli copy".ledger_lines WHERE id > 100`);

    const result = await cli(
      database,
      restore(
        bucket,
        '--mode',
        'data-only',
        '--table',
        'public.accounts',
        '--table',
        'public.ledger_lines',
        '--into-schema',
        'cli copy',
        '--if-exists',
        'truncate',
        '--json',
      ),
    );

    expect(result.code).toBe(0);
    expect((json(result.stdout).tables as unknown[]).length).toBe(2);
    expect(await count(database, '"cli copy".ledger_lines')).toBe(1600);
  });
});

describe('pg-lifecycle drill', () => {
  it('exits 0 when the drill passes and prints it as JSON', async ({ database, bucket }) => {
    const result = await cli(database, ['drill', '--policy', POLICY, '--bucket', bucket, '--json']);

    expect(result.code).toBe(0);
    expect(json(result.stdout)).toMatchObject({
      policy: POLICY,
      backupId,
      status: 'passed',
      scratchDropped: true,
      tables: [expect.objectContaining({ ok: true }), expect.objectContaining({ ok: true })],
    });
  });

  it('exits 1 when the drill fails', async ({ database, s3, bucket }) => {
    const damaged = await writeTestBackup({
      db: database,
      s3,
      bucket,
      policy: 'cli-damaged',
      tables: ['public.accounts'],
    });
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: damaged.tables[0]?.parts[0]?.key as string, Body: 'gone' }),
    );

    const result = await cli(database, ['drill', '--policy', 'cli-damaged', '--bucket', bucket]);

    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/drill FAILED/);
  });

  it('exits 2 for a policy without backups', async ({ database, bucket }) => {
    const result = await cli(database, ['drill', '--policy', 'cli-none', '--bucket', bucket]);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/no backup of policy "cli-none"/);
  });
});
