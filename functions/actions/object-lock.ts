/**
 * S3 Object Lock of committed archive objects. An object is locked only after the chunk (or partition unit)
 * that lists it in the ledger committed: an upload whose chunk rolled back is an orphan that must stay
 * deletable. The lock is a second call after COMMIT, so a crash can fall between them; `retained_until`
 * (sql/006) records each lock, and a sweep over the listed objects still unlocked repairs what a crash
 * left out. Retain-until dates derive from the ledger's listing time, so a repeated call asks for the same
 * date (COMPLIANCE refuses a shorter one).
 */
import type { ArchivePolicy } from '../../lib/contracts/config.ts';
import { retainUntil } from '../../lib/contracts/object-lock.ts';
import type { ObjectStore } from '../adapters/archive-store.ts';
import type { Queryable } from '../adapters/catalog.ts';
import { ArchiveObjectMismatchError, StorageConfigurationError } from '../core/errors.ts';
import type { StepLogger } from '../run/dependencies.ts';

/** Objects locked per query: small enough that a deadline is checked often. */
const BATCH = 100;

/** Which listed objects a sweep covers: one run's, or every run's of the policy. */
export interface LockScope {
  readonly runId?: string;
}

export interface LockResult {
  /** Objects locked by this call (S3 calls made). */
  readonly locked: number;
  /** Objects whose lock period had already ended: recorded, no call made. */
  readonly expired: number;
  /** The sweep stopped at the deadline with unlocked objects left (the next sweep goes on). */
  readonly incomplete: boolean;
}

interface UnlockedRow {
  object_id: string;
  key: string;
  bytes: string;
  sha256: string;
  listed_ms: string;
}

/**
 * Locks the listed, not yet locked objects of `policy` in the store's bucket (of one run with `scope.runId`).
 * Every object is checked against the ledger first (length, SHA-256) and its checked version locked. An
 * object S3 holds other bytes for stays unlocked; the others are locked, then ArchiveObjectMismatchError is
 * thrown naming it. A policy without objectLock locks nothing.
 */
export async function lockListedObjects(
  db: Queryable,
  store: ObjectStore,
  policy: ArchivePolicy,
  options: {
    readonly scope?: LockScope;
    readonly now: () => Date;
    readonly timeLeft?: () => boolean;
    readonly log: StepLogger;
  },
): Promise<LockResult> {
  const lock = policy.archive.objectLock;
  if (!lock) return { locked: 0, expired: 0, incomplete: false };
  if (!store.retain)
    throw new StorageConfigurationError('objectLock is set but this object store cannot lock objects');
  let locked = 0;
  let expired = 0;
  const mismatches: string[] = [];
  let afterId = '0';
  for (;;) {
    if (options.timeLeft && !options.timeLeft()) return finish(true);
    const { rows } = await db.query<UnlockedRow>(
      `SELECT o.object_id::text, o.key, o.bytes::text, o.sha256,
              floor(extract(epoch FROM o.created_at) * 1000)::bigint::text AS listed_ms
         FROM lifecycle.archived_objects o JOIN lifecycle.runs r USING (run_id)
        WHERE r.policy = $1 AND o.bucket = $2 AND o.retained_until IS NULL
          AND ($3::uuid IS NULL OR o.run_id = $3) AND o.object_id > $4::bigint
        ORDER BY o.object_id LIMIT ${BATCH}`,
      [policy.name, store.bucket, options.scope?.runId ?? null, afterId],
    );
    if (rows.length === 0) return finish(false);
    for (const row of rows) {
      afterId = row.object_id;
      const until = retainUntil(new Date(Number(row.listed_ms)), lock);
      if (until.getTime() > options.now().getTime()) {
        try {
          await store.retain(
            { key: row.key, bytes: Number(row.bytes), sha256: row.sha256 },
            { mode: lock.mode, until },
          );
        } catch (error) {
          if (!(error instanceof ArchiveObjectMismatchError)) throw error;
          mismatches.push(error.message);
          continue;
        }
        locked++;
      } else {
        expired++;
      }
      await db.query('UPDATE lifecycle.archived_objects SET retained_until = $2 WHERE object_id = $1', [
        row.object_id,
        until.toISOString(),
      ]);
    }
  }

  function finish(incomplete: boolean): LockResult {
    if (locked > 0 || expired > 0 || incomplete)
      options.log.info('objects locked', {
        policy: policy.name,
        locked,
        expired,
        incomplete,
        ...options.scope,
      });
    if (mismatches.length > 0) {
      throw new ArchiveObjectMismatchError(
        `${mismatches.length} listed object(s) not locked: ${mismatches.slice(0, 3).join('; ')}`,
      );
    }
    return { locked, expired, incomplete };
  }
}
