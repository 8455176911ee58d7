/**
 * `backup.rdsSnapshot` (pure: for the CDK app, `validate`, the snapshot steps): a manual RDS or Aurora snapshot
 * the backup policy's execution takes after its logical backup, optionally copied to another region, and this
 * policy's snapshots past `retentionDays` deleted.
 *
 * Names: `pg-lifecycle-<policy>-<yyyymmddhhmmss>` (UTC), the same in both regions. The policy's snapshots are
 * those whose name is exactly its prefix followed by 14 digits, tagged with its policy and stack: policy `a`
 * never takes policy `a-b`'s `pg-lifecycle-a-b-20261201010000` for its own, although its prefix
 * `pg-lifecycle-a-` starts that name (the IAM grant on `pg-lifecycle-a-*` does cover it, which is why the delete
 * grant also requires the tags).
 */
import { z } from 'zod';

/**
 * RDS DB instance and Aurora cluster identifiers: 1–63 letters, digits or hyphens, starting with a letter,
 * no two consecutive hyphens, not ending in one. RDS stores them in lower case and IAM compares ARNs exactly,
 * so an upper-case name here would grant nothing: it is refused.
 */
const RdsIdentifierSchema = z.string().superRefine((value, ctx) => {
  const problem = rdsIdentifierProblem(value, 63);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Why `value` is not an RDS identifier of at most `max` characters, or undefined. */
export function rdsIdentifierProblem(value: string, max: number): string | undefined {
  if (value.length === 0 || value.length > max) return `must have 1–${max} characters`;
  if (/[A-Z]/.test(value) && /^[A-Za-z0-9-]+$/.test(value))
    return `RDS stores identifiers in lower case: write "${value.toLowerCase()}"`;
  if (!/^[a-z][a-z0-9-]*$/.test(value))
    return 'must be lowercase letters, digits and hyphens, starting with a letter';
  if (value.includes('--')) return 'must not contain two consecutive hyphens';
  if (value.endsWith('-')) return 'must not end with a hyphen';
  return undefined;
}

/** An AWS region name (`eu-central-1`, `us-gov-west-1`). */
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/** A KMS key ARN (a key id or alias cannot be granted to in IAM without knowing the key). */
const KMS_KEY_ARN =
  /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):kms:([a-z0-9-]+):(\d{12}):key\/(mrk-[0-9a-f]{32}|[0-9a-f-]{36})$/;

/** Region of a KMS key ARN, or undefined when it is not one. */
export function kmsKeyRegion(arn: string): string | undefined {
  return KMS_KEY_ARN.exec(arn)?.[2];
}

export const RdsSnapshotOptionsSchema = z
  .object({
    /** The RDS DB instance to snapshot (CreateDBSnapshot). Exactly one of this and dbClusterIdentifier. */
    dbInstanceIdentifier: RdsIdentifierSchema.optional(),
    /** The Aurora DB cluster to snapshot (CreateDBClusterSnapshot). */
    dbClusterIdentifier: RdsIdentifierSchema.optional(),
    /** Copy each snapshot to this region too (CopyDBSnapshot / CopyDBClusterSnapshot), retained the same. */
    copyToRegion: z.string().regex(REGION, 'must be an AWS region name such as eu-central-1').optional(),
    /**
     * The KMS key (ARN, in copyToRegion) the copy is encrypted with. Required by RDS when the source snapshot is
     * encrypted (a key of one region cannot encrypt in another); the copy step fails with a clear error when it
     * is, and this is missing. With an unencrypted DB instance it encrypts the copy; Aurora cannot encrypt a copy
     * of an unencrypted cluster snapshot, so there it is refused at the copy.
     */
    copyKmsKeyArn: z
      .string()
      .regex(KMS_KEY_ARN, 'must be a KMS key ARN: arn:aws:kms:<region>:<account>:key/<key id> (no alias)')
      .optional(),
    /** Snapshots of this policy older than this are deleted (in both regions) after a new one is available. */
    retentionDays: z.int().min(1, 'must be at least 1').max(3650, 'must be at most 3650 (ten years)'),
  })
  .strict()
  .superRefine((options, ctx) => {
    const instance = options.dbInstanceIdentifier !== undefined;
    const cluster = options.dbClusterIdentifier !== undefined;
    if (instance === cluster) {
      ctx.addIssue({
        code: 'custom',
        path: instance ? ['dbClusterIdentifier'] : [],
        message: instance
          ? 'name either dbInstanceIdentifier (an RDS DB instance) or dbClusterIdentifier (an Aurora cluster), not both'
          : 'name the database to snapshot: dbInstanceIdentifier (an RDS DB instance) or dbClusterIdentifier (an Aurora cluster)',
      });
    }
    if (options.copyKmsKeyArn !== undefined) {
      const keyRegion = kmsKeyRegion(options.copyKmsKeyArn);
      if (options.copyToRegion === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['copyKmsKeyArn'],
          message: 'encrypts the cross-region copy: set copyToRegion too, or remove it',
        });
      } else if (keyRegion !== undefined && keyRegion !== options.copyToRegion) {
        ctx.addIssue({
          code: 'custom',
          path: ['copyKmsKeyArn'],
          message: `is a key in ${keyRegion}: the copy in ${options.copyToRegion} needs a key of that region`,
        });
      }
    }
  });

export type RdsSnapshotOptions = z.output<typeof RdsSnapshotOptionsSchema>;

/** `pg-lifecycle-<policy>-`: what every snapshot of the policy is named with (and IAM is scoped to). */
export function rdsSnapshotPrefix(policyName: string): string {
  return `pg-lifecycle-${policyName}-`;
}

/**
 * Why a policy's name cannot prefix RDS snapshot identifiers (two consecutive hyphens, a trailing one), or
 * undefined. A policy name has at most 55 characters: the snapshot names stay far below RDS's 255.
 */
export function rdsSnapshotNameProblem(policyName: string): string | undefined {
  const problem = rdsIdentifierProblem(`${rdsSnapshotPrefix(policyName)}20260101000000`, 255);
  return problem
    ? `with rdsSnapshot the policy name is part of RDS snapshot names (${rdsSnapshotPrefix(policyName)}<time>), which ${problem}`
    : undefined;
}

/** `<prefix><yyyymmddhhmmss>` of `at` (UTC). */
export function rdsSnapshotName(prefix: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/\.\d{3}Z$/, '')
    .replace(/[-:T]/g, '');
  return `${prefix}${stamp}`;
}

/** When a snapshot named `<prefix><yyyymmddhhmmss>` was taken, or undefined for any other name. */
export function rdsSnapshotNameTime(prefix: string, identifier: string): Date | undefined {
  if (!identifier.startsWith(prefix)) return undefined;
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(identifier.slice(prefix.length));
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  const time = new Date(Date.UTC(y as number, (mo as number) - 1, d, h, mi, s));
  return Number.isNaN(time.getTime()) ? undefined : time;
}

/** Tag keys every snapshot of a policy carries (the delete grant requires the first two). */
export const RDS_SNAPSHOT_TAGS = {
  policy: 'pg-lifecycle:policy',
  stack: 'pg-lifecycle:stack',
  runId: 'pg-lifecycle:run-id',
  source: 'pg-lifecycle:source',
} as const;

/**
 * What the snapshot function is deployed with (environment `LIFECYCLE_RDS_SNAPSHOT`, JSON): everything comes
 * from the stack, nothing from the execution input, so no StartExecution input can point it at another database
 * or shorten the retention.
 */
export const RdsSnapshotSettingsSchema = z
  .object({
    policy: z.string().min(1),
    stack: z.string().min(1),
    kind: z.enum(['instance', 'cluster']),
    /** The DB instance or Aurora cluster identifier. */
    source: z.string().min(1),
    prefix: z.string().min(1),
    copyToRegion: z.string().optional(),
    copyKmsKeyArn: z.string().optional(),
    retentionDays: z.int().min(1).max(3650),
  })
  .strict();

export type RdsSnapshotSettings = z.output<typeof RdsSnapshotSettingsSchema>;

/** The environment variable holding {@link RdsSnapshotSettings}. */
export const RDS_SNAPSHOT_SETTINGS_ENV = 'LIFECYCLE_RDS_SNAPSHOT';

/** The settings of a policy's snapshot function in a stack named `stackName`. */
export function rdsSnapshotSettings(
  policyName: string,
  options: RdsSnapshotOptions,
  stackName: string,
): RdsSnapshotSettings {
  const source = options.dbInstanceIdentifier ?? options.dbClusterIdentifier;
  if (source === undefined) throw new Error(`policy ${policyName}: rdsSnapshot names no database`);
  return {
    policy: policyName,
    stack: stackName,
    kind: options.dbInstanceIdentifier !== undefined ? 'instance' : 'cluster',
    source,
    prefix: rdsSnapshotPrefix(policyName),
    ...(options.copyToRegion !== undefined ? { copyToRegion: options.copyToRegion } : {}),
    ...(options.copyKmsKeyArn !== undefined ? { copyKmsKeyArn: options.copyKmsKeyArn } : {}),
    retentionDays: options.retentionDays,
  };
}
