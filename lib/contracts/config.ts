/**
 * The one configuration schema (`lifecycle.config.json`), shared by the CDK app, the Lambdas and the CLI.
 *
 * Everything a run needs travels in the execution input (see `payloads.ts`), so handlers never read the
 * config file: the schedule and the CLI build the same input from the same validated policy.
 */
import { z } from 'zod';
import { parseQualifiedName } from './identifiers.ts';
import { parseIsoDuration } from './iso-duration.ts';

/** Policy names become S3 prefixes, CloudFormation ids and schedule names: keep them boring. */
const PolicyNameSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,62}$/,
    'must be lowercase letters, digits and dashes, starting with a letter (max 63)',
  );

const QualifiedTableSchema = z.string().superRefine((value, ctx) => {
  try {
    const parts = parseQualifiedName(value);
    if (parts.length > 2) ctx.addIssue({ code: 'custom', message: 'must be "table" or "schema.table"' });
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

const RetentionSchema = z.string().superRefine((value, ctx) => {
  try {
    const duration = parseIsoDuration(value);
    if (duration.totalSecondsApprox <= 0)
      ctx.addIssue({ code: 'custom', message: 'must be longer than zero' });
    // The cutoff must be a date PostgreSQL and JavaScript both take (P3000Y ran past year 0 at run start).
    if (duration.totalSecondsApprox > MAX_RETENTION_YEARS * 365 * 86_400)
      ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_RETENTION_YEARS} years` });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/**
 * EventBridge Scheduler expressions: `cron(min hour dom month dow year)` or `rate(n unit)`.
 * Deeper validation happens at deploy time; here we catch the common slips (five-field Unix cron).
 */
const ScheduleSchema = z.string().superRefine((value, ctx) => {
  const cron = /^cron\((.+)\)$/.exec(value);
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(value);
  if (cron) {
    const fields = (cron[1] ?? '').trim().split(/\s+/);
    if (fields.length !== 6) {
      ctx.addIssue({
        code: 'custom',
        message: `cron needs 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`,
      });
    } else if (fields[2] !== '?' && fields[4] !== '?') {
      ctx.addIssue({ code: 'custom', message: 'cron: one of day-of-month or day-of-week must be "?"' });
    }
  } else if (!rate) {
    ctx.addIssue({ code: 'custom', message: 'must be "cron(...)" or "rate(N minutes|hours|days)"' });
  }
});

/**
 * A SQL boolean expression spliced into the chunk query. It is the one piece of config that is not an
 * identifier, so it is screened here (no statement separators, comments or transaction control) and
 * checked again with EXPLAIN against the real table when a run starts.
 */
export const FilterSchema = z
  .string()
  .min(1)
  .max(2000)
  .superRefine((value, ctx) => {
    const problem = screenFilterExpression(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * The expression with every string literal and quoted identifier replaced by a placeholder, read left to
 * right as PostgreSQL reads it ('…' with '' for a quote, "…" with ""; E'…' is refused).
 * What remains is what the screen may look at: `note <> 'a;b'` is fine, `E'\'' ) OR (true` is not.
 * Plain '…' literals take a backslash literally because every session sets standard_conforming_strings.
 */
function maskQuoted(expression: string): { masked: string } | { problem: string } {
  let masked = '';
  let i = 0;
  while (i < expression.length) {
    const char = expression[i] as string;
    if (char !== "'" && char !== '"') {
      masked += char;
      i++;
      continue;
    }
    // E'…' escape strings are refused: a backslash there escapes a quote, and a literal continued on the
    // next line ('…' after a newline) stays in escape mode. Only an E right before the quote says so; a
    // word ending in e must leave a space (time 'x', not time'x').
    if (char === "'" && /[eE]/.test(masked.at(-1) ?? '')) {
      return { problem: "must not contain E'…' escape strings (write the characters themselves)" };
    }
    // U&'…' and U&"…" spell characters as code points: a function name written U&"dblink_exe\0063" is
    // dblink_exec to PostgreSQL and something else to any text check. Write the characters themselves.
    if (/[uU]&$/.test(masked)) {
      return {
        problem: 'must not contain U&\'…\' or U&"…" Unicode escapes (write the characters themselves)',
      };
    }
    let j = i + 1;
    for (;;) {
      if (j >= expression.length) return { problem: 'has an unterminated quote' };
      const c = expression[j];
      if (c === char && expression[j + 1] === char) {
        j += 2;
      } else if (c === char) {
        break;
      } else {
        j++;
      }
    }
    masked += char === "'" ? ' L ' : ' I ';
    i = j + 1;
  }
  return { masked };
}

/** Returns why a filter expression is refused, or undefined when it passes the static screen. */
export function screenFilterExpression(expression: string): string | undefined {
  const scanned = maskQuoted(expression);
  if ('problem' in scanned) return scanned.problem;
  const stripped = scanned.masked;
  if (stripped.includes(';')) return 'must not contain ";" (a single boolean expression only)';
  if (stripped.includes('--') || stripped.includes('/*')) return 'must not contain SQL comments';
  if (stripped.includes('$')) return 'must not contain "$" (parameters and dollar quoting are not allowed)';
  if (/\buescape\b/i.test(stripped)) return 'must not contain UESCAPE (Unicode escapes are not allowed)';
  if (
    /\b(insert|update|delete|drop|alter|create|truncate|grant|revoke|copy|commit|rollback|vacuum|call|do)\b/i.test(
      stripped,
    )
  ) {
    return 'must be a boolean expression, not a statement';
  }
  let depth = 0;
  for (const char of stripped) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (depth < 0) return 'has unbalanced parentheses';
  }
  if (depth !== 0) return 'has unbalanced parentheses';
  return undefined;
}

const chunkingFields = {
  /** Rows in the first chunk; later chunks adapt towards `targetTransactionMs`. */
  initialRows: z.int().min(1).max(1_000_000),
  minRows: z.int().min(1).max(1_000_000),
  maxRows: z.int().min(1).max(1_000_000),
  /** Target duration of one chunk transaction (lock held from DELETE to COMMIT). */
  targetTransactionMs: z.int().min(50).max(60_000),
  lockTimeoutMs: z.int().min(10).max(60_000),
  statementTimeoutMs: z.int().min(100).max(600_000),
  /** Pause between chunk batches (a Wait state: no transaction or connection is held). */
  pauseSeconds: z.int().min(0).max(3600),
  /**
   * Upper bound of one chunk's row data (as PostgreSQL text) held in memory: rows with large values
   * (jsonb, bytea, long text) get fewer rows per chunk, whatever the row counts say.
   */
  maxChunkBytes: z
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024),
};

/** An RDS DB instance identifier: 1-63 letters, digits and hyphens, starting with a letter. */
const DbInstanceIdentifierSchema = z
  .string()
  .regex(
    /^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$/,
    'must be an RDS DB instance identifier (letters, digits, single hyphens; starts with a letter)',
  );

/**
 * Where the lag comes from instead of `pg_stat_replication`: the CloudWatch metric of each listed replica
 * (the largest of their latest one-minute maxima). `ReplicaLag` (seconds) for RDS read replicas,
 * `AuroraReplicaLag` (milliseconds, converted) for Aurora replicas, which pg_stat_replication does not list.
 */
export const CloudWatchLagSchema = z
  .object({
    metric: z.enum(['ReplicaLag', 'AuroraReplicaLag']).default('ReplicaLag'),
    dbInstanceIdentifiers: z.array(DbInstanceIdentifierSchema).min(1).max(20),
  })
  .strict();

/**
 * Replica-lag guard: before each chunk the chunk step reads the largest replay lag in `pg_stat_replication`
 * (or, with `cloudWatch`, the replicas' CloudWatch lag metric); above the limit it starts no chunk and the
 * state machine waits `checkEverySeconds` before checking again. Reading other sessions' lag in
 * pg_stat_replication needs `pg_monitor` (or `pg_read_all_stats`); without it the lag reads as 0.
 */
export const ThrottleSchema = z
  .object({
    /** Largest replica replay lag (seconds) at which chunks still run; omit to turn the guard off. */
    maxReplicaLagSeconds: z.number().positive().max(86_400).optional(),
    /** Wait between lag checks while a replica is behind. */
    checkEverySeconds: z.int().min(1).max(3600).optional(),
    /** Read the lag from CloudWatch (RDS ReplicaLag / AuroraReplicaLag) instead of pg_stat_replication. */
    cloudWatch: CloudWatchLagSchema.optional(),
  })
  .strict();

/** The guard a run applies: present only when `maxReplicaLagSeconds` is set. */
export const ResolvedThrottleSchema = z
  .object({
    maxReplicaLagSeconds: z.number().positive(),
    checkEverySeconds: z.int().min(1).max(3600),
    cloudWatch: CloudWatchLagSchema.optional(),
  })
  .strict();

/** Per-policy or `defaults` overrides: every field optional, no defaults (they are merged in resolveChunking). */
export const ChunkingOverridesSchema = z.object(chunkingFields).partial().strict();

/** Resolved chunking and transaction bounds, with the built-in defaults. */
export const ChunkingSchema = z
  .object({
    initialRows: chunkingFields.initialRows.default(10_000),
    minRows: chunkingFields.minRows.default(500),
    maxRows: chunkingFields.maxRows.default(50_000),
    targetTransactionMs: chunkingFields.targetTransactionMs.default(2_000),
    lockTimeoutMs: chunkingFields.lockTimeoutMs.default(2_000),
    statementTimeoutMs: chunkingFields.statementTimeoutMs.default(60_000),
    pauseSeconds: chunkingFields.pauseSeconds.default(0),
    maxChunkBytes: chunkingFields.maxChunkBytes.default(64 * 1024 * 1024),
    /** Resolved from `throttle` (policy over defaults); absent when no replica-lag limit is set. */
    throttle: ResolvedThrottleSchema.optional(),
  })
  .strict();

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
  schedule: ScheduleSchema.optional(),
  /** IANA time zone the cron expression is read in. */
  timezone: z.string().default('UTC'),
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
    secretKmsKeyArn: z
      .string()
      .regex(
        /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]+$/,
        'must be a KMS key ARN (arn:aws:kms:…:key/…)',
      )
      .optional(),
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
    if (config.database && config.sandbox) {
      ctx.addIssue({
        code: 'custom',
        path: ['sandbox'],
        message: 'choose either "database" or "sandbox", not both',
      });
    }
  });

export type LifecycleConfigInput = z.input<typeof LifecycleConfigSchema>;
export type LifecycleConfig = z.output<typeof LifecycleConfigSchema>;
export type Policy = z.output<typeof PolicySchema>;
export type ArchivePolicy = z.output<typeof ArchivePolicySchema>;
export type PurgePolicy = z.output<typeof PurgePolicySchema>;
export type Chunking = z.output<typeof ChunkingSchema>;
export type ArchiveOptions = z.output<typeof ArchiveOptionsSchema>;
export type VacuumOptions = z.output<typeof VacuumOptionsSchema>;
export type PartitionOptions = z.output<typeof PartitionOptionsSchema>;
export type Throttle = z.output<typeof ResolvedThrottleSchema>;
export type CloudWatchLag = z.output<typeof CloudWatchLagSchema>;

/**
 * Built-in chunking that differs by action. A purge transaction holds only row locks on old rows and ends
 * at COMMIT (nothing waits on S3), so it is kept short (≤ 250 ms) and its row count is bounded by that
 * target rather than by memory; an archive chunk holds its rows in memory while it uploads them.
 */
export const ACTION_CHUNKING_DEFAULTS: Readonly<Record<Policy['action'], Partial<Chunking>>> = {
  archive: {},
  purge: { targetTransactionMs: 250, maxRows: 500_000 },
};

/**
 * The chunking a policy runs with: built-in defaults (per action, then common), then `defaults.chunking`,
 * then the policy's own.
 */
export function resolveChunking(config: Pick<LifecycleConfig, 'defaults'>, policy: Policy): Chunking {
  const merged = ChunkingSchema.parse({
    ...ACTION_CHUNKING_DEFAULTS[policy.action],
    ...config.defaults.chunking,
    ...policy.chunking,
  });
  if (merged.minRows > merged.maxRows)
    throw new Error(`policy ${policy.name}: chunking.minRows > chunking.maxRows`);
  const throttle = resolveThrottle(config.defaults.throttle, policy.throttle);
  return {
    ...merged,
    initialRows: Math.min(Math.max(merged.initialRows, merged.minRows), merged.maxRows),
    ...(throttle ? { throttle } : {}),
  };
}

/** Default seconds between replica-lag checks while a replica is behind. */
export const DEFAULT_THROTTLE_CHECK_EVERY_SECONDS = 30;

/** The policy's `throttle` over `defaults.throttle`, field by field; undefined when no lag limit is set. */
export function resolveThrottle(
  defaults: z.output<typeof ThrottleSchema> | undefined,
  policy: z.output<typeof ThrottleSchema> | undefined,
): Throttle | undefined {
  const maxReplicaLagSeconds = policy?.maxReplicaLagSeconds ?? defaults?.maxReplicaLagSeconds;
  if (maxReplicaLagSeconds === undefined) return undefined;
  const cloudWatch = policy?.cloudWatch ?? defaults?.cloudWatch;
  return {
    maxReplicaLagSeconds,
    checkEverySeconds:
      policy?.checkEverySeconds ?? defaults?.checkEverySeconds ?? DEFAULT_THROTTLE_CHECK_EVERY_SECONDS,
    ...(cloudWatch ? { cloudWatch } : {}),
  };
}

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
