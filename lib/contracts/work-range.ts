/**
 * One worker's share of a parallel run (a policy's `parallelism` > 1): the eligible rows whose time lies in
 * [`from`, `to`). Start fixes the ranges (disjoint, ordered, together every eligible row) in
 * `lifecycle.run_ranges`; the Distributed Map hands each to one chunk loop, which keeps the range's own cursor
 * there. Bounds are ISO-8601 UTC text like the cutoff and are compared the way the cutoff is (cast to the
 * time column's kind), so every eligible row belongs to exactly one range.
 */
import { z } from 'zod';

export const WorkRangeSchema = z
  .object({
    /** 0-based; range 0 is the oldest and the only one that retires whole partitions. */
    index: z.int().min(0),
    /** Inclusive lower bound; null: from the oldest row. */
    from: z.string().nullable(),
    /** Exclusive upper bound; the last range's is the run's cutoff. */
    to: z.string(),
  })
  .strict();

export type WorkRange = z.output<typeof WorkRangeSchema>;

/** What the Distributed Map hands one worker: the run's state and its range (ItemSelector). */
export const WorkerInputSchema = z.object({ run: z.looseObject({}), range: WorkRangeSchema }).strict();
