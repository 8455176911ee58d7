/**
 * One unit of a maintain run's work on its own autocommit connection: a table (ANALYZE and/or VACUUM, and the
 * report of its invalid indexes), or one of its indexes (REINDEX CONCURRENTLY). Each reads its figures, decides
 * (decide.ts), runs at most what is due, one statement at a time, and reads the figures again: the entries the
 * chunk's transaction then records. Statements are bounded by `timeoutMs` and the step's deadline, locks by
 * the policy's lockTimeoutMs; one the step has too little time left for waits for the next step.
 */
import type pg from 'pg';
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { Watcher } from '../../adapters/lock-yield.ts';
import { describePace, type VacuumCost, withVacuumCostDelay } from '../../adapters/vacuum-cost.ts';
import type { MaintainOptions } from './contract.ts';
import { decideIndex, decideTable } from './decide.ts';
import {
  type ExactReader,
  type IndexFacts,
  readIndexFacts,
  readTableFacts,
  type TableFacts,
} from './figures.ts';
import {
  cleanupFailedBefore,
  cutShortBefore,
  type MaintenanceEntry,
  type MaintenanceFigures,
  RETRIED_MARK,
} from './ledger.ts';
import {
  CLEANUP_TIMEOUT_MS,
  leftoversOf,
  reindexConcurrently,
  reindexObstacle,
  runBounded,
  type StatementResult,
} from './statements.ts';
import type { MaintainedTable } from './tables.ts';

/** Whether a statement should start now, wait for the next step's whole budget, or never fits in a step. */
export type Fit = 'now' | 'later' | 'never';

export interface WorkContext {
  readonly db: pg.Client;
  readonly runId: string;
  readonly options: MaintainOptions;
  readonly lockTimeoutMs: number;
  /** Milliseconds the step has left for a statement (its deadline less the margin), timeoutMs aside. */
  readonly availableMs: () => number;
  /** Milliseconds a step had for statements when it started (what the next step will have). */
  readonly stepMs: () => number;
  /** Whether a statement of this kind has the time it needs in this step (see chunk.ts). */
  readonly fits: (statement: 'vacuum' | 'analyze' | 'reindex') => Fit;
  /** A second connection, for watching a VACUUM or ANALYZE for lock waiters (adapters/lock-yield.ts). */
  readonly openWatcher: () => Promise<Watcher>;
  readonly exact: ExactReader | undefined;
}

export interface UnitResult {
  readonly entries: MaintenanceEntry[];
  /** Whether a statement ran (the chunk ends there: one maintenance statement per chunk at most). */
  readonly ran: boolean;
  /** The table is gone or not the role's: its indexes are not looked at. */
  readonly skipIndexes?: boolean;
  /** The unit does not exist (an index position past the table's last index). */
  readonly missing?: boolean;
  /**
   * The cursor stays on the unit: the statement it needs was not started for want of time in this step, or
   * was cut short by the step's deadline for the first time; the next step (re)starts it with a whole budget.
   */
  readonly stay?: boolean;
}

/** statement_timeout 0 would mean no limit. */
const MIN_TIMEOUT_MS = 1_000;

const tableFigures = (facts: TableFacts): MaintenanceFigures => ({
  sizeBytes: facts.sizeBytes,
  bloatPercent: facts.bloat?.percent,
  bloatBytes: facts.bloat?.bytes,
  deadTuples: facts.deadTuples,
});

const indexFigures = (facts: IndexFacts): MaintenanceFigures => ({
  sizeBytes: facts.sizeBytes,
  bloatPercent: facts.bloat?.percent,
  bloatBytes: facts.bloat?.bytes,
});

interface Ran {
  readonly result: StatementResult & { readonly cost?: VacuumCost };
  /** The statement_timeout was the step's time left, below timeoutMs. */
  readonly cappedByStep: boolean;
}

/**
 * A timed-out statement whose bound was the step's deadline (not timeoutMs): the first time, the cursor stays
 * for the next step to retry it with a whole budget; the second time it is recorded as timed out and passed.
 */
async function cutShort(
  ctx: WorkContext,
  unit: { table: string; index?: string | undefined; statement: string },
  ran: Ran,
): Promise<{ readonly stay: boolean; readonly note?: string }> {
  if (ran.result.outcome !== 'timed-out' || !ran.cappedByStep) return { stay: false };
  if (await cutShortBefore(ctx.db, ctx.runId, unit))
    return { stay: false, note: "cut short by the step's deadline again (retried once)" };
  return {
    stay: true,
    note: `cut short by the step's deadline, not timeoutMs ${ctx.options.timeoutMs}; ${RETRIED_MARK}`,
  };
}

async function runTableStatement(
  ctx: WorkContext,
  statement: 'vacuum' | 'analyze',
  table: { readonly table: string; readonly oid: string },
): Promise<Ran> {
  const available = ctx.availableMs();
  const result = await withVacuumCostDelay(ctx.db, ctx.options.vacuumCostDelay, table.oid, async (cost) => {
    const ran = await runBounded(ctx.db, sqlOf(statement, table.table, ctx.options), {
      timeoutMs: Math.max(MIN_TIMEOUT_MS, Math.min(ctx.options.timeoutMs, available)),
      lockTimeoutMs: ctx.lockTimeoutMs,
      yieldTo: ctx.openWatcher,
    });
    // A throttled statement that ran out of time says so (the pace is the first lever).
    return ran.outcome === 'timed-out'
      ? { ...ran, cost, error: `${ran.error ?? 'timed out'}${describePace(cost)}` }
      : { ...ran, cost };
  });
  return { result, cappedByStep: available < ctx.options.timeoutMs };
}

/**
 * The table's own work: VACUUM (ANALYZE) when dead tuples reach the threshold, else ANALYZE when due; skips
 * reported. Both skip a table another session holds (SKIP_LOCKED): an autovacuum is never made to give way.
 */
export async function maintainTable(ctx: WorkContext, target: MaintainedTable): Promise<UnitResult> {
  const facts = await readTableFacts(ctx.db, target.oid, ctx.exact);
  if (!facts || facts.table !== target.table) {
    return {
      ran: false,
      skipIndexes: true,
      entries: [
        skipEntry(target.table, undefined, 'dropped or renamed since the run started', { sizeBytes: 0 }),
      ],
    };
  }
  const decision = decideTable(facts, ctx.options);
  if (decision.statement === 'skip')
    return {
      ran: false,
      skipIndexes: true,
      entries: [skipEntry(facts.table, undefined, decision.reason, tableFigures(facts))],
    };
  const reports: MaintenanceEntry[] = reportedIndexes(
    facts,
    await readIndexFacts(ctx.db, facts),
    ctx.options,
  );
  if (decision.statement === 'none') return { ran: false, entries: reports };
  // Too little of the step left for it: the next step starts it (its reports are recorded then).
  if (ctx.fits(decision.statement) !== 'now') return { ran: false, entries: [], stay: true };
  const done: MaintenanceEntry[] = [];
  let statement = decision.statement;
  let reason = decision.reason;
  let before = facts;
  let ran = await runTableStatement(ctx, statement, facts);
  let after = await readTableFacts(ctx.db, facts.oid, ctx.exact);
  // Never analyzed, so no estimate: once the statistics exist, the table may turn out to need a VACUUM too.
  if (
    statement === 'analyze' &&
    ran.result.outcome === 'done' &&
    !ran.result.skippedLocked &&
    after &&
    !facts.bloat
  ) {
    const next = decideTable(after, ctx.options);
    if (next.statement === 'vacuum') {
      done.push(entryOf(facts, after, statement, reason, ran.result));
      if (ctx.fits('vacuum') !== 'now') return { ran: true, entries: done, stay: true };
      statement = 'vacuum';
      reason = next.reason;
      before = after;
      ran = await runTableStatement(ctx, statement, facts);
      after = await readTableFacts(ctx.db, facts.oid, ctx.exact);
    }
  }
  const retry = await cutShort(ctx, { table: facts.table, statement }, ran);
  const result = retry.note
    ? { ...ran.result, error: [ran.result.error, retry.note].filter(Boolean).join(': ') }
    : ran.result;
  done.push(
    result.skippedLocked && facts.kind !== 'p'
      ? {
          ...skipEntry(
            facts.table,
            undefined,
            `locked by another session (autovacuum?): ${statement.toUpperCase()} not run, it was due (${reason})`,
            tableFigures(before),
          ),
          after: after ? tableFigures(after) : undefined,
          durationMs: result.durationMs,
          error: result.skippedLocked.join('; '),
        }
      : entryOf(before, after, statement, reason, {
          ...result,
          // A partitioned table: the partitions another session held were left out.
          error: [result.error, ...(result.skippedLocked ?? [])].filter(Boolean).join('; ') || undefined,
        }),
  );
  if (retry.stay) return { ran: true, entries: done, stay: true };
  return { ran: true, entries: [...reports, ...done] };
}

/**
 * The table's `position`-th index (by name) that maintain may rebuild: REINDEX CONCURRENTLY when due, unless
 * something would likely make it stop midway (and leave a copy that every write keeps up to date).
 */
export async function maintainIndex(
  ctx: WorkContext,
  target: MaintainedTable,
  position: number,
): Promise<UnitResult> {
  const facts = await readTableFacts(ctx.db, target.oid);
  if (!facts || facts.table !== target.table || !facts.canMaintain)
    return { ran: false, entries: [], missing: true };
  // Positions from the cheap reading; the exact one (a whole read of the index) only for this index.
  const listed = rebuildable(await readIndexFacts(ctx.db, facts), ctx.options)[position];
  if (!listed) return { ran: false, entries: [], missing: true };
  const index = ctx.exact
    ? ((await readIndexFacts(ctx.db, facts, ctx.exact, false, listed.name))[0] ?? listed)
    : listed;
  const decision = decideIndex(index, ctx.options);
  if (decision.statement !== 'reindex') return { ran: false, entries: [] };
  const skip = (why: string): UnitResult => ({
    ran: false,
    entries: [
      skipEntry(
        facts.table,
        index.index,
        `REINDEX not run: ${why} (due: ${decision.reason})`,
        indexFigures(index),
      ),
    ],
  });
  const leftovers = await leftoversOf(ctx.db, facts.oid, index.name);
  if (leftovers.length > 0)
    return skip(
      `${leftovers.join(', ')} left by an earlier REINDEX CONCURRENTLY of it; drop it first (DROP INDEX CONCURRENTLY)`,
    );
  if (await cleanupFailedBefore(ctx.db, ctx.runId, facts.table))
    return skip('a REINDEX of this table earlier in this run could not drop its copy; none more in this run');
  const fit = ctx.fits('reindex');
  if (fit === 'later') return { ran: false, entries: [], stay: true };
  if (fit === 'never')
    return skip(
      `a Chunk step has ${Math.round(ctx.stepMs() / 1000)} s for statements, too short for a REINDEX CONCURRENTLY and its clean-up (${CLEANUP_TIMEOUT_MS / 1000} s)`,
    );
  const obstacle = await reindexObstacle(ctx.db, facts.oid, ctx.lockTimeoutMs);
  if (obstacle) return skip(obstacle);
  const qualified = quoteQualified(index.schema, index.name);
  // The clean-up's reserve comes out of the step's time, not out of timeoutMs.
  const available = ctx.availableMs() - CLEANUP_TIMEOUT_MS;
  const result = await reindexConcurrently(ctx.db, facts, qualified, {
    timeoutMs: Math.max(MIN_TIMEOUT_MS, Math.min(ctx.options.timeoutMs, available)),
    lockTimeoutMs: ctx.lockTimeoutMs,
  });
  const retry = await cutShort(
    ctx,
    { table: facts.table, index: index.index, statement: 'reindex' },
    { result, cappedByStep: available < ctx.options.timeoutMs },
  );
  // REINDEX CONCURRENTLY gives the rebuilt index the old name (and a new oid): look it up by name.
  const [after] = await readIndexFacts(ctx.db, facts, ctx.exact, false, index.name);
  return {
    ran: true,
    ...(retry.stay ? { stay: true } : {}),
    entries: [
      {
        table: facts.table,
        index: index.index,
        statement: 'reindex',
        outcome: result.outcome,
        reason: decision.reason,
        method: index.bloat?.method,
        before: indexFigures(index),
        after: after ? indexFigures(after) : undefined,
        durationMs: result.durationMs,
        error: [result.error, retry.note, result.cleanup].filter(Boolean).join('; ') || undefined,
      },
    ],
  };
}

/** The indexes the index positions count: valid btree indexes that are not leftovers (stable by name). */
export function rebuildable(indexes: readonly IndexFacts[], options: MaintainOptions): IndexFacts[] {
  return indexes.filter(
    (i) => decideIndex(i, options).report !== true && i.method === 'btree' && !i.exclusion,
  );
}

/** Invalid and leftover indexes, reported on every run until someone deals with them. */
function reportedIndexes(
  table: TableFacts,
  indexes: readonly IndexFacts[],
  options: MaintainOptions,
): MaintenanceEntry[] {
  return indexes.flatMap((index) => {
    const decision = decideIndex(index, options);
    return decision.report ? [skipEntry(table.table, index.index, decision.reason, indexFigures(index))] : [];
  });
}

/** SKIP_LOCKED: a table another session holds (an autovacuum) is skipped with a WARNING, never waited for. */
function sqlOf(statement: 'vacuum' | 'analyze', table: string, options: MaintainOptions): string {
  if (statement === 'analyze') return `ANALYZE (SKIP_LOCKED) ${table}`;
  return `VACUUM (SKIP_LOCKED, ANALYZE${options.vacuumTruncate ? '' : ', TRUNCATE false'}) ${table}`;
}

function entryOf(
  before: TableFacts,
  after: TableFacts | undefined,
  statement: 'vacuum' | 'analyze',
  reason: string,
  result: {
    outcome: MaintenanceEntry['outcome'];
    durationMs: number;
    error?: string | undefined;
    cost?: VacuumCost | undefined;
  },
): MaintenanceEntry {
  return {
    table: before.table,
    statement,
    outcome: result.outcome,
    reason,
    method: before.bloat?.method ?? after?.bloat?.method,
    before: tableFigures(before),
    after: after ? tableFigures(after) : undefined,
    durationMs: result.durationMs,
    error: result.error,
    cost: result.cost,
  };
}

function skipEntry(
  table: string,
  index: string | undefined,
  reason: string,
  before: MaintenanceFigures,
): MaintenanceEntry {
  return { table, index, statement: 'skip', outcome: 'skipped', reason, before, durationMs: 0 };
}
