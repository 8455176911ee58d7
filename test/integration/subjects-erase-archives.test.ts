/**
 * An erasure reaches the archives: a subject's rows were archived into Parquet objects (through the archive
 * policies' state machines, into a versioned bucket), then a subjects policy erases the subject. Every object that
 * held their rows is rewritten without them (the other rows byte-exact, the file's own schema), an object that held
 * only theirs is gone with its ledger row, objects without them are untouched, and no version of an old object is
 * left (a noncurrent one included). Afterwards the subject's identifying values appear nowhere: not in any table,
 * the ledger, the run's logs, nor in the raw bytes or decoded rows of any object in the bucket.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import { readArchivedSchema } from '../../functions/actions/restore-archive/parquet-decode.ts';
import { createSubjectRequest, listSubjectRequests } from '../../functions/actions/subjects/requests.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';
import { listAllKeys } from '../support/s3.ts';
import {
  AUDIT,
  AUDIT_QUOTED,
  capturingLogger,
  decodedRows,
  HASH_KEY,
  ledgerObjects,
  objectBytes,
  SESSIONS_QUOTED,
  SUBJECT,
  SUBJECT_MARKS,
  seedSubjectArchives,
  subjectArchiveConfig,
} from '../support/subject-archives.ts';
import { versionedS3 } from '../support/versioned-s3.ts';

const config = subjectArchiveConfig();

interface RewriteProof {
  table: string;
  oldKey: string;
  newKey: string | null;
  rowsRemoved: number;
  rowsMasked: number;
  rowsLeft: number;
}

describe('subject erasure in the archives', () => {
  it('rewrites every object holding the subject, deletes every version of the old ones, and leaves their values nowhere', async ({
    database: db,
    s3: realS3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: archive through the versioned bucket, then give one object holding the subject a noncurrent version.
    await seedSubjectArchives(db);
    const versioned = versionedS3(realS3, bucket);
    const s3 = versioned.client;
    for (const policy of ['audit-archive', 'sessions-archive']) {
      const run = await runPolicy(config, policy, { deps: { s3, bucket } });
      expect(run.failure).toBeUndefined();
    }
    const before = await ledgerObjects(db);
    const auditObjects = before.filter((o) => o.table === AUDIT_QUOTED);
    const rowsBefore = new Map<string, string[]>();
    const schemaBefore = new Map<string, string>();
    for (const o of before) {
      rowsBefore.set(o.key, await decodedRows(s3, bucket, o.key));
      schemaBefore.set(
        o.key,
        JSON.stringify(readArchivedSchema(await objectBytes(s3, bucket, o.key)).metadata.schema),
      );
    }
    const subjectRowsOf = (key: string) =>
      (rowsBefore.get(key) ?? []).filter((row) => JSON.parse(row)[1] === SUBJECT).length;
    const holding = before.filter((o) => subjectRowsOf(o.key) > 0);
    // Five audit objects hold one row of the subject each, the sessions object holds only theirs; others none.
    expect(holding.filter((o) => o.table === AUDIT_QUOTED).map((o) => subjectRowsOf(o.key))).toEqual([
      1, 1, 1, 1, 1,
    ]);
    expect(
      holding.filter((o) => o.table === SESSIONS_QUOTED).map((o) => [subjectRowsOf(o.key), o.rows]),
    ).toEqual([[5, 5]]);
    expect(auditObjects.length).toBeGreaterThan(5);
    const first = holding[0]?.key as string;
    const firstBytes = await objectBytes(s3, bucket, first);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: first, Body: firstBytes }));
    expect(versioned.versionsOf(first)).toHaveLength(2);
    const made = await createSubjectRequest(db.pool, {
      policy: 'gdpr',
      kind: 'erase',
      subjectKey: SUBJECT,
      hashKey: HASH_KEY,
      dueDays: 30,
      requestedAt: new Date(NOW.getTime() - 3_600_000),
    });
    const log = capturingLogger();

    // Act
    const result = await runPolicy(config, 'gdpr', { deps: { s3, bucket, hashKey: HASH_KEY, log } });

    // Assess: the request is completed and its proof names each rewrite (keys, counts).
    expect(result.failure).toBeUndefined();
    const request = (await listSubjectRequests(db.pool, 'gdpr')).find(
      (r) => r.requestId === made.request.requestId,
    );
    expect(request?.status).toBe('completed');
    const proof = request?.proof as {
      archives: { rewritten: boolean; objects: RewriteProof[]; objectsSearched: number };
    };
    expect(proof.archives.rewritten).toBe(true);
    expect(proof.archives.objectsSearched).toBe(before.length);
    const rewrites = proof.archives.objects;
    expect(rewrites.map((r) => [r.table, r.oldKey, r.rowsRemoved, r.rowsLeft])).toEqual(
      holding.map((o) => [o.table, o.key, subjectRowsOf(o.key), o.rows - subjectRowsOf(o.key)]),
    );
    expect(rewrites.map((r) => r.newKey === null)).toEqual(holding.map((o) => o.table === SESSIONS_QUOTED));

    // The ledger: untouched objects keep key and checksum; rewritten ones list the new object; the emptied one is gone.
    const after = await ledgerObjects(db);
    const untouched = before.filter((o) => !holding.includes(o));
    expect(after.filter((o) => !holding.some((h) => h.objectId === o.objectId))).toEqual(untouched);
    expect(after.map((o) => o.objectId)).toEqual(
      before.filter((o) => o.table === AUDIT_QUOTED).map((o) => o.objectId),
    );
    for (const rewrite of rewrites.filter((r) => r.newKey !== null)) {
      const listed = after.find((o) => o.key === rewrite.newKey);
      expect(listed?.rows).toBe(rewrite.rowsLeft);
      // Beside the old object, in the same Hive partition folder.
      const folder = (key: string) => key.slice(0, key.lastIndexOf('/'));
      expect(folder(listed?.key as string)).toBe(folder(rewrite.oldKey));
      // The other rows byte-exact, in the file's own schema.
      const expected = (rowsBefore.get(rewrite.oldKey) ?? []).filter((row) => JSON.parse(row)[1] !== SUBJECT);
      expect(await decodedRows(s3, bucket, listed?.key as string)).toEqual(expected);
      expect(
        JSON.stringify(
          readArchivedSchema(await objectBytes(s3, bucket, listed?.key as string)).metadata.schema,
        ),
      ).toBe(schemaBefore.get(rewrite.oldKey));
    }
    const total = (list: Array<{ rows: number }>) => list.reduce((sum, o) => sum + o.rows, 0);
    expect(total(after)).toBe(total(before) - 10);

    // No version of an old object is left, the noncurrent one included.
    for (const rewrite of rewrites) expect(versioned.versionsOf(rewrite.oldKey)).toEqual([]);
    const keys = await listAllKeys(realS3, bucket);
    for (const rewrite of rewrites) expect(keys).not.toContain(rewrite.oldKey);

    // The subject's values appear nowhere: every table (the ledger included), the logs, every object's bytes and rows.
    const { rows: tables } = await db.pool.query<{ name: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
    );
    expect(tables.map((t) => t.name)).toContain('lifecycle.subject_requests');
    for (const { name } of tables) {
      const { rows } = await db.pool.query<{ t: string }>(
        `SELECT string_agg(t::text, E'\\n') AS t FROM ${name} AS t`,
      );
      for (const mark of SUBJECT_MARKS)
        expect(rows[0]?.t ?? '', `${name} holds "${mark}"`).not.toContain(mark);
    }
    const logText = log.lines.join('\n');
    for (const mark of SUBJECT_MARKS) expect(logText).not.toContain(mark);
    expect(keys.some((k) => k.startsWith('zz-noncurrent/'))).toBe(false);
    for (const key of keys) {
      const text = Buffer.from(await objectBytes(realS3, bucket, key)).toString('latin1');
      for (const mark of SUBJECT_MARKS) expect(text, `${key} holds "${mark}"`).not.toContain(mark);
      if (key.endsWith('.parquet'))
        for (const row of await decodedRows(realS3, bucket, key))
          for (const mark of SUBJECT_MARKS) expect(row).not.toContain(mark);
    }
    // Others' rows are all still there, live and archived (DuckDB reads the objects the ledger lists).
    const dir = await mkdtemp(join(tmpdir(), 'erasure-'));
    try {
      const files: string[] = [];
      for (const [i, o] of after.entries()) {
        const file = join(dir, `${i}.parquet`);
        await writeFile(file, await objectBytes(s3, bucket, o.key));
        files.push(file);
      }
      const duck = await DuckDBInstance.create(':memory:');
      const connection = await duck.connect();
      const reader = await connection.runAndReadAll(
        `SELECT count(*)::INTEGER AS n, count(*) FILTER (WHERE user_id = 7)::INTEGER AS subject,
                count(DISTINCT id)::INTEGER AS ids FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}])`,
      );
      expect(reader.getRowObjects()[0]).toEqual({ n: 195, subject: 0, ids: 195 });
      connection.closeSync();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const { rows: live } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${AUDIT} WHERE user_id = 7`,
    );
    expect(live[0]?.n).toBe(0);
  });
});
