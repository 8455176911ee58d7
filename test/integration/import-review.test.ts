/**
 * Regressions from the hostile review of the import action: each failed before its fix.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { describe, expect, it } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

function policy(name: string, options: Record<string, unknown>, rows = 3): PolicyInput {
  return {
    name,
    action: 'import',
    chunking: { initialRows: rows, minRows: rows, maxRows: rows },
    import: options,
  } as PolicyInput;
}

describe('import: review regressions', () => {
  it('refuses a target key the mapping does not fill, or one that may be NULL (every re-run would insert again)', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP SCHEMA IF EXISTS r1 CASCADE; CREATE SCHEMA r1;
      CREATE TABLE r1.src (id int PRIMARY KEY, email text);
      INSERT INTO r1.src VALUES (1, 'a@x'), (2, NULL);
      CREATE TABLE r1.serial_dst (id bigserial PRIMARY KEY, legacy_id int, email text);
      CREATE TABLE r1.nullable_dst (email text UNIQUE, src_id int);
      CREATE TABLE r1.nnd_dst (email text, src_id int, UNIQUE NULLS NOT DISTINCT (email));`);

    const unmapped = await runPolicy(
      testConfig([
        policy('r1', {
          source: 'r1.src',
          target: 'r1.serial_dst',
          columns: { legacy_id: 'id', email: 'email' },
        }),
      ]),
      'r1',
    );
    const nullable = await runPolicy(
      testConfig([
        policy('r1', {
          source: 'r1.src',
          target: 'r1.nullable_dst',
          targetKey: ['email'],
          columns: { email: 'email', src_id: 'id' },
        }),
      ]),
      'r1',
    );
    const config = testConfig([
      policy('r1', {
        source: 'r1.src',
        target: 'r1.nnd_dst',
        targetKey: ['email'],
        columns: { email: 'email', src_id: 'id' },
      }),
    ]);
    const first = await runPolicy(config, 'r1');
    const second = await runPolicy(config, 'r1');

    expect(unmapped.failure?.error).toBe('CatalogError');
    expect(unmapped.failure?.cause).toMatch(/targetKey column id .* is not in import\.columns/);
    expect(nullable.failure?.error).toBe('CatalogError');
    expect(nullable.failure?.cause).toMatch(/may be NULL/);
    expect([first.summary?.rows, second.summary?.rows]).toEqual([2, 0]);
    const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM r1.serial_dst`);
    expect(rows[0]?.n).toBe('0');
  });

  it('imports Parquet DECIMAL, FLOAT and microsecond timestamps exactly', async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    await db.pool.query(`
      DROP SCHEMA IF EXISTS r2 CASCADE; CREATE SCHEMA r2;
      CREATE TABLE r2.dst (id int PRIMARY KEY, amount numeric, big numeric(20,2), ratio real, at timestamptz);`);
    // Written as a warehouse writes them: scaled integers (DECIMAL), float32, INT64 microseconds.
    const body = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: [1, 2] },
        { name: 'amount', data: [115n, -5n] },
        { name: 'big', data: [123456789012345617n, 0n] },
        { name: 'ratio', data: [0.1, 3.4028234663852886e38] },
        { name: 'at', data: [1_700_000_000_123_456n, 1_700_000_000_000_001n] },
      ],
      schema: [
        { name: 'root', num_children: 5 },
        { name: 'id', type: 'INT32', repetition_type: 'REQUIRED' },
        {
          name: 'amount',
          type: 'INT64',
          repetition_type: 'OPTIONAL',
          converted_type: 'DECIMAL',
          scale: 2,
          precision: 18,
        },
        {
          name: 'big',
          type: 'INT64',
          repetition_type: 'OPTIONAL',
          converted_type: 'DECIMAL',
          scale: 2,
          precision: 18,
        },
        { name: 'ratio', type: 'FLOAT', repetition_type: 'OPTIONAL' },
        { name: 'at', type: 'INT64', repetition_type: 'OPTIONAL', converted_type: 'TIMESTAMP_MICROS' },
      ],
    });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'r2/x.parquet', Body: new Uint8Array(body) }));
    const config = testConfig([
      policy('r2', {
        source: { object: `s3://${bucket}/r2/x.parquet`, format: 'parquet' },
        target: 'r2.dst',
        columns: { id: 'id', amount: 'amount', big: 'big', ratio: 'ratio', at: 'at' },
      }),
    ]);

    const run = await runPolicy(config, 'r2', { deps: { s3, bucket } });

    expect(run.failure).toBeUndefined();
    const { rows } = await db.pool.query(
      `SELECT id, amount::text, big::text, ratio::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at
         FROM r2.dst ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: 1, amount: '1.15', big: '1234567890123456.17', ratio: '0.1', at: '2023-11-14 22:13:20.123456' },
      { id: 2, amount: '-0.05', big: '0.00', ratio: '3.4028235e+38', at: '2023-11-14 22:13:20.000001' },
    ]);
  });

  it('a DEFERRABLE foreign key refuses the bad row at once (a reject), not the whole chunk at COMMIT', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP SCHEMA IF EXISTS r3 CASCADE; CREATE SCHEMA r3;
      CREATE TABLE r3.services (name text PRIMARY KEY); INSERT INTO r3.services VALUES ('api');
      CREATE TABLE r3.src (id int PRIMARY KEY, svc text);
      INSERT INTO r3.src SELECT g, CASE WHEN g = 5 THEN 'nope' ELSE 'api' END FROM generate_series(1, 9) g;
      CREATE TABLE r3.dst (id int PRIMARY KEY,
        svc text REFERENCES r3.services (name) DEFERRABLE INITIALLY DEFERRED);`);
    const config = testConfig([
      policy('r3', { source: 'r3.src', target: 'r3.dst', columns: { id: 'id', svc: 'svc' } }),
    ]);

    const plan = await runPolicy(config, 'r3', { dryRun: true });
    const run = await runPolicy(config, 'r3');

    expect(plan.summary?.plan?.import).toMatchObject({ valid: 8, invalid: 1 });
    expect(run.failure).toBeUndefined();
    expect(run.summary?.rows).toBe(8);
    const { rows } = await db.pool.query<{ key: string; sqlstate: string }>(
      `SELECT source_key->>0 AS key, sqlstate FROM lifecycle.import_rejects WHERE policy = 'r3'`,
    );
    expect(rows).toEqual([{ key: '5', sqlstate: '23503' }]);
  });

  it('a child whose parent came in the previous, still-committing chunk is imported, not refused', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP SCHEMA IF EXISTS r4 CASCADE; CREATE SCHEMA r4;
      CREATE TABLE r4.src (id int PRIMARY KEY, parent int);
      INSERT INTO r4.src SELECT g, NULLIF(g - 1, 0) FROM generate_series(1, 30) g;
      CREATE TABLE r4.dst (id int PRIMARY KEY, parent int REFERENCES r4.dst (id));`);
    const config = testConfig([
      policy('r4', { source: 'r4.src', target: 'r4.dst', columns: { id: 'id', parent: 'parent' } }, 5),
    ]);

    // A slow COMMIT: the pipelined next chunk would take its snapshot before this one's rows are visible.
    const run = await runPolicy(config, 'r4', {
      deps: { hooks: { beforeCommit: () => new Promise((resolve) => setTimeout(resolve, 150)) } },
    });

    expect(run.failure).toBeUndefined();
    expect(run.summary?.rows).toBe(30);
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM lifecycle.import_rejects WHERE policy = 'r4'`,
    );
    expect(rows[0]?.n).toBe('0');
  });

  it('a row already imported that a new constraint refuses counts as skipped, not rejected', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP SCHEMA IF EXISTS r5 CASCADE; CREATE SCHEMA r5;
      CREATE TABLE r5.src (id int PRIMARY KEY, sev int);
      INSERT INTO r5.src SELECT g, g FROM generate_series(1, 6) g;
      CREATE TABLE r5.dst (id int PRIMARY KEY, sev int);`);
    const config = testConfig([
      policy('r5', { source: 'r5.src', target: 'r5.dst', columns: { id: 'id', sev: 'sev' } }),
    ]);
    await runPolicy(config, 'r5');
    await db.pool.query(`ALTER TABLE r5.dst ADD CONSTRAINT sev_small CHECK (sev <= 3) NOT VALID;
                         INSERT INTO r5.src VALUES (7, 7)`);

    const second = await runPolicy(config, 'r5');

    expect(second.failure).toBeUndefined();
    const figures = await db.pool.query(
      `SELECT examined::int, inserted::int, skipped::int, rejected::int FROM lifecycle.import_runs WHERE run_id = $1::uuid`,
      [second.summary?.runId],
    );
    expect(figures.rows[0]).toEqual({ examined: 7, inserted: 0, skipped: 6, rejected: 1 });
    const { rows } = await db.pool.query<{ key: string }>(
      `SELECT source_key->>0 AS key FROM lifecycle.import_rejects WHERE policy = 'r5'`,
    );
    expect(rows).toEqual([{ key: '7' }]);
  });

  it('a trigger refusing a row with its own SQLSTATE makes a reject; bit(n) columns take longer bit strings', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP SCHEMA IF EXISTS r6 CASCADE; CREATE SCHEMA r6;
      CREATE TABLE r6.src (id int PRIMARY KEY, flags text);
      INSERT INTO r6.src VALUES (1, '1010'), (2, '0110'), (3, '111');
      CREATE TABLE r6.dst (id int PRIMARY KEY, flags bit(4));
      CREATE FUNCTION r6.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.id = 2 THEN RAISE EXCEPTION 'no' USING ERRCODE = 'P0002'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER refuse BEFORE INSERT ON r6.dst FOR EACH ROW EXECUTE FUNCTION r6.refuse();`);
    const config = testConfig([
      policy('r6', { source: 'r6.src', target: 'r6.dst', columns: { id: 'id', flags: 'flags' } }),
    ]);

    const run = await runPolicy(config, 'r6');

    expect(run.failure).toBeUndefined();
    const { rows } = await db.pool.query(`SELECT id, flags::text FROM r6.dst`);
    expect(rows).toEqual([{ id: 1, flags: '1010' }]);
    const rejects = await db.pool.query<{ key: string; sqlstate: string }>(
      `SELECT source_key->>0 AS key, sqlstate FROM lifecycle.import_rejects WHERE policy = 'r6' ORDER BY 1`,
    );
    // '111' is too short for bit(4): refused by the assignment (22026), not cut or padded.
    expect(rejects.rows).toEqual([
      { key: '2', sqlstate: 'P0002' },
      { key: '3', sqlstate: '22026' },
    ]);
  });

  it('a row refused again keeps its first refusal time', async ({ database: db, runPolicy }) => {
    await db.pool.query(`
      DROP SCHEMA IF EXISTS r7 CASCADE; CREATE SCHEMA r7;
      CREATE TABLE r7.src (id int PRIMARY KEY, v text); INSERT INTO r7.src VALUES (1, NULL), (2, 'ok');
      CREATE TABLE r7.dst (id int PRIMARY KEY, v text NOT NULL);`);
    const config = testConfig([
      policy('r7', { source: 'r7.src', target: 'r7.dst', columns: { id: 'id', v: 'v' } }),
    ]);
    await runPolicy(config, 'r7');
    const before = await db.pool.query<{ first: string; run: string }>(
      `SELECT first_rejected_at::text AS first, run_id::text AS run FROM lifecycle.import_rejects WHERE policy = 'r7'`,
    );

    await new Promise((resolve) => setTimeout(resolve, 20));
    await runPolicy(config, 'r7');

    const after = await db.pool.query<{ first: string; run: string }>(
      `SELECT first_rejected_at::text AS first, run_id::text AS run FROM lifecycle.import_rejects WHERE policy = 'r7'`,
    );
    expect(after.rows).toHaveLength(1);
    expect(after.rows[0]?.first).toBe(before.rows[0]?.first);
    expect(after.rows[0]?.run).not.toBe(before.rows[0]?.run);
  });
});
