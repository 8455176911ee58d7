/**
 * The whole-table source: every row of the tables a policy names, as they are when the run reads them (no
 * cutoff, no filter). It walks tables and their parts (`{ kind: 'table-parts' }` cursors) in the order
 * fixed at Start; the module reads its tables itself (many of them), so the source prepares no one table.
 * Its bound is the run's start, kept as the run's cutoff: the moment a backup is "as of" at the earliest.
 */
import type { Policy } from '../../lib/contracts/policy.ts';
import type { WorkSource } from './work-source.ts';

export function wholeTableSource<P extends Policy>(): WorkSource<P> {
  return {
    kind: 'whole-table',
    bound: (now) => now.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'),
  };
}
