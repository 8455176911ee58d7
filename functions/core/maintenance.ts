/**
 * Whether a purge run earns a VACUUM (ANALYZE). Pure: the policy's options, the run's deleted rows and the
 * table's estimated rows at the start of the run come in.
 */
import type { VacuumOptions } from '../../lib/contracts/config.ts';

export type VacuumDecision =
  | { readonly vacuum: true }
  | { readonly vacuum: false; readonly reason: 'disabled' | 'no-rows' | 'below-threshold' };

/**
 * Vacuum when the run deleted at least `afterFraction` of the rows the table had. An estimate of 0 (never
 * analyzed, statistics reset) with rows deleted means the estimate is stale: vacuum, which also analyzes.
 */
export function decideVacuum(
  options: Pick<VacuumOptions, 'enabled' | 'afterFraction'>,
  rowsDeleted: number,
  rowsBefore: number,
): VacuumDecision {
  if (!options.enabled) return { vacuum: false, reason: 'disabled' };
  if (rowsDeleted <= 0) return { vacuum: false, reason: 'no-rows' };
  if (rowsDeleted < options.afterFraction * rowsBefore) return { vacuum: false, reason: 'below-threshold' };
  return { vacuum: true };
}

/**
 * The VACUUM's statement_timeout: the policy's, but never past the step's own deadline (a Finish Lambda
 * killed mid-VACUUM would be retried and vacuum again), keeping `marginMs` to record the outcome.
 */
export function vacuumTimeoutMs(
  options: Pick<VacuumOptions, 'timeoutMs'>,
  remainingMs: number,
  marginMs = 10_000,
): number {
  return Math.max(0, Math.min(options.timeoutMs, Math.floor(remainingMs - marginMs)));
}
