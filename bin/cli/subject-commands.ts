/**
 * `pg-lifecycle subject request|status|process|retry`: GDPR subject requests of a subjects policy.
 * - `request --erase KEY | --export KEY [--policy P]`: records the request (the same pending one if asked twice);
 * - `status [--policy P]`: every request with its state, due date, whether overdue, and the proof's counts;
 * - `process [--policy P] --bucket B`: runs the policy's state machine locally, like `run` (exports need B);
 * - `retry REQUEST_ID`: a failed request back to pending.
 * `--policy` may be left out when the config has one subjects policy. The subject's key is never printed.
 */

import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { type ResolvedSubjectTable, resolveSubjectTables } from '../../functions/actions/subjects/mapping.ts';
import {
  createSubjectRequest,
  hasSubjectRequests,
  listSubjectRequests,
  retryRequest,
  type SubjectRequest,
} from '../../functions/actions/subjects/requests.ts';
import { applyMigrations } from '../../functions/adapters/migrations.ts';
import type { Queryable } from '../../functions/adapters/transactions.ts';
import { readHashKey } from '../../functions/commons/hash-key-secret.ts';
import { createS3Client } from '../../functions/commons/s3.ts';
import { describeError } from '../../functions/core/redact-database-error.ts';
import type { LifecycleConfig, SubjectsPolicy } from '../../lib/contracts/config.ts';
import { withDatabase } from './database-target.ts';
import { UsageError } from './errors.ts';
import { runLocally } from './handlers.ts';
import { requireLedger } from './ledger-checks.ts';

export interface SubjectCommandValues {
  readonly policy?: string | undefined;
  readonly bucket?: string | undefined;
  readonly erase?: string | undefined;
  readonly export?: string | undefined;
  /** status: seconds a presigned URL of each export document stays valid. */
  readonly presign?: string | undefined;
  readonly json?: boolean | undefined;
  readonly verbose?: boolean | undefined;
}

const USAGE =
  'usage: pg-lifecycle subject request --erase KEY | --export KEY [--policy P] [--json]\n' +
  '       pg-lifecycle subject status [--policy P] [--presign SECONDS] [--json]\n' +
  '       pg-lifecycle subject process [--policy P] --bucket B [--json]\n' +
  '       pg-lifecycle subject retry REQUEST_ID';

const print = (text: string) => process.stdout.write(`${text}\n`);

function subjectsPolicy(config: LifecycleConfig, name: string | undefined): SubjectsPolicy {
  const policies = config.policies.filter((p): p is SubjectsPolicy => p.action === 'subjects');
  if (name === undefined) {
    if (policies.length === 1) return policies[0] as SubjectsPolicy;
    throw new UsageError(
      policies.length === 0
        ? 'the config has no subjects policy ("action": "subjects")'
        : `--policy NAME is required (subjects policies: ${policies.map((p) => p.name).join(', ')})`,
    );
  }
  const policy = policies.find((p) => p.name === name);
  if (!policy)
    throw new UsageError(
      `no subjects policy named "${name}" (subjects policies: ${policies.map((p) => p.name).join(', ') || 'none'})`,
    );
  return policy;
}

async function hashKeyFor(config: LifecycleConfig): Promise<string> {
  // Locally the environment's key; else the deployed secret the config names (read with your AWS credentials).
  const key = await readHashKey(
    process.env.PG_LIFECYCLE_HASH_KEY
      ? { PG_LIFECYCLE_HASH_KEY: process.env.PG_LIFECYCLE_HASH_KEY }
      : { HASH_KEY_SECRET_ARN: config.anonymization?.hashKeySecretArn },
  );
  if (!key)
    throw new UsageError(
      'subject requests name the subject by its keyed hash: set PG_LIFECYCLE_HASH_KEY (locally) or ' +
        'anonymization.hashKeySecretArn in the config',
    );
  return key;
}

export async function subjectCommand(
  config: LifecycleConfig,
  values: SubjectCommandValues,
  args: readonly string[],
): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'request': {
      if ((values.erase === undefined) === (values.export === undefined) || rest.length > 0)
        throw new UsageError(`subject request takes exactly one of --erase KEY or --export KEY\n${USAGE}`);
      const policy = subjectsPolicy(config, values.policy);
      const subjectKey = (values.erase ?? values.export) as string;
      if (subjectKey.trim() === '') throw new UsageError('the subject key is empty');
      const hashKey = await hashKeyFor(config);
      const { request, created } = await withDatabase(async (db) => {
        await requireLedger(db);
        // Bad input stops here, before anything is recorded: the mapping must resolve and the key must be a value
        // of every key column's type (else each run would fail the request, later and further away).
        const tables = await resolveSubjectTables(db, policy);
        await checkSubjectKey(db, tables, subjectKey);
        await applyMigrations(db);
        return createSubjectRequest(db, {
          policy: policy.name,
          kind: values.erase !== undefined ? 'erase' : 'export',
          subjectKey,
          canonicalKey: await canonicalText(db, tables, subjectKey),
          hashKey,
          dueDays: policy.subjects.dueDays,
        });
      });
      print(
        values.json
          ? JSON.stringify(publicView(request, new Date()))
          : `${created ? 'recorded' : 'already pending'}: ${request.kind} request ${request.requestId} ` +
              `(policy ${request.policy}, due ${request.dueAt})`,
      );
      return 0;
    }
    case 'status': {
      if (rest.length > 0) throw new UsageError(USAGE);
      const policy = values.policy === undefined ? undefined : subjectsPolicy(config, values.policy).name;
      const presignSeconds = presignOption(values.presign);
      const { requests, exports, rewrites } = await withDatabase(async (db) => {
        await requireLedger(db);
        if (!(await hasSubjectRequests(db)))
          return { requests: [], exports: new Map<string, string>(), rewrites: new Map<string, number>() };
        const listed = await listSubjectRequests(db, policy);
        return {
          requests: listed,
          exports: presignSeconds ? await exportBuckets(db) : new Map<string, string>(),
          rewrites: await rewriteCounts(db),
        };
      });
      const now = new Date();
      const views = await Promise.all(
        requests.map(async (r) => {
          const view = publicView(r, now, rewrites.get(r.requestId) ?? 0);
          const key = (r.proof as { export?: { key?: string } } | null)?.export?.key;
          const bucket = key ? exports.get(key) : undefined;
          if (!presignSeconds || !key || !bucket) return view;
          return { ...view, exportUrl: await presignExport(bucket, key, presignSeconds) };
        }),
      );
      print(values.json ? JSON.stringify(views) : formatStatus(views));
      return views.some((v) => v.overdue) ? 1 : 0;
    }
    case 'process': {
      if (rest.length > 0) throw new UsageError(USAGE);
      const policy = subjectsPolicy(config, values.policy);
      // Like `run`: the database checked once up front, Ctrl-C stops cleanly, a progress line on a terminal.
      return runLocally(config, {
        policy: policy.name,
        bucket: values.bucket ?? process.env.PG_LIFECYCLE_BUCKET,
        json: values.json,
        verbose: values.verbose,
      });
    }
    case 'retry': {
      const [requestId, ...more] = rest;
      if (!requestId || more.length > 0 || !/^[0-9a-f-]{36}$/i.test(requestId)) throw new UsageError(USAGE);
      const retried = await withDatabase((db) => retryRequest(db, requestId));
      if (!retried) throw new UsageError(`no failed request ${requestId}`);
      print(`request ${requestId} is pending again`);
      return 0;
    }
    default:
      throw new UsageError(USAGE);
  }
}

/** S3 caps a SigV4 presigned URL at 7 days. */
const PRESIGN_MAX_SECONDS = 7 * 24 * 3600;

function presignOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (!/^\d+$/.test(text) || seconds < 1 || seconds > PRESIGN_MAX_SECONDS)
    throw new UsageError(
      `--presign takes the URL's lifetime in seconds, 1 to ${PRESIGN_MAX_SECONDS} (7 days)`,
    );
  return seconds;
}

/** The bucket of every export document the ledger lists (kind 'export'), by key. */
async function exportBuckets(db: Queryable): Promise<Map<string, string>> {
  const { rows } = await db.query<{ bucket: string; key: string }>(
    `SELECT bucket, key FROM lifecycle.archived_objects WHERE kind = 'export'`,
  );
  return new Map(rows.map((r) => [r.key, r.bucket]));
}

/**
 * A GET URL of the export document, signed locally with the caller's credentials (nothing is sent to S3): whoever
 * holds it may download the subject's data until it expires, so it is printed only when asked for.
 */
async function presignExport(bucket: string, key: string, seconds: number): Promise<string> {
  const s3 = createS3Client();
  try {
    return await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: seconds });
  } finally {
    s3.destroy();
  }
}

/** The key as the first mapped key column's type prints it (the table processing names the subject by). */
async function canonicalText(
  db: Queryable,
  tables: readonly ResolvedSubjectTable[],
  subjectKey: string,
): Promise<string> {
  const first = tables[0];
  if (!first) return subjectKey;
  const { rows } = await db.query<{ t: string }>(
    `SELECT ($1::text::${first.keyColumn.typeName})::text AS t`,
    [subjectKey],
  );
  return rows[0]?.t ?? subjectKey;
}

/** The key as a value of each mapped key column's type, or a UsageError naming the column and type. */
async function checkSubjectKey(
  db: Queryable,
  tables: readonly ResolvedSubjectTable[],
  subjectKey: string,
): Promise<void> {
  for (const t of tables) {
    try {
      await db.query(`SELECT $1::text::${t.keyColumn.typeName}`, [subjectKey]);
    } catch (error) {
      throw new UsageError(
        `the subject key is not a value of ${t.qualified}.${t.keyColumn.name} (${t.keyColumn.typeName}): ` +
          `${(error as { code?: string }).code ?? ''} ${describeError(error)}; nothing was recorded`,
      );
    }
  }
}

/** A request as `status` shows it: never the subject's key. */
export interface RequestView {
  readonly requestId: string;
  readonly policy: string;
  readonly kind: string;
  readonly subjectHash: string;
  readonly status: string;
  readonly requestedAt: string;
  readonly dueAt: string;
  readonly completedAt: string | null;
  readonly overdue: boolean;
  readonly error: string | null;
  readonly proof: unknown;
  /** With --presign: a presigned GET URL of the export document. */
  readonly exportUrl?: string;
  /** An erasure in its archive phase: objects searched and rewritten, objects waited for (keys and counts). */
  readonly archives?: {
    readonly searched: number;
    readonly rewritten: number;
    readonly waitingFor: ReadonlyArray<{
      key: string;
      reason: string;
      storageClass?: string | undefined;
      until?: string | null | undefined;
    }>;
  };
}

function archivesOf(progress: unknown, rewritten: number): RequestView['archives'] {
  const p = progress as {
    phase?: string;
    searched?: number;
    waiting?: Array<{ key: string; reason?: string; storageClass?: string; until?: string | null }>;
  } | null;
  if (p?.phase !== 'archives') return undefined;
  return {
    searched: p.searched ?? 0,
    rewritten,
    waitingFor: (p.waiting ?? []).map((w) => ({
      key: w.key,
      reason: w.reason ?? 'restore',
      ...(w.storageClass !== undefined ? { storageClass: w.storageClass } : {}),
      ...(w.until !== undefined ? { until: w.until } : {}),
    })),
  };
}

/** Objects each request changed so far (lifecycle.subject_rewrites, sql/013; none before it). */
async function rewriteCounts(db: Queryable): Promise<Map<string, number>> {
  const { rows: exists } = await db.query<{ ok: string | null }>(
    `SELECT to_regclass('lifecycle.subject_rewrites')::text AS ok`,
  );
  if (!exists[0]?.ok) return new Map();
  const { rows } = await db.query<{ request_id: string; n: string }>(
    'SELECT request_id::text, count(*)::text AS n FROM lifecycle.subject_rewrites GROUP BY request_id',
  );
  return new Map(rows.map((r) => [r.request_id, Number(r.n)]));
}

function publicView(r: SubjectRequest, now: Date, rewritten = 0): RequestView {
  return {
    requestId: r.requestId,
    policy: r.policy,
    kind: r.kind,
    subjectHash: r.subjectHash,
    status: r.status,
    requestedAt: r.requestedAt,
    dueAt: r.dueAt,
    completedAt: r.completedAt,
    overdue: r.status !== 'completed' && new Date(r.dueAt).getTime() < now.getTime(),
    error: r.error,
    proof: r.proof,
    ...(r.status !== 'completed' && archivesOf(r.progress, rewritten)
      ? { archives: archivesOf(r.progress, rewritten) }
      : {}),
  };
}

function formatStatus(views: readonly RequestView[]): string {
  if (views.length === 0) return 'no subject requests';
  return views
    .map((v) => {
      const proof = v.proof as {
        tables?: Array<{ table: string; rows: number }>;
        export?: { key: string };
        archives?: { rewritten?: boolean; objects?: Array<{ rowsRemoved: number; rowsMasked: number }> };
      } | null;
      const rows = proof?.tables?.map((t) => `${t.table} ${t.rows}`).join(', ');
      const parts = [
        `${v.requestId}  ${v.kind.padEnd(6)} ${v.status.toUpperCase()}${v.overdue ? ' OVERDUE' : ''}`,
        `requested ${v.requestedAt}, due ${v.dueAt}${v.completedAt ? `, completed ${v.completedAt}` : ''}`,
      ];
      if (rows) parts.push(`rows: ${rows}`);
      if (proof?.export) parts.push(`export: ${proof.export.key}`);
      if (v.exportUrl) parts.push(`export URL: ${v.exportUrl}`);
      const rewrites = proof?.archives?.rewritten ? (proof.archives.objects ?? []) : undefined;
      if (rewrites)
        parts.push(
          `archives: ${rewrites.length} object(s) rewritten, ` +
            `${rewrites.reduce((sum, o) => sum + o.rowsRemoved, 0)} row(s) removed, ` +
            `${rewrites.reduce((sum, o) => sum + o.rowsMasked, 0)} masked`,
        );
      if (v.archives)
        parts.push(
          `archives: ${v.archives.searched} object(s) searched, ${v.archives.rewritten} rewritten` +
            (v.archives.waitingFor.length > 0
              ? `; waiting for ${v.archives.waitingFor.length} object(s): ` +
                v.archives.waitingFor
                  .map((w) =>
                    w.reason === 'object-lock'
                      ? `${w.key} (Object Lock ${w.until ? `until ${w.until}` : 'legal hold'})`
                      : `${w.key} (${w.storageClass ?? 'cold'} restore)`,
                  )
                  .join(', ')
              : ''),
        );
      if (v.error) parts.push(`error: ${v.error}`);
      return parts.join('\n  ');
    })
    .join('\n');
}
