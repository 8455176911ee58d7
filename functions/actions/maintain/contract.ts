/**
 * Maintain's configuration (pure: for the CDK app and `validate`): scheduled ANALYZE, VACUUM and
 * REINDEX CONCURRENTLY of the tables a policy names, each only when the table's statistics or bloat call for
 * it. Nothing it may do takes an ACCESS EXCLUSIVE lock that waits: VACUUM FULL and a plain (blocking)
 * REINDEX are refused here, and every lock it does take is bounded by the policy's `lockTimeoutMs`.
 */
import { z } from 'zod';
import type { ActionContract } from '../../../lib/contracts/action-contract.ts';
import { parseQualifiedName } from '../../../lib/contracts/identifiers.ts';
import {
  catalogName,
  PolicyCommonSchema,
  VacuumCostDelaySchema,
} from '../../../lib/contracts/policy-base.ts';
import { protectedSchemaReason } from '../../../lib/contracts/protected-schemas.ts';
import { parseTablePattern, tablePatternProblems } from '../backup/table-pattern.ts';

/** The schema a pattern names (`schema.*`, `schema.table`; `public` when unqualified), or undefined. */
function patternSchema(value: string): string | undefined {
  try {
    const parts = parseQualifiedName(value.endsWith('.*') ? value.slice(0, -2) : value);
    const first = parts[0];
    if (!first) return undefined;
    return value.endsWith('.*') || parts.length === 2 ? catalogName(first) : 'public';
  } catch {
    return undefined;
  }
}

const TablePatternSchema = z.string().superRefine((value, ctx) => {
  // Checked here first so the message says what maintain refuses (the parser's speaks of backups).
  const schema = patternSchema(value);
  const reason = schema === undefined ? undefined : protectedSchemaReason(schema);
  if (reason) {
    ctx.addIssue({ code: 'custom', message: `no maintenance runs there (${reason})` });
    return;
  }
  try {
    parseTablePattern(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

const percent = (what: string) =>
  z
    .number()
    .min(1, `${what} must be between 1 and 99 (percent of the relation's size)`)
    .max(99, `${what} must be between 1 and 99 (percent of the relation's size)`);

/** Longest maintenance statement: a Lambda runs at most 15 minutes, and the step's own deadline bounds it too. */
export const MAX_MAINTENANCE_TIMEOUT_MS = 900_000;

export const MaintainOptionsSchema = z
  .object({
    /** `schema.*` and exact `table` / `schema.table` names (quoted parts keep case); never the ledger schema. */
    tables: z.array(TablePatternSchema).min(1, 'name at least one table or schema.*'),
    /** Tables (or whole schemas) left out of what `tables` names. */
    exclude: z.array(TablePatternSchema).default([]),
    /** ANALYZE a table whose last ANALYZE (manual or autovacuum's) is older than this many days. */
    analyzeAfterDays: z.number().positive('analyzeAfterDays must be more than 0').max(365).default(7),
    /**
     * ANALYZE a table whose rows changed since its last ANALYZE by at least this share of its rows
     * (pg_stat_user_tables.n_mod_since_analyze ÷ pg_class.reltuples), percent.
     */
    analyzeChangedPercent: percent('analyzeChangedPercent').default(10),
    /**
     * VACUUM (ANALYZE) a table whose dead tuples make up at least this percent of its tuples (or of its bytes,
     * read exactly); free space over it with few dead tuples is reported (VACUUM cannot reclaim it).
     */
    maxTableBloatPercent: percent('maxTableBloatPercent').default(20),
    /** REINDEX INDEX CONCURRENTLY a btree index whose estimated bloat is above this percent. */
    maxIndexBloatPercent: percent('maxIndexBloatPercent').default(30),
    /**
     * `concurrently` (REINDEX INDEX CONCURRENTLY: reads and writes go on) or `skip` (report only). A plain
     * REINDEX holds an ACCESS EXCLUSIVE lock on the index (and blocks writes) for the whole rebuild: refused.
     */
    reindex: z
      .enum(['concurrently', 'skip'], {
        error: () =>
          'must be "concurrently" or "skip": a blocking REINDEX locks out writers for the whole rebuild',
      })
      .default('concurrently'),
    /**
     * Refused when true: VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock (no reads, no writes)
     * for the whole rewrite. pg_repack or pg_squeeze shrink a table without it.
     */
    vacuumFull: z
      .literal(false, {
        error: () =>
          'VACUUM FULL is refused: it holds an ACCESS EXCLUSIVE lock (no reads or writes) for the whole rewrite',
      })
      .optional(),
    /**
     * Let VACUUM return empty pages at the end of a table to the OS. It takes the ACCESS EXCLUSIVE lock for
     * that only if it can without waiting, and lets go as soon as anyone queues for the table; still, the
     * lock is replayed on hot standbys, where it can cancel queries: false keeps VACUUM from truncating.
     */
    vacuumTruncate: z.boolean().default(true),
    /** Throttle of its VACUUMs and ANALYZEs (not REINDEX, which has none): paced like autovacuum by default. */
    vacuumCostDelay: VacuumCostDelaySchema,
    /** Longest run of one ANALYZE, VACUUM or REINDEX (statement_timeout; the step's deadline bounds it too). */
    timeoutMs: z.int().min(1000).max(MAX_MAINTENANCE_TIMEOUT_MS).default(600_000),
    /**
     * Relations (heap or index) smaller than this are never vacuumed or reindexed for bloat: their estimates
     * are noise and the space is small. ANALYZE is decided on statistics alone, whatever the size.
     */
    minRelationBytes: z
      .int()
      .min(0)
      .max(2 ** 50)
      .default(1024 * 1024),
    /**
     * Exact figures from the pgstattuple extension (pgstattuple, pgstatindex) when it is installed and the
     * role may call it, for relations up to this size; larger ones (a full read each) and every relation
     * without it get the statistics-based estimate. 0 never reads them exactly.
     */
    exactBelowBytes: z
      .int()
      .min(0)
      .max(2 ** 50)
      .default(1024 * 1024 * 1024),
  })
  .strict();

export const MaintainPolicySchema = PolicyCommonSchema.omit({
  table: true,
  filter: true,
  filterFunctions: true,
  allowSeqScan: true,
})
  .extend({ action: z.literal('maintain'), maintain: MaintainOptionsSchema })
  .strict();

export type MaintainPolicy = z.output<typeof MaintainPolicySchema>;
export type MaintainOptions = z.output<typeof MaintainOptionsSchema>;

export const maintainContract: ActionContract<MaintainPolicy> = {
  action: 'maintain',
  // Maintenance reads and rewrites storage, never a row's values.
  rowFate: 'kept',
  tablesOf: (policy) => policy.maintain.tables.join(', '),
  // No bucket: its functions get none.
  storage: () => undefined,
  configProblems: (policy) => tablePatternProblems('maintain', policy.maintain),
};
