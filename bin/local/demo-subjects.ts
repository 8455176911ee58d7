/**
 * The demo's GDPR part: two users with sessions and (partly archived) audit rows; one asks for an export, the
 * other for erasure; the subjects policy processes both through the state machine, and what it did is checked
 * independently: the erased user's profile and sessions gone and audit rows stripped — live and in the archived
 * Parquet objects (read back from S3 as the ledger lists them) —, everyone else's rows untouched in both, the
 * export in S3 holding exactly the exported user's live rows, the proofs free of the key.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { decodeArchiveObject } from '../../functions/actions/restore-archive/parquet-decode.ts';
import { createSubjectRequest, listSubjectRequests } from '../../functions/actions/subjects/requests.ts';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import type { SubjectsPolicy } from '../../lib/contracts/config.ts';

export interface SubjectsReport {
  readonly policy: string;
  readonly status: string;
  readonly erased: { readonly requestId: string; readonly tables: string };
  readonly exported: { readonly requestId: string; readonly key: string; readonly rows: number };
  readonly archives: string;
  readonly verified: boolean;
  readonly problems: string[];
}

interface Counts {
  readonly profiles: number;
  readonly sessions: number;
  readonly audits: number;
  readonly auditsIdentifying: number;
}

async function counts(db: pg.Client, user: string): Promise<Counts> {
  const { rows } = await db.query<Record<keyof Counts, string>>(
    `SELECT (SELECT count(*) FROM public.user_profiles WHERE id = $1)::text AS profiles,
            (SELECT count(*) FROM public.user_sessions WHERE user_id = $1)::text AS sessions,
            (SELECT count(*) FROM public.audit_logs WHERE user_id = $1)::text AS audits,
            (SELECT count(*) FROM public.audit_logs
              WHERE user_id = $1 AND (actor_email IS NOT NULL OR user_agent IS NOT NULL))::text AS "auditsIdentifying"`,
    [user],
  );
  const row = rows[0] as Record<keyof Counts, string>;
  return {
    profiles: Number(row.profiles),
    sessions: Number(row.sessions),
    audits: Number(row.audits),
    auditsIdentifying: Number(row.auditsIdentifying),
  };
}

/** The audit rows in the archive objects the ledger lists for public.audit_logs, decoded (PostgreSQL text). */
async function archivedAudits(db: pg.Client, s3: S3Client): Promise<Array<Record<string, string | null>>> {
  const { rows: objects } = await db.query<{ bucket: string; key: string }>(
    `SELECT o.bucket, o.key FROM lifecycle.archived_objects o JOIN lifecycle.runs r ON r.run_id = o.run_id
      WHERE o.kind = 'archive-copy' AND r.table_name = '"public"."audit_logs"' ORDER BY o.object_id`,
  );
  const rows: Array<Record<string, string | null>> = [];
  for (const object of objects) {
    const got = await s3.send(new GetObjectCommand({ Bucket: object.bucket, Key: object.key }));
    const decoded = await decodeArchiveObject((await got.Body?.transformToByteArray()) ?? new Uint8Array());
    for (const row of decoded.rows)
      rows.push(Object.fromEntries(decoded.columns.map((c, i) => [c.name, row[i] ?? null])));
  }
  return rows;
}

/** Rows of everyone but `user` in the mapped tables, as one hash: untouched by the erasure. */
async function othersDigest(db: pg.Client, user: string): Promise<string> {
  const { rows } = await db.query<{ digest: string }>(
    `SELECT md5(coalesce((SELECT string_agg(p::text, '|' ORDER BY id) FROM public.user_profiles p WHERE id <> $1), '') ||
                coalesce((SELECT string_agg(s::text, '|' ORDER BY id) FROM public.user_sessions s WHERE user_id <> $1), '') ||
                coalesce((SELECT string_agg(a::text, '|' ORDER BY id) FROM public.audit_logs a
                           WHERE user_id IS DISTINCT FROM $1::bigint), '')) AS digest`,
    [user],
  );
  return rows[0]?.digest ?? '';
}

export async function demoSubjects(
  db: pg.Client,
  s3: S3Client,
  bucket: string,
  policy: SubjectsPolicy,
  hashKey: string,
  run: (policy: string) => Promise<LocalRunResult>,
): Promise<SubjectsReport> {
  // Two users with a profile and sessions, those with audit rows still in the table first (older audit rows are
  // archived already).
  const { rows: users } = await db.query<{ id: string }>(
    `SELECT p.id::text AS id FROM public.user_profiles p
      WHERE EXISTS (SELECT 1 FROM public.user_sessions s WHERE s.user_id = p.id)
      ORDER BY EXISTS (SELECT 1 FROM public.audit_logs a WHERE a.user_id = p.id) DESC, p.id LIMIT 2`,
  );
  // The erased user has audit rows in the archives too (archived by audit-logs-archive before this runs).
  const archivedBefore = await archivedAudits(db, s3);
  const archivedUsers = new Set(archivedBefore.map((r) => r.user_id));
  const { rows: archivedCandidates } = await db.query<{ id: string }>(
    `SELECT p.id::text AS id FROM public.user_profiles p
      WHERE EXISTS (SELECT 1 FROM public.user_sessions s WHERE s.user_id = p.id) AND p.id::text = ANY ($1::text[])
      ORDER BY p.id`,
    [[...archivedUsers].filter((u): u is string => u !== null)],
  );
  const exportUser = users.map((u) => u.id).find((id) => id !== archivedCandidates[0]?.id);
  const eraseUser = archivedCandidates[0]?.id ?? users.map((u) => u.id).find((id) => id !== exportUser);
  if (!exportUser || !eraseUser)
    throw new Error('the demo data has no two users with a profile and sessions');
  const othersArchived = (rows: Array<Record<string, string | null>>) =>
    JSON.stringify(rows.filter((r) => r.user_id !== eraseUser));
  const archivedOfErased = archivedBefore.filter((r) => r.user_id === eraseUser).length;
  const requestedAt = new Date(Date.now() - 1000);
  const ask = (kind: 'erase' | 'export', subjectKey: string) =>
    createSubjectRequest(db, {
      policy: policy.name,
      kind,
      subjectKey,
      hashKey,
      dueDays: policy.subjects.dueDays,
      requestedAt,
    });
  const exportRequest = (await ask('export', exportUser)).request;
  const eraseRequest = (await ask('erase', eraseUser)).request;
  const exportCounts = await counts(db, exportUser);
  const othersBefore = await othersDigest(db, eraseUser);

  const result = await run(policy.name);

  const problems: string[] = [];
  if (result.status !== 'succeeded')
    problems.push(`run ${result.status}: ${result.failure?.error}: ${result.failure?.cause}`);
  const erasedNow = await counts(db, eraseUser);
  if (erasedNow.profiles !== 0 || erasedNow.sessions !== 0)
    problems.push('the erased user still has a profile or sessions');
  if (erasedNow.auditsIdentifying !== 0)
    problems.push('audit rows of the erased user still hold an email or user agent');
  if ((await othersDigest(db, eraseUser)) !== othersBefore) problems.push("other users' rows changed");
  // In the archives: the erased user's audit rows kept (the mapping anonymizes audit_logs) but stripped, nobody
  // else's row changed, and the proof counts what was masked.
  const archivedAfter = await archivedAudits(db, s3);
  const erasedArchived = archivedAfter.filter((r) => r.user_id === eraseUser);
  if (erasedArchived.length !== archivedOfErased)
    problems.push(
      `the archives hold ${erasedArchived.length} audit rows of the erased user, not ${archivedOfErased}`,
    );
  if (erasedArchived.some((r) => r.actor_email !== null || r.user_agent !== null))
    problems.push('archived audit rows of the erased user still hold an email or user agent');
  if (othersArchived(archivedAfter) !== othersArchived(archivedBefore))
    problems.push("other users' archived rows changed");
  const requests = await listSubjectRequests(db, policy.name);
  const byId = new Map(requests.map((r) => [r.requestId, r]));
  const erased = byId.get(eraseRequest.requestId);
  const exported = byId.get(exportRequest.requestId);
  if (erased?.status !== 'completed' || exported?.status !== 'completed')
    problems.push('a request is not completed');
  if (JSON.stringify([erased, exported]).includes(`"${eraseUser}"`))
    problems.push('a proof or request holds the key');
  const proof = exported?.proof as { export?: { key: string } } | undefined;
  let exportedRows = 0;
  if (proof?.export) {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: proof.export.key }));
    const document = JSON.parse((await object.Body?.transformToString()) ?? '{}') as {
      tables: Record<string, unknown[]>;
    };
    const tables = document.tables;
    exportedRows = Object.values(tables).reduce((sum, rows) => sum + rows.length, 0);
    const expected = exportCounts.profiles + exportCounts.sessions + exportCounts.audits;
    if (exportedRows !== expected)
      problems.push(`the export holds ${exportedRows} rows, the tables ${expected}`);
  } else problems.push('the export request has no object');
  const erasedProof = erased?.proof as
    | {
        tables?: Array<{ table: string; rows: number }>;
        archives?: { objects?: Array<{ rowsRemoved: number; rowsMasked: number }>; objectsSearched?: number };
      }
    | undefined;
  return {
    policy: policy.name,
    status: result.status,
    erased: {
      requestId: eraseRequest.requestId,
      tables: (erasedProof?.tables ?? []).map((t) => `${t.table} ${t.rows}`).join(', '),
    },
    exported: { requestId: exportRequest.requestId, key: proof?.export?.key ?? '-', rows: exportedRows },
    archives: `${erasedProof?.archives?.objectsSearched ?? 0} archive objects searched, ${
      erasedProof?.archives?.objects?.length ?? 0
    } rewritten, ${(erasedProof?.archives?.objects ?? []).reduce((sum, o) => sum + o.rowsMasked, 0)} rows masked (of ${archivedOfErased} archived)`,
    verified: problems.length === 0,
    problems,
  };
}
