/**
 * `lifecycle.chunks` (sql/001): one row per committed chunk, written in the chunk's transaction together with
 * the run's totals and cursor.
 */
import type { WorkCursor } from '../../../lib/contracts/work-cursor.ts';
import { LeaseLostError } from '../../core/errors.ts';
import type { Queryable } from '../transactions.ts';

export interface ChunkRecord {
  readonly runId: string;
  readonly rows: number;
  readonly bytes: number;
  readonly objects: number;
  readonly minTime: string | null;
  readonly maxTime: string | null;
  readonly minKey: ReadonlyArray<string | null> | null;
  readonly maxKey: ReadonlyArray<string | null> | null;
  readonly durationMs: number;
  /** Where the run stands after the chunk; undefined keeps the run's cursor (whole-partition units). */
  readonly cursor: WorkCursor | undefined;
  /** The Chunk step's claim (claimStep): the chunk commits only while its step still owns the run. */
  readonly stepToken?: string | undefined;
}

/**
 * Inside the chunk transaction: counts the chunk into the run (row-locking the run, which also
 * serializes chunk commits of one run) and stores the cursor. Returns the chunk's sequence number.
 */
export async function recordChunk(db: Queryable, chunk: ChunkRecord): Promise<number> {
  const { rows } = await db.query<{ chunks: string }>(
    `UPDATE lifecycle.runs
        SET rows = rows + $2, bytes = bytes + $3, objects = objects + $4, chunks = chunks + 1,
            cursor = COALESCE($5::jsonb, cursor)
      WHERE run_id = $1 AND status = 'running' AND ($6::uuid IS NULL OR step_token = $6::uuid)
      RETURNING chunks`,
    [
      chunk.runId,
      chunk.rows,
      chunk.bytes,
      chunk.objects,
      chunk.cursor ? JSON.stringify(chunk.cursor) : null,
      chunk.stepToken ?? null,
    ],
  );
  const seq = rows[0] ? Number(rows[0].chunks) : undefined;
  // The fence: a run whose lease was taken over (LeaseExpired) or released (LeaseReleased) is no longer
  // running, and a newer Chunk step of the run has claimed it: either way this chunk rolls back before COMMIT.
  if (seq === undefined)
    throw new LeaseLostError(
      `run ${chunk.runId} is no longer running, or a newer Chunk step owns it (its lease was taken over or released, or this invocation outlived its step; see lifecycle.runs)`,
    );
  await db.query(
    `INSERT INTO lifecycle.chunks (run_id, seq, rows, bytes, min_time, max_time, min_key, max_key, duration_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9)`,
    [
      chunk.runId,
      seq,
      chunk.rows,
      chunk.bytes,
      chunk.minTime,
      chunk.maxTime,
      chunk.minKey ? JSON.stringify(chunk.minKey) : null,
      chunk.maxKey ? JSON.stringify(chunk.maxKey) : null,
      chunk.durationMs,
    ],
  );
  return seq;
}
