/**
 * Where a run's work comes from, and what "done" means for it. An action module names its source; the
 * generic Start resolves the source's target and fixes its bound once per run, the Chunk steps hand the
 * source's cursor (lib/contracts/work-cursor.ts) from chunk to chunk, and the ledger records the source's
 * kind with the run (`runs.source`, sql/008).
 *
 * Implemented: `time-cutoff` (rows older than now - retention, walked by time: archive, purge). The kinds
 * the ledger already takes for the actions that come next: `whole-table` (backup: every row, no cutoff),
 * `unprocessed` (anonymize: rows no run of the policy has processed, so a new run does not redo them),
 * `subject` (erasure and export: the rows of one data subject) and `listed-objects` (restore, archive
 * rewrite: objects the ledger lists, not rows).
 */
import type { Policy } from '../../lib/contracts/policy.ts';
import type { Queryable } from '../adapters/transactions.ts';
import type { PreparedTarget } from '../run/prepare-target.ts';

export type WorkSourceKind = 'time-cutoff' | 'whole-table' | 'unprocessed' | 'subject' | 'listed-objects';

export interface WorkSource<P extends Policy = Policy> {
  readonly kind: WorkSourceKind;
  /**
   * Resolves the one table whose rows the source walks (and the columns it walks by) from the catalog, for
   * each Chunk step; absent for a source over many tables (whole-table), whose module reads its own.
   */
  prepare?(db: Queryable, policy: P): Promise<PreparedTarget>;
  /** The run's bound, fixed once when it starts and kept across steps and continuations. */
  bound(now: Date, policy: P): string;
}

/** A source over one table's rows (time-cutoff): its `prepare` resolves that table. */
export interface TableWorkSource<P extends Policy = Policy> extends WorkSource<P> {
  prepare(db: Queryable, policy: P): Promise<PreparedTarget>;
}
