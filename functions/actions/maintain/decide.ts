/**
 * What maintain does to a table or an index, and why: pure decisions over the facts `figures.ts` reads.
 * The same decisions serve the plan (what a run started now would do) and the run.
 */
import type { MaintainOptions } from './contract.ts';
import type { Bloat, IndexFacts, TableFacts } from './figures.ts';

/** What an interrupted REINDEX CONCURRENTLY leaves behind (`<index>_ccnew`, `_ccold`, numbered when taken). */
const LEFTOVER_NAME = /_cc(new|old)\d*$/;

export type TableDecision =
  | { readonly statement: 'vacuum' | 'analyze' | 'none'; readonly reason: string }
  | { readonly statement: 'skip'; readonly reason: string };

export type IndexDecision = {
  readonly statement: 'reindex' | 'none' | 'skip';
  readonly reason: string;
  /** Shown to the operator as a problem to fix (an invalid index), not just a reason nothing ran. */
  readonly report?: boolean;
};

export type DecisionOptions = Pick<
  MaintainOptions,
  | 'analyzeAfterDays'
  | 'analyzeChangedPercent'
  | 'maxTableBloatPercent'
  | 'maxIndexBloatPercent'
  | 'reindex'
  | 'minRelationBytes'
>;

export function describeBloat(bloat: Bloat): string {
  return `${bloat.percent.toFixed(1)} % bloat (${bloat.method === 'pgstattuple' ? 'pgstattuple' : 'estimated from statistics'})`;
}

/** Why the table's statistics are due for an ANALYZE, or undefined when they are not. */
export function analyzeDue(facts: TableFacts, options: DecisionOptions): string | undefined {
  const ageDays = facts.analyzedAgeDays;
  if (ageDays === null) return 'never analyzed';
  if (ageDays > options.analyzeAfterDays)
    return `statistics ${ageDays.toFixed(1)} days old (analyzeAfterDays ${options.analyzeAfterDays})`;
  const base = Math.max(facts.reltuples, facts.liveRows, 0);
  if (facts.modsSinceAnalyze > 0) {
    const changed = base > 0 ? (100 * facts.modsSinceAnalyze) / base : 100;
    if (changed >= options.analyzeChangedPercent)
      return `${changed.toFixed(1)} % of rows changed since the last ANALYZE (analyzeChangedPercent ${options.analyzeChangedPercent})`;
  }
  return undefined;
}

/**
 * The share of the table's tuples that are dead, percent: what a VACUUM reclaims. pgstattuple's
 * dead_tuple_percent (of the table's bytes) when read exactly, else n_dead_tup ÷ (n_live_tup + n_dead_tup).
 */
export function deadShare(facts: TableFacts): { readonly percent: number; readonly source: string } {
  const exact = facts.bloat?.method === 'pgstattuple' ? facts.bloat.deadTuplePercent : undefined;
  if (exact !== undefined) return { percent: exact, source: 'pgstattuple' };
  const total = Math.max(0, facts.liveRows) + Math.max(0, facts.deadTuples);
  return {
    percent: total > 0 ? (100 * Math.max(0, facts.deadTuples)) / total : 0,
    source: 'pg_stat_user_tables',
  };
}

function describeDead(dead: { percent: number; source: string }): string {
  return `${dead.percent.toFixed(1)} % dead tuples (${dead.source})`;
}

/**
 * VACUUM (ANALYZE) when dead tuples reach the threshold, else ANALYZE when the statistics are due, else
 * nothing. Bloat that is free space (the estimate over the threshold, few dead tuples) is a finding in the
 * reason, never a VACUUM: VACUUM reclaims dead tuples, not the free space in the middle of a table.
 */
export function decideTable(facts: TableFacts, options: DecisionOptions): TableDecision {
  if (!facts.canMaintain)
    return {
      statement: 'skip',
      reason: `role ${facts.role} does not own ${facts.table} (VACUUM, ANALYZE and REINDEX need the owner or a superuser)`,
    };
  const analyze = analyzeDue(facts, options);
  if (facts.kind === 'p')
    return analyze
      ? { statement: 'analyze', reason: analyze }
      : {
          statement: 'none',
          reason: 'partitioned table: statistics current (its partitions are maintained on their own)',
        };
  const bloat = facts.bloat;
  const dead = deadShare(facts);
  const large = facts.sizeBytes >= options.minRelationBytes;
  if (dead.percent >= options.maxTableBloatPercent && large)
    return {
      statement: 'vacuum',
      reason: `${describeDead(dead)} at or above maxTableBloatPercent ${options.maxTableBloatPercent}${bloat ? `; ${describeBloat(bloat)}` : ''}`,
    };
  const freeSpace =
    bloat && bloat.percent > options.maxTableBloatPercent && large
      ? `${describeBloat(bloat)} above maxTableBloatPercent ${options.maxTableBloatPercent} with ${describeDead(dead)}: free space only VACUUM FULL or pg_repack reclaims, not vacuumed`
      : undefined;
  if (analyze) return { statement: 'analyze', reason: freeSpace ? `${analyze}; ${freeSpace}` : analyze };
  if (freeSpace) return { statement: 'none', reason: freeSpace };
  if (dead.percent >= options.maxTableBloatPercent)
    return {
      statement: 'none',
      reason: `${describeDead(dead)}, but smaller than minRelationBytes (${options.minRelationBytes} bytes)`,
    };
  if (!bloat) return { statement: 'none', reason: 'no bloat estimate (no column statistics)' };
  if (bloat.percent > options.maxTableBloatPercent)
    return {
      statement: 'none',
      reason: `${describeBloat(bloat)}, but smaller than minRelationBytes (${options.minRelationBytes} bytes)`,
    };
  return { statement: 'none', reason: `${describeBloat(bloat)}, statistics current` };
}

/** Whether a decision's reason reports free space a VACUUM cannot reclaim (for the plan's warnings). */
export function reportsFreeSpace(reason: string): boolean {
  return reason.includes('free space only VACUUM FULL or pg_repack reclaims');
}

/** REINDEX CONCURRENTLY over the bloat threshold; invalid and leftover indexes are reported, never touched. */
export function decideIndex(index: IndexFacts, options: DecisionOptions): IndexDecision {
  if (LEFTOVER_NAME.test(index.name))
    return {
      statement: 'skip',
      reason: `${index.valid ? '' : 'invalid, '}named like the leftover of an interrupted REINDEX CONCURRENTLY: check it and drop it (DROP INDEX CONCURRENTLY)`,
      report: true,
    };
  if (!index.valid)
    return {
      statement: 'skip',
      reason:
        'invalid (a failed CREATE INDEX CONCURRENTLY?): it is maintained on every write but never used; rebuild or drop it',
      report: true,
    };
  if (index.method !== 'btree') return { statement: 'none', reason: `${index.method} index: not estimated` };
  if (index.exclusion)
    return {
      statement: 'none',
      reason: 'exclusion constraint index: REINDEX CONCURRENTLY cannot rebuild it',
    };
  const bloat = index.bloat;
  if (!bloat) return { statement: 'none', reason: 'no bloat estimate (no statistics of its columns)' };
  if (bloat.percent <= options.maxIndexBloatPercent)
    return { statement: 'none', reason: describeBloat(bloat) };
  if (index.sizeBytes < options.minRelationBytes)
    return {
      statement: 'none',
      reason: `${describeBloat(bloat)}, but smaller than minRelationBytes (${options.minRelationBytes} bytes)`,
    };
  if (options.reindex === 'skip')
    return {
      statement: 'none',
      reason: `${describeBloat(bloat)} above maxIndexBloatPercent ${options.maxIndexBloatPercent}; reindex is "skip"`,
    };
  return {
    statement: 'reindex',
    reason: `${describeBloat(bloat)} above maxIndexBloatPercent ${options.maxIndexBloatPercent}`,
  };
}
