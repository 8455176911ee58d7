/**
 * Where a run stands in its work source, persisted in the ledger (`runs.cursor`) and passed from step to
 * step. Each kind says what its values mean, so no reader has to infer it from an array's length:
 *
 * - `keyset`: the time-cutoff source walked in keyset order; `values` are the last done row's order values
 *   as text (the time column, then the key columns or the ctid);
 * - `window`: the time-cutoff source walked in time windows; every eligible row before `end` is done.
 *
 * - `table-parts`: the whole-table source (backup), table by table, part by part.
 *
 * - `subject-requests`: the subject source (erasure, export): `request` is the last request the run processed;
 *   requests leave the pending state as they are processed, so the cursor only records progress.
 *
 * A new work source (listed objects) adds its kind.
 */
import { z } from 'zod';

const KeysetCursorSchema = z
  .object({ kind: z.literal('keyset'), values: z.array(z.string().nullable()).min(1) })
  .strict();
const WindowCursorSchema = z.object({ kind: z.literal('window'), end: z.string() }).strict();
/**
 * `table-parts`: the whole-table source (backup) walking the run's tables in the order fixed at Start;
 * `table` indexes that list, `part` is the next part's number, `from` where the next part begins (its
 * first key, inclusive, or its first heap block), absent for a table's first part.
 */
const TablePartsCursorSchema = z
  .object({
    kind: z.literal('table-parts'),
    table: z.int().min(0),
    part: z.int().min(1),
    from: z
      .union([
        z.object({ key: z.array(z.string()).min(1) }).strict(),
        // `heap`: the heap files the walk started on (a rewrite moves every row to other blocks).
        z.object({ block: z.int().min(0), heap: z.string().optional() }).strict(),
      ])
      .optional(),
  })
  .strict();

const SubjectRequestsCursorSchema = z
  .object({ kind: z.literal('subject-requests'), request: z.uuid() })
  .strict();

export const WorkCursorSchema = z.discriminatedUnion('kind', [
  KeysetCursorSchema,
  WindowCursorSchema,
  TablePartsCursorSchema,
  SubjectRequestsCursorSchema,
]);

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
export type TablePartsCursor = z.output<typeof TablePartsCursorSchema>;
