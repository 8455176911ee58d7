/**
 * Restoring a backup as an operator relies on it: every common type and awkward name comes back equal (content
 * checksum and the sorted text of every row), next to the original or into a fresh database; a full restore
 * recreates keys, identity, partitions and sequence positions (read from the catalog) so the next INSERT gets a
 * fresh id; data-only loads into existing tables, a subset included, and a non-empty target is refused unless
 * --if-exists says truncate or append.
 */
import pg from 'pg';
import { readContentChecksum } from '../../functions/actions/backup/content-checksum.ts';
import type { BackupManifest } from '../../functions/actions/backup/manifest.ts';
import {
  RestoreSelectionError,
  RestoreTargetError,
  restoreBackup,
} from '../../functions/actions/backup/restore/index.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import { sortedRowTexts, textClient, withTextClient } from '../support/backup-parts.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';

const SOURCE = 'Odd Schema';

/** Every common type, NULLs in every column, names with case, spaces and quotes. */
const SCHEMA = `
  CREATE SCHEMA "${SOURCE}";
  CREATE TYPE "${SOURCE}"."Mood" AS ENUM ('sad', 'ok', 'happy ''quoted''');
  CREATE DOMAIN "${SOURCE}".positive AS numeric CHECK (VALUE > 0);
  CREATE TABLE "${SOURCE}"."Every Type" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "small" smallint, "int" integer, "big" bigint,
    "Num" numeric, "num(10,3)" numeric(10,3), f4 real, f8 double precision,
    "text with ""quotes""" text, vc varchar(20), b bytea, flag boolean,
    d date, ts timestamp, tstz timestamptz, span interval, u uuid, j json, jb jsonb,
    ip inet, net cidr, ints integer[], texts text[], mood "${SOURCE}"."Mood", amount "${SOURCE}".positive,
    doubled integer GENERATED ALWAYS AS ("small" * 2) STORED);
  INSERT INTO "${SOURCE}"."Every Type" ("small", "int", "big", "Num", "num(10,3)", f4, f8, "text with ""quotes""", vc, b, flag,
      d, ts, tstz, span, u, j, jb, ip, net, ints, texts, mood, amount) VALUES
    (-32768, -2147483648, -9223372036854775808, 'NaN', 1234567.891, 'NaN', 'Infinity',
     E'tab\\there\\nnewline \\\\ backslash ü € 😀', 'x', '\\x00ff10', true,
     '0001-01-01', '2026-02-03 04:05:06.123456', '2026-12-02 01:00:00.000001+00', '1 year 2 mons 3 days 04:05:06.789',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, "\\u00fc"]}', '{"b": {"c": null}}', '192.168.0.1/24', '10.0.0.0/8',
     '{1,NULL,3}', '{"a b","c,d","NULL",NULL}', 'happy ''quoted''', 0.5),
    (32767, 2147483647, 9223372036854775807, '-0.000000000000000000001', -0.5, '-Infinity', '-Infinity',
     '', '', '\\x', false, 'infinity', '-infinity', 'infinity', '-1 days', NULL, 'null', '[]', '::1', '::/0',
     '{}', '{}', 'sad', 12345678901234567890.5),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL);
  INSERT INTO "${SOURCE}"."Every Type" ("int", "text with ""quotes""", f8, tstz)
    SELECT g, repeat(E'row\\t' || g, 1 + g % 5), g / 3.0, timestamptz '2026-01-01' + g * interval '1.000001 second'
      FROM generate_series(1, 1500) g;
  CREATE TABLE "${SOURCE}"."Orders Of ""Mood""" (
    id serial PRIMARY KEY,
    item bigint NOT NULL REFERENCES "${SOURCE}"."Every Type" (id),
    placed date NOT NULL, note text);
  CREATE INDEX ON "${SOURCE}"."Orders Of ""Mood""" (placed) WHERE note IS NOT NULL;
  INSERT INTO "${SOURCE}"."Orders Of ""Mood""" (item, placed, note)
    SELECT 1 + g % 1500, date '2026-01-01' + g % 300, CASE WHEN g % 7 = 0 THEN NULL ELSE 'n' || g END
      FROM generate_series(1, 2500) g;
  CREATE TABLE "${SOURCE}".events (at date NOT NULL, body text) PARTITION BY RANGE (at);
  CREATE TABLE "${SOURCE}".events_2026 PARTITION OF "${SOURCE}".events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
  CREATE TABLE "${SOURCE}".events_other PARTITION OF "${SOURCE}".events DEFAULT;
  INSERT INTO "${SOURCE}".events SELECT date '2025-06-01' + g % 700, 'e' || g FROM generate_series(1, 2000) g;`;

const TABLES = [`"${SOURCE}"."Every Type"`, `"${SOURCE}"."Orders Of ""Mood"""`, `"${SOURCE}"."events"`];

let manifest: BackupManifest;

beforeAll(async ({ database, s3, bucket }) => {
  await database.pool.query(SCHEMA);
  manifest = await writeTestBackup({
    db: database,
    s3,
    bucket,
    policy: 'nightly',
    tables: [`"${SOURCE}".*`],
  });
});

/** The content checksum and sorted row texts of a table, read with the project's text settings. */
async function content(db: TestDatabase, quotedName: string, columns: readonly string[]) {
  return withTextClient(db, async (client) => ({
    checksum: await readContentChecksum(client, quotedName, columns),
    rows: await sortedRowTexts(client, quotedName, columns),
  }));
}

function columnsOf(table: string): readonly string[] {
  const entry = manifest.tables.find((t) => t.table === table);
  if (!entry) throw new Error(`${table} not in the manifest`);
  return entry.columns;
}

describe('restore --into-schema (next to the original)', () => {
  it('brings every type and name back equal, by checksum and row by row, on a connection with other text settings', async ({
    database,
    s3,
    bucket,
  }) => {
    // Prepare: a plain connection, not the project's pinned one (the restore pins what it needs itself).
    const client = await database.pool.connect();
    await client.query(
      `SET extra_float_digits = 0; SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY'`,
    );
    try {
      // Act
      const result = await restoreBackup({
        db: client,
        s3,
        bucket,
        manifest,
        mode: 'full',
        intoSchema: 'Restored "Copy"',
        ifExists: 'fail',
      });

      // Assess
      expect(result.tables.map((t) => [t.table, t.rows])).toEqual(
        manifest.tables.map((t) => [t.table, t.rows]),
      );
      expect(result.partsVerified).toBe(manifest.tables.reduce((n, t) => n + t.parts.length, 0));
      for (const table of TABLES) {
        const copy = table.replace(`"${SOURCE}"`, '"Restored ""Copy"""');
        const original = await content(database, table, columnsOf(table));
        expect(await content(database, copy, columnsOf(table)), table).toEqual(original);
        expect(original.rows.length).toBeGreaterThan(0);
      }
      // The caller's session keeps its settings (the DDL's SETs were local to its transactions).
      const { rows } = await client.query<{ digits: string; zone: string }>(
        `SELECT current_setting('extra_float_digits') AS digits, current_setting('TimeZone') AS zone`,
      );
      expect(rows[0]).toEqual({ digits: '0', zone: 'Asia/Kolkata' });
    } finally {
      client.release();
    }
  });
});

describe('restore --mode full into a fresh database', () => {
  let target: TestDatabase;
  beforeAll(async () => {
    target = await createTestDatabase('restore_full_target');
  });
  afterAll(async () => {
    await target?.drop();
  });

  it('recreates keys, identity, partitions and sequence positions, and the next INSERT gets a fresh id', async ({
    s3,
    bucket,
    database,
  }) => {
    // Act
    const client = await textClient(target);
    try {
      await restoreBackup({ db: client, s3, bucket, manifest, mode: 'full', ifExists: 'fail' });
    } finally {
      await client.end();
    }

    // Assess: the same rows.
    for (const table of TABLES) {
      expect(await content(target, table, columnsOf(table)), table).toEqual(
        await content(database, table, columnsOf(table)),
      );
    }
    // The catalog: constraints, identity, the generated column, partitions, the partial index.
    const catalog = await target.pool.query<{ fact: string }>(
      `SELECT format('%s %s', CASE WHEN conrelid = 0 THEN contypid::regtype::text ELSE conrelid::regclass::text END, contype)
              AS fact FROM pg_constraint
        WHERE connamespace = to_regnamespace($1) AND contype IN ('p', 'f', 'c')
       UNION ALL
       SELECT format('%s.%s identity %s generated %s', attrelid::regclass, attname, attidentity, attgenerated)
         FROM pg_attribute WHERE attrelid = to_regclass($2) AND (attidentity <> '' OR attgenerated <> '')
       UNION ALL
       SELECT format('partition %s', inhrelid::regclass) FROM pg_inherits WHERE inhparent = to_regclass($3)
       UNION ALL
       SELECT format('index %s partial %s', indexrelid::regclass, (indpred IS NOT NULL)::text) FROM pg_index
        WHERE indrelid = to_regclass($4) AND NOT indisprimary
       ORDER BY 1`,
      [`"${SOURCE}"`, TABLES[0], TABLES[2], TABLES[1]],
    );
    expect(catalog.rows.map((r) => r.fact)).toEqual([
      `"${SOURCE}"."Every Type" p`,
      `"${SOURCE}"."Every Type".doubled identity  generated s`,
      `"${SOURCE}"."Every Type".id identity a generated `,
      `"${SOURCE}"."Orders Of ""Mood""" f`,
      `"${SOURCE}"."Orders Of ""Mood""" p`,
      `"${SOURCE}".positive c`,
      `index "${SOURCE}"."Orders Of ""Mood""_placed_idx" partial true`,
      `partition "${SOURCE}".events_2026`,
      `partition "${SOURCE}".events_other`,
    ]);
    // New rows: fresh identity and serial values, constraints in force.
    const item = await target.pool.query<{ id: string; doubled: number }>(
      `INSERT INTO "${SOURCE}"."Every Type" ("small") VALUES (21) RETURNING id::text, doubled`,
    );
    expect(item.rows[0]).toEqual({ id: '1504', doubled: 42 });
    const order = await target.pool.query<{ id: number }>(
      `INSERT INTO "${SOURCE}"."Orders Of ""Mood""" (item, placed) VALUES (1504, '2026-12-02') RETURNING id`,
    );
    expect(order.rows[0]?.id).toBe(2501);
    await expect(
      target.pool.query(
        `INSERT INTO "${SOURCE}"."Orders Of ""Mood""" (item, placed) VALUES (99999, '2026-12-02')`,
      ),
    ).rejects.toThrow(/violates foreign key constraint/);
  });
});

describe('restore --mode data-only', () => {
  let target: TestDatabase;
  beforeAll(async ({ s3, bucket }) => {
    // The tables exist (empty): a schema-only restore, as the operator would make them.
    target = await createTestDatabase('restore_data_target');
    const client = await textClient(target);
    try {
      await restoreBackup({ db: client, s3, bucket, manifest, mode: 'schema-only', ifExists: 'fail' });
    } finally {
      await client.end();
    }
  });
  afterAll(async () => {
    await target?.drop();
  });

  const restore = async (
    context: { s3: import('@aws-sdk/client-s3').S3Client; bucket: string },
    options: { tables?: string[]; ifExists: 'fail' | 'truncate' | 'append' },
  ) => {
    const client = await textClient(target);
    try {
      return await restoreBackup({ db: client, ...context, manifest, mode: 'data-only', ...options });
    } finally {
      await client.end();
    }
  };
  const rowCount = async (table: string) =>
    Number((await target.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0]?.n);

  it('loads a subset into existing empty tables, referenced tables first, and sets their sequences', async ({
    s3,
    bucket,
    database,
  }) => {
    // Act: the referencing table named first; its parent must still be loaded before it.
    const result = await restore(
      { s3, bucket },
      { tables: [TABLES[1] as string, TABLES[0] as string], ifExists: 'fail' },
    );

    // Assess
    expect(result.tables.map((t) => t.table)).toEqual([TABLES[0], TABLES[1]]);
    for (const table of TABLES.slice(0, 2)) {
      expect(await content(target, table, columnsOf(table))).toEqual(
        await content(database, table, columnsOf(table)),
      );
    }
    expect(await rowCount(`"${SOURCE}".events`)).toBe(0);
    expect([...result.sequencesSet].sort()).toEqual([
      `"${SOURCE}"."Every Type_id_seq"`,
      `"${SOURCE}"."Orders Of ""Mood""_id_seq"`,
    ]);
    const order = await target.pool.query<{ id: number }>(
      `INSERT INTO "${SOURCE}"."Orders Of ""Mood""" (item, placed) VALUES (1, '2026-12-02') RETURNING id`,
    );
    expect(order.rows[0]?.id).toBe(2501);
    await target.pool.query(`DELETE FROM "${SOURCE}"."Orders Of ""Mood""" WHERE id = 2501`);
  });

  it('refuses a non-empty table without --if-exists and changes nothing', async ({ s3, bucket }) => {
    // Act
    const refused = restore({ s3, bucket }, { tables: [TABLES[0] as string], ifExists: 'fail' });

    // Assess
    await expect(refused).rejects.toThrow(RestoreTargetError);
    await expect(refused).rejects.toThrow(
      `"${SOURCE}"."Every Type" is not empty (--if-exists truncate or append)`,
    );
    expect(await rowCount(TABLES[0] as string)).toBe(1503);
  });

  it('with --if-exists truncate replaces what the tables held by the backup', async ({
    s3,
    bucket,
    database,
  }) => {
    // Prepare: rows the backup does not hold.
    await target.pool.query(`DELETE FROM "${SOURCE}"."Orders Of ""Mood""" WHERE id <= 100`);

    // Act: both tables, since one references the other (emptied together).
    await restore({ s3, bucket }, { tables: [`"${SOURCE}".*`], ifExists: 'truncate' });

    // Assess
    for (const table of TABLES) {
      expect(await content(target, table, columnsOf(table))).toEqual(
        await content(database, table, columnsOf(table)),
      );
    }
  });

  it('with --if-exists truncate never cascades: a table outside the restore that references one refuses it', async ({
    s3,
    bucket,
  }) => {
    // Prepare: a table the restore does not touch, referencing one it would empty.
    await target.pool.query(
      `CREATE TABLE public.refs (item bigint REFERENCES "${SOURCE}"."Every Type" (id))`,
    );
    try {
      // Act
      const refused = restore({ s3, bucket }, { tables: [TABLES[0] as string], ifExists: 'truncate' });

      // Assess
      await expect(refused).rejects.toThrow(RestoreTargetError);
      await expect(refused).rejects.toThrow(
        /would empty "Odd Schema"."Every Type", which (public.refs|"Odd Schema"."Orders Of ""Mood""") references/,
      );
      expect(await rowCount(TABLES[0] as string)).toBe(1503);
      expect(await rowCount(TABLES[1] as string)).toBe(2500);
    } finally {
      await target.pool.query('DROP TABLE public.refs');
    }
  });

  it('with --if-exists append adds the backup to the rows there and checks the added rows', async ({
    s3,
    bucket,
  }) => {
    // Act
    const result = await restore({ s3, bucket }, { tables: [`"${SOURCE}".events`], ifExists: 'append' });

    // Assess
    expect(result.tables).toEqual([expect.objectContaining({ table: TABLES[2], rows: 2000 })]);
    expect(await rowCount(`"${SOURCE}".events`)).toBe(4000);
  });

  it('refuses an unknown --table and a subset for a full restore, before reading anything', async ({
    s3,
    bucket,
  }) => {
    await expect(
      restore({ s3, bucket }, { tables: ['"Odd Schema".nope'], ifExists: 'fail' }),
    ).rejects.toThrow(RestoreSelectionError);
    const client = new pg.Client({ connectionString: target.url });
    await client.connect();
    try {
      await expect(
        restoreBackup({
          db: client,
          s3,
          bucket,
          manifest,
          mode: 'full',
          tables: [TABLES[0] as string],
          ifExists: 'fail',
        }),
      ).rejects.toThrow(/--table restores data only/);
    } finally {
      await client.end();
    }
  });
});
