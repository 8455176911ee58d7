/**
 * Import from a CSV or Parquet object in S3 (the local S3 server) through the local state machine: the object
 * staged in a table of the run, mapped and validated like a source table, rejects keyed by the data row's
 * number, the staging table dropped when the run ends; a missing object or a header without a mapped column
 * refused at Start with nothing written.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { Pool } from 'pg';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { describe, expect, it } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

function importPolicy(source: Record<string, unknown>, columns: Record<string, string>): PolicyInput {
  return {
    name: 'from-object',
    action: 'import',
    chunking: { initialRows: 3, minRows: 3, maxRows: 3 },
    import: { source, target: 'public.contacts', columns },
  } as PolicyInput;
}

const TARGET = `
  DROP TABLE IF EXISTS public.contacts;
  CREATE TABLE public.contacts (
    id int PRIMARY KEY, name text NOT NULL, note text, born date, score numeric(5,2), active boolean, photo bytea);`;

const CSV_COLUMNS = {
  id: '"Contact ID"',
  name: 'name',
  note: 'note',
  born: 'born',
  score: 'score',
  active: 'active',
};

// Quoted delimiters and line breaks, a doubled quote, an empty field (NULL), a byte order mark, two bad rows.
const CSV = `\uFEFF"Contact ID",name,note,born,score,active
1,Ann,"likes, commas",1990-01-31,12.50,true
2,"Bob ""B"" Jr","two
lines",,3,false
3,,missing name,2000-02-29,1,true
4,Dee,,not a date,1,true
5,Eve,"tab\there",2001-12-31,999.99,yes
`;

/** Staging tables left in the ledger schema. */
async function stagingTables(db: { pool: Pool }): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'lifecycle' AND c.relname LIKE 'import\\_staging\\_%'`,
  );
  return Number(rows[0]?.n);
}

describe('import from an S3 object', () => {
  it('imports a CSV object exactly, rejects bad rows by line, and drops its staging table', async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    await db.pool.query(TARGET);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'legacy/contacts.csv', Body: CSV }));
    const config = testConfig([
      importPolicy({ object: `s3://${bucket}/legacy/contacts.csv`, format: 'csv' }, CSV_COLUMNS),
    ]);

    const plan = await runPolicy(config, 'from-object', { dryRun: true, deps: { s3, bucket } });
    const run = await runPolicy(config, 'from-object', { deps: { s3, bucket } });

    expect(plan.failure).toBeUndefined();
    expect(run.failure).toBeUndefined();
    expect(plan.summary?.plan?.import).toMatchObject({ sourceRows: 5, valid: 3, invalid: 2 });
    expect(run.status).toBe('succeeded');
    expect(run.summary?.rows).toBe(3);
    const { rows } = await db.pool.query(
      `SELECT id, name, note, born::text, score::text, active FROM public.contacts ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: 1, name: 'Ann', note: 'likes, commas', born: '1990-01-31', score: '12.50', active: true },
      { id: 2, name: 'Bob "B" Jr', note: 'two\nlines', born: null, score: '3.00', active: false },
      { id: 5, name: 'Eve', note: 'tab\there', born: '2001-12-31', score: '999.99', active: true },
    ]);
    const rejects = await db.pool.query<{ line: string; sqlstate: string }>(
      `SELECT source_key->>0 AS line, sqlstate FROM lifecycle.import_rejects
        WHERE policy = 'from-object' ORDER BY (source_key->>0)::int`,
    );
    expect(rejects.rows).toEqual([
      { line: '3', sqlstate: '23502' },
      { line: '4', sqlstate: '22007' },
    ]);
    expect(await stagingTables(db)).toBe(0);

    // Again: nothing twice.
    const again = await runPolicy(config, 'from-object', { deps: { s3, bucket } });
    expect(again.summary?.rows).toBe(0);
    const count = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM public.contacts`);
    expect(count.rows[0]?.n).toBe('3');
  });

  it('imports a Parquet object (bigint, text, timestamps, booleans, binary, NULLs)', async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    await db.pool.query(TARGET);
    const body = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: [10n, 11n, 12n], type: 'INT64' },
        { name: 'full name', data: ['Zoë', 'tab\tand\\slash', null], type: 'STRING' },
        {
          name: 'born_at',
          data: [new Date('1999-05-06T00:00:00Z'), null, new Date('2010-01-01T00:00:00Z')],
          type: 'TIMESTAMP',
        },
        { name: 'ok', data: [true, false, null], type: 'BOOLEAN' },
        { name: 'pic', data: [new Uint8Array([0, 1, 255]), null, new Uint8Array([])], type: 'BYTE_ARRAY' },
      ],
    });
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'legacy/contacts.parquet', Body: new Uint8Array(body) }),
    );
    const config = testConfig([
      importPolicy(
        { object: `s3://${bucket}/legacy/contacts.parquet`, format: 'parquet' },
        {
          id: 'id',
          name: '"full name"',
          born: `(born_at::timestamptz AT TIME ZONE 'UTC')::date`,
          active: 'ok',
          photo: 'pic',
        },
      ),
    ]);

    const run = await runPolicy(config, 'from-object', { deps: { s3, bucket } });

    expect(run.failure).toBeUndefined();
    expect(run.summary?.rows).toBe(2);
    const { rows } = await db.pool.query(
      `SELECT id, name, born::text, active, encode(photo, 'hex') AS photo FROM public.contacts ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: 10, name: 'Zoë', born: '1999-05-06', active: true, photo: '0001ff' },
      { id: 11, name: 'tab\tand\\slash', born: null, active: false, photo: null },
    ]);
    const rejects = await db.pool.query<{ key: string[]; sqlstate: string }>(
      `SELECT source_key AS key, sqlstate FROM lifecycle.import_rejects WHERE policy = 'from-object' AND run_id = $1::uuid`,
      [run.summary?.runId],
    );
    expect(rejects.rows).toEqual([{ key: ['3'], sqlstate: '23502' }]);
    expect(await stagingTables(db)).toBe(0);
  });

  it('refuses a missing object and a mapping of a column the header lacks, before anything is written', async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    await db.pool.query(TARGET);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'legacy/contacts.csv', Body: CSV }));
    const missing = await runPolicy(
      testConfig([importPolicy({ object: `s3://${bucket}/legacy/nope.csv`, format: 'csv' }, CSV_COLUMNS)]),
      'from-object',
      { deps: { s3, bucket } },
    );
    const unknown = await runPolicy(
      testConfig([
        importPolicy(
          { object: `s3://${bucket}/legacy/contacts.csv`, format: 'csv' },
          { ...CSV_COLUMNS, note: 'remarks' },
        ),
      ]),
      'from-object',
      { deps: { s3, bucket } },
    );

    expect(missing.failure?.error).toBe('StorageConfigurationError');
    expect(missing.failure?.cause).toContain('does not exist');
    expect(unknown.failure?.error).toBe('InvalidFilterError');
    expect(unknown.failure?.cause).toContain('remarks');
    const count = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM public.contacts`);
    expect(count.rows[0]?.n).toBe('0');
    expect(await stagingTables(db)).toBe(0);
  });
});
