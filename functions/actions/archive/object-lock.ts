/**
 * S3 Object Lock of committed archive objects. An object is locked only after the chunk (or partition unit)
 * that lists it in the ledger committed: an upload whose chunk rolled back is an orphan that must stay
 * deletable. The lock is a second call after COMMIT, so a crash can fall between them; the ledger (sql/006)
 * records each object's retain-until date (`lock_until`, given once), its lock (`retained_until`) and a
 * refused check (`lock_error`), and a sweep over the objects still due repairs what a crash left out. The
 * sweep reads only the objects it locks and those of its policy's runs not dated yet (`runs.lock_dated`),
 * never the objects of policies without objectLock.
 */
import type { ArchivePolicy } from '../../../lib/contracts/config.ts';
import type { ObjectStore } from '../../adapters/archive-store.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { ArchiveObjectMismatchError, StorageConfigurationError } from '../../core/errors.ts';
import type { StepLogger } from '../../run/dependencies.ts';

/** Objects locked per query. */
const BATCH = 100;

/** Runs whose objects are dated per statement. */
const RUNS_PER_STATEMENT = 20;

/**
 * Which listed objects of the policy a call covers: one run's (`runId`), given keys (`keys`: a chunk's own
 * objects, right after its COMMIT), or, with neither, every run's.
 */
export interface LockScope {
  readonly runId?: string;
  readonly keys?: readonly string[];
}

export interface LockResult {
  /** Objects locked by this call (S3 calls made). */
  readonly locked: number;
  /** Objects whose lock period had already ended: recorded, no call made. */
  readonly expired: number;
  /** The call stopped at the deadline with objects left to lock (the next sweep goes on). */
  readonly incomplete: boolean;
}

interface DueRow {
  object_id: string;
  key: string;
  bytes: string;
  sha256: string;
  lock_until_ms: string;
}

/** An object's retain-until date: its listing time, to the millisecond, + days (of 24 hours). */
const LOCK_UNTIL = `date_trunc('milliseconds', created_at) + $2::integer * interval '24 hours'`;

/** Runs of the policy whose objects may lack a date: usually the finishing one (runs_lock_undated_idx). */
const UNDATED_RUNS = 'SELECT run_id::text FROM lifecycle.runs WHERE policy = $1 AND NOT lock_dated';

/**
 * Marks the runs that ended with every object dated. An ended run lists no more objects (its chunks commit
 * only while it is running), so a mark stays true.
 */
const MARK_DATED_RUNS = `
  UPDATE lifecycle.runs r SET lock_dated = true
   WHERE r.run_id = ANY($1::uuid[]) AND r.status <> 'running'
     AND NOT EXISTS (SELECT 1 FROM lifecycle.archived_objects o WHERE o.run_id = r.run_id AND o.lock_until IS NULL)`;

/** The next objects of the scope still due (archived_objects_lock_due_idx), in object_id order. */
const DUE_OBJECTS = `
  SELECT o.object_id::text, o.key, o.bytes::text, o.sha256,
         (extract(epoch FROM o.lock_until) * 1000)::bigint::text AS lock_until_ms
    FROM lifecycle.archived_objects o JOIN lifecycle.runs r USING (run_id)
   WHERE r.policy = $1 AND o.bucket = $2 AND o.object_id > $3::bigint
     AND o.lock_until IS NOT NULL AND o.retained_until IS NULL AND o.lock_error IS NULL`;

/** The scope as a condition on `o` (a fixed text: values go in `$n`) and its value. */
function scopeCondition(scope: LockScope | undefined, n: number): { sql: string; values: unknown[] } {
  if (scope?.keys) return { sql: ` AND o.key = ANY($${n}::text[])`, values: [scope.keys] };
  if (scope?.runId) return { sql: ` AND o.run_id = $${n}::uuid`, values: [scope.runId] };
  return { sql: '', values: [] };
}

/**
 * Gives the objects of the scope that have none their retain-until date (see {@link LOCK_UNTIL}), a few runs
 * per statement; false when `timeLeft` stopped it (the next call goes on).
 */
async function dateObjects(
  db: Queryable,
  policy: string,
  bucket: string,
  days: number,
  scope: LockScope | undefined,
  timeLeft: (() => boolean) | undefined,
): Promise<boolean> {
  const date = `UPDATE lifecycle.archived_objects SET lock_until = ${LOCK_UNTIL} WHERE lock_until IS NULL`;
  if (scope?.keys) {
    await db.query(`${date} AND key = ANY($1::text[]) AND bucket = $3`, [scope.keys, days, bucket]);
    return true;
  }
  if (scope?.runId) {
    await db.query(`${date} AND run_id = ANY($1::uuid[])`, [[scope.runId], days]);
    return true;
  }
  // By run id (archived_objects_run_idx): the planner cannot tell which runs' objects lack a date. Many runs
  // only the first time (objectLock turned on for a policy that listed objects before).
  const runs = (await db.query<{ run_id: string }>(UNDATED_RUNS, [policy])).rows.map((row) => row.run_id);
  for (let at = 0; at < runs.length; at += RUNS_PER_STATEMENT) {
    if (at > 0 && timeLeft && !timeLeft()) return false;
    const some = runs.slice(at, at + RUNS_PER_STATEMENT);
    await db.query(`${date} AND run_id = ANY($1::uuid[])`, [some, days]);
    await db.query(MARK_DATED_RUNS, [some]);
  }
  return true;
}

/**
 * Locks the listed, not yet locked objects of `policy` in the store's bucket (of `scope`) until their
 * `lock_until`. Every object is checked against the ledger first (length, SHA-256) and its checked version
 * locked. An object S3 holds other bytes for (or none) stays unlocked: with `mismatches: 'record'` (the
 * default) its `lock_error` is recorded, the others are locked, then ArchiveObjectMismatchError names it,
 * and later calls skip it; with `'leave'` it is left for a later call to find and report. A policy without
 * objectLock locks nothing.
 */
export async function lockListedObjects(
  db: Queryable,
  store: ObjectStore,
  policy: ArchivePolicy,
  options: {
    readonly scope?: LockScope;
    readonly now: () => Date;
    /** False once no more objects may be locked (checked before each). */
    readonly timeLeft?: () => boolean;
    readonly mismatches?: 'record' | 'leave';
    readonly log: StepLogger;
  },
): Promise<LockResult> {
  const lock = policy.archive.objectLock;
  if (!lock) return { locked: 0, expired: 0, incomplete: false };
  if (!store.retain)
    throw new StorageConfigurationError('objectLock is set but this object store cannot lock objects');
  if (options.scope?.keys?.length === 0) return { locked: 0, expired: 0, incomplete: false };
  // Dates first, once per object: derived from the ledger's listing time, never from "now".
  const dated = await dateObjects(db, policy.name, store.bucket, lock.days, options.scope, options.timeLeft);
  const scope = scopeCondition(options.scope, 4);
  let locked = 0;
  let expired = 0;
  const mismatches: string[] = [];
  let afterId = '0';
  for (;;) {
    const { rows } = await db.query<DueRow>(
      `${DUE_OBJECTS}${scope.sql} ORDER BY o.object_id LIMIT ${BATCH}`,
      [policy.name, store.bucket, afterId, ...scope.values],
    );
    if (rows.length === 0) return finish(!dated);
    for (const row of rows) {
      if (options.timeLeft && !options.timeLeft()) return finish(true);
      afterId = row.object_id;
      const until = new Date(Number(row.lock_until_ms));
      if (until.getTime() > options.now().getTime()) {
        try {
          await store.retain(
            { key: row.key, bytes: Number(row.bytes), sha256: row.sha256 },
            { mode: lock.mode, until },
          );
        } catch (error) {
          if (!(error instanceof ArchiveObjectMismatchError)) throw error;
          mismatches.push(error.message);
          // The reason, without the key the row already holds.
          const reason = error.message.replace(`${row.key}: `, '');
          if (options.mismatches !== 'leave')
            await db.query('UPDATE lifecycle.archived_objects SET lock_error = $2 WHERE object_id = $1', [
              row.object_id,
              reason,
            ]);
          continue;
        }
        locked++;
      } else {
        expired++;
      }
      await db.query(
        'UPDATE lifecycle.archived_objects SET retained_until = lock_until WHERE object_id = $1',
        [row.object_id],
      );
    }
  }

  function finish(incomplete: boolean): LockResult {
    if (locked > 0 || expired > 0 || incomplete || mismatches.length > 0)
      options.log.info('objects locked', {
        policy: policy.name,
        locked,
        expired,
        incomplete,
        mismatched: mismatches.length,
        ...(options.scope?.runId ? { runId: options.scope.runId } : {}),
      });
    if (mismatches.length > 0 && options.mismatches !== 'leave') {
      throw new ArchiveObjectMismatchError(
        `${mismatches.length} listed object(s) not locked (recorded in lifecycle.archived_objects.lock_error; ` +
          `later runs skip them): ${mismatches.slice(0, 3).join('; ')}`,
      );
    }
    return { locked, expired, incomplete };
  }
}
