/**
 * The compliance report (`pg-lifecycle report`): per enabled policy its schedule, the last successful run
 * the ledger holds and whether that is overdue (no success within two schedule periods; for a policy that never
 * succeeded, two periods from when the compliance check first saw it, see {@link isOverdue}); for the time-cutoff
 * policies (archive, purge, anonymize) the rows past retention still present (anonymize: still unmasked);
 * for subjects policies their requests (pending, overdue, failed, completed in the last 30 days).
 *
 * Read only: every count runs in a READ ONLY transaction under the policy's chunking statement_timeout, and
 * one too slow is reported as not counted instead of failing the report. Prints nothing. The one write,
 * {@link recordFirstSeen}, is the scheduled check's (functions/compliance.ts), never the report's.
 */

import type pg from 'pg';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { resolveChunking } from '../../lib/contracts/config.ts';
import { isTimeCutoffPolicy, type Policy, type TimeCutoffPolicy } from '../../lib/contracts/policy.ts';
import { moduleFor } from '../actions/registry.ts';
import { hasSubjectRequests } from '../actions/subjects/requests.ts';
import { pgBool } from '../adapters/catalog.ts';
import { type Queryable, readOnly } from '../adapters/transactions.ts';
import { isTimeout } from '../commons/lock-wait.ts';
import { buildCountEligibleStatement } from '../core/chunk-sql.ts';
import { describeError } from '../core/redact-database-error.ts';
import { schedulePeriod } from '../core/schedule-period.ts';
import { checkFilterCalls } from '../run/prepare-target.ts';

/** How far back `completedRecently` looks. */
export const RECENT_DAYS = 30;
const DAY_MS = 86_400_000;
/**
 * A policy is overdue when its last success is older than this many schedule periods (never succeeded: when it
 * was first seen this many periods ago, see {@link isOverdue}).
 */
export const OVERDUE_PERIODS = 2;

export interface ScheduleStatus {
  /** The schedule expression; null for a policy run only by hand. */
  readonly expression: string | null;
  readonly timezone: string;
  /** One schedule period in seconds; null when manual or when it could not be worked out (`periodUnknown`). */
  readonly periodSeconds: number | null;
  /** Why the period is unknown (a cron this reader cannot follow, or one without two past fire times). */
  readonly periodUnknown?: string;
}

/** Rows past retention still present (anonymize: not yet masked), or why they were not counted. */
export type RowsPastRetention =
  | {
      readonly status: 'counted';
      readonly cutoff: string;
      readonly rows: number;
      readonly oldest: string | null;
    }
  | { readonly status: 'timeout'; readonly cutoff: string; readonly timeoutMs: number }
  | { readonly status: 'error'; readonly cutoff?: string; readonly error: string };

export interface SubjectRequestCounts {
  readonly pending: number;
  /** Past due_at and not completed (pending or failed). */
  readonly overdue: number;
  readonly failed: number;
  /** Completed within the last {@link RECENT_DAYS} days. */
  readonly completedRecently: number;
}

export interface PolicyCompliance {
  readonly policy: string;
  readonly action: Policy['action'];
  readonly enabled: boolean;
  readonly schedule: ScheduleStatus;
  /** finished_at of the newest succeeded (not dry) run, ISO UTC; null when none. */
  readonly lastSuccess: string | null;
  /**
   * When the scheduled compliance check first saw the policy deployed (lifecycle.policy_first_seen, sql/014),
   * ISO UTC; null when it has not (a policy not deployed with a schedule, a stack whose check has not run yet,
   * or a ledger without that table).
   */
  readonly firstSeen: string | null;
  /**
   * No success within {@link OVERDUE_PERIODS} periods; for a policy that never succeeded, see {@link isOverdue}.
   * Never for a policy without a schedule, a disabled one, or one whose period is unknown (reported in
   * `schedule.periodUnknown` instead of guessed).
   */
  readonly overdue: boolean;
  /** Time-cutoff policies only. */
  readonly rowsPastRetention?: RowsPastRetention;
  /** Subjects policies only. */
  readonly requests?: SubjectRequestCounts;
}

export interface ComplianceReport {
  readonly generatedAt: string;
  readonly database: string;
  readonly policies: PolicyCompliance[];
  /** True when a policy or a subject request is overdue, or a request failed: the CLI exits 1. */
  readonly attention: boolean;
}

export interface ComplianceOptions {
  readonly now: Date;
  /** One policy (enabled or not); default every enabled policy of the config. */
  readonly policy?: string;
}

/** @throws Error when `options.policy` names no policy of the config (the caller checks first) */
export async function buildComplianceReport(
  db: pg.ClientBase,
  config: LifecycleConfig,
  options: ComplianceOptions,
): Promise<ComplianceReport> {
  const { now } = options;
  const policies =
    options.policy === undefined
      ? config.policies.filter((p) => p.enabled)
      : config.policies.filter((p) => p.name === options.policy);
  if (options.policy !== undefined && policies.length === 0)
    throw new Error(`no policy "${options.policy}" in the config`);
  const byName = new Map(policies.map((p) => [p.name, p]));
  return assembleReport(db, policies, now, async (entry) => {
    const policy = byName.get(entry.name);
    return policy && isTimeCutoffPolicy(policy)
      ? { rowsPastRetention: await countRowsPastRetention(db, config, policy, now) }
      : {};
  });
}

/**
 * What the overdue part of the report reads of a policy: the scheduled compliance check (functions/compliance.ts)
 * gets only this from its environment, not the tables, filters and chunking the row counts need.
 */
export type PolicyScheduleSummary = Pick<Policy, 'name' | 'action' | 'enabled' | 'schedule' | 'timezone'>;

/**
 * The report without rows past retention: overdue policies and subject requests only. Its queries read the
 * ledger alone (lifecycle.runs, lifecycle.policy_first_seen, lifecycle.subject_requests), never a policy's
 * table, so it is cheap enough to run every hour. Every given policy is reported (enabled or not; a disabled one
 * is never overdue). It writes nothing: the check records first sightings before, with {@link recordFirstSeen}.
 */
export async function buildOverdueReport(
  db: pg.ClientBase,
  policies: readonly PolicyScheduleSummary[],
  options: Pick<ComplianceOptions, 'now'>,
): Promise<ComplianceReport> {
  return assembleReport(db, policies, options.now, async () => ({}));
}

async function assembleReport(
  db: pg.ClientBase,
  policies: readonly PolicyScheduleSummary[],
  now: Date,
  rowCounts: (policy: PolicyScheduleSummary) => Promise<Pick<PolicyCompliance, 'rowsPastRetention'>>,
): Promise<ComplianceReport> {
  const database = await currentDatabase(db);
  const runs = await runTimes(db);
  const sightings = await firstSightings(db);
  const requests = policies.some((p) => p.action === 'subjects')
    ? await subjectRequestCounts(db, now)
    : new Map<string, SubjectRequestCounts>();

  const entries: PolicyCompliance[] = [];
  for (const policy of policies) {
    const schedule = scheduleStatus(policy, now);
    const times = runs.get(policy.name);
    const lastSuccess = times?.lastSuccess ?? null;
    const firstSeen = sightings.get(policy.name) ?? null;
    const overdue = isOverdue({
      enabled: policy.enabled,
      periodSeconds: schedule.periodSeconds,
      lastSuccess,
      firstSeen,
      firstRunStarted: times?.firstStarted ?? null,
      now,
    });
    entries.push({
      policy: policy.name,
      action: policy.action,
      enabled: policy.enabled,
      schedule,
      lastSuccess,
      firstSeen,
      overdue,
      ...(await rowCounts(policy)),
      ...(policy.action === 'subjects' ? { requests: requests.get(policy.name) ?? noRequests() } : {}),
    });
  }
  const attention = entries.some(
    (e) => e.overdue || (e.requests !== undefined && (e.requests.overdue > 0 || e.requests.failed > 0)),
  );
  return { generatedAt: now.toISOString(), database, policies: entries, attention };
}

/** What {@link isOverdue} weighs; times are ISO strings as the report holds them. */
export interface OverdueFacts {
  readonly enabled: boolean;
  /** One schedule period; null when manual or unknown (never overdue then). */
  readonly periodSeconds: number | null;
  /** finished_at of the newest succeeded real run. */
  readonly lastSuccess: string | null;
  /** lifecycle.policy_first_seen.first_seen. */
  readonly firstSeen: string | null;
  /** started_at of the policy's first real (not dry) run, whatever became of it. */
  readonly firstRunStarted: string | null;
  readonly now: Date;
}

/**
 * Whether an enabled, scheduled policy with a known period is overdue:
 *
 * - it has succeeded: when the last success is more than {@link OVERDUE_PERIODS} periods old (as ever);
 * - it never succeeded and the compliance check has seen it (`firstSeen`): when more than that many periods have
 *   passed since the earlier of `firstSeen` and its first real run's start. The grace is for a policy that is
 *   new, not for one that has been failing: a policy whose runs failed since before the check first saw it (a
 *   stack upgraded to the release that records first sightings) is reckoned from its first run, so the upgrade
 *   does not buy it two more periods;
 * - it never succeeded and was never seen (the CLI on a ledger before sql/014, or a policy the deployed stack
 *   does not schedule): overdue, the rule before first sightings were recorded. Nothing says since when it
 *   should have run, and an unknown age must not read as compliant.
 */
export function isOverdue(facts: OverdueFacts): boolean {
  const { periodSeconds } = facts;
  if (!facts.enabled || periodSeconds === null) return false;
  const limitMs = OVERDUE_PERIODS * periodSeconds * 1000;
  const ageMs = (iso: string) => facts.now.getTime() - new Date(iso).getTime();
  if (facts.lastSuccess !== null) return ageMs(facts.lastSuccess) > limitMs;
  if (facts.firstSeen === null) return true;
  const since =
    facts.firstRunStarted !== null && ageMs(facts.firstRunStarted) > ageMs(facts.firstSeen)
      ? facts.firstRunStarted
      : facts.firstSeen;
  return ageMs(since) > limitMs;
}

/** The policy's schedule and its period at `now`. */
export function scheduleStatus(policy: Pick<Policy, 'schedule' | 'timezone'>, now: Date): ScheduleStatus {
  if (policy.schedule === undefined)
    return { expression: null, timezone: policy.timezone, periodSeconds: null };
  const period = schedulePeriod(policy.schedule, policy.timezone, now);
  return period.kind === 'known'
    ? { expression: policy.schedule, timezone: policy.timezone, periodSeconds: period.periodMs / 1000 }
    : {
        expression: policy.schedule,
        timezone: policy.timezone,
        periodSeconds: null,
        periodUnknown: period.reason,
      };
}

const ISO_UTC = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

async function currentDatabase(db: pg.ClientBase): Promise<string> {
  const { rows } = await db.query<{ database: string }>('SELECT current_database()::text AS database');
  return rows[0]?.database ?? '?';
}

interface RunTimes {
  readonly lastSuccess: string | null;
  readonly firstStarted: string | null;
}

/**
 * Per policy with real (not dry) runs: the finished_at of its newest succeeded one and the started_at of its
 * first one, whatever its status (ISO UTC with microseconds).
 */
async function runTimes(db: pg.ClientBase): Promise<Map<string, RunTimes>> {
  const { rows } = await db.query<{ policy: string; finished: string | null; started: string | null }>(
    `SELECT policy,
            to_char(max(finished_at) FILTER (WHERE status = 'succeeded') AT TIME ZONE 'UTC', ${ISO_UTC}) AS finished,
            to_char(min(started_at) AT TIME ZONE 'UTC', ${ISO_UTC}) AS started
       FROM lifecycle.runs
      WHERE NOT dry_run
      GROUP BY policy`,
  );
  return new Map(
    rows.map((r) => [r.policy, { lastSuccess: r.finished ?? null, firstStarted: r.started ?? null }]),
  );
}

/**
 * Per policy, when the compliance check first saw it (ISO UTC with microseconds). None when the ledger
 * predates sql/014 (the CLI migrates nothing) or this role may not read the table: the report then keeps the
 * rule from before (never succeeded is overdue).
 */
async function firstSightings(db: pg.ClientBase): Promise<Map<string, string>> {
  const { rows: readable } = await db.query<{ ok: boolean | string }>(
    `SELECT CASE WHEN to_regclass('lifecycle.policy_first_seen') IS NULL THEN false
                 ELSE has_table_privilege('lifecycle.policy_first_seen', 'SELECT') END AS ok`,
  );
  if (!pgBool(readable[0]?.ok)) return new Map();
  const { rows } = await db.query<{ policy: string; first_seen: string }>(
    `SELECT policy, to_char(first_seen AT TIME ZONE 'UTC', ${ISO_UTC}) AS first_seen
       FROM lifecycle.policy_first_seen`,
  );
  return new Map(rows.map((r) => [r.policy, r.first_seen]));
}

/**
 * Records, for each scheduled policy of `policies` the ledger has not seen yet, that it is seen now
 * (lifecycle.policy_first_seen, sql/014; an earlier sighting is kept). The scheduled compliance check's, for
 * the policies the stack deploys, on every invocation: the report itself writes nothing, and neither does
 * `pg-lifecycle report` (a config on a laptop is not a deployment). Returns the policies recorded by this call.
 */
export async function recordFirstSeen(
  db: Queryable,
  policies: ReadonlyArray<Pick<Policy, 'name' | 'schedule'>>,
): Promise<string[]> {
  const names = policies.filter((p) => p.schedule !== undefined).map((p) => p.name);
  if (names.length === 0) return [];
  const { rows } = await db.query<{ policy: string }>(
    `INSERT INTO lifecycle.policy_first_seen (policy)
     SELECT unnest($1::text[])
     ON CONFLICT (policy) DO NOTHING
     RETURNING policy`,
    [names],
  );
  return rows.map((r) => r.policy).sort();
}

function noRequests(): SubjectRequestCounts {
  return { pending: 0, overdue: 0, failed: 0, completedRecently: 0 };
}

/** Request counts per policy; none when the ledger predates subject requests (no table). */
async function subjectRequestCounts(
  db: pg.ClientBase,
  now: Date,
): Promise<Map<string, SubjectRequestCounts>> {
  if (!(await hasSubjectRequests(db))) return new Map();
  const { rows } = await db.query<{
    policy: string;
    pending: string;
    overdue: string;
    failed: string;
    completed: string;
  }>(
    `SELECT policy,
            count(*) FILTER (WHERE status IN ('pending', 'waiting'))::text AS pending,
            count(*) FILTER (WHERE status <> 'completed' AND due_at < $1::timestamptz)::text AS overdue,
            count(*) FILTER (WHERE status = 'failed')::text AS failed,
            count(*) FILTER (WHERE status = 'completed' AND completed_at >= $2::timestamptz)::text AS completed
       FROM lifecycle.subject_requests
      GROUP BY policy`,
    [now.toISOString(), new Date(now.getTime() - RECENT_DAYS * DAY_MS).toISOString()],
  );
  return new Map(
    rows.map((r) => [
      r.policy,
      {
        pending: Number(r.pending),
        overdue: Number(r.overdue),
        failed: Number(r.failed),
        completedRecently: Number(r.completed),
      },
    ]),
  );
}

/**
 * The plan's count of eligible rows at a cutoff fixed from `now`, over the target the action's source
 * prepares (anonymize: only rows not yet masked). The filter's functions are checked first, as before any
 * run evaluates it on rows.
 */
async function countRowsPastRetention(
  db: pg.ClientBase,
  config: LifecycleConfig,
  policy: TimeCutoffPolicy,
  now: Date,
): Promise<RowsPastRetention> {
  const source = moduleFor(policy).source;
  let cutoff: string | undefined;
  try {
    cutoff = source.bound(now, policy);
    if (!source.prepare) return { status: 'error', cutoff, error: 'the action has no single-table source' };
    const timeoutMs = resolveChunking(config, policy).statementTimeoutMs;
    const prepared = await source.prepare(db, policy);
    await checkFilterCalls(db, prepared, policy.filterFunctions);
    const fixedCutoff = cutoff;
    try {
      const counted = await readOnly(db, timeoutMs, () =>
        db.query<{ rows: string | number; oldest: string | null }>(
          buildCountEligibleStatement(prepared.target),
          [fixedCutoff],
        ),
      );
      const row = counted.rows[0];
      return { status: 'counted', cutoff, rows: Number(row?.rows ?? 0), oldest: row?.oldest ?? null };
    } catch (error) {
      if (isTimeout(error)) return { status: 'timeout', cutoff, timeoutMs };
      throw error;
    }
  } catch (error) {
    // A missing table, a refused filter: said for this policy, the rest of the report goes on.
    const name = (error as Error).name ?? 'Error';
    return { status: 'error', ...(cutoff ? { cutoff } : {}), error: `${name}: ${describeError(error)}` };
  }
}
