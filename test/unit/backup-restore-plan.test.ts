/**
 * The pure decisions of the backup read side: how stored DDL text is read (statements, literals, identifiers)
 * and moved into another schema, which restore requests are refused before anything is read, when a manifest
 * contradicts its place, when a backup expires, and which sequence positions a data-only restore takes.
 */
import { describe, expect, it } from 'vitest';
import { type BackupManifest, backupKeys } from '../../functions/actions/backup/manifest.ts';
import { ddlStatements } from '../../functions/actions/backup/restore/ddl.ts';
import { backupExpiry, backupIdTime } from '../../functions/actions/backup/restore/list-backups.ts';
import { manifestPlacementProblems } from '../../functions/actions/backup/restore/manifest-checks.ts';
import { planRestore, type RestoreRequest } from '../../functions/actions/backup/restore/restore-plan.ts';
import { sequencePositions } from '../../functions/actions/backup/restore/sequence-positions.ts';
import { RELOCATION_PLACEHOLDER, relocateSql } from '../../functions/actions/backup/schema-relocation.ts';
import { splitStatements, sqlSegments } from '../../functions/actions/backup/sql-text.ts';

const ID = '20261202T010000Z-1a2b3c4d';
const SHA = 'b'.repeat(64);

function manifest(overrides: Partial<BackupManifest> = {}): BackupManifest {
  const keys = backupKeys('nightly', ID);
  const table = (schema: string, name: string, rows: number) => ({
    table: `"${schema}"."${name}"`,
    rows,
    bytes: 10,
    consistency: 'snapshot' as const,
    columns: ['id'],
    contentChecksum: `md5-64:${rows}:42`,
    parts: [{ key: keys.part(schema, name, 1, 'gz'), rows, bytes: 10, sha256: SHA }],
  });
  return {
    formatVersion: 1,
    backupId: ID,
    policy: 'nightly',
    runId: '00000000-0000-4000-8000-000000000001',
    startedAt: '2026-12-02T01:00:00.000Z',
    finishedAt: '2026-12-02T01:05:00.000Z',
    serverVersion: '15.8',
    compression: { codec: 'gzip', level: 6 },
    consistency: 'snapshot',
    schemaKey: keys.schema,
    postDataKey: keys.postData,
    relocatable: {
      schemaKey: keys.relocatableSchema,
      postDataKey: keys.relocatablePostData,
      placeholder: RELOCATION_PLACEHOLDER,
    },
    tables: [table('public', 'orders', 3), table('Sales', 'Order Lines', 2), table('Sales', 'Invoices', 1)],
    notIncluded: [],
    ...overrides,
  };
}

const request = (overrides: Partial<RestoreRequest> = {}): RestoreRequest => ({
  mode: 'full',
  ifExists: 'fail',
  ...overrides,
});

describe('SQL text of the schema files', () => {
  it('keeps literals, identifiers and comments apart and gives the text back exactly', () => {
    const text = `-- a ; comment\nCOMMENT ON TABLE "a;b" IS 'it''s; here';\nSELECT E'x\\'; y', /* c; /* nested */ */ 1;`;
    expect(
      sqlSegments(text)
        .map((s) => s.text)
        .join(''),
    ).toBe(text);
    expect(splitStatements(text)).toEqual([
      `COMMENT ON TABLE "a;b" IS 'it''s; here'`,
      `SELECT E'x\\'; y',  1`,
    ]);
  });

  it('refuses dollar-quoted text rather than misreading it', () => {
    expect(() => splitStatements('SELECT $$a;b$$')).toThrow(/dollar-quoted/);
  });

  it('runs every SET of a file local to its transaction, and drops the file’s own timeouts', () => {
    expect(
      ddlStatements(
        `SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET search_path = "x";\nCREATE TABLE t ();`,
      ),
    ).toEqual(['SET LOCAL search_path = "x"', 'CREATE TABLE t ()']);
  });
});

describe('relocateSql', () => {
  const placeholder = `"${RELOCATION_PLACEHOLDER}"`;

  it('moves quoted identifiers and the names inside setval literals, quoting the target for each', () => {
    const text =
      `CREATE SCHEMA IF NOT EXISTS ${placeholder};\n` +
      `CREATE TABLE ${placeholder}."t" ("x" int DEFAULT 'pg-lifecycle restore target');\n` +
      `SELECT pg_catalog.setval('${placeholder}."t_id_seq"', 5, true);\n` +
      `-- ${placeholder} in a comment stays`;
    expect(relocateSql(text, RELOCATION_PLACEHOLDER, `o'brien "x"`)).toBe(
      `CREATE SCHEMA IF NOT EXISTS "o'brien ""x""";\n` +
        `CREATE TABLE "o'brien ""x"""."t" ("x" int DEFAULT 'pg-lifecycle restore target');\n` +
        `SELECT pg_catalog.setval('"o''brien ""x"""."t_id_seq"', 5, true);\n` +
        `-- ${placeholder} in a comment stays`,
    );
  });

  it('refuses a target PostgreSQL would cut or that is reserved', () => {
    expect(() => relocateSql('', RELOCATION_PLACEHOLDER, 'x'.repeat(64))).toThrow(/longer than 63 bytes/);
    expect(() => relocateSql('', RELOCATION_PLACEHOLDER, 'lifecycle')).toThrow(/ledger/);
    expect(() => relocateSql('', RELOCATION_PLACEHOLDER, 'pg_temp')).toThrow(/system schema/);
  });
});

describe('planRestore', () => {
  it('selects tables by pattern, in manifest order, and maps them into one schema', () => {
    const plan = planRestore(
      manifest(),
      request({ mode: 'data-only', tables: ['"Sales"."Order Lines"', 'orders'], intoSchema: 'copy' }),
    );
    expect(plan.tables.map((t) => [t.entry.table, t.target.quotedName])).toEqual([
      ['"public"."orders"', '"copy"."orders"'],
      ['"Sales"."Order Lines"', '"copy"."Order Lines"'],
    ]);
    expect(
      planRestore(manifest(), request({ mode: 'data-only', tables: ['"Sales".*'] })).tables,
    ).toHaveLength(2);
  });

  it.each([
    [
      'an unknown table',
      request({ mode: 'data-only', tables: ['public.nope'] }),
      /--table public.nope: no such table/,
    ],
    ['a table pattern that is not one', request({ mode: 'data-only', tables: ['a.b.c'] }), /--table a.b.c/],
    ['a subset of a full restore', request({ tables: ['orders'] }), /--table restores data only/],
    ['a subset of a schema-only restore', request({ mode: 'schema-only', tables: ['orders'] }), /data only/],
    ['truncate for a full restore', request({ ifExists: 'truncate' }), /applies to --mode data-only/],
    ['a bad mode', request({ mode: 'everything' as never }), /--mode everything: must be one of/],
    ['a reserved target schema', request({ intoSchema: 'lifecycle' }), /ledger/],
  ])('refuses %s', (_, restoreRequest, message) => {
    expect(() => planRestore(manifest(), restoreRequest)).toThrow(message);
  });

  it('refuses two tables that would land on one name in the target schema', () => {
    const m = manifest();
    const twin = {
      ...(m.tables[0] as BackupManifest['tables'][number]),
      table: '"Sales"."orders"',
      parts: [],
    };
    const withTwin = manifest({
      relocatable: undefined,
      tables: [...m.tables, { ...twin, rows: 0, bytes: 0, contentChecksum: 'md5-64:0:0' }],
    });
    expect(() => planRestore(withTwin, request({ mode: 'data-only', intoSchema: 'copy' }))).toThrow(
      '"public"."orders" and "Sales"."orders" would both be restored as "copy"."orders"',
    );
  });

  it('refuses --into-schema for a full restore of a backup without relocatable DDL, and says what works', () => {
    expect(() =>
      planRestore(manifest({ relocatable: undefined }), request({ intoSchema: 'copy', tables: [] })),
    ).toThrow(/no relocatable DDL.*--mode data-only/);
  });

  it('reads the relocatable DDL into the target schema', () => {
    const plan = planRestore(manifest(), request({ intoSchema: 'copy' }));
    expect(plan.ddl?.preDataKey).toBe(backupKeys('nightly', ID).relocatableSchema);
    expect(plan.ddl?.prepare(`CREATE SCHEMA "${RELOCATION_PLACEHOLDER}"`)).toBe('CREATE SCHEMA "copy"');
  });
});

describe('manifestPlacementProblems', () => {
  it('accepts a manifest in its place', () => {
    expect(manifestPlacementProblems(manifest(), 'nightly', ID)).toEqual([]);
  });

  it('names a manifest of another backup, parts outside its prefix and a checksum of other rows', () => {
    const m = manifest();
    const [first, ...rest] = m.tables;
    if (!first) throw new Error('no table');
    const edited = manifest({
      tables: [
        {
          ...first,
          contentChecksum: 'md5-64:4:42',
          parts: [
            {
              ...(first.parts[0] as (typeof first.parts)[number]),
              key: 'backup/other/x/data/a.b/part-00001.sql.gz',
            },
          ],
        },
        ...rest,
      ],
    });
    expect(manifestPlacementProblems(edited, 'nightly', '20261203T010000Z-00000000')).toEqual([
      `it names backup ${ID}, not 20261203T010000Z-00000000`,
      'schemaKey backup/nightly/20261202T010000Z-1a2b3c4d/schema.sql lies outside backup/nightly/20261203T010000Z-00000000/',
      'postDataKey backup/nightly/20261202T010000Z-1a2b3c4d/post-data.sql lies outside backup/nightly/20261203T010000Z-00000000/',
      'relocatable.schemaKey backup/nightly/20261202T010000Z-1a2b3c4d/relocatable/schema.sql lies outside backup/nightly/20261203T010000Z-00000000/',
      'relocatable.postDataKey backup/nightly/20261202T010000Z-1a2b3c4d/relocatable/post-data.sql lies outside backup/nightly/20261203T010000Z-00000000/',
      'part backup/other/x/data/a.b/part-00001.sql.gz of "public"."orders" lies outside backup/nightly/20261203T010000Z-00000000/data/',
      '"public"."orders": its content checksum counts 4 rows, the table 3',
      expect.stringContaining('"Sales"."Order Lines" lies outside'),
      expect.stringContaining('"Sales"."Invoices" lies outside'),
    ]);
  });
});

describe('backup times', () => {
  it('reads the time a backup id starts with', () => {
    expect(backupIdTime(ID)).toBe('2026-12-02T01:00:00Z');
    expect(backupIdTime('manual-backup-1')).toBeUndefined();
  });

  it('expires a backup at the midnight UTC after its first part’s expiry, as S3 lifecycle rules do', () => {
    expect(backupExpiry('2026-12-02T01:00:00.000Z', 30)).toBe('2027-01-02T00:00:00.000Z');
    expect(backupExpiry('2026-12-31T23:59:59.000Z', 1)).toBe('2027-01-02T00:00:00.000Z');
  });
});

describe('sequencePositions', () => {
  it('takes the setval statements of a post-data file, names unquoted from their literal', () => {
    const postData =
      `SET search_path = "a";\nALTER TABLE ONLY "a"."t" ADD CONSTRAINT "t;pk" PRIMARY KEY (id);\n` +
      `SELECT pg_catalog.setval('"a"."o''s seq"', 42, true);\nSELECT pg_catalog.setval('"a"."t_id_seq"', 1, false);\n`;
    expect(sequencePositions(postData)).toEqual([
      { sequence: `"a"."o's seq"`, value: '42', isCalled: true },
      { sequence: '"a"."t_id_seq"', value: '1', isCalled: false },
    ]);
  });
});
