/**
 * The unprocessed source: the time-cutoff source's rows (older than `now - retention`, kept by the filter),
 * less those the action has already processed — a predicate the module derives from the catalog (anonymize:
 * a masked column not yet in its masked form, or the marker column unset). Rows an update leaves in place
 * drop out of it once processed, so neither the run (its keyset cursor moved past them) nor a later run
 * visits them again as work: a re-run updates nothing.
 */
import type { TimeCutoffPolicy } from '../../lib/contracts/policy.ts';
import type { Queryable } from '../adapters/transactions.ts';
import { computeCutoff } from '../core/cutoff.ts';
import { type PreparedTarget, prepareTarget } from '../run/prepare-target.ts';
import type { TableWorkSource } from './work-source.ts';

/** The predicate of rows still to process, from the resolved table (catalog names, never user text). */
export type PendingPredicate<P> = (db: Queryable, policy: P, prepared: PreparedTarget) => Promise<string>;

export function unprocessedSource<P extends TimeCutoffPolicy>(
  pending: PendingPredicate<P>,
): TableWorkSource<P> {
  return {
    kind: 'unprocessed',
    async prepare(db, policy) {
      const prepared = await prepareTarget(db, policy);
      return { ...prepared, target: { ...prepared.target, pending: await pending(db, policy, prepared) } };
    },
    bound: (now, policy) => computeCutoff(now, policy.retention),
  };
}
