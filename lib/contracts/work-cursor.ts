/**
 * Where a run stands in its work source, persisted in the ledger (`runs.cursor`) and passed from step to
 * step. Each kind says what its values mean, so no reader has to infer it from an array's length:
 *
 * - `keyset`: the time-cutoff source walked in keyset order; `values` are the last done row's order values
 *   as text (the time column, then the key columns or the ctid);
 * - `window`: the time-cutoff source walked in time windows; every eligible row before `end` is done.
 *
 * A new work source (a whole table, a watermark of processed rows, a subject, listed objects) adds its kind.
 */
import { z } from 'zod';

const KeysetCursorSchema = z
  .object({ kind: z.literal('keyset'), values: z.array(z.string().nullable()).min(1) })
  .strict();
const WindowCursorSchema = z.object({ kind: z.literal('window'), end: z.string() }).strict();

export const WorkCursorSchema = z.discriminatedUnion('kind', [KeysetCursorSchema, WindowCursorSchema]);

/**
 * A cursor as stored or sent before cursors had kinds (ledgers migrated from sql/007, executions started by
 * an earlier deployment): a bare array, read as the kind it was. Only purge wrote one value (a window's end);
 * a keyset always has the time (never NULL: a row without one is never eligible), then a key or ctid value.
 */
export const StoredWorkCursorSchema = z.union([
  WorkCursorSchema,
  z
    .tuple([z.string()], z.string().nullable())
    .transform(
      ([time, ...rest]): WorkCursor =>
        rest.length === 0 ? { kind: 'window', end: time } : { kind: 'keyset', values: [time, ...rest] },
    ),
]);

export type WorkCursor = z.output<typeof WorkCursorSchema>;
export type KeysetCursor = z.output<typeof KeysetCursorSchema>;
