/**
 * The archive phase of an erasure. Once a request's live rows are gone (that chunk committed), every Parquet object
 * the ledger lists for the mapped tables is searched for the subject and rewritten without them
 * (./object-rewrite.ts). Live rows first, archives second: an archive chunk that took the subject's rows before the
 * live erasure committed has listed its object by then, and after it no new object can hold them.
 *
 * The walk spans chunks and runs, kept in the request's `progress` (sql/013): the last object_id searched, the
 * rewrites done, old keys whose versions are still being deleted (finished first on every step, so a crash between
 * the ledger swap and the deletion leaves nothing behind), and objects in Glacier Flexible Retrieval / Deep Archive.
 * Those are never skipped: a restore is requested (Bulk tier, the cheapest: the request's due date is weeks away)
 * and the request becomes 'waiting'; later runs look at those objects again and finish once S3 has a readable copy.
 */
import { RestoreObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { mapS3Error } from '../../adapters/archive-store.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { TransientStorageError } from '../../core/errors.ts';
import type { HashKey } from '../anonymize/hash-key.ts';
import type { ResolvedSubjectTable } from './mapping.ts';
import {
  type ErasureObject,
  eraseFromObject,
  finishDeletion,
  type RewriteContext,
  type RewriteHooks,
  type RewriteRecord,
} from './object-rewrite.ts';
import type { TableOutcome } from './subject-work.ts';

/** An object the walk must come back to. */
export interface WaitingObject {
  readonly objectId: string;
  readonly key: string;
  /** restore: in a cold class, its restore requested; object-lock: its versions cannot be deleted yet. */
  readonly reason: 'restore' | 'object-lock';
  readonly storageClass?: string | undefined;
  /** object-lock: when the retention ends (null: a legal hold, no date). */
  readonly until?: string | null | undefined;
}

/** What the request keeps between steps (lifecycle.subject_requests.progress); rewrites are in subject_rewrites. */
export interface ErasureProgress {
  readonly phase: 'archives';
  /** The live tables' outcome (with each table's keyed hash), for the proof. */
  readonly live: ReadonlyArray<TableOutcome & { keyHash?: string | undefined }>;
  /** The hash of the first table's key, which replaces the request's at completion. */
  readonly subjectHash?: string | undefined;
  /** object_id of the last object searched (text: bigserial). */
  readonly cursor: string;
  readonly searched: number;
  readonly waiting: readonly WaitingObject[];
  /** The run that last found the request waiting: it is not looked at again in that run. */
  readonly checkedRun?: string | undefined;
}

/**
 * Days S3 keeps a restored copy readable: long enough for a weekly schedule to find it (Bulk restores take up to
 * 12 h from Glacier Flexible Retrieval, 48 h from Deep Archive); the copy is billed as STANDARD meanwhile.
 */
export const RESTORE_DAYS = 10;
export const RESTORE_TIER = 'Bulk';

export function initialProgress(
  live: ErasureProgress['live'],
  subjectHash: string | undefined,
): ErasureProgress {
  return {
    phase: 'archives',
    live,
    subjectHash,
    cursor: '0',
    searched: 0,
    waiting: [],
  };
}

/** Archive copies listed for `tables` after `cursor`, in object_id order. */
export async function listErasureObjects(
  db: pg.ClientBase,
  tables: readonly string[],
  cursor: string,
  limit: number,
): Promise<ErasureObject[]> {
  const { rows } = await db.query<{
    object_id: string;
    bucket: string;
    key: string;
    rows: string;
    bytes: string;
    sha256: string;
    table_name: string;
    lock_until: string | null;
  }>(
    `SELECT o.object_id::text, o.bucket, o.key, o.rows::text, o.bytes::text, o.sha256, r.table_name,
            o.lock_until::text
       FROM lifecycle.archived_objects o JOIN lifecycle.runs r ON r.run_id = o.run_id
      WHERE r.action = 'archive' AND o.kind = 'archive-copy' AND r.table_name = ANY ($1::text[])
        AND o.object_id > $2::bigint
      ORDER BY o.object_id
      LIMIT $3`,
    [tables, cursor, limit],
  );
  return rows.map((r) => ({
    objectId: r.object_id,
    bucket: r.bucket,
    key: r.key,
    rows: Number(r.rows),
    bytes: Number(r.bytes),
    sha256: r.sha256,
    table: r.table_name,
    lockUntil: r.lock_until,
  }));
}

async function objectById(db: pg.ClientBase, objectId: string): Promise<ErasureObject | undefined> {
  const { rows } = await db.query<{
    bucket: string;
    key: string;
    rows: string;
    bytes: string;
    sha256: string;
    table_name: string;
    lock_until: string | null;
  }>(
    `SELECT o.bucket, o.key, o.rows::text, o.bytes::text, o.sha256, r.table_name, o.lock_until::text
       FROM lifecycle.archived_objects o JOIN lifecycle.runs r ON r.run_id = o.run_id
      WHERE o.object_id = $1::bigint`,
    [objectId],
  );
  const r = rows[0];
  return r
    ? {
        objectId,
        bucket: r.bucket,
        key: r.key,
        rows: Number(r.rows),
        bytes: Number(r.bytes),
        sha256: r.sha256,
        table: r.table_name,
        lockUntil: r.lock_until,
      }
    : undefined;
}

async function requestRestore(s3: S3Client, object: ErasureObject): Promise<void> {
  try {
    await s3.send(
      new RestoreObjectCommand({
        Bucket: object.bucket,
        Key: object.key,
        RestoreRequest: { Days: RESTORE_DAYS, GlacierJobParameters: { Tier: RESTORE_TIER } },
      }),
    );
  } catch (error) {
    if (error instanceof S3ServiceException && error.name === 'RestoreAlreadyInProgress') return;
    throw mapS3Error(error, `RestoreObject ${object.key}`);
  }
}

async function saveProgress(
  db: pg.ClientBase,
  requestId: string,
  patch: Partial<ErasureProgress>,
): Promise<void> {
  await db.query(
    'UPDATE lifecycle.subject_requests SET progress = progress || $2::jsonb WHERE request_id = $1',
    [requestId, JSON.stringify(patch)],
  );
}

export async function readProgress(db: pg.ClientBase, requestId: string): Promise<ErasureProgress> {
  const { rows } = await db.query<{ p: string }>(
    'SELECT progress::text AS p FROM lifecycle.subject_requests WHERE request_id = $1',
    [requestId],
  );
  return JSON.parse(rows[0]?.p ?? 'null') as ErasureProgress;
}

export interface ArchiveStepContext {
  readonly s3: S3Client;
  readonly db: pg.ClientBase;
  readonly runId: string;
  readonly key: HashKey | undefined;
  readonly hooks?: RewriteHooks | undefined;
  readonly now: () => Date;
  /** True while the step may start on another object. */
  readonly hasTime: () => boolean;
}

export interface ArchiveStepResult {
  /** 'done': nothing left; 'waiting': only waiting objects left; 'more': the step ran out of time. */
  readonly state: 'done' | 'waiting' | 'more';
  readonly rowsRemoved: number;
  readonly progress: ErasureProgress;
}

/** Objects read per ledger query. */
const PAGE = 200;
/** Objects searched between two writes of the cursor. */
const SAVE_EVERY = 50;
/** Times an object is looked up again when another writer changed its ledger row meanwhile. */
const SUPERSEDED_RETRIES = 3;

/** The request's changed objects whose old versions are not all deleted yet (a crash came in between). */
async function undeleted(
  db: pg.ClientBase,
  requestId: string,
): Promise<Array<{ bucket: string; key: string }>> {
  const { rows } = await db.query<{ bucket: string; key: string }>(
    'SELECT bucket, old_key AS key FROM lifecycle.subject_rewrites WHERE request_id = $1 AND NOT deleted',
    [requestId],
  );
  return rows;
}

/** What the request changed in the archives, for its proof. */
export async function readRewrites(db: Queryable, requestId: string): Promise<RewriteRecord[]> {
  const { rows } = await db.query<{
    table_name: string;
    old_key: string;
    new_key: string | null;
    rows_removed: number | string;
    rows_masked: number | string;
    rows_left: number | string;
    storage_class: string | null;
    outcome: string;
  }>(
    `SELECT table_name, old_key, new_key, rows_removed, rows_masked, rows_left, storage_class, outcome
       FROM lifecycle.subject_rewrites WHERE request_id = $1 ORDER BY rewritten_at, old_key`,
    [requestId],
  );
  return rows.map((r) => ({
    table: r.table_name,
    oldKey: r.old_key,
    newKey: r.new_key,
    rowsRemoved: Number(r.rows_removed),
    rowsMasked: Number(r.rows_masked),
    rowsLeft: Number(r.rows_left),
    storageClass: r.storage_class ?? 'none',
    ...(r.outcome === 'gone' ? { gone: true } : {}),
  }));
}

/**
 * One step of a request's archive phase, outside any chunk transaction (each swap is its own short one).
 * @throws what eraseFromObject throws (integrity, storage, ArchiveErasureError): the request stays in its phase
 */
export async function continueArchiveErasure(
  ctx: ArchiveStepContext,
  requestId: string,
  subjectKey: string,
  tables: readonly ResolvedSubjectTable[],
): Promise<ArchiveStepResult> {
  const byName = new Map(tables.map((t) => [t.qualified, t]));
  const rewrite: RewriteContext = {
    s3: ctx.s3,
    db: ctx.db,
    runId: ctx.runId,
    requestId,
    key: ctx.key,
    hooks: ctx.hooks,
    now: ctx.now,
  };
  let rowsRemoved = 0;
  const progress = await readProgress(ctx.db, requestId);
  // Old keys a crash left between the swap and the deletion of their versions.
  for (const old of await undeleted(ctx.db, requestId)) await finishDeletion(rewrite, old.bucket, old.key);

  /** The object's reason to wait, or undefined once it is searched (and rewritten if it held the subject). */
  const visit = async (
    first: ErasureObject,
  ): Promise<Omit<WaitingObject, 'objectId' | 'key'> | undefined> => {
    let object: ErasureObject | undefined = first;
    for (let attempt = 0; object && attempt < SUPERSEDED_RETRIES; attempt++) {
      const table = byName.get(object.table);
      if (!table) return undefined;
      const outcome = await eraseFromObject(rewrite, object, table, subjectKey);
      switch (outcome.kind) {
        case 'cold':
          await requestRestore(ctx.s3, object);
          return { reason: 'restore', storageClass: outcome.storageClass };
        case 'locked':
          return { reason: 'object-lock', until: outcome.until };
        case 'rewritten':
          rowsRemoved += outcome.rowsRemoved + outcome.rowsMasked;
          return undefined;
        case 'superseded':
          // Another writer changed its ledger row (another erasure rewrote it): search what is listed now.
          object = await objectById(ctx.db, object.objectId);
          continue;
        default:
          return undefined;
      }
    }
    if (object)
      throw new TransientStorageError(
        `${object.key}: its ledger row kept changing while it was being searched`,
      );
    return undefined;
  };

  // Objects that were waiting: what the ledger lists for them now (a rewrite by another request changes the key).
  let waiting: WaitingObject[] = [];
  const recheck = [...progress.waiting];
  while (recheck.length > 0) {
    const entry = recheck[0] as WaitingObject;
    if (!ctx.hasTime()) break;
    recheck.shift();
    const object = await objectById(ctx.db, entry.objectId);
    if (!object) continue; // emptied by another erasure: nothing of it is left
    const reason = await visit(object);
    if (reason) waiting.push({ objectId: object.objectId, key: object.key, ...reason });
  }
  // Not reached this step: first in line next time (the ones looked at now go after them).
  waiting = [...recheck, ...waiting];
  let cursor = progress.cursor;
  let searched = progress.searched;
  let exhausted = false;
  while (ctx.hasTime()) {
    const page = await listErasureObjects(ctx.db, [...byName.keys()], cursor, PAGE);
    if (page.length === 0) {
      exhausted = true;
      break;
    }
    for (const object of page) {
      if (!ctx.hasTime()) break;
      const reason = await visit(object);
      if (reason) waiting = [...waiting, { objectId: object.objectId, key: object.key, ...reason }];
      cursor = object.objectId;
      searched++;
      // The cursor only saves searching again (a searched object no longer holds the subject), so it is written
      // every so often, and at once when the waiting list changed (that one must not be lost).
      if (reason || searched % SAVE_EVERY === 0)
        await saveProgress(ctx.db, requestId, { cursor, searched, waiting });
    }
  }
  await saveProgress(ctx.db, requestId, { cursor, searched, waiting });
  const state = !exhausted || recheck.length > 0 ? 'more' : waiting.length > 0 ? 'waiting' : 'done';
  return { state, rowsRemoved, progress: await readProgress(ctx.db, requestId) };
}
