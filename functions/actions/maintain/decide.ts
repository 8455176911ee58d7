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

/** VACUUM (ANALYZE) over the bloat threshold, else ANALYZE when the statistics are due, else nothing. */
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
  if (bloat && bloat.percent > options.maxTableBloatPercent) {
    if (facts.sizeBytes >= options.minRelationBytes)
      return {
        statement: 'vacuum',
        reason: `${describeBloat(bloat)} above maxTableBloatPercent ${options.maxTableBloatPercent}`,
      };
  }
  if (analyze) return { statement: 'analyze', reason: analyze };
  if (!bloat) return { statement: 'none', reason: 'no bloat estimate (no column statistics)' };
  if (bloat.percent > options.maxTableBloatPercent)
    return {
      statement: 'none',
      reason: `${describeBloat(bloat)}, but smaller than minRelationBytes (${options.minRelationBytes} bytes)`,
    };
  return { statement: 'none', reason: `${describeBloat(bloat)}, statistics current` };
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
