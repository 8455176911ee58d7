/**
 * `lifecycle.run_ranges` (sql/017): the work ranges of a parallel run, each with its own cursor. A range's
 * cursor moves in the chunk transaction that commits its work (after `recordChunk`, which locks the run row:
 * every chunk of the run, whatever its range, commits in that order).
 */

import { StoredWorkCursorSchema, type WorkCursor } from '../../../lib/contracts/work-cursor.ts';
import type { WorkRange } from '../../../lib/contracts/work-range.ts';
import { InvalidPayloadError } from '../../core/errors.ts';
import { pgBool } from '../catalog.ts';
import type { Queryable } from '../transactions.ts';

export interface RangeRow extends WorkRange {
  readonly cursor: WorkCursor | null;
  readonly done: boolean;
  readonly rows: number;
  readonly chunks: number;
  /** Chunk steps its workers began. */
  readonly steps: number;
}

/** The run's ranges; with `unitsPending`, range 0 has whole partitions to retire before the others start. */
export async function insertRanges(
  db: Queryable,
  runId: string,
  ranges: readonly WorkRange[],
  unitsPending: boolean,
): Promise<void> {
  await db.query(
    `INSERT INTO lifecycle.run_ranges (run_id, range_no, lower_bound, upper_bound, units_pending)
     SELECT $1, r.range_no, r.lower_bound, r.upper_bound, $5 AND r.range_no = 0
       FROM unnest($2::int[], $3::text[], $4::text[]) AS r (range_no, lower_bound, upper_bound)`,
    [runId, ranges.map((r) => r.index), ranges.map((r) => r.from), ranges.map((r) => r.to), unitsPending],
  );
}

const RANGE_COLUMNS = 'range_no, lower_bound, upper_bound, cursor, done, rows, chunks, steps';

function toRangeRow(runId: string, r: Record<string, string | null>): RangeRow {
  let cursor: WorkCursor | null = null;
  if (r.cursor !== null && r.cursor !== undefined) {
    const parsed = StoredWorkCursorSchema.safeParse(JSON.parse(r.cursor));
    if (!parsed.success)
      throw new InvalidPayloadError(`run ${runId} range ${r.range_no} has a cursor no release wrote`);
    cursor = parsed.data;
  }
  return {
    index: Number(r.range_no),
    from: r.lower_bound ?? null,
    to: r.upper_bound as string,
    cursor,
    done: pgBool(r.done),
    rows: Number(r.rows),
    chunks: Number(r.chunks),
    steps: Number(r.steps),
  };
}

/** The run's ranges in order; empty for a run that has none (parallelism 1). */
export async function listRanges(db: Queryable, runId: string): Promise<RangeRow[]> {
  const { rows } = await db.query(
    `SELECT ${RANGE_COLUMNS} FROM lifecycle.run_ranges WHERE run_id = $1 ORDER BY range_no`,
    [runId],
  );
  return rows.map((row) => toRangeRow(runId, row));
}

export async function getRange(db: Queryable, runId: string, index: number): Promise<RangeRow | undefined> {
  const { rows } = await db.query(
    `SELECT ${RANGE_COLUMNS} FROM lifecycle.run_ranges WHERE run_id = $1 AND range_no = $2`,
    [runId, index],
  );
  return rows[0] ? toRangeRow(runId, rows[0]) : undefined;
}

/** Inside the chunk transaction, after recordChunk: the range's cursor and counts. */
export async function recordRangeChunk(
  db: Queryable,
  runId: string,
  index: number,
  rows: number,
  cursor: WorkCursor | undefined,
): Promise<void> {
  const { rowCount } = await db.query(
    `UPDATE lifecycle.run_ranges
        SET rows = rows + $3, chunks = chunks + 1, cursor = COALESCE($4::jsonb, cursor)
      WHERE run_id = $1 AND range_no = $2 AND NOT done`,
    [runId, index, rows, cursor ? JSON.stringify(cursor) : null],
  );
  if (rowCount !== 1)
    throw new InvalidPayloadError(`run ${runId} has no open range ${index} (done, or never planned)`);
}

/** The range's loop found no eligible row left in it. */
export async function finishRange(db: Queryable, runId: string, index: number): Promise<void> {
  await db.query(
    `UPDATE lifecycle.run_ranges SET done = true, finished_at = coalesce(finished_at, clock_timestamp())
      WHERE run_id = $1 AND range_no = $2`,
    [runId, index],
  );
}

/** A worker's step began (autocommit): the gather tells a map that ran workers from one that ran none. */
export async function countRangeStep(db: Queryable, runId: string, index: number): Promise<void> {
  await db.query('UPDATE lifecycle.run_ranges SET steps = steps + 1 WHERE run_id = $1 AND range_no = $2', [
    runId,
    index,
  ]);
}

/** Whether range 0 still has whole partitions to retire (the other ranges wait for it). */
export async function unitsPending(db: Queryable, runId: string): Promise<boolean> {
  const { rows } = await db.query<{ pending: string }>(
    'SELECT units_pending AS pending FROM lifecycle.run_ranges WHERE run_id = $1 AND range_no = 0',
    [runId],
  );
  return pgBool(rows[0]?.pending);
}

/** Range 0's worker retired every partition it had to. */
export async function finishUnits(db: Queryable, runId: string): Promise<void> {
  await db.query(
    'UPDATE lifecycle.run_ranges SET units_pending = false WHERE run_id = $1 AND range_no = 0 AND units_pending',
    [runId],
  );
}
