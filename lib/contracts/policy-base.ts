/**
 * What every policy has, whatever its action, and the fields of the time-cutoff work source (a time column
 * and a retention) that archive and purge select their rows by. Each action's own schema
 * (functions/actions/<action>/contract.ts) extends these; `config.ts` joins them into the policy union.
 */
import { z } from 'zod';
import { ChunkingOverridesSchema, ThrottleSchema } from './chunking.ts';
import { FilterSchema, FunctionSignatureSchema } from './filter-screen.ts';
import { parseQualifiedName } from './identifiers.ts';
import { parseIsoDuration } from './iso-duration.ts';
import { protectedSchemaReason } from './protected-schemas.ts';
import { ScheduleSchema, TimeZoneSchema } from './schedule.ts';

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
export function catalogName(part: { name: string; quoted: boolean }): string {
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

export const QualifiedTableSchema = z.string().superRefine((value, ctx) => {
  try {
    const parts = parseQualifiedName(value);
    if (parts.length > 2) ctx.addIssue({ code: 'custom', message: 'must be "table" or "schema.table"' });
    const reason = parts.length === 2 && parts[0] ? protectedSchemaReason(catalogName(parts[0])) : undefined;
    if (reason) ctx.addIssue({ code: 'custom', message: `${value}: no policy may touch it (${reason})` });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

export const ColumnNameSchema = z.string().superRefine((value, ctx) => {
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

/** One plain or double-quoted identifier (a schema name). */
const IdentifierSchema = z.string().superRefine((value, ctx) => {
  try {
    if (parseQualifiedName(value).length !== 1)
      ctx.addIssue({ code: 'custom', message: 'must be a single name' });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/** The options every action with partition retention has (archive, purge). */
const partitionOptionsShape = {
  /** Retire whole partitions when the table allows it; false: every row goes through chunks. */
  enabled: z.boolean().default(true),
  /** Detach retired partitions but keep them as tables instead of dropping them (pg_partman retention_keep_table). */
  keepDetached: z.boolean().default(false),
  /** With keepDetached: move detached partitions to this existing schema (pg_partman retention_schema). */
  detachedSchema: IdentifierSchema.optional(),
  /**
   * Purge with `count: "exact"`: how long counting a detached partition's rows (for the ledger) may take
   * (default 10 000). A partition too large to count in that time records the estimate (flagged
   * `rows_estimated`) instead of holding the run (or failing it on statement_timeout). Set without `count`,
   * it means `count: "exact"` (what it meant before `count` existed). Accepted but unused by archive, whose
   * units count every row they archive.
   */
  countTimeoutMs: z.int().min(1).max(600_000).optional(),
};

function partitionOptionsProblems(
  options: { keepDetached: boolean; detachedSchema?: string | undefined },
  ctx: z.RefinementCtx,
): void {
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
}

/**
 * Partition-aware retention, for tables RANGE-partitioned on `timeColumn`: partitions lying wholly before
 * the cutoff are retired as units (archived first by archive policies), detached and dropped instead of
 * going row by row. Only actions whose module has a partition strategy have this field.
 */
export const PartitionOptionsSchema = z
  .object(partitionOptionsShape)
  .strict()
  .superRefine(partitionOptionsProblems);

/**
 * How a purge records the rows of a partition it drops, in lifecycle.partition_units and the run's totals.
 * `estimate` (default): the planner's estimate (pg_class.reltuples ÷ relpages × the heap's pages now; a
 * partition never analyzed gets a sampled ANALYZE first), flagged `rows_estimated`: a unit's cost does not
 * grow with its rows. `exact`: count(*) of the detached partition under its lock (reads every row), within
 * `countTimeoutMs`, else the estimate, flagged.
 */
export const PartitionRowCountSchema = z.enum(['estimate', 'exact']);

/** Purge's partition options: the common ones and how dropped rows are counted. */
export const PurgePartitionOptionsSchema = z
  .object({ ...partitionOptionsShape, count: PartitionRowCountSchema.optional() })
  .strict()
  .superRefine(partitionOptionsProblems);

/** Default of `partitions.countTimeoutMs`. */
const DEFAULT_COUNT_TIMEOUT_MS = 10_000;

/**
 * How a purge unit counts the rows it drops: `count` when given; else `exact` when `countTimeoutMs` is (a
 * config written before `count` existed, when every unit counted exactly, keeps its exact counts); else
 * `estimate`.
 */
export function purgeRowCounting(options: {
  readonly count?: 'estimate' | 'exact' | undefined;
  readonly countTimeoutMs?: number | undefined;
}): { readonly count: 'estimate' | 'exact'; readonly countTimeoutMs: number } {
  return {
    count: options.count ?? (options.countTimeoutMs !== undefined ? 'exact' : 'estimate'),
    countTimeoutMs: options.countTimeoutMs ?? DEFAULT_COUNT_TIMEOUT_MS,
  };
}

/**
 * Cost-based delay of the VACUUMs and ANALYZEs a run issues (PostgreSQL's `vacuum_cost_delay` and
 * `vacuum_cost_limit` for that statement). A manual VACUUM runs unthrottled by default, and one that follows
 * a purge of millions of rows reads and dirties every page as fast as the server allows, next to the
 * application. `autovacuum` (default): the server's `autovacuum_vacuum_cost_delay` and
 * `autovacuum_vacuum_cost_limit` (where -1, the plain settings), the pace the DBA gave autovacuum. `off`: no
 * delay. `{ delayMs, limit }`: these values.
 */
export const VacuumCostDelaySchema = z
  .union(
    [
      z.enum(['autovacuum', 'off']),
      z
        .object({
          delayMs: z
            .number({ error: () => 'delayMs (vacuum_cost_delay, ms) must be a number from 0 to 100' })
            .min(0, 'delayMs must be 0 or more')
            .max(100, 'delayMs is at most 100 (PostgreSQL’s limit for vacuum_cost_delay)'),
          limit: z
            .int({ error: () => 'limit (vacuum_cost_limit) must be an integer from 1 to 10000' })
            .min(1, 'limit must be at least 1')
            .max(10_000, 'limit is at most 10000 (PostgreSQL’s limit for vacuum_cost_limit)'),
        })
        .strict(),
    ],
    {
      error: () =>
        'must be "autovacuum", "off" or { "delayMs": 0–100, "limit": 1–10000 } (vacuum_cost_delay, vacuum_cost_limit)',
    },
  )
  .default('autovacuum');

/** Fields every policy has, whatever its action and work source. */
export const PolicyCommonSchema = z.object({
  name: PolicyNameSchema,
  description: z.string().max(500).optional(),
  /** `table` or `schema.table`; quote parts with double quotes to keep case ("Sales"."Orders"). */
  table: QualifiedTableSchema,
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
  throttle: ThrottleSchema.optional(),
  /**
   * Let a real run go ahead although its chunk query scans the whole table (no index leads with
   * `timeColumn`). Without it such a run refuses (`MissingIndexError`) unless started with `--force`.
   */
  allowSeqScan: z.boolean().optional(),
});

/** Most workers one run may fan out to (Step Functions child executions, each one chunk loop). */
export const MAX_PARALLELISM = 32;

/**
 * Workers of one run (archive, purge): Start splits the eligible rows into this many disjoint time ranges of
 * about equal rows and a Distributed Map runs one chunk loop per range (at most this many at once). 1 (the
 * default) is the single chunk loop.
 */
export const ParallelismSchema = z.int().min(1).max(MAX_PARALLELISM);

/** The time-cutoff work source: rows whose `timeColumn` is older than `retention`, walked in time order. */
export const TimeCutoffSchema = z.object({
  timeColumn: ColumnNameSchema,
  /** ISO-8601 duration: rows with `timeColumn < now - retention` are eligible. */
  retention: RetentionSchema,
});

/**
 * The time-cutoff source with whole-partition retention (archive, purge): partitions wholly before the
 * cutoff are retired as units by actions whose module has a partition strategy.
 */
export const PartitionedTimeCutoffSchema = TimeCutoffSchema.extend({
  partitions: PartitionOptionsSchema.prefault({}),
  parallelism: ParallelismSchema.optional(),
});

/** Same table as PostgreSQL would resolve it (unquoted parts fold to lower case; no schema means public). */
export function sameTable(a: string, b: string): boolean {
  const normalize = (name: string) => {
    try {
      const parts = parseQualifiedName(name).map(catalogName);
      return (parts.length === 1 ? ['public', ...parts] : parts).join('\u0000');
    } catch {
      return name;
    }
  };
  return normalize(a) === normalize(b);
}

/** A retention's length in seconds (approximate for months and years), NaN when it does not parse. */
export function retentionSeconds(policy: { retention: string }): number {
  try {
    return parseIsoDuration(policy.retention).totalSecondsApprox;
  } catch {
    return Number.NaN;
  }
}
export type PartitionOptions = z.output<typeof PartitionOptionsSchema>;
export type PurgePartitionOptions = z.output<typeof PurgePartitionOptionsSchema>;
export type VacuumCostDelay = z.output<typeof VacuumCostDelaySchema>;
