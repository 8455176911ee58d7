/**
 * The README's "Restoring with psql alone" recipe, run exactly as written (the shell block after its
 * `psql-restore-recipe` marker) with the AWS CLI, sha256sum, gunzip and psql against a backup the backup action
 * wrote of awkward names and values, into a fresh database. Every table must hold what was backed up (content
 * checksum, and sorted row text for the widest table) and take new rows as the original would.
 * Skipped where those programs are missing (the suite itself needs Node only).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { inject } from 'vitest';
import {
  formatContentChecksum,
  readContentChecksum,
} from '../../functions/actions/backup/content-checksum.ts';
import { SESSION_OPTIONS } from '../../functions/commons/database.ts';
import { testConfig } from '../support/archive.ts';
import { manifestOfRun } from '../support/backups.ts';
import { createTestDatabase, withClient } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';

const TOOLS = ['aws', 'sha256sum', 'gunzip', 'psql', 'bash'];
const missing = TOOLS.filter((tool) => {
  try {
    execFileSync('which', [tool], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});

function recipe(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const after = readme.split('<!-- psql-restore-recipe -->')[1];
  const block = after ? /```sh\n([\s\S]*?)```/.exec(after)?.[1] : undefined;
  if (!block) throw new Error('README.md has no psql-restore-recipe block');
  return block;
}

/** The README's block, exactly as a user pastes it into bash, with the variables it asks for set. */
function runRecipe(cwd: string, databaseUrl: string, bucket: string, backupId: string) {
  const url = new URL(databaseUrl);
  return spawnSync('bash', ['--norc', '--noprofile', '-c', recipe()], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BUCKET: bucket,
      POLICY: 'recipe',
      BACKUP_ID: backupId,
      PGHOST: url.hostname,
      PGPORT: url.port,
      PGUSER: decodeURIComponent(url.username),
      PGPASSWORD: decodeURIComponent(url.password),
      PGDATABASE: url.pathname.slice(1),
      AWS_ENDPOINT_URL_S3: inject('s3Endpoint'),
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_DEFAULT_REGION: 'us-east-1',
    },
  });
}

const SCHEMA = `
  CREATE SCHEMA "Odd Schema";
  CREATE TYPE "Odd Schema".mood AS ENUM ('ok', 'meh', 'ünïcode');
  CREATE DOMAIN "Odd Schema".positive AS numeric CHECK (VALUE > 0);
  CREATE TABLE "Odd Schema"."Mixed Case" (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "tab\tcol" text, b bytea, f float8, n numeric, r real, i8 bigint, flag bool, d date, ts timestamp,
    tz timestamptz, iv interval, u uuid, j json, jb jsonb, ip inet, net cidr, arr int[], tags text[],
    m "Odd Schema".mood, p "Odd Schema".positive,
    doubled bigint GENERATED ALWAYS AS (i8 % 1000 * 2) STORED);
  INSERT INTO "Odd Schema"."Mixed Case" ("tab\tcol", b, f, n, r, i8, flag, d, ts, tz, iv, u, j, jb, ip, net, arr, tags, m, p)
  VALUES (E'a\\tb\\nc\\\\ \\r end', '\\x00ff10', 'NaN', 'NaN', 'Infinity', 9007199254740993, true, '2026-02-28',
          '2026-01-01 00:00:00.000001', '2026-06-30 23:59:59.999999+02', '1 year 2 mons 3 days 04:05:06.789',
          'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2.50]}', '{"b": 1, "a": "ü"}', '192.168.0.1/24', '10.0.0.0/8',
          '{1,NULL,3}', '{"with space","with,comma","quote\\"d"}', 'ünïcode', 0.000001),
         (NULL, NULL, '-Infinity', -0.0, '-0', -1, NULL, 'infinity', NULL, '-infinity', NULL, NULL, 'null', '[]',
          '::1', '2001:db8::/32', '{}', NULL, NULL, NULL),
         ('ü€𝄞', '\\x', 0, 123456789012345678901234567890.123456789, 1.5e-7, 0, false, '0001-01-01', '1999-12-31 23:59:59',
          '2000-01-01 00:00:00+00', '-1 days', '00000000-0000-0000-0000-000000000000', '"text"', '{"nested": {"x": null}}',
          '0.0.0.0', '0.0.0.0/0', '{{1,2},{3,4}}', '{""}', 'ok', 1e10);
  INSERT INTO "Odd Schema"."Mixed Case" ("tab\tcol", i8, f)
    SELECT 'row ' || g || E'\\n' || repeat('x', g % 300), g, g / 7.0 FROM generate_series(1, 20000) g;
  CREATE TABLE "Odd Schema".events (at date NOT NULL, body text) PARTITION BY RANGE (at);
  CREATE TABLE "Odd Schema".events_2026 PARTITION OF "Odd Schema".events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
  CREATE TABLE "Odd Schema".events_rest PARTITION OF "Odd Schema".events DEFAULT;
  INSERT INTO "Odd Schema".events SELECT date '2025-06-01' + g % 700, 'e' || g FROM generate_series(1, 5000) g;
  CREATE TABLE "Odd Schema".no_key (a int, b text);
  INSERT INTO "Odd Schema".no_key SELECT g % 10, NULL FROM generate_series(1, 3000) g;
  CREATE TABLE "Odd Schema".child (id int PRIMARY KEY, parent int NOT NULL REFERENCES "Odd Schema"."Mixed Case" (id));
  INSERT INTO "Odd Schema".child SELECT g, g FROM generate_series(1, 100) g;`;

describe('README psql restore recipe', () => {
  it.skipIf(missing.length > 0)(
    `restores a backup with the AWS CLI, sha256sum, gunzip and psql alone (needs ${TOOLS.join(', ')})`,
    async ({ database, s3, bucket, runPolicy }) => {
      await database.pool.query(SCHEMA);
      const config = testConfig([
        {
          name: 'recipe',
          action: 'backup',
          backup: { tables: ['"Odd Schema".*'], partMiB: 1, level: 1 },
        },
      ]);
      const run = await runPolicy(config, 'recipe');
      expect(run.status).toBe('succeeded');
      const backupId = run.summary?.backup?.backupId ?? '';
      const manifest = await manifestOfRun(s3, bucket, run.summary);
      expect(
        manifest.tables.find((t) => t.table === '"Odd Schema"."Mixed Case"')?.parts.length,
      ).toBeGreaterThan(1);
      const target = await createTestDatabase('psql-recipe-target');
      const work = mkdtempSync(join(tmpdir(), 'psql-recipe-'));
      try {
        const shell = runRecipe(work, target.url, bucket, backupId);
        expect(shell.stderr).toBe('');
        expect(shell.status).toBe(0);

        // The checksum compares only under the text settings the backup pinned (TimeZone, IntervalStyle,
        // extra_float_digits…): read it on a connection that pins them too.
        const pinned = new pg.Client({ connectionString: target.url, options: SESSION_OPTIONS });
        await pinned.connect();
        const restoredChecksums = new Map<string, string>();
        try {
          for (const table of manifest.tables) {
            // Own rows (an inheritance child's are its own table's), but a partitioned table's are its partitions'.
            const { rows } = await pinned.query<{ kind: string }>(
              'SELECT relkind::text AS kind FROM pg_class WHERE oid = $1::regclass',
              [table.table],
            );
            const only = rows[0]?.kind !== 'p';
            const checksum = await readContentChecksum(pinned, table.table, table.columns, { only });
            restoredChecksums.set(table.table, formatContentChecksum(checksum));
          }
        } finally {
          await pinned.end();
        }
        for (const table of manifest.tables) {
          const restored = restoredChecksums.get(table.table);
          expect(restored, table.table).toBe(table.contentChecksum);
        }
        const sortedText = `SELECT string_agg(t, E'\\n' ORDER BY t) AS all FROM (SELECT x::text AS t FROM "Odd Schema"."Mixed Case" x) s`;
        const original = await database.pool.query<{ all: string }>(sortedText);
        const copy = await withClient(target.url, (client) => client.query<{ all: string }>(sortedText));
        expect(copy.rows[0]?.all).toBe(original.rows[0]?.all);
        const next = await withClient(target.url, (client) =>
          client.query<{ id: number }>(
            `INSERT INTO "Odd Schema"."Mixed Case" ("tab\tcol") VALUES ('new') RETURNING id`,
          ),
        );
        expect(next.rows[0]?.id).toBe(20_004);
        await expect(
          withClient(target.url, (client) =>
            client.query(`INSERT INTO "Odd Schema".child VALUES (1000, 999999)`),
          ),
        ).rejects.toThrow(/violates foreign key constraint/);

        // A part replaced in the bucket: the recipe stops at sha256sum, before schema.sql runs.
        const part = manifest.tables[0]?.parts[0]?.key ?? '';
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: part,
            Body: gzipSync(`COPY "Odd Schema"."Mixed Case" ("tab\tcol") FROM stdin;\nforged\n\\.\n`),
          }),
        );
        const second = await createTestDatabase('psql-recipe-forged');
        const forgedWork = mkdtempSync(join(tmpdir(), 'psql-recipe-forged-'));
        try {
          const forged = runRecipe(forgedWork, second.url, bucket, backupId);
          expect(forged.status).not.toBe(0);
          expect(forged.stdout + forged.stderr).toMatch(/FAILED/);
          const tables = await withClient(second.url, (client) =>
            client.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'Odd Schema'`),
          );
          expect(tables.rows).toEqual([]);
        } finally {
          rmSync(forgedWork, { recursive: true, force: true });
          await second.drop();
        }
      } finally {
        rmSync(work, { recursive: true, force: true });
        await target.drop();
      }
    },
  );
});
