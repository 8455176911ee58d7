import { parseIsoDuration, subtractDuration } from '../../lib/contracts/iso-duration.ts';

/**
 * The run's cutoff: `now - retention`, computed once when the run starts and carried in the run state,
 * so every chunk of a run (and every continuation execution) uses the same boundary.
 * Returned as ISO-8601 UTC with microseconds, the text form the chunk query casts to timestamptz.
 */
export function computeCutoff(now: Date, retention: string): string {
  const cutoff = subtractDuration(now, parseIsoDuration(retention));
  return cutoff.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
