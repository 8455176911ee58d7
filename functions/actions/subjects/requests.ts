/**
 * `lifecycle.subject_requests` (sql/012): requests made by the CLI or the application, taken one at a time by a
 * run (FOR UPDATE SKIP LOCKED: two runs never process one request), completed or failed in the same transaction
 * as the work itself. A subject is named by its key while the request is pending and by its keyed hash after:
 * the hash is HMAC-SHA-256 under the anonymize hash key, the same function `hash` pseudonyms use, computed here
 * in Node (the application can compute it too; see the README).
 */
import { createHmac, randomUUID } from 'node:crypto';
import { pgBool } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';

export type RequestKind = 'erase' | 'export';
/** waiting: an erasure whose remaining archive objects are being restored from Glacier (sql/013). */
export type RequestStatus = 'pending' | 'waiting' | 'completed' | 'failed';

export interface SubjectRequest {
  readonly requestId: string;
  readonly policy: string;
  readonly kind: RequestKind;
  readonly subjectHash: string;
  /** Only while pending (or failed, for a retry). */
  readonly subjectKey: string | null;
  readonly requestedAt: string;
  readonly dueAt: string;
  readonly status: RequestStatus;
  readonly completedAt: string | null;
  readonly runId: string | null;
  readonly proof: unknown;
  readonly error: string | null;
  /** An erasure's archive phase while it runs (sql/013; archive-erasure.ts): counts and keys, never values. */
  readonly progress?: unknown;
}

/** Whether the ledger has the requests table (sql/012): a ledger migrated before it has no request at all. */
export async function hasSubjectRequests(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean | string }>(
    `SELECT to_regclass('lifecycle.subject_requests') IS NOT NULL AS ok`,
  );
  return pgBool(rows[0]?.ok);
}

/** The subject's keyed hash (hex): HMAC-SHA-256(hash key, key text as UTF-8). */
export function subjectHash(hashKey: string, subjectKey: string): string {
  return createHmac('sha256', hashKey).update(subjectKey, 'utf8').digest('hex');
}

const COLUMNS = `request_id::text AS "requestId", policy, kind, subject_hash AS "subjectHash",
  subject_key AS "subjectKey", requested_at::text AS "requestedAt", due_at::text AS "dueAt", status,
  completed_at::text AS "completedAt", run_id::text AS "runId", proof::text AS proof, error,
  (to_jsonb(subject_requests.*)->'progress')::text AS progress`;

/**
 * A request row as read: `proof` arrives as JSON text (the steps' and the CLI's connections read every type as
 * text, a pool with type parsers would parse it; `::text` makes both the same) and is parsed here.
 */
function parseRequest(row: SubjectRequest): SubjectRequest {
  const json = (value: unknown) =>
    typeof value === 'string' ? (JSON.parse(value) as unknown) : (value ?? null);
  return { ...row, proof: json(row.proof), progress: json(row.progress) };
}

/**
 * Records a request, or returns the pending one of the same subject and kind (asking twice is one request).
 * `dueDays` from the policy: the request is overdue after that.
 */
export async function createSubjectRequest(
  db: Queryable,
  request: {
    policy: string;
    kind: RequestKind;
    subjectKey: string;
    hashKey: string;
    dueDays: number;
    /** When it was asked (an application recording an older request); default the database's clock. */
    requestedAt?: Date;
    /**
     * The text the subject is named by: the key as the first mapped key column's type prints it (`042` → `42`), so
     * that two spellings of one subject are one request, and the hash is the one processing records. Default: the
     * key as given.
     */
    canonicalKey?: string;
  },
): Promise<{ request: SubjectRequest; created: boolean }> {
  const hash = subjectHash(request.hashKey, request.canonicalKey ?? request.subjectKey);
  const existing = await db.query<SubjectRequest>(
    `SELECT ${COLUMNS} FROM lifecycle.subject_requests
      WHERE policy = $1 AND kind = $2 AND subject_hash = $3 AND status IN ('pending', 'waiting')`,
    [request.policy, request.kind, hash],
  );
  if (existing.rows[0]) return { request: parseRequest(existing.rows[0]), created: false };
  const { rows } = await db.query<SubjectRequest>(
    `INSERT INTO lifecycle.subject_requests (request_id, policy, kind, subject_hash, subject_key, requested_at, due_at)
     SELECT $1, $2, $3, $4, $5, at, at + make_interval(days => $6)
       FROM (SELECT coalesce($7::timestamptz, clock_timestamp()) AS at) AS requested
     RETURNING ${COLUMNS}`,
    [
      randomUUID(),
      request.policy,
      request.kind,
      hash,
      request.subjectKey,
      request.dueDays,
      request.requestedAt?.toISOString() ?? null,
    ],
  );
  return { request: parseRequest(rows[0] as SubjectRequest), created: true };
}

/** Every request of a policy (or of all), newest first. */
export async function listSubjectRequests(db: Queryable, policy?: string): Promise<SubjectRequest[]> {
  const { rows } = await db.query<SubjectRequest>(
    `SELECT ${COLUMNS} FROM lifecycle.subject_requests
      WHERE $1::text IS NULL OR policy = $1 ORDER BY requested_at DESC, request_id`,
    [policy ?? null],
  );
  return rows.map(parseRequest);
}

/**
 * The oldest pending request made before `bound` and not yet in its archive phase (that one continues in the
 * chunk's prepare: archive-erasure.ts), locked for this transaction; undefined when none is left.
 */
export async function takeNextRequest(
  tx: Queryable,
  policy: string,
  bound: string,
): Promise<SubjectRequest | undefined> {
  const { rows } = await tx.query<SubjectRequest>(
    `SELECT ${COLUMNS} FROM lifecycle.subject_requests
      WHERE policy = $1 AND status = 'pending' AND requested_at <= $2::timestamptz
        AND (progress IS NULL OR progress->>'phase' IS DISTINCT FROM 'archives')
      ORDER BY requested_at, request_id
      LIMIT 1
      FOR UPDATE SKIP LOCKED`,
    [policy, bound],
  );
  return rows[0] ? parseRequest(rows[0]) : undefined;
}

/**
 * Done: the proof recorded, the key forgotten. `subjectHash`: the hash of the key's canonical text as processing
 * computed it (subject-hash.ts), which replaces the one the request was made with (an application's, or of
 * another spelling of the key).
 */
export async function completeRequest(
  tx: Queryable,
  requestId: string,
  runId: string,
  proof: unknown,
  subjectHash?: string,
): Promise<void> {
  await tx.query(
    `UPDATE lifecycle.subject_requests
        SET status = 'completed', completed_at = clock_timestamp(), run_id = $2, proof = $3::jsonb,
            subject_key = NULL, error = NULL, subject_hash = coalesce($4, subject_hash)
      WHERE request_id = $1`,
    [requestId, runId, JSON.stringify(proof), subjectHash ?? null],
  );
}

/** Failed: why (no row values), the key kept for a retry. */
export async function failRequest(
  tx: Queryable,
  requestId: string,
  runId: string,
  error: string,
): Promise<void> {
  await tx.query(
    `UPDATE lifecycle.subject_requests SET status = 'failed', run_id = $2, error = $3 WHERE request_id = $1`,
    [requestId, runId, error],
  );
}

/** A failed request back to pending (after its cause was fixed). */
export async function retryRequest(db: Queryable, requestId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE lifecycle.subject_requests SET status = 'pending', error = NULL, run_id = NULL
      WHERE request_id = $1 AND status = 'failed'`,
    [requestId],
  );
  return (rowCount ?? 0) > 0;
}
