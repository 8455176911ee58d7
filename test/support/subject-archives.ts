/**
 * A schema whose subject has rows live and in archive objects, for the erasure-reaches-the-archives tests: an
 * "Audit Logs" table archived in 50-row objects (subject 7's rows only in the first two), a sessions table whose
 * only archived object holds nothing but subject 7's rows, and users. Archives are written uncompressed, so a scan
 * of an object's raw bytes is as telling as its decoded rows.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { decodeArchiveObject } from '../../functions/actions/restore-archive/parquet-decode.ts';
import { listSubjectRequests, type SubjectRequest } from '../../functions/actions/subjects/requests.ts';
import type { StepLogger } from '../../functions/run/dependencies.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from './archive.ts';
import { migrateLedger, type TestDatabase } from './database.ts';
import { listAllKeys } from './s3.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];
export const HASH_KEY = 'test hash key for archive erasure';
export const AUDIT = 'public."Audit Logs"';
export const AUDIT_QUOTED = '"public"."Audit Logs"';
export const SESSIONS_QUOTED = '"public"."sessions"';
/** What identifies subject 7 in every row of theirs: none of it may be left anywhere after the erasure. */
export const SUBJECT = '7';
export const SUBJECT_MARKS = ['note of user 7 #', 'user7@mail.example', 'session of user 7 #'];

export function subjectArchiveConfig(gdprTables?: unknown[]) {
  const archive = (name: string, table: string, timeColumn: string): PolicyInput =>
    ({
      name,
      table,
      action: 'archive',
      timeColumn,
      retention: 'P2Y',
      archive: { compression: 'uncompressed' },
      chunking: { initialRows: 50, minRows: 50, maxRows: 50 },
    }) as PolicyInput;
  return testConfig([
    archive('audit-archive', AUDIT, 'created_at'),
    archive('sessions-archive', 'public.sessions', 'started_at'),
    {
      name: 'gdpr',
      action: 'subjects',
      subjects: {
        keyName: 'user_id',
        tables: gdprTables ?? [
          { table: AUDIT, keyColumn: 'user_id', action: 'delete' },
          { table: 'public.sessions', keyColumn: 'user_id', action: 'delete' },
          { table: 'public.users', keyColumn: 'id', action: 'delete' },
        ],
      },
    } as PolicyInput,
  ]);
}

/** Users 1..20; 200 old audit rows (subject 7's at ids 6, 26, 46, 66, 86) and 40 recent; 5 old sessions of 7. */
export async function seedSubjectArchives(db: TestDatabase): Promise<void> {
  await migrateLedger(db);
  await db.pool.query(`
    CREATE TABLE public.users (id bigint PRIMARY KEY, email text NOT NULL);
    INSERT INTO public.users SELECT g, 'user' || g || '@mail.example' FROM generate_series(1, 20) AS g;
    CREATE TABLE ${AUDIT} (
      id bigint PRIMARY KEY, user_id bigint NOT NULL, created_at timestamptz NOT NULL, note text, email text,
      amount numeric(10,2), tags text[], "Mixed Case" double precision);
    CREATE INDEX ON ${AUDIT} (user_id);
    INSERT INTO ${AUDIT}
    SELECT g, u, timestamptz '2022-01-01 00:00:00.123456+00' + g * interval '3 days 1.5 seconds',
           'note of user ' || u || ' #' || g, 'user' || u || '@mail.example',
           CASE WHEN g % 7 = 0 THEN NULL ELSE g * 1.25 - 100 END, ARRAY['a,b', NULL, g::text], g / 3.0
      FROM generate_series(1, 200) AS g, LATERAL (SELECT CASE WHEN g <= 100 THEN 1 + g % 20 ELSE 10 + g % 5 END + 0 * g AS u) AS s;
    INSERT INTO ${AUDIT}
    SELECT g, 1 + g % 20, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour',
           'note of user ' || (1 + g % 20) || ' #' || g, NULL, g, NULL, NULL
      FROM generate_series(201, 240) AS g;
    CREATE TABLE public.sessions (id bigint PRIMARY KEY, user_id bigint NOT NULL, started_at timestamptz NOT NULL, label text);
    CREATE INDEX ON public.sessions (user_id);
    INSERT INTO public.sessions
    SELECT g, 7, timestamptz '2023-05-01 00:00:00+00' + g * interval '1 day', 'session of user 7 #' || g
      FROM generate_series(1, 5) AS g;
    INSERT INTO public.sessions VALUES (6, 3, '2026-06-01 00:00:00+00', 'session of user 3 #6');`);
}

/** The ledger's archive copies: key, rows, sha256 by object_id. */
export async function ledgerObjects(
  db: TestDatabase,
): Promise<Array<{ objectId: string; key: string; rows: number; sha256: string; table: string }>> {
  const { rows } = await db.pool.query<{
    object_id: string;
    key: string;
    rows: number;
    sha256: string;
    t: string;
  }>(
    `SELECT o.object_id::text, o.key, o.rows, o.sha256, r.table_name AS t
       FROM lifecycle.archived_objects o JOIN lifecycle.runs r ON r.run_id = o.run_id
      WHERE o.kind = 'archive-copy' ORDER BY o.object_id`,
  );
  return rows.map((r) => ({ objectId: r.object_id, key: r.key, rows: r.rows, sha256: r.sha256, table: r.t }));
}

export async function objectBytes(s3: S3Client, bucket: string, key: string): Promise<Uint8Array> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await got.Body?.transformToByteArray()) ?? new Uint8Array();
}

export async function decodedRows(s3: S3Client, bucket: string, key: string): Promise<string[]> {
  const decoded = await decodeArchiveObject(await objectBytes(s3, bucket, key));
  return decoded.rows.map((row) => JSON.stringify(row));
}

/** A logger that keeps every line (message and fields) for a scan. */
export function capturingLogger(): StepLogger & { readonly lines: string[] } {
  const lines: string[] = [];
  const keep = (message: string, fields?: Record<string, unknown>) => {
    lines.push(JSON.stringify({ message, ...fields }));
  };
  return { lines, info: keep, warn: keep, error: keep };
}

/** The lines of a captured run log with `message`, parsed: their fields as `T` says. */
export function logLinesOf<T extends object>(lines: readonly string[], message: string): Array<T> {
  return lines
    .map((line) => JSON.parse(line) as T & { message: string })
    .filter((line) => line.message === message);
}

/** The `chunk committed` lines of a captured run log, with the fields the tests read. */
export function committedChunkLines(
  lines: readonly string[],
): Array<{ durationMs?: number; selection?: string; sleepMs?: number }> {
  return logLinesOf(lines, 'chunk committed');
}

/** The `selection` of every chunk a captured run log reports ('window', 'keyset', 'skip-locked'). */
export function chunkSelections(lines: readonly string[]): string[] {
  return committedChunkLines(lines).map((line) => String(line.selection));
}

/** A request of the `gdpr` policy by id. */
export async function requestOf(
  services: { readonly db: TestDatabase },
  requestId: string,
): Promise<SubjectRequest> {
  const found = (await listSubjectRequests(services.db.pool, 'gdpr')).find((r) => r.requestId === requestId);
  if (!found) throw new Error(`request ${requestId} not found`);
  return found;
}

/** The subject's live rows in the three mapped tables. */
export async function liveSubjectRows(services: { readonly db: TestDatabase }): Promise<number> {
  const { rows } = await services.db.pool.query<{ n: string }>(
    `SELECT (SELECT count(*) FROM ${AUDIT} WHERE user_id = $1::bigint)
          + (SELECT count(*) FROM public.sessions WHERE user_id = $1::bigint)
          + (SELECT count(*) FROM public.users WHERE id = $1::bigint) AS n`,
    [SUBJECT],
  );
  return Number(rows[0]?.n);
}

/** No stored object of the bucket (noncurrent versions included) holds any of the subject's identifying values. */
export async function expectSubjectNowhere(s3: S3Client, bucket: string): Promise<void> {
  for (const key of await listAllKeys(s3, bucket)) {
    const text = Buffer.from(await objectBytes(s3, bucket, key)).toString('latin1');
    for (const mark of SUBJECT_MARKS) expect(text, `${key} holds "${mark}"`).not.toContain(mark);
  }
}
