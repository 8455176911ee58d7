/**
 * Backup parts against real PostgreSQL and the local S3 server: every common type round-trips byte-exact
 * through a part into another table, key-range and block-range plans hold every row exactly once, a part
 * whose bytes are not the manifest's loads nothing, the object is a gzip'd psql COPY block, and a failed
 * upload or COPY leaves no object (the multipart upload is aborted) and a usable connection.
 */
import { gunzipSync } from 'node:zlib';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { readContentChecksum } from '../../functions/actions/backup/content-checksum.ts';
import {
  CompressionUnavailableError,
  checkCompression,
} from '../../functions/actions/backup/part-compression.ts';
import { BackupPartMismatchError, restorePart } from '../../functions/actions/backup/part-reader.ts';
import { writePart } from '../../functions/actions/backup/part-writer.ts';
import {
  type BackedUpTable,
  backUpTable,
  partTable,
  restoreTable,
  sortedRowTexts,
  textClient,
  withTextClient,
} from '../support/backup-parts.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';
import { testS3Client } from '../support/s3.ts';

const SHOP = '"Shop Data"."Order Items"';
const RESTORED = '"Restore Here"."Order Items"';

/** Every common type, mixed-case and spaced names, a column named like a placeholder, NULLs everywhere. */
async function seedTypes(db: TestDatabase): Promise<void> {
  await db.pool.query(`CREATE SCHEMA IF NOT EXISTS "Shop Data"; CREATE SCHEMA IF NOT EXISTS "Restore Here"`);
  await db.pool.query(`DROP TABLE IF EXISTS ${SHOP}, ${RESTORED}`);
  await db.pool.query(`
    CREATE TABLE ${SHOP} (
      "Id" bigint PRIMARY KEY, "small $1" smallint, "Int" integer, "Total Amount" numeric, "r" real,
      "d" double precision, "note text" text, "b" bytea, "ok" boolean, "day" date, "at" timestamp,
      "at tz" timestamptz, "span" interval, "u" uuid, "j" json, "jb" jsonb, "ip" inet, "net" cidr,
      "ints" integer[], "texts" text[], "grid" integer[][], "v" varchar(20))`);
  await db.pool.query(`
    INSERT INTO ${SHOP} VALUES
      (1, -32768, 2147483647, 'NaN', 'NaN', 'Infinity', E'tab\\there\\nnewline\\\\backslash \\\\N',
       '\\x00ff5c0a09', true, '2024-02-29', '2024-01-01 12:34:56.123456', '2024-06-30 23:59:59.999999+02',
       '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
       '{"a": [1, 2, {"b": null}],  "t": "x\\ty"}', '{"z": 1, "a": "ü"}', '192.168.0.1/24', '10.0.0.0/8',
       '{1,NULL,3}', '{"a b","c\\"d",NULL,"NULL",""}', '{{1,2},{3,4}}', 'vär'),
      (2, 32767, -2147483648, '123456789012345678901234567890.123456789', '-Infinity', '-0',
       'ünïcødé 日本 🎉', '\\x', false, 'infinity', '-infinity', '1970-01-01 00:00:00.000001+00',
       '-1 days -00:00:00.000001', '00000000-0000-0000-0000-000000000000', '[]', '[1, "two", null]', '::1',
       '2001:db8::/32', '{}', '{}', '{{NULL}}', ''),
      (3, 0, 0, '-0.000001', 1.17549435e-38, 2.2250738585072014e-308, '', '\\x5c', NULL, '0001-01-01 BC',
       '294276-12-31 23:59:59.999999', '2000-01-01 00:00:00+14', '0', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
       'null', '"text"', '0.0.0.0/0', '0.0.0.0/0', '{-1}', '{"\\\\"}', '{{-2147483648}}', 'NULL'),
      (-9223372036854775808, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (9223372036854775807, NULL, NULL, NULL, NULL, NULL, 'NULL', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, E'\\\\N')`);
  await db.pool.query(`CREATE TABLE ${RESTORED} (LIKE ${SHOP} INCLUDING ALL)`);
  await db.pool.query(`ANALYZE ${SHOP}`);
}

async function backUpShop(db: TestDatabase, s3: S3Client, bucket: string, prefix: string) {
  return withTextClient(db, (client) =>
    backUpTable(client, {
      schema: 'Shop Data',
      name: 'Order Items',
      s3,
      bucket,
      prefix,
      targetBytes: 1 << 20,
    }),
  );
}

async function countRows(db: TestDatabase, quotedName: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quotedName}`);
  return rows[0]?.n ?? -1;
}

/** Backs up, restores next to the original, and compares row texts and content checksums. */
async function expectRoundTrip(
  db: TestDatabase,
  s3: S3Client,
  bucket: string,
  schema: string,
  name: string,
  targetBytes: number,
): Promise<BackedUpTable> {
  const source = `"${schema}"."${name}"`;
  const target = `"restored"."${name}"`;
  await db.pool.query(`CREATE SCHEMA IF NOT EXISTS restored; DROP TABLE IF EXISTS ${target}`);
  await db.pool.query(`CREATE TABLE ${target} (LIKE ${source})`);
  await db.pool.query(`ANALYZE ${source}`);
  const client = await textClient(db);
  try {
    const backup = await backUpTable(client, { schema, name, s3, bucket, prefix: `t/${name}`, targetBytes });
    const loaded = await restoreTable(client, backup, { s3, bucket, quotedName: target });
    const rows = await countRows(db, source);
    expect(loaded).toBe(rows);
    expect(backup.parts.reduce((sum, part) => sum + part.written.rows, 0)).toBe(rows);
    const columns = backup.table.columns;
    expect(await sortedRowTexts(client, target, columns)).toEqual(
      await sortedRowTexts(client, source, columns),
    );
    expect(await readContentChecksum(client, target, columns)).toEqual(
      await readContentChecksum(client, source, columns),
    );
    return backup;
  } finally {
    await client.end();
  }
}

describe('backup parts', () => {
  it('round-trips every common type byte-exact into another schema, checksum equal', async ({
    database: db,
    s3,
    bucket,
  }) => {
    await seedTypes(db);
    const client = await textClient(db);
    try {
      const backup = await backUpShop(db, s3, bucket, 'types');
      expect(backup.parts).toHaveLength(1);
      expect(backup.parts[0]?.written.rows).toBe(5);
      expect(await restoreTable(client, backup, { s3, bucket, quotedName: RESTORED })).toBe(5);
      const columns = backup.table.columns;
      const original = await sortedRowTexts(client, SHOP, columns);
      expect(original).toHaveLength(5);
      expect(await sortedRowTexts(client, RESTORED, columns)).toEqual(original);
      const checksum = await readContentChecksum(client, SHOP, columns);
      expect(checksum.rows).toBe('5');
      expect(await readContentChecksum(client, RESTORED, columns)).toEqual(checksum);
      // The checksum sees a one-character change.
      await client.query(`UPDATE ${RESTORED} SET "note text" = 'x' WHERE "Id" = 3`);
      expect(await readContentChecksum(client, RESTORED, columns)).not.toEqual(checksum);
    } finally {
      await client.end();
    }
  });

  it('stores a gzip whose text is a psql COPY block of the source table', async ({
    database: db,
    s3,
    bucket,
  }) => {
    await seedTypes(db);
    const backup = await backUpShop(db, s3, bucket, 'format');
    const written = backup.parts[0]?.written;
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: written?.key }));
    const stored = Buffer.from((await object.Body?.transformToByteArray()) ?? []);
    expect(stored.length).toBe(written?.bytes);
    expect([...stored.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    const text = gunzipSync(stored).toString('utf8');
    expect(text.length > 0 && Buffer.byteLength(text)).toBe(written?.uncompressedBytes);
    const lines = text.split('\n');
    // The rows are UTF-8 whatever the target database's encoding: psql is told so before the COPY.
    expect(lines[0]).toBe("SET client_encoding = 'UTF8';");
    expect(lines[1]).toBe(
      'COPY "Shop Data"."Order Items" ("Id", "small $1", "Int", "Total Amount", "r", "d", "note text", "b", ' +
        '"ok", "day", "at", "at tz", "span", "u", "j", "jb", "ip", "net", "ints", "texts", "grid", "v") FROM stdin;',
    );
    expect(lines.slice(-2)).toEqual(['\\.', '']);
    expect(lines).toHaveLength(2 + 5 + 2);
    // COPY text escapes the tab and newline inside a value; a NULL is \N.
    expect(lines.find((line) => line.startsWith('1\t'))).toContain('tab\\there\\nnewline\\\\backslash');
    expect(lines.find((line) => line.startsWith('-9223372036854775808\t'))).toMatch(/^[^\t]+(\t\\N){21}$/);
  });

  it('splits a composite-key table into exact key ranges: every row exactly once', async ({
    database: db,
    s3,
    bucket,
  }) => {
    await db.pool.query(`CREATE SCHEMA keyed`);
    await db.pool.query(`CREATE TABLE keyed.events ("Tenant $1" text, id int, payload text,
                           PRIMARY KEY ("Tenant $1", id))`);
    // Tenants whose text sorts apart from their numbers, several ids each, payload of ~100 bytes.
    await db.pool.query(`INSERT INTO keyed.events
      SELECT 'tenant ' || (g % 37) || E' \\'q', g, repeat(md5(g::text), 3) FROM generate_series(1, 6000) g`);
    const backup = await expectRoundTrip(db, s3, bucket, 'keyed', 'events', 64 * 1024);
    expect(backup.parts.length).toBeGreaterThanOrEqual(5);
    expect(backup.parts[0]?.range).toMatchObject({ kind: 'key', columns: ['Tenant $1', 'id'] });
    expect(backup.parts[0]?.range).not.toHaveProperty('from');
    expect(backup.parts.at(-1)?.range).not.toHaveProperty('to');
    // Every part but the last has the same number of rows (every Nth key).
    const sizes = backup.parts.slice(0, -1).map((part) => part.written.rows);
    expect(new Set(sizes).size).toBe(1);
    expect(backup.parts.at(-1)?.written.rows).toBeLessThanOrEqual(sizes[0] ?? 0);
  });

  it('makes a part of every row when one row is at least the target size (parts stay bounded)', async ({
    database: db,
    s3,
    bucket,
  }) => {
    await db.pool.query(`CREATE SCHEMA wide`);
    await db.pool.query(`CREATE TABLE wide.rows (id int PRIMARY KEY, payload text)`);
    await db.pool.query(
      `INSERT INTO wide.rows SELECT g, repeat(md5(g::text), 40) FROM generate_series(1, 30) g`,
    );
    await db.pool.query(`ANALYZE wide.rows`);
    const backup = await expectRoundTrip(db, s3, bucket, 'wide', 'rows', 500);
    expect(backup.parts.map((part) => part.written.rows)).toEqual(Array.from({ length: 30 }, () => 1));
  });

  it('splits a keyless table into ctid block ranges: every row exactly once, holes and all', async ({
    database: db,
    s3,
    bucket,
  }) => {
    await db.pool.query(`CREATE SCHEMA heap`);
    await db.pool.query(`CREATE TABLE heap.logs (n int, line text)`);
    await db.pool.query(
      `INSERT INTO heap.logs SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 8000) g`,
    );
    // Dead tuples and rows moved to the end of the heap, and a duplicate row (no key: duplicates are rows).
    await db.pool.query(`DELETE FROM heap.logs WHERE n % 7 = 0`);
    await db.pool.query(`UPDATE heap.logs SET line = 'moved' WHERE n % 11 = 0`);
    await db.pool.query(`INSERT INTO heap.logs VALUES (1, repeat(md5('1'), 4))`);
    const backup = await expectRoundTrip(db, s3, bucket, 'heap', 'logs', 64 * 1024);
    expect(backup.parts.length).toBeGreaterThanOrEqual(5);
    expect(backup.parts.map((part) => part.range.kind)).toEqual(backup.parts.map(() => 'blocks'));
    expect(backup.parts.at(-1)?.range).not.toHaveProperty('toBlock');
  });

  it('splits a keyless partitioned table by block numbers across its leaves', async ({
    database: db,
    s3,
    bucket,
  }) => {
    await db.pool.query(`CREATE SCHEMA parted`);
    await db.pool.query(`CREATE TABLE parted.readings (at int, value text) PARTITION BY RANGE (at)`);
    await db.pool.query(`CREATE TABLE parted.low PARTITION OF parted.readings FOR VALUES FROM (0) TO (1000)`);
    await db.pool.query(
      `CREATE TABLE parted.high PARTITION OF parted.readings FOR VALUES FROM (1000) TO (9000)`,
    );
    await db.pool.query(
      `INSERT INTO parted.readings SELECT g, repeat(md5(g::text), 4) FROM generate_series(0, 8999) g`,
    );
    const backup = await expectRoundTrip(db, s3, bucket, 'parted', 'readings', 64 * 1024);
    expect(backup.parts.length).toBeGreaterThanOrEqual(5);
  });

  describe('a part S3 holds other bytes for is refused before any row is loaded', () => {
    const corruptions = [
      ['truncated', (body: Buffer) => body.subarray(0, body.length - 9)],
      [
        'one flipped byte',
        (body: Buffer) => Buffer.from(body.map((byte, i) => (i === 40 ? byte ^ 0x01 : byte))),
      ],
      ['missing', undefined],
    ] as const;
    it.for(corruptions)('%s', async ([label, corrupt], { database: db, s3, bucket }) => {
      await seedTypes(db);
      const backup = await backUpShop(db, s3, bucket, `corrupt/${label}`);
      const written = backup.parts[0]?.written;
      if (!written) throw new Error('no part');
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: written.key }));
      const body = Buffer.from((await object.Body?.transformToByteArray()) ?? []);
      if (corrupt)
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: written.key, Body: corrupt(body) }));
      else await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: written.key }));
      await withTextClient(db, (client) =>
        expect(restoreTable(client, backup, { s3, bucket, quotedName: RESTORED })).rejects.toThrow(
          BackupPartMismatchError,
        ),
      );
      expect(await countRows(db, RESTORED)).toBe(0);
    });
  });

  it('aborts the multipart upload when a part upload fails, leaving no object and a usable connection', async ({
    database: db,
    bucket,
  }) => {
    await db.pool.query(`CREATE SCHEMA big`);
    await db.pool.query(`CREATE TABLE big.blobs (id int PRIMARY KEY, data text)`);
    // ~24 MB of hex that gzip -1 leaves at ~12 MB: three 5 MiB upload parts, the second of which fails.
    await db.pool.query(`INSERT INTO big.blobs
      SELECT g, encode(sha256(g::text::bytea), 'hex') || encode(sha256((-g)::text::bytea), 'hex')
        FROM generate_series(1, 180000) g`);
    const sent: string[] = [];
    const failing = testS3Client();
    failing.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(context.commandName ?? '');
        const input = args.input as { PartNumber?: number };
        if (context.commandName === UploadPartCommand.name && input.PartNumber === 2)
          throw Object.assign(new Error('injected part failure'), { name: 'InternalError' });
        return next(args);
      },
      { step: 'initialize', name: 'failSecondPart' },
    );
    const client = await textClient(db);
    try {
      const table = await partTable(client, 'big', 'blobs');
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      const key = 'fail/part-00001.sql.gz';
      await expect(
        writePart({
          client,
          table,
          s3: failing,
          bucket,
          key,
          compression: { codec: 'gzip', level: 1 },
          upload: { partSizeBytes: 5 * 1024 * 1024, queueSize: 1 },
        }),
      ).rejects.toThrow(/injected part failure|InternalError/);
      expect(sent).toContain('CreateMultipartUploadCommand');
      expect(sent).toContain('AbortMultipartUploadCommand');
      expect(sent).not.toContain('CompleteMultipartUploadCommand');
      await expect(failing.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).rejects.toThrow();
      // The COPY was read to its end: the connection answers in the same transaction.
      expect((await client.query(`SELECT count(*)::int AS n FROM big.blobs`)).rows[0]).toEqual({
        n: '180000',
      });
      await client.query('ROLLBACK');
    } finally {
      await client.end();
      failing.destroy();
    }
  });

  it('a COPY that fails midway stores nothing', async ({ database: db, s3, bucket }) => {
    await db.pool.query(`CREATE SCHEMA failing`);
    await db.pool.query(`CREATE TABLE failing.t (id int PRIMARY KEY)`);
    await db.pool.query(`INSERT INTO failing.t SELECT generate_series(1, 50000)`);
    const client = await textClient(db);
    try {
      const table = await partTable(client, 'failing', 't');
      const key = 'failing/part-00001.sql.gz';
      // A division by zero at row 40000, after rows were already streamed.
      const range = { sql: `1 / ("id" - 40000) IS NOT NULL OR $1 = ''`, params: ['x'] };
      await expect(
        writePart({ client, table, range, s3, bucket, key, compression: { codec: 'gzip', level: 1 } }),
      ).rejects.toThrow(/division by zero/);
      await expect(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).rejects.toThrow();
      expect((await client.query(`SELECT 1 AS one`)).rows[0]).toEqual({ one: '1' });
    } finally {
      await client.end();
    }
  });

  it.runIf(!hasZstd())(
    'refuses zstd on a Node without it, before anything is read or written',
    async ({ database: db, s3, bucket }) => {
      await seedTypes(db);
      const key = 'zstd/part-00001.sql.zst';
      await withTextClient(db, async (client) => {
        const table = await partTable(client, 'Shop Data', 'Order Items');
        const compression = { codec: 'zstd', level: 3 } as const;
        await expect(writePart({ client, table, s3, bucket, key, compression })).rejects.toThrow(
          CompressionUnavailableError,
        );
        const part = { key, bytes: 1, sha256: '00', rows: 0 };
        const restore = { client, s3, bucket, part, codec: 'zstd', targetQuotedName: RESTORED } as const;
        await expect(restorePart({ ...restore, columns: table.columns })).rejects.toThrow(
          CompressionUnavailableError,
        );
      });
      await expect(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).rejects.toThrow();
    },
  );

  it.runIf(hasZstd())(
    'round-trips through zstd where node:zlib has it',
    async ({ database: db, s3, bucket }) => {
      await seedTypes(db);
      await withTextClient(db, async (client) => {
        const compression = { codec: 'zstd', level: 19 } as const;
        const backup = await backUpTable(client, {
          ...{ schema: 'Shop Data', name: 'Order Items', s3, bucket, prefix: 'zstd', targetBytes: 1 << 20 },
          compression,
        });
        const target = { s3, bucket, quotedName: RESTORED, codec: 'zstd' } as const;
        expect(await restoreTable(client, backup, target)).toBe(5);
        const columns = backup.table.columns;
        expect(await sortedRowTexts(client, RESTORED, columns)).toEqual(
          await sortedRowTexts(client, SHOP, columns),
        );
      });
    },
  );

  it('writes every float exactly even from a session that rounds them (extra_float_digits 0)', async ({
    database: db,
    s3,
    bucket,
  }) => {
    await db.pool.query(`CREATE SCHEMA floats; CREATE TABLE floats.v (id int PRIMARY KEY, f float8);
      CREATE TABLE floats.back (id int PRIMARY KEY, f float8);
      INSERT INTO floats.v VALUES (1, 0.1::float8 + 0.2::float8), (2, 1e-300), (3, 'NaN')`);
    await withTextClient(db, async (client) => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await client.query('SET LOCAL extra_float_digits = 0');
      const table = await partTable(client, 'floats', 'v');
      const part = await writePart({
        client,
        table,
        s3,
        bucket,
        key: 'floats/part-00001.sql.gz',
        compression: { codec: 'gzip', level: 1 },
      });
      await client.query('COMMIT');
      await client.query('BEGIN');
      await restorePart({
        client,
        s3,
        bucket,
        part,
        codec: 'gzip',
        targetQuotedName: 'floats.back',
        columns: table.columns,
      });
      await client.query('COMMIT');
    });
    const { rows } = await db.pool.query<{ id: number }>(
      `SELECT v.id FROM floats.v v JOIN floats.back b USING (id) WHERE b.f = v.f OR (b.f = 'NaN' AND v.f = 'NaN') ORDER BY 1`,
    );
    expect(rows.map((r) => r.id)).toEqual([1, 2, 3]);
  });

  it('says which part failed to load without quoting the row value that did not fit', async ({
    database: db,
    s3,
    bucket,
  }) => {
    await db.pool.query(`CREATE SCHEMA secrets; CREATE TABLE secrets.src (id text);
      CREATE TABLE secrets.dst (id int); INSERT INTO secrets.src VALUES ('card-4111111111111111')`);
    await withTextClient(db, async (client) => {
      const table = await partTable(client, 'secrets', 'src');
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      const part = await writePart({
        client,
        table,
        s3,
        bucket,
        key: 'secrets/part-00001.sql.gz',
        compression: { codec: 'gzip', level: 1 },
      });
      await client.query('COMMIT');
      await client.query('BEGIN');
      const error = await restorePart({
        client,
        s3,
        bucket,
        part,
        codec: 'gzip',
        targetQuotedName: 'secrets.dst',
        columns: table.columns,
      }).then(
        () => new Error('the load went through'),
        (caught: unknown) => caught as Error,
      );
      await client.query('ROLLBACK');
      expect(error.message).not.toBe('the load went through');
      const shown = JSON.stringify({ ...error, text: error.message, cause: String(error.cause ?? '') });
      expect(shown).not.toContain('4111');
      expect(error.name).toBe('DatabaseError');
    });
  });
});

function hasZstd(): boolean {
  try {
    checkCompression({ codec: 'zstd', level: 3 });
    return true;
  } catch {
    return false;
  }
}
