/**
 * The one configuration schema (`lifecycle.config.json`), shared by the CDK app, the Lambdas and the CLI.
 *
 * Everything a run needs travels in the execution input (see `payloads.ts`), so handlers never read the
 * config file: the schedule and the CLI build the same input from the same validated policy.
 */
import { z } from 'zod';
import { ChunkingOverridesSchema, chunkingProblems, ThrottleSchema } from './chunking.ts';
import { FilterSchema, FunctionSignatureSchema } from './filter-screen.ts';
import { parseQualifiedName } from './identifiers.ts';
import { parseIsoDuration } from './iso-duration.ts';
import { ObjectLockSchema, objectLockProblem } from './object-lock.ts';
import { KmsKeyArnSchema, ObservabilitySchema } from './observability.ts';
import { protectedSchemaReason } from './protected-schemas.ts';
import { ScheduleSchema, TimeZoneSchema } from './schedule.ts';

// Chunking and the filter screen live in their own modules; the config's importers find them here too.
export * from './chunking.ts';
export * from './filter-screen.ts';

/**
 * Policy names become S3 prefixes, CloudFormation ids and schedule names: keep them boring. At most 55
 * characters: `pg-lifecycle start` names executions `manual-<name>-<17-digit time>`, and Step Functions
 * takes 80 (a longer name would be cut, and two starts in the same hour would collide).
 */
export const PolicyNameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,54}$/,
    'must be lowercase letters, digits and dashes, starting with a letter (max 55)',
  );

/** A name part as PostgreSQL reads it: quoted parts exact, unquoted ones folded to lower case. */
function catalogName(part: { name: string; quoted: boolean }): string {
  return part.quoted ? part.name : part.name.toLowerCase();
}

/** The parts of a name, or none when it does not parse (its own schema reports that). */
function safeParseName(name: string | undefined): Array<{ name: string; quoted: boolean }> {
  if (name === undefined) return [];
  try {
    return parseQualifiedName(name);
  } catch {
    return [];
  }
}

const QualifiedTableSchema = z.string().superRefine((value, ctx) => {
  try {
    const parts = parseQualifiedName(value);
    if (parts.length > 2) ctx.addIssue({ code: 'custom', message: 'must be "table" or "schema.table"' });
    const reason = parts.length === 2 && parts[0] ? protectedSchemaReason(catalogName(parts[0])) : undefined;
    if (reason) ctx.addIssue({ code: 'custom', message: `${value}: no policy may touch it (${reason})` });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

const ColumnNameSchema = z.string().superRefine((value, ctx) => {
  try {
    const parts = parseQualifiedName(value);
    if (parts.length !== 1) ctx.addIssue({ code: 'custom', message: 'must be a single column name' });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/** Longest retention: any longer keeps everything anyway, and the cutoff stays a valid date. */
const MAX_RETENTION_YEARS = 1000;
/**
 * Shortest retention: rows younger than an hour are still being written and read by the application, and
 * a shorter one is almost always a slip (PT1M for P1M, PT10M for P10M) that would take nearly every row.
 */
const MIN_RETENTION_SECONDS = 3600;

const RetentionSchema = z.string().superRefine((value, ctx) => {
  try {
    const duration = parseIsoDuration(value);
    if (duration.totalSecondsApprox <= 0)
      ctx.addIssue({ code: 'custom', message: 'must be longer than zero' });
    else if (duration.totalSecondsApprox < MIN_RETENTION_SECONDS)
      ctx.addIssue({ code: 'custom', message: `"${value}" is shorter than one hour (PT1H), the minimum` });
    // The cutoff must be a date PostgreSQL and JavaScript both take (P3000Y ran past year 0 at run start).
    if (duration.totalSecondsApprox > MAX_RETENTION_YEARS * 365 * 86_400)
      ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_RETENTION_YEARS} years` });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

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

/** One plain or double-quoted identifier (a schema name). */
const IdentifierSchema = z.string().superRefine((value, ctx) => {
  try {
    if (parseQualifiedName(value).length !== 1)
      ctx.addIssue({ code: 'custom', message: 'must be a single name' });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/**
 * Partition-aware retention, for tables RANGE-partitioned on `timeColumn`: partitions lying wholly before
 * the cutoff are archived (archive policies) and detached and dropped as units instead of row by row.
 */
export const PartitionOptionsSchema = z
  .object({
    /** Retire whole partitions when the table allows it; false: every row goes through chunks. */
    enabled: z.boolean().default(true),
    /** Detach retired partitions but keep them as tables instead of dropping them (pg_partman retention_keep_table). */
    keepDetached: z.boolean().default(false),
    /** With keepDetached: move detached partitions to this existing schema (pg_partman retention_schema). */
    detachedSchema: IdentifierSchema.optional(),
    /**
     * Purge: how long counting a detached partition's rows (for the ledger) may take. A partition too large
     * to count in that time records the planner's estimate (flagged `rows_estimated`) instead of holding
     * the run (or failing it on statement_timeout).
     */
    countTimeoutMs: z.int().min(1).max(600_000).default(10_000),
  })
  .strict()
  .superRefine((options, ctx) => {
    if (options.detachedSchema !== undefined && !options.keepDetached) {
      ctx.addIssue({
        code: 'custom',
        path: ['detachedSchema'],
        message: 'only applies with keepDetached: true (dropped partitions are not moved)',
      });
    }
    const [schema] = safeParseName(options.detachedSchema);
    const reason = schema ? protectedSchemaReason(catalogName(schema)) : undefined;
    if (reason) {
      ctx.addIssue({
        code: 'custom',
        path: ['detachedSchema'],
        message: `no partition may move there (${reason})`,
      });
    }
  });

const PolicyBaseSchema = z.object({
  name: PolicyNameSchema,
  description: z.string().max(500).optional(),
  /** `table` or `schema.table`; quote parts with double quotes to keep case ("Sales"."Orders"). */
  table: QualifiedTableSchema,
  timeColumn: ColumnNameSchema,
  /** ISO-8601 duration: rows with `timeColumn < now - retention` are eligible. */
  retention: RetentionSchema,
  filter: FilterSchema.optional(),
  /**
   * Functions that are not PostgreSQL's own which `filter` may call, directly or through operators, casts,
   * views or domain CHECKs: `schema.name(argument types)`, each IMMUTABLE or STABLE. Listing one vouches
   * that it only reads (PostgreSQL cannot tell: an IMMUTABLE function may still write through dblink).
   */
  filterFunctions: z.array(FunctionSignatureSchema).max(50).optional(),
  schedule: ScheduleSchema.optional(),
  /** IANA time zone the cron expression is read in. */
  timezone: TimeZoneSchema.default('UTC'),
  enabled: z.boolean().default(true),
  chunking: ChunkingOverridesSchema.optional(),
  /** Partition-aware retention (tables RANGE-partitioned on timeColumn). */
  partitions: PartitionOptionsSchema.prefault({}),
  throttle: ThrottleSchema.optional(),
  /**
   * Let a real run go ahead although its chunk query scans the whole table (no index leads with
   * `timeColumn`). Without it such a run refuses (`MissingIndexError`) unless started with `--force`.
   */
  allowSeqScan: z.boolean().optional(),
});

export const ArchivePolicySchema = PolicyBaseSchema.extend({
  action: z.literal('archive'),
  archive: ArchiveOptionsSchema.prefault({}),
}).strict();

/** VACUUM (ANALYZE) after a purge that removed a large part of the table. */
export const VacuumOptionsSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Vacuum when the run deleted at least this fraction of the table's rows (estimated at start). */
    afterFraction: z.number().gt(0, 'must be greater than 0').max(1, 'must be at most 1').default(0.2),
    /** statement_timeout of the VACUUM; also capped by the Finish step's remaining time. A timeout is recorded, not fatal. */
    timeoutMs: z.int().min(1_000).max(3_600_000).default(600_000),
  })
  .strict();

export const PurgePolicySchema = PolicyBaseSchema.extend({
  action: z.literal('purge'),
  vacuum: VacuumOptionsSchema.prefault({}),
  /**
   * Purge policies on tables that reference this one (ON DELETE NO ACTION / RESTRICT) and run first.
   * Without them the run refuses before deleting anything.
   */
  children: z.array(PolicyNameSchema).min(1, 'omit children or name at least one policy').optional(),
}).strict();

export const PolicySchema = z.discriminatedUnion('action', [ArchivePolicySchema, PurgePolicySchema]);

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

export const LifecycleConfigSchema = z
  .object({
    $schema: z.string().optional(),
    /** An existing database to manage. Omit and set `sandbox: true` to let the stack create a small RDS. */
    database: DatabaseSchema.optional(),
    sandbox: z.boolean().default(false),
    /** Existing bucket name for archives; omit to let the stack create one. */
    bucketName: BucketNameSchema.optional(),
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
    config.policies.forEach((policy, index) => {
      if (policy.action !== 'purge') return;
      policy.children?.forEach((child, childIndex) => {
        const target = config.policies.find((candidate) => candidate.name === child);
        const problem =
          child === policy.name
            ? 'a policy cannot be its own child'
            : !target
              ? `no policy named "${child}"`
              : target.action !== 'purge'
                ? `"${child}" is not a purge policy`
                : undefined;
        if (problem)
          ctx.addIssue({
            code: 'custom',
            path: ['policies', index, 'children', childIndex],
            message: problem,
          });
      });
    });
    // A purge that reaches rows before an archive of the same table has taken them would lose them
    // from the archive: the purge must keep rows at least as long as the archive does.
    config.policies.forEach((purge, index) => {
      if (purge.action !== 'purge' || !purge.enabled) return;
      for (const archive of config.policies) {
        if (archive.action !== 'archive' || !archive.enabled) continue;
        if (sameTable(purge.table, archive.table) && retentionSeconds(purge) <= retentionSeconds(archive)) {
          ctx.addIssue({
            code: 'custom',
            path: ['policies', index, 'retention'],
            message: `${purge.retention} would purge rows of ${purge.table} before archive policy "${archive.name}" (${archive.retention}) archives them; make it longer`,
          });
        }
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
      if (!policy.enabled) return;
      const twin = config.policies
        .slice(0, index)
        .find(
          (other) =>
            other.enabled &&
            other.action === policy.action &&
            sameTable(other.table, policy.table) &&
            (other.filter ?? '') === (policy.filter ?? ''),
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
    config.policies.forEach((policy, index) => {
      if (policy.action !== 'archive') return;
      const problem = objectLockProblem(policy.archive.objectLock, policy.archive.storage.expireAfterDays);
      if (problem)
        ctx.addIssue({
          code: 'custom',
          path: ['policies', index, 'archive', 'objectLock'],
          message: problem,
        });
    });
    // The functions vouched for only widen what a filter may call: without a filter they vouch for nothing.
    config.policies.forEach((policy, index) => {
      if (policy.filterFunctions !== undefined && policy.filter === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['policies', index, 'filterFunctions'],
          message: 'only applies with a filter (the functions it lists are those the filter may call)',
        });
    });
  });

export type LifecycleConfigInput = z.input<typeof LifecycleConfigSchema>;
export type LifecycleConfig = z.output<typeof LifecycleConfigSchema>;
export type Policy = z.output<typeof PolicySchema>;
export type ArchivePolicy = z.output<typeof ArchivePolicySchema>;
export type PurgePolicy = z.output<typeof PurgePolicySchema>;
export type ArchiveOptions = z.output<typeof ArchiveOptionsSchema>;
export type VacuumOptions = z.output<typeof VacuumOptionsSchema>;
export type PartitionOptions = z.output<typeof PartitionOptionsSchema>;

/** Same table as PostgreSQL would resolve it (unquoted parts fold to lower case; no schema means public). */
function sameTable(a: string, b: string): boolean {
  const normalize = (name: string) => {
    try {
      const parts = parseQualifiedName(name).map((p) => (p.quoted ? p.name : p.name.toLowerCase()));
      return (parts.length === 1 ? ['public', ...parts] : parts).join('\u0000');
    } catch {
      return name;
    }
  };
  return normalize(a) === normalize(b);
}

function retentionSeconds(policy: { retention: string }): number {
  try {
    return parseIsoDuration(policy.retention).totalSecondsApprox;
  } catch {
    return Number.NaN;
  }
}
