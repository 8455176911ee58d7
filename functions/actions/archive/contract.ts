/**
 * Archive's configuration and what the stack gives it (pure: imported by the CDK app and `validate` too).
 * Rows older than the retention are written to Parquet in the bucket, verified, listed in the ledger and
 * only then deleted, in the same transaction.
 */
import { z } from 'zod';
import type { ActionContract } from '../../../lib/contracts/action-contract.ts';
import { ObjectLockSchema, objectLockProblem } from '../../../lib/contracts/object-lock.ts';
import { PartitionedTimeCutoffSchema, PolicyCommonSchema } from '../../../lib/contracts/policy-base.ts';
import { policyPrefix } from '../../core/object-keys.ts';

export const StorageClassDaysSchema = z
  .object({
    infrequentAccessAfterDays: z.int().min(30).default(30),
    glacierInstantRetrievalAfterDays: z.int().min(1).default(90),
    deepArchiveAfterDays: z.int().min(1).default(180),
    /** Delete archived objects after this many days; omit to keep them forever. */
    expireAfterDays: z.int().min(1).optional(),
  })
  .strict()
  .superRefine((days, ctx) => {
    if (days.glacierInstantRetrievalAfterDays < days.infrequentAccessAfterDays + 30) {
      ctx.addIssue({
        code: 'custom',
        path: ['glacierInstantRetrievalAfterDays'],
        message: 'must be at least 30 days after infrequentAccessAfterDays (S3 minimum)',
      });
    }
    if (days.deepArchiveAfterDays < days.glacierInstantRetrievalAfterDays + 90) {
      ctx.addIssue({
        code: 'custom',
        path: ['deepArchiveAfterDays'],
        message: 'must be at least 90 days after glacierInstantRetrievalAfterDays (Glacier IR minimum)',
      });
    }
    if (days.expireAfterDays !== undefined && days.expireAfterDays < days.deepArchiveAfterDays + 180) {
      ctx.addIssue({
        code: 'custom',
        path: ['expireAfterDays'],
        message: 'must be at least 180 days after deepArchiveAfterDays (Deep Archive minimum)',
      });
    }
  });

export const ArchiveOptionsSchema = z
  .object({
    /** Hive partition granularity of object keys, by the row's time column (UTC). */
    partitionBy: z.enum(['year', 'month', 'day']).default('month'),
    compression: z.enum(['snappy', 'zstd', 'gzip', 'uncompressed']).default('snappy'),
    /** How an uploaded object is checked before the chunk commits. */
    verify: z.enum(['head', 'read-back']).default('head'),
    storage: StorageClassDaysSchema.prefault({}),
    /** Lock each object with S3 Object Lock once its chunk committed (the stack's bucket gets Object Lock). */
    objectLock: ObjectLockSchema.optional(),
  })
  .strict();

export const ArchivePolicySchema = PolicyCommonSchema.extend({
  ...PartitionedTimeCutoffSchema.shape,
  action: z.literal('archive'),
  archive: ArchiveOptionsSchema.prefault({}),
}).strict();

export type ArchivePolicy = z.output<typeof ArchivePolicySchema>;
export type ArchiveOptions = z.output<typeof ArchiveOptionsSchema>;

export const archiveContract: ActionContract<ArchivePolicy> = {
  action: 'archive',
  rowFate: 'copied-then-deleted',
  storage: (policy) => ({
    prefix: policyPrefix(policy.name),
    tiers: {
      transitions: [
        { storageClass: 'STANDARD_IA', afterDays: policy.archive.storage.infrequentAccessAfterDays },
        { storageClass: 'GLACIER_IR', afterDays: policy.archive.storage.glacierInstantRetrievalAfterDays },
        { storageClass: 'DEEP_ARCHIVE', afterDays: policy.archive.storage.deepArchiveAfterDays },
      ],
      expireAfterDays: policy.archive.storage.expireAfterDays,
    },
    objectLock: policy.archive.objectLock !== undefined,
    glueTable: true,
  }),
  configProblems(policy) {
    const problem = objectLockProblem(policy.archive.objectLock, policy.archive.storage.expireAfterDays);
    return problem ? [{ path: ['archive', 'objectLock'], message: problem }] : [];
  },
};
