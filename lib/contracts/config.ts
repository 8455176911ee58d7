/**
 * The one configuration schema (`lifecycle.config.json`), shared by the CDK app, the Lambdas and the CLI.
 *
 * Everything a run needs travels in the execution input (see `payloads.ts`), so handlers never read the
 * config file: the schedule and the CLI build the same input from the same validated policy.
 */
import { z } from 'zod';
import { ChunkingOverridesSchema, chunkingProblems, ThrottleSchema } from './chunking.ts';
import { KmsKeyArnSchema, ObservabilitySchema } from './observability.ts';
import { contractOf, isTimeCutoffPolicy, type Policy, PolicySchema } from './policy.ts';
import { retentionSeconds, sameTable } from './policy-base.ts';

export {
  type ArchiveOptions,
  ArchiveOptionsSchema,
  ArchivePolicySchema,
  StorageClassDaysSchema,
} from '../../functions/actions/archive/contract.ts';
export {
  PurgePolicySchema,
  type VacuumOptions,
  VacuumOptionsSchema,
} from '../../functions/actions/purge/contract.ts';
// Chunking, the filter screen, the policy fields and the policy union live in their own modules; the
// config's importers find them here too.
export * from './chunking.ts';
export * from './filter-screen.ts';
export * from './policy.ts';
export { PartitionOptionsSchema, PolicyNameSchema } from './policy-base.ts';

/** S3 bucket names (the config's bucketName, the CLI's --bucket). */
export const BucketNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name');

const DatabaseSchema = z
  .object({
    /** Secrets Manager secret with the RDS JSON shape: host, port, username, password, dbname. */
    secretArn: z
      .string()
      .regex(
        /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/,
        'must be a Secrets Manager secret ARN',
      ),
    /** The customer-managed KMS key the secret is encrypted with, if not the AWS-managed one. */
    secretKmsKeyArn: KmsKeyArnSchema.optional(),
    vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, 'must look like vpc-0123abcd'),
    subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'must look like subnet-0123abcd')).min(1),
    availabilityZones: z.array(z.string().min(1)).min(1),
    securityGroupId: z.string().regex(/^sg-[0-9a-f]+$/, 'must look like sg-0123abcd'),
  })
  .strict()
  .refine((db) => db.subnetIds.length === db.availabilityZones.length, {
    message: 'subnetIds and availabilityZones must have the same length (one subnet per zone, in order)',
    path: ['availabilityZones'],
  });

function workOnRows(policy: Policy): string {
  return contractOf(policy).workOnRows?.(policy) ?? policy.action;
}

export const LifecycleConfigSchema = z
  .object({
    $schema: z.string().optional(),
    /** An existing database to manage. Omit and set `sandbox: true` to let the stack create a small RDS. */
    database: DatabaseSchema.optional(),
    sandbox: z.boolean().default(false),
    /** Existing bucket name for archives; omit to let the stack create one. */
    bucketName: BucketNameSchema.optional(),
    /**
     * The anonymize hash key (HMAC key of `hash` and `email` pseudonyms): a Secrets Manager secret whose
     * SecretString is the key. Only anonymize policies' Start and Chunk functions may read it. Locally the key
     * comes from PG_LIFECYCLE_HASH_KEY instead.
     */
    anonymization: z
      .object({
        hashKeySecretArn: z
          .string()
          .regex(
            /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/,
            'must be a Secrets Manager secret ARN',
          ),
      })
      .strict()
      .optional(),
    /** Email subscribed to the failure alarm topic. */
    alarmEmail: z.email().optional(),
    /** Log retention, log encryption and whether execution data reaches the state machine logs. */
    observability: ObservabilitySchema.prefault({}),
    defaults: z
      .object({ chunking: ChunkingOverridesSchema.optional(), throttle: ThrottleSchema.optional() })
      .strict()
      .prefault({}),
    policies: z.array(PolicySchema).min(1, 'needs at least one policy'),
  })
  .strict()
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.policies.forEach((policy, index) => {
      if (seen.has(policy.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['policies', index, 'name'],
          message: `duplicate policy name "${policy.name}"`,
        });
      }
      seen.add(policy.name);
    });
    // Each action's own rules (purge: its children exist and are purges; archive: objectLock vs expiry).
    config.policies.forEach((policy, index) => {
      for (const problem of contractOf(policy).configProblems?.(policy, config.policies) ?? []) {
        ctx.addIssue({
          code: 'custom',
          path: ['policies', index, ...problem.path],
          message: problem.message,
        });
      }
    });
    // A policy that deletes rows outright must not reach rows before one that copies them first has taken
    // them: they would be missing from the copy. It must keep rows at least as long.
    config.policies.forEach((deleting, index) => {
      if (contractOf(deleting).rowFate !== 'deleted' || !deleting.enabled || !isTimeCutoffPolicy(deleting))
        return;
      for (const copying of config.policies) {
        if (
          contractOf(copying).rowFate !== 'copied-then-deleted' ||
          !copying.enabled ||
          !isTimeCutoffPolicy(copying)
        )
          continue;
        if (
          sameTable(deleting.table, copying.table) &&
          retentionSeconds(deleting) <= retentionSeconds(copying)
        ) {
          ctx.addIssue({
            code: 'custom',
            path: ['policies', index, 'retention'],
            message: `${deleting.retention} would ${deleting.action} rows of ${deleting.table} before ${copying.action} policy "${copying.name}" (${copying.retention}) has copied them to the bucket; make it longer`,
          });
        }
      }
    });
    // One database-wide cap: slots are numbered 0..max-1, so two values would not make one cap.
    config.policies.forEach((policy, index) => {
      if (policy.throttle?.maxConcurrentSteps !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['policies', index, 'throttle', 'maxConcurrentSteps'],
          message: 'is one cap for the whole database: set it in defaults.throttle',
        });
      }
    });
    config.policies.forEach((policy, index) => {
      for (const message of chunkingProblems(config, policy)) {
        ctx.addIssue({ code: 'custom', path: ['policies', index, 'chunking'], message });
      }
    });
    // Two enabled policies doing the same to the same rows: the one with the shorter retention does all
    // the work, the other only contends for the rows (and, for archives, splits them over two prefixes).
    config.policies.forEach((policy, index) => {
      if (!policy.enabled || !isTimeCutoffPolicy(policy)) return;
      const twin = config.policies
        .slice(0, index)
        .filter(isTimeCutoffPolicy)
        .find(
          (other) =>
            other.enabled &&
            other.action === policy.action &&
            sameTable(other.table, policy.table) &&
            (other.filter ?? '') === (policy.filter ?? '') &&
            // A soft delete and the hard purge of its column are two steps of one design, not twins.
            workOnRows(other) === workOnRows(policy),
        );
      if (twin) {
        ctx.addIssue({
          code: 'custom',
          path: ['policies', index, 'table'],
          message: `policy "${twin.name}" already ${policy.action}s ${policy.table}${policy.filter ? ' with the same filter' : ''}; merge the two or give each its own filter`,
        });
      }
    });
    if (config.database && config.sandbox) {
      ctx.addIssue({
        code: 'custom',
        path: ['sandbox'],
        message: 'choose either "database" or "sandbox", not both',
      });
    }
    // The functions vouched for only widen what a filter may call: without a filter they vouch for nothing.
    config.policies.forEach((policy, index) => {
      if (isTimeCutoffPolicy(policy) && policy.filterFunctions !== undefined && policy.filter === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['policies', index, 'filterFunctions'],
          message: 'only applies with a filter (the functions it lists are those the filter may call)',
        });
    });
  });

export type LifecycleConfigInput = z.input<typeof LifecycleConfigSchema>;
export type LifecycleConfig = z.output<typeof LifecycleConfigSchema>;
export type { PartitionOptions } from './policy-base.ts';
