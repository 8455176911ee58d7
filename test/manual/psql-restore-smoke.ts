/**
 * Manual check, not part of `npm test` (it needs psql and gunzip on the PATH): backs up the demo schema plus a
 * table of awkward names and values with the backup building blocks (selection, DDL, parts, checksums), then
 * restores it into a fresh database with nothing but `psql -f schema.sql`, `gunzip -c part | psql` and
 * `psql -f post-data.sql`, and compares each table's content checksum with the source's.
 *
 *   node --import tsx test/manual/psql-restore-smoke.ts
 *
 * 2026-12-02, PostgreSQL 15.18 and psql 15.18: 9 tables, 997 parts (200 kB each), every checksum equal.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { applyDemoSchema, seedDemoData } from '../../bin/local/demo-seed.ts';
import { startLocalPostgres, startLocalS3 } from '../../bin/local/services.ts';
import {
  formatContentChecksum,
  readContentChecksum,
} from '../../functions/actions/backup/content-checksum.ts';
import { rangePredicate } from '../../functions/actions/backup/part-plan.ts';
import { planTableParts } from '../../functions/actions/backup/part-plan-queries.ts';
import { writePart } from '../../functions/actions/backup/part-writer.ts';
import { generateSchemaSql } from '../../functions/actions/backup/schema-sql.ts';
import { readSchemaDefinition } from '../../functions/actions/backup/table-definition.ts';
import { selectBackupTables } from '../../functions/actions/backup/table-selection.ts';
import { quoteQualified } from '../../lib/contracts/identifiers.ts';

const dir = '/tmp/psql-smoke';
mkdirSync(dir, { recursive: true });
const postgres = await startLocalPostgres();
const s3srv = await startLocalS3();
const s3 = new S3Client({
  region: 'us-east-1',
  forcePathStyle: true,
  endpoint: s3srv.endpoint,
  credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
});
try {
  const pool = new pg.Pool({ connectionString: postgres.url });
  await applyDemoSchema(pool);
  await seedDemoData(pool);
  await pool.query(
    `CREATE SCHEMA "Odd Schema"; CREATE TABLE "Odd Schema"."Mixed Case" (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "tab\tcol" text, b bytea, f float8, n numeric); INSERT INTO "Odd Schema"."Mixed Case" ("tab\tcol", b, f, n) VALUES (E'a\\tb\\nc\\\\', '\\x00ff', 'NaN', 'NaN'), (NULL, NULL, '-Infinity', 1.5), ('ü€', '\\x', 0, -0.0)`,
  );
  await pool.end();
  await s3.send(new CreateBucketCommand({ Bucket: 'b' }));
  const client = new pg.Client({ connectionString: postgres.url });
  await client.connect();
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const tables = await selectBackupTables(client, { tables: ['public.*', '"Odd Schema".*'], exclude: [] });
  const definition = await readSchemaDefinition(
    client,
    tables.map((t) => t.oid),
  );
  const sql = generateSchemaSql(definition);
  writeFileSync(`${dir}/schema.sql`, sql.preData);
  writeFileSync(`${dir}/post-data.sql`, sql.postData);
  const sums: Record<string, string> = {};
  const files: string[] = [];
  for (const t of tables) {
    const quotedName = quoteQualified(t.schema, t.table);
    const cols = (
      await client.query<{ attname: string }>(
        `SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
        [t.oid],
      )
    ).rows.map((r) => r.attname);
    const parts = await planTableParts(client, { schema: t.schema, name: t.table, quotedName }, 200_000);
    for (const part of parts) {
      const key = `p/${t.schema}.${t.table}.${part.index}.sql.gz`;
      await writePart({
        client,
        table: { quotedName, columns: cols },
        range: rangePredicate(part.range),
        s3,
        bucket: 'b',
        key,
        compression: { codec: 'gzip', level: 6 },
      });
      const obj = await s3.send(new GetObjectCommand({ Bucket: 'b', Key: key }));
      const file = `${dir}/${files.length}.sql.gz`;
      if (!obj.Body) throw new Error(`${key}: no body`);
      writeFileSync(file, Buffer.from(await obj.Body.transformToByteArray()));
      files.push(file);
    }
    sums[quotedName] = formatContentChecksum(await readContentChecksum(client, quotedName, cols));
  }
  await client.query('COMMIT');
  await client.query('CREATE DATABASE restored');
  await client.end();
  const url = new URL(postgres.url);
  url.pathname = '/restored';
  const psql = (args: string[], input?: Buffer) =>
    execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url.toString(), ...args], {
      input,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
  psql(['-f', `${dir}/schema.sql`]);
  for (const f of files) psql([], execFileSync('gunzip', ['-c', f]));
  psql(['-f', `${dir}/post-data.sql`]);
  const restored = new pg.Client({ connectionString: url.toString() });
  await restored.connect();
  let ok = true;
  for (const t of tables) {
    const quotedName = quoteQualified(t.schema, t.table);
    const cols = (
      await restored.query<{ attname: string }>(
        `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
        [quotedName],
      )
    ).rows.map((r) => r.attname);
    const sum = formatContentChecksum(await readContentChecksum(restored, quotedName, cols));
    const same = sum === sums[quotedName];
    ok &&= same;
    console.log(same ? 'same' : 'DIFFERENT', quotedName, sum, sums[quotedName]);
  }
  await restored.end();
  console.log(ok ? 'ALL SAME' : 'MISMATCH', tables.length, 'tables', files.length, 'parts');
} finally {
  s3.destroy();
  await Promise.allSettled([postgres.stop(), s3srv.stop()]);
}
