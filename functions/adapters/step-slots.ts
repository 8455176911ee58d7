/**
 * The database-wide cap on concurrent Chunk steps (`defaults.throttle.maxConcurrentSteps`): slot k is the session
 * advisory lock (STEP_SLOT_NAMESPACE, k) held by a step's side connection until the step ends (the connection
 * closes; a crashed Lambda's backend ends with it, or at the server's TCP keepalive). The two-int4 key space is
 * PostgreSQL's own, apart from the bigint keys of the migrations and maintain locks.
 */
import { pgBool } from './catalog.ts';
import type { Queryable } from './transactions.ts';

/** 'pglc' as a big-endian int4: the classid of every slot lock. */
export const STEP_SLOT_NAMESPACE = 0x70676c63;

/** Takes a free slot of `max` (trying from a random one, so steps do not all queue on slot 0); undefined when none is free. */
export async function takeStepSlot(db: Queryable, max: number): Promise<number | undefined> {
  const first = Math.floor(Math.random() * max);
  for (let i = 0; i < max; i++) {
    const slot = (first + i) % max;
    const { rows } = await db.query<{ taken: string }>('SELECT pg_try_advisory_lock($1, $2) AS taken', [
      STEP_SLOT_NAMESPACE,
      slot,
    ]);
    if (pgBool(rows[0]?.taken)) return slot;
  }
  return undefined;
}
