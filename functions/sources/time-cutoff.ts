/**
 * The time-cutoff source: rows whose time column is older than `now - retention` (and that the filter
 * keeps), walked in time order by keyset (`{ kind: 'keyset' }` cursors) or by time windows
 * (`{ kind: 'window' }`). Archive and purge use it.
 */
import type { Policy } from '../../lib/contracts/policy.ts';
import { computeCutoff } from '../core/cutoff.ts';
import { prepareTarget } from '../run/prepare-target.ts';
import type { WorkSource } from './work-source.ts';

/** The policies this source serves: those with a time column and a retention. */
type TimeCutoffPolicy = Extract<Policy, { timeColumn: string; retention: string }>;

export const timeCutoffSource: WorkSource<TimeCutoffPolicy> = {
  kind: 'time-cutoff',
  prepare: (db, policy) => prepareTarget(db, policy),
  bound: (now, policy) => computeCutoff(now, policy.retention),
};
