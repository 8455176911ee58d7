/**
 * The subject source: the pending requests of a subjects policy made before the run started (its bound),
 * oldest first, one per chunk (`{ kind: 'subject-requests' }` cursors). A request leaves the pending state in
 * the transaction that processes it, so no request is processed twice, and one made during the run waits for the
 * next run. The module reads its tables itself (many of them), so the source prepares no one table.
 */
import type { Policy } from '../../lib/contracts/policy.ts';
import { wholeTableSource } from './whole-table.ts';
import type { WorkSource } from './work-source.ts';

export function subjectRequestsSource<P extends Policy>(): WorkSource<P> {
  // The same bound as the whole-table source: the run's start, with microseconds as the ledger writes times.
  return { ...wholeTableSource<P>(), kind: 'subject' };
}
