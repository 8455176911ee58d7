/**
 * A subject export includes the subject's archived rows: a table's old rows are archived to S3 by its archive
 * policy (through the state machine), then a subjects policy exports a subject who has rows both live and in
 * the archive objects. The document holds exactly the subject's live rows and exactly its archived rows, with
 * the values the table held before archiving (compared as PostgreSQL text), and nobody else's; the proof counts
 * the archived rows and the objects read. An object in a cold storage class is not read but named as unread.
 */

import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createSubjectRequest, listSubjectRequests } from '../../functions/actions/subjects/requests.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { migrateLedger, type TestDatabase } from '../support/database.ts';
import { beforeAll, describe, expect, it, NOW } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];
const KEY = 'test hash key for subject exports';
const AUDIT = 'public."Audit Logs"';
const AUDIT_QUOTED = '"public"."Audit Logs"';
const USERS_QUOTED = '"public"."users"';
/** The archive policy's cutoff: NOW - P2Y. */
const CUTOFF = '2024-11-23 12:00:00+00';

const archivePolicy: PolicyInput = {
  name: 'audit-archive',
  table: AUDIT,
  action: 'archive',
  timeColumn: 'created_at',
  retention: 'P2Y',
  chunking: { initialRows: 50, minRows: 20, maxRows: 50 },
} as PolicyInput;

const gdprPolicy: PolicyInput = {
  name: 'gdpr',
  action: 'subjects',
  subjects: {
    keyName: 'user_id',
    tables: [
      { table: AUDIT, keyColumn: 'user_id', action: 'delete' },
      { table: 'public.users', keyColumn: 'id', action: 'delete' },
    ],
  },
} as PolicyInput;

const config = testConfig([archivePolicy, gdprPolicy]);

interface ExportDocument {
  tables: Record<string, Array<Record<string, unknown>>>;
  archived: Record<string, Array<Record<string, string | null>>>;
}

interface ExportProof {
  tables: Array<Record<string, unknown>>;
  export: { key: string };
}

async function exportOf(
  db: TestDatabase,
  s3: S3Client,
  bucket: string,
  requestId: string,
): Promise<{ status: string; proof: ExportProof; document: ExportDocument }> {
  const request = (await listSubjectRequests(db.pool, 'gdpr')).find((r) => r.requestId === requestId);
  const proof = request?.proof as ExportProof;
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: proof.export.key }));
  return {
    status: request?.status ?? 'missing',
    proof,
    document: JSON.parse((await object.Body?.transformToString()) ?? '{}'),
  };
}

async function requestExport(db: TestDatabase, subjectKey: string): Promise<string> {
  const made = await createSubjectRequest(db.pool, {
    policy: 'gdpr',
    kind: 'export',
    subjectKey,
    hashKey: KEY,
    dueDays: 30,
    requestedAt: new Date(NOW.getTime() - 3_600_000),
  });
  return made.request.requestId;
}

/** A row object's values, in the table's column order, as a composite literal (every value quoted). */
function compositeLiteral(row: Record<string, string | null>): string {
  const quote = (value: string) => `"${value.replace(/["\\]/g, (c) => (c === '"' ? '""' : '\\\\'))}"`;
  return `(${Object.values(row)
    .map((value) => (value === null ? '' : quote(value)))
    .join(',')})`;
}

/** Archived row objects read back through the table's own input functions, as PostgreSQL's row text, by id. */
async function asRowText(db: TestDatabase, rows: Array<Record<string, string | null>>): Promise<string[]> {
  const { rows: text } = await db.pool.query<{ t: string }>(
    `SELECT (r::${AUDIT})::text AS t FROM unnest($1::text[]) AS r ORDER BY (r::${AUDIT}).id`,
    [rows.map(compositeLiteral)],
  );
  return text.map((r) => r.t);
}

/** What the table held before archiving (a copy taken then), as row text, by id. */
async function heldBefore(db: TestDatabase, where: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ t: string }>(
    `SELECT t::text AS t FROM public.audit_before AS t WHERE ${where} ORDER BY t.id`,
  );
  return rows.map((r) => r.t);
}

let objectKeys: string[];

describe('subject export with archived rows', () => {
  beforeAll(async ({ database: db, runPolicy }) => {
    await migrateLedger(db);
    await db.pool.query(`
      CREATE TABLE public.users (id bigint PRIMARY KEY, email text NOT NULL);
      INSERT INTO public.users SELECT g, 'user' || g || '@mail.example' FROM generate_series(1, 20) AS g;
      CREATE TABLE ${AUDIT} (
        id bigint PRIMARY KEY, user_id bigint NOT NULL, created_at timestamptz NOT NULL, amount numeric(10,2),
        detail jsonb, note text, ip inet, tags text[]);
      CREATE INDEX ON ${AUDIT} (user_id);
      -- Old rows (before the cutoff, to be archived) of users 1..20, then recent ones that stay live.
      INSERT INTO ${AUDIT}
      SELECT g, 1 + g % 20, timestamptz '2022-01-01 00:00:00.123456+00' + g * interval '3 days 1.5 seconds',
             CASE WHEN g % 7 = 0 THEN NULL ELSE g * 1.25 - 100 END,
             jsonb_build_object('g', g, 'q', E'say "hi"\\n'), 'note u' || (1 + g % 20) || ' g' || g || ' – é',
             ('10.1.' || g % 250 || '.7')::inet, ARRAY['a,b', NULL, g::text]
        FROM generate_series(1, 200) AS g;
      INSERT INTO ${AUDIT}
      SELECT g, 1 + g % 20, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour', g, NULL,
             'note u' || (1 + g % 20) || ' g' || g, NULL, NULL
        FROM generate_series(201, 260) AS g;
      CREATE TABLE public.audit_before AS SELECT * FROM ${AUDIT};`);
    const archived = await runPolicy(config, 'audit-archive');
    expect(archived.failure).toBeUndefined();
    objectKeys = (
      await db.pool.query<{ key: string }>(
        `SELECT key FROM lifecycle.archived_objects WHERE kind = 'archive-copy' ORDER BY min_time::timestamptz`,
      )
    ).rows.map((r) => r.key);
    const left = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${AUDIT} WHERE created_at < '${CUTOFF}'`,
    );
    expect(left.rows[0]?.n).toBe(0);
    expect(objectKeys.length).toBeGreaterThanOrEqual(4);
  });

  it("exports the subject's live and archived rows, exactly, and nobody else's", async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    // Prepare
    const requestId = await requestExport(db, '7');

    // Act
    const result = await runPolicy(config, 'gdpr', { deps: { hashKey: KEY } });

    // Assess
    expect(result.status).toBe('succeeded');
    const { status, proof, document } = await exportOf(db, s3, bucket, requestId);
    expect(status).toBe('completed');
    // Live rows: as before (row_to_json), the subject's recent rows only.
    const live = document.tables[AUDIT_QUOTED] ?? [];
    expect(live.map((r) => r.id)).toEqual([206, 226, 246]);
    expect(live.every((r) => r.user_id === 7)).toBe(true);
    expect(document.tables[USERS_QUOTED]).toEqual([{ id: 7, email: 'user7@mail.example' }]);
    // Archived rows: exactly what the table held for the subject before archiving, as PostgreSQL text.
    const archived = document.archived[AUDIT_QUOTED] ?? [];
    const expected = await heldBefore(db, `user_id = 7 AND created_at < '${CUTOFF}'`);
    expect(expected).toHaveLength(10);
    expect(await asRowText(db, archived)).toEqual(expected);
    expect(archived.every((r) => r.user_id === '7')).toBe(true);
    for (const row of archived) {
      expect(Object.keys(row)).toEqual([
        'id',
        'user_id',
        'created_at',
        'amount',
        'detail',
        'note',
        'ip',
        'tags',
      ]);
      for (const value of Object.values(row)) expect(value === null || typeof value === 'string').toBe(true);
    }
    expect(archived.find((r) => r.id === '6')).toMatchObject({ note: 'note u7 g6 – é', amount: '-92.50' });
    expect(archived.some((r) => r.amount === null)).toBe(true);
    expect(document.archived[USERS_QUOTED]).toEqual([]);
    // Nobody else's rows, live or archived.
    expect(JSON.stringify(document)).not.toMatch(/note u(?!7 )\d+ /);
    // The proof: counts, never values.
    expect(proof.tables).toEqual([
      {
        table: AUDIT_QUOTED,
        action: 'export',
        rows: 3,
        archivedRows: 10,
        objectsRead: objectKeys.length,
      },
      { table: USERS_QUOTED, action: 'export', rows: 1, archivedRows: 0, objectsRead: 0 },
    ]);
    expect(JSON.stringify(proof)).not.toMatch(/note u7/);
  });

  it('names an archive object in a cold storage class as unread and exports the rest', async ({
    database: db,
    runPolicy,
    s3,
    bucket,
  }) => {
    // Prepare: the first archive object "is in GLACIER", not restored (the local S3 has no storage classes).
    const coldKey = objectKeys[0] as string;
    const range = await db.pool.query<{ min_time: string; max_time: string }>(
      'SELECT min_time, max_time FROM lifecycle.archived_objects WHERE key = $1',
      [coldKey],
    );
    const { min_time: minTime, max_time: maxTime } = range.rows[0] as { min_time: string; max_time: string };
    const reads: string[] = [];
    const stub = {
      send: async (command: unknown) => {
        if (command instanceof HeadObjectCommand && command.input.Key === coldKey) {
          const head = await s3.send(command);
          return { ...head, StorageClass: 'GLACIER' };
        }
        if (command instanceof GetObjectCommand) reads.push(command.input.Key as string);
        return s3.send(command as never);
      },
    } as unknown as S3Client;
    const requestId = await requestExport(db, '8');

    // Act
    const result = await runPolicy(config, 'gdpr', { deps: { hashKey: KEY, s3: stub } });

    // Assess
    expect(result.status).toBe('succeeded');
    expect(reads).not.toContain(coldKey);
    const { status, proof, document } = await exportOf(db, s3, bucket, requestId);
    expect(status).toBe('completed');
    const expected = await heldBefore(
      db,
      `user_id = 8 AND created_at < '${CUTOFF}' AND NOT created_at BETWEEN '${minTime}' AND '${maxTime}'`,
    );
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(10);
    expect(await asRowText(db, document.archived[AUDIT_QUOTED] ?? [])).toEqual(expected);
    expect(proof.tables[0]).toEqual({
      table: AUDIT_QUOTED,
      action: 'export',
      rows: 3,
      archivedRows: expected.length,
      objectsRead: objectKeys.length - 1,
      unread: [{ key: coldKey, storageClass: 'GLACIER' }],
    });
  });
});
