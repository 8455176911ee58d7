/**
 * One unit of a maintain run's work on its own autocommit connection: a table (ANALYZE and/or VACUUM, and the
 * report of its invalid indexes), or one of its indexes (REINDEX CONCURRENTLY). Each reads its figures, decides
 * (decide.ts), runs at most what is due, one statement at a time, and reads the figures again: the entries the
 * chunk's transaction then records. Statements are bounded by `timeoutMs` and the step's deadline, locks by
 * the policy's lockTimeoutMs.
 */
import type pg from 'pg';
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { MaintainOptions } from './contract.ts';
import { decideIndex, decideTable } from './decide.ts';
import {
  type ExactReader,
  type IndexFacts,
  readIndexFacts,
  readTableFacts,
  type TableFacts,
} from './figures.ts';
import type { MaintenanceEntry, MaintenanceFigures } from './ledger.ts';
import { CLEANUP_TIMEOUT_MS, reindexConcurrently, runBounded, type StatementBounds } from './statements.ts';
import type { MaintainedTable } from './tables.ts';

export interface WorkContext {
  readonly db: pg.Client;
  readonly options: MaintainOptions;
  readonly lockTimeoutMs: number;
  /** Milliseconds a statement started now may take (timeoutMs, bounded by the step's deadline). */
  readonly statementBudgetMs: () => number;
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
}

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

/** The table's own work: VACUUM (ANALYZE) over the bloat threshold, else ANALYZE when due; skips reported. */
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
  const entries: MaintenanceEntry[] = reportedIndexes(
    facts,
    await readIndexFacts(ctx.db, facts),
    ctx.options,
  );
  if (decision.statement === 'none') return { ran: false, entries };
  const bounds: StatementBounds = { timeoutMs: ctx.statementBudgetMs(), lockTimeoutMs: ctx.lockTimeoutMs };
  let statement = decision.statement;
  let reason = decision.reason;
  let result = await runBounded(ctx.db, sqlOf(statement, facts.table, ctx.options), bounds);
  let after = await readTableFacts(ctx.db, facts.oid, ctx.exact);
  // Never analyzed, so no estimate: once the statistics exist, the table may turn out to need a VACUUM too.
  if (statement === 'analyze' && result.outcome === 'done' && after && !facts.bloat) {
    const next = decideTable(after, ctx.options);
    if (next.statement === 'vacuum') {
      entries.push(entryOf(facts, after, statement, reason, result));
      statement = 'vacuum';
      reason = next.reason;
      const figuresBefore = after;
      result = await runBounded(ctx.db, sqlOf(statement, facts.table, ctx.options), {
        ...bounds,
        timeoutMs: ctx.statementBudgetMs(),
      });
      after = await readTableFacts(ctx.db, facts.oid, ctx.exact);
      entries.push(entryOf(figuresBefore, after, statement, reason, result));
      return { ran: true, entries };
    }
  }
  entries.push(entryOf(facts, after, statement, reason, result));
  return { ran: true, entries };
}

/** The table's `position`-th index (by name) that maintain may rebuild: REINDEX CONCURRENTLY when due. */
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
  const qualified = quoteQualified(index.schema, index.name);
  const result = await reindexConcurrently(ctx.db, facts, qualified, {
    timeoutMs: Math.max(1000, ctx.statementBudgetMs() - CLEANUP_TIMEOUT_MS),
    lockTimeoutMs: ctx.lockTimeoutMs,
  });
  // REINDEX CONCURRENTLY gives the rebuilt index the old name (and a new oid): look it up by name.
  const [after] = await readIndexFacts(ctx.db, facts, ctx.exact, false, index.name);
  return {
    ran: true,
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
        error: [result.error, result.cleanup].filter(Boolean).join('; ') || undefined,
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

function sqlOf(statement: 'vacuum' | 'analyze', table: string, options: MaintainOptions): string {
  if (statement === 'analyze') return `ANALYZE ${table}`;
  return `VACUUM (ANALYZE${options.vacuumTruncate ? '' : ', TRUNCATE false'}) ${table}`;
}

function entryOf(
  before: TableFacts,
  after: TableFacts | undefined,
  statement: 'vacuum' | 'analyze',
  reason: string,
  result: { outcome: MaintenanceEntry['outcome']; durationMs: number; error?: string },
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
