/**
 * Backup's configuration (pure: for the CDK app and `validate`). Not registered as an action yet: its
 * module (a whole-table work source, parts through the chunk loop, the manifest) comes with it. A backup
 * names tables by pattern and keeps rows; its objects live under `backup/<policy>/` and expire after
 * `retentionDays`.
 */
import { z } from 'zod';
import type { ActionContract, ConfigProblem } from '../../../lib/contracts/action-contract.ts';
import { PolicyCommonSchema } from '../../../lib/contracts/policy-base.ts';
import { ScheduleSchema, TimeZoneSchema } from '../../../lib/contracts/schedule.ts';
import { RdsSnapshotOptionsSchema, rdsSnapshotNameProblem } from './rds-snapshot/contract.ts';
import { parseTablePattern, tablePatternProblems } from './table-pattern.ts';

const TablePatternSchema = z.string().superRefine((value, ctx) => {
  try {
    parseTablePattern(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/** Levels each codec takes here: gzip's 1–9; zstd's 1–19 (20–22 need far more memory to read back). */
const LEVELS = { gzip: { min: 1, max: 9, default: 6 }, zstd: { min: 1, max: 19, default: 3 } } as const;

export const BackupOptionsSchema = z
  .object({
    /** `schema.*` and exact names; a partitioned table comes with its partitions. */
    tables: z.array(TablePatternSchema).min(1, 'name at least one table or schema.*'),
    /** Tables (or whole schemas) left out of what `tables` names. */
    exclude: z.array(TablePatternSchema).default([]),
    /**
     * gzip always; zstd where the runtime's node:zlib has it (Node 22.15+, the Lambdas' Node 24). A run on a
     * Node without it refuses before writing anything; `validate` cannot tell which Node will run it.
     */
    compression: z.enum(['gzip', 'zstd']).default('gzip'),
    /** Compression level (gzip 1–9, default 6; zstd 1–19, default 3). */
    level: z.int().optional(),
    /** Backups older than this are expired (S3 lifecycle rule on the prefix; the ledger marks them). */
    retentionDays: z.int().min(1).max(3650).default(30),
    /**
     * Parts written at once, each on its own connection under the Chunk step's one exported snapshot (not a
     * Map state: separate invocations cannot share a snapshot).
     */
    maxConcurrency: z.int().min(1).max(16).default(2),
    /**
     * COPY text per part, about (MiB; sized from the table's statistics or a sample of rows): bounds each
     * upload, what a retry redoes and each restore transaction's share. At most 1024: a part must be written
     * well within one Chunk invocation (5 minutes) even at 10 MB/s, or no batch could ever finish.
     */
    partMiB: z.int().min(1).max(1024).default(256),
    /** A scheduled restore drill of the latest backup into a scratch schema. */
    drill: z
      .object({ schedule: ScheduleSchema, timezone: TimeZoneSchema.default('UTC') })
      .strict()
      .optional(),
    /** A manual RDS/Aurora snapshot after each backup run, optionally copied cross-region, with its own retention. */
    rdsSnapshot: RdsSnapshotOptionsSchema.optional(),
  })
  .strict()
  .superRefine((options, ctx) => {
    const levels = LEVELS[options.compression];
    if (options.level !== undefined && (options.level < levels.min || options.level > levels.max)) {
      ctx.addIssue({
        code: 'custom',
        path: ['level'],
        message: `${options.compression} takes levels ${levels.min}–${levels.max}`,
      });
    }
  })
  .transform((options) => ({ ...options, level: options.level ?? LEVELS[options.compression].default }));

export const BackupPolicySchema = PolicyCommonSchema.omit({
  table: true,
  filter: true,
  filterFunctions: true,
  allowSeqScan: true,
})
  .extend({ action: z.literal('backup'), backup: BackupOptionsSchema })
  .strict();

export type BackupPolicy = z.output<typeof BackupPolicySchema>;
export type BackupOptions = z.output<typeof BackupOptionsSchema>;

/** Key prefix of a backup policy's objects. */
export function backupPrefix(policyName: string): string {
  return `backup/${policyName}/`;
}

/** Problems of the patterns among themselves: one listed twice, or exclusions that leave nothing. */
export function backupPatternProblems(options: Pick<BackupOptions, 'tables' | 'exclude'>): ConfigProblem[] {
  return tablePatternProblems('backup', options);
}

export const backupContract: ActionContract<BackupPolicy> = {
  action: 'backup',
  rowFate: 'kept',
  tablesOf: (policy) => policy.backup.tables.join(', '),
  storage: (policy) => ({
    prefix: backupPrefix(policy.name),
    tiers: { transitions: [], expireAfterDays: policy.backup.retentionDays },
    objectLock: false,
    glueTable: false,
    finishWrites: true,
  }),
  configProblems: (policy) => [...backupPatternProblems(policy.backup), ...rdsSnapshotProblems(policy)],
  rdsSnapshot: (policy) => policy.backup.rdsSnapshot,
  restoreDrill: (policy) =>
    policy.backup.drill ? { ...policy.backup.drill, partMiB: policy.backup.partMiB } : undefined,
};

/** A policy name that cannot prefix RDS snapshot identifiers (`a--b`, `nightly-`) with rdsSnapshot. */
function rdsSnapshotProblems(policy: BackupPolicy): ConfigProblem[] {
  const problem = policy.backup.rdsSnapshot ? rdsSnapshotNameProblem(policy.name) : undefined;
  return problem ? [{ path: ['name'], message: problem }] : [];
}
