/**
 * S3 Object Lock of an archive policy's committed objects. Pure contract (zod + a consistency check), shared by
 * the CDK app (bucket with Object Lock, IAM), `validate` and the Lambdas.
 */
import { z } from 'zod';

/** S3 refuses retention periods past 100 years. */
const MAX_OBJECT_LOCK_DAYS = 36_500;

/**
 * `GOVERNANCE`: users with s3:BypassGovernanceRetention may still shorten or remove a retention;
 * `COMPLIANCE`: nobody can, the root user included, until the date has passed.
 */
export const ObjectLockSchema = z
  .object({
    mode: z.enum(['GOVERNANCE', 'COMPLIANCE']),
    /**
     * Days each committed object stays locked, counted from its listing in the ledger (24-hour days from
     * `archived_objects.created_at`, to the millisecond). An object's date is fixed by its first lock call
     * (`lock_until`): changing `days` later changes the dates of objects not yet dated only.
     */
    days: z.int().min(1).max(MAX_OBJECT_LOCK_DAYS),
  })
  .strict();

export type ObjectLock = z.output<typeof ObjectLockSchema>;

/**
 * Problems of an archive policy's objectLock against the rest of its archive options (undefined = fine).
 * An expiry before the lock ends cannot delete the locked version; the policy would say two things.
 */
export function objectLockProblem(
  lock: ObjectLock | undefined,
  expireAfterDays: number | undefined,
): string | undefined {
  if (!lock || expireAfterDays === undefined) return undefined;
  if (expireAfterDays < lock.days) {
    return (
      `storage.expireAfterDays (${expireAfterDays}) is shorter than objectLock.days (${lock.days}): ` +
      'a locked object cannot expire; lock for fewer days or expire later'
    );
  }
  return undefined;
}
