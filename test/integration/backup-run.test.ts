/**
 * Backup end to end: the synthesized state machine run locally with the real handlers against a real
 * PostgreSQL and S3. What a user relies on: every table's rows are in the parts exactly once (content
 * checksum and sorted row text, recomputed on a restored copy), the manifest is written last and matches
 * the ledger, the run is audited, and bad input changes nothing.
 */
import * as zlib from 'node:zlib';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import {
  formatContentChecksum,
  readContentChecksum,
} from '../../functions/actions/backup/content-checksum.ts';
import { verifyBackup } from '../../functions/actions/backup/restore/index.ts';
import { SESSION_OPTIONS } from '../../functions/commons/database.ts';
import { testConfig } from '../support/archive.ts';
import { manifestOfRun } from '../support/backups.ts';
import { describe, expect, it } from '../support/fixture.ts';

const SCHEMA = `
  CREATE SCHEMA "Shop Floor";
  CREATE TYPE "Shop Floor".state AS ENUM ('new', 'paid');
  CREATE TABLE "Shop Floor"."Order Lines" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state "Shop Floor".state NOT NULL DEFAULT 'new',
    note text, amount numeric, at timestamptz);
  CREATE TABLE "Shop Floor".no_key (a int, b text);
  CREATE TABLE "Shop Floor".composite (k1 int, k2 text, v bytea, PRIMARY KEY (k1, k2));
  CREATE TABLE "Shop Floor".empty (id int PRIMARY KEY);
  INSERT INTO "Shop Floor"."Order Lines" (state, note, amount, at)
    SELECT (ARRAY['new','paid'])[1 + g % 2]::"Shop Floor".state,
           CASE WHEN g % 7 = 0 THEN NULL ELSE E'tab\\there, line\\nbreak ü ' || g END,
           CASE WHEN g % 11 = 0 THEN 'NaN' ELSE g / 3.0 END,
           timestamptz '2026-01-01 00:00:00.123456+00' + g * interval '1 minute'
      FROM generate_series(1, 30000) g;
  INSERT INTO "Shop Floor".no_key SELECT g, repeat('x', g % 50) FROM generate_series(1, 3000) g;
  INSERT INTO "Shop Floor".composite SELECT g % 40, 'k' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 2000) g;`;

describe('backup run', () => {
  it('backs up every table in parts whose checksums add up to the tables’, manifest last', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    await database.pool.query(SCHEMA);
    const config = testConfig([
      {
        name: 'nightly',
        action: 'backup',
        backup: { tables: ['"Shop Floor".*'], partMiB: 1, maxConcurrency: 2, compression: 'gzip', level: 1 },
      },
    ]);

    const result = await runPolicy(config, 'nightly');

    expect(result.failure).toBeUndefined();
    const summary = result.summary;
    expect(summary?.status).toBe('succeeded');
    expect(summary?.backup?.tables).toBe(4);
    const manifestKey = summary?.backup?.manifestKey ?? '';
    const manifest = await manifestOfRun(s3, bucket, summary);
    expect(manifestKey).toBe(`backup/nightly/${manifest.backupId}/manifest.json`);
    expect(manifest.consistency).toBe('snapshot');
    expect(manifest.tables.map((t) => t.table)).toEqual([
      '"Shop Floor"."Order Lines"',
      '"Shop Floor"."composite"',
      '"Shop Floor"."empty"',
      '"Shop Floor"."no_key"',
    ]);
    expect(manifest.tables[0]?.parts.length).toBeGreaterThan(1);
    expect(manifest.tables[2]?.rows).toBe(0);
    // Compared under the text settings the backup pinned (TimeZone, extra_float_digits…); no table here is
    // partitioned, so every table's own rows.
    const pinned = new pg.Client({ connectionString: database.url, options: SESSION_OPTIONS });
    await pinned.connect();
    try {
      for (const table of manifest.tables) {
        const live = await readContentChecksum(pinned, table.table, table.columns, { only: true });
        expect(table.contentChecksum, table.table).toBe(formatContentChecksum(live));
      }
    } finally {
      await pinned.end();
    }
    expect(summary?.rows).toBe(35_000);
    // Every part the manifest names is listed in the ledger for the run, and nothing else is.
    const { rows: listed } = await database.pool.query<{ key: string }>(
      `SELECT key FROM lifecycle.archived_objects WHERE run_id = $1 AND kind = 'backup-part' ORDER BY key`,
      [manifest.runId],
    );
    expect(listed.map((r) => r.key)).toEqual(
      manifest.tables.flatMap((t) => t.parts.map((p) => p.key)).sort(),
    );
    const objects = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `backup/nightly/${manifest.backupId}/` }),
    );
    const keys = (objects.Contents ?? []).map((o) => o.Key ?? '');
    expect(keys.filter((k) => k.includes('/data/')).sort()).toEqual(listed.map((r) => r.key));
    expect(keys).toContain(manifest.schemaKey);
    expect(keys).toContain(manifest.postDataKey);
    // Every DDL file has its SHA-256 in the manifest: one edited since is caught by verify, before it runs.
    expect(Object.keys(manifest.fileSha256 ?? {}).sort()).toEqual(
      [
        manifest.schemaKey,
        manifest.postDataKey,
        manifest.relocatable?.schemaKey ?? '',
        manifest.relocatable?.postDataKey ?? '',
      ].sort(),
    );
    expect((await verifyBackup(s3, bucket, manifest)).problems).toEqual([]);
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: manifest.postDataKey,
        Body: 'ALTER TABLE "Shop Floor"."Order Lines" DROP CONSTRAINT "Order Lines_pkey";\n',
      }),
    );
    const edited = await verifyBackup(s3, bucket, manifest);
    expect(edited.problems.map((p) => [p.kind, p.key])).toEqual([['file-sha256', manifest.postDataKey]]);
  });

  it('marks the policy’s backups past retentionDays expired in the ledger, and only those', async ({
    database,
    runPolicy,
  }) => {
    await database.pool.query(`CREATE SCHEMA kept; CREATE TABLE kept.t (id int PRIMARY KEY);`);
    const config = testConfig([
      { name: 'kept', action: 'backup', backup: { tables: ['kept.*'], retentionDays: 2 } },
    ]);
    const old = await runPolicy(config, 'kept');
    const recent = await runPolicy(config, 'kept');
    // The first backup finished three days ago, the second one yesterday.
    await database.pool.query(
      `UPDATE lifecycle.runs SET finished_at = clock_timestamp() - CASE WHEN run_id = $1 THEN interval '3 days' ELSE interval '1 day' END
        WHERE run_id = ANY ($2::uuid[])`,
      [old.summary?.runId, [old.summary?.runId, recent.summary?.runId]],
    );

    const latest = await runPolicy(config, 'kept');

    expect(latest.status).toBe('succeeded');
    const { rows } = await database.pool.query<{ run_id: string; expired: boolean }>(
      `SELECT run_id, detail ? 'expiredAt' AS expired FROM lifecycle.runs WHERE policy = 'kept'`,
    );
    const expired = Object.fromEntries(rows.map((r) => [r.run_id, r.expired]));
    expect(expired).toEqual({
      [old.summary?.runId ?? '']: true,
      [recent.summary?.runId ?? '']: false,
      [latest.summary?.runId ?? '']: false,
    });
  });

  it.skipIf(typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === 'function')(
    'refuses zstd on a Node without it before writing anything (CompressionUnavailableError)',
    async ({ database, s3, bucket, runPolicy }) => {
      await database.pool.query(`CREATE SCHEMA zstd_here; CREATE TABLE zstd_here.t (id int PRIMARY KEY);`);
      const config = testConfig([
        { name: 'zstd', action: 'backup', backup: { tables: ['zstd_here.*'], compression: 'zstd' } },
      ]);
      const result = await runPolicy(config, 'zstd');
      expect(result.status).toBe('failed');
      expect(result.failure?.error).toBe('CompressionUnavailableError');
      expect(result.failure?.runId).toBeUndefined();
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'backup/zstd/' }));
      expect(listed.KeyCount ?? 0).toBe(0);
    },
  );
});
