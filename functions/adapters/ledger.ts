/**
 * The lifecycle ledger (schema `lifecycle`, see sql/001_ledger.sql). Methods that must be atomic with a
 * chunk's DELETE take the chunk transaction's client; the rest run on whatever client is given.
 * All values come back as text (the connection parses nothing), so counts are converted here.
 */
import { StoredWorkCursorSchema, type WorkCursor } from '../../lib/contracts/work-cursor.ts';
import { LeaseLostError } from '../core/errors.ts';
import type { Queryable } from './catalog.ts';
import { acquireLease, type LeaseHolderBackend, releaseLease, renewLease } from './leases.ts';

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'dry_run';

export interface NewRun {
  readonly runId: string;
  readonly policy: string;
  readonly action: string;
  readonly tableName: string;
  readonly timeColumn: string;
  readonly cutoff: string;
  readonly filter: string | undefined;
  readonly dryRun: boolean;
  readonly trigger: string;
  readonly executionId: string | undefined;
}

export interface RunRow {
  readonly runId: string;
  readonly policy: string;
  readonly action: string;
  readonly status: RunStatus;
  readonly cutoff: string;
  readonly rows: number;
  readonly objects: number;
  readonly bytes: number;
  readonly chunks: number;
  readonly orphansRemoved: number;
  readonly eligibleRows: number | undefined;
  readonly cursor: WorkCursor | null;
  readonly startedAt: string;
  readonly finishedAt: string | undefined;
  readonly durationMs: number;
  readonly errorName: string | undefined;
  readonly errorCause: string | undefined;
  readonly executionId: string | undefined;
}

/**
 * What a listed object is (sql/008): an archive copy is the only copy of rows its chunk deleted; a backup
 * part, an export document or a rewritten archive object is not.
 */
export type ObjectKind = 'archive-copy' | 'backup-part' | 'export' | 'rewrite';

export interface ArchivedObject {
  readonly bucket: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly partition: string;
  readonly minTime: string;
  readonly maxTime: string;
  readonly minKey: ReadonlyArray<string | null> | null;
  readonly maxKey: ReadonlyArray<string | null> | null;
}

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
}

const RUN_COLUMNS = `run_id, policy, action, status, to_char(cutoff AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cutoff,
  rows, objects, bytes, chunks, orphans_removed, eligible_rows, cursor, started_at::text, finished_at::text,
  (extract(epoch FROM (coalesce(finished_at, clock_timestamp()) - started_at)) * 1000)::bigint AS duration_ms,
  error_name, error_cause, execution_id`;

function toRunRow(r: Record<string, string | null>): RunRow {
  return {
    runId: r.run_id as string,
    policy: r.policy as string,
    action: r.action as string,
    status: r.status as RunStatus,
    cutoff: r.cutoff as string,
    rows: Number(r.rows),
    objects: Number(r.objects),
    bytes: Number(r.bytes),
    chunks: Number(r.chunks),
    orphansRemoved: Number(r.orphans_removed),
    eligibleRows: r.eligible_rows === null ? undefined : Number(r.eligible_rows),
    cursor: r.cursor === null ? null : StoredWorkCursorSchema.parse(JSON.parse(r.cursor as string)),
    startedAt: r.started_at as string,
    finishedAt: r.finished_at ?? undefined,
    durationMs: Number(r.duration_ms),
    errorName: r.error_name ?? undefined,
    errorCause: r.error_cause ?? undefined,
    executionId: r.execution_id ?? undefined,
  };
}

export class Ledger {
  constructor(private readonly db: Queryable) {}

  /**
   * Takes the policy's lease, or takes over an expired one (the run that held it is marked failed).
   * Throws LeaseHeldError while another run's lease is live. See adapters/leases.ts.
   */
  async acquireLease(
    policy: string,
    runId: string,
    ttlSeconds: number,
    holder?: LeaseHolderBackend | undefined,
  ): Promise<void> {
    await acquireLease(this.db, { policy, runId, ttlSeconds, holder });
  }

  /** The heartbeat: extends the lease; throws LeaseLostError once another run took it or it was released. */
  async renewLease(policy: string, runId: string, ttlSeconds: number): Promise<void> {
    await renewLease(this.db, policy, runId, ttlSeconds);
  }

  async releaseLease(policy: string, runId: string): Promise<void> {
    await releaseLease(this.db, policy, runId);
  }

  async insertRun(run: NewRun): Promise<void> {
    await this.db.query(
      `INSERT INTO lifecycle.runs (run_id, policy, action, table_name, time_column, cutoff, filter, dry_run, trigger, execution_id)
       VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7, $8, $9, $10)`,
      [
        run.runId,
        run.policy,
        run.action,
        run.tableName,
        run.timeColumn,
        run.cutoff,
        run.filter ?? null,
        run.dryRun,
        run.trigger,
        run.executionId ?? null,
      ],
    );
  }

  async setExecutionId(runId: string, executionId: string): Promise<void> {
    await this.db.query('UPDATE lifecycle.runs SET execution_id = $2 WHERE run_id = $1', [
      runId,
      executionId,
    ]);
  }

  async getRun(runId: string): Promise<RunRow | undefined> {
    const { rows } = await this.db.query(`SELECT ${RUN_COLUMNS} FROM lifecycle.runs WHERE run_id = $1`, [
      runId,
    ]);
    return rows[0] ? toRunRow(rows[0]) : undefined;
  }

  /** The run a given execution opened and that is still running (a retried Start resumes it). */
  async findRunningRunOfExecution(executionId: string): Promise<RunRow | undefined> {
    const { rows } = await this.db.query(
      `SELECT ${RUN_COLUMNS} FROM lifecycle.runs WHERE execution_id = $1 AND status = 'running'`,
      [executionId],
    );
    return rows[0] ? toRunRow(rows[0]) : undefined;
  }

  async listRuns(options: { policy?: string; limit: number }): Promise<RunRow[]> {
    const { rows } = await this.db.query(
      `SELECT ${RUN_COLUMNS} FROM lifecycle.runs WHERE ($1::text IS NULL OR policy = $1)
        ORDER BY started_at DESC LIMIT $2`,
      [options.policy ?? null, options.limit],
    );
    return rows.map(toRunRow);
  }

  /**
   * Inside the chunk transaction: counts the chunk into the run (row-locking the run, which also
   * serializes chunk commits of one run) and stores the cursor. Returns the chunk's sequence number.
   */
  async recordChunk(chunk: ChunkRecord): Promise<number> {
    const { rows } = await this.db.query<{ chunks: string }>(
      `UPDATE lifecycle.runs
          SET rows = rows + $2, bytes = bytes + $3, objects = objects + $4, chunks = chunks + 1,
              cursor = COALESCE($5::jsonb, cursor)
        WHERE run_id = $1 AND status = 'running'
        RETURNING chunks`,
      [
        chunk.runId,
        chunk.rows,
        chunk.bytes,
        chunk.objects,
        chunk.cursor ? JSON.stringify(chunk.cursor) : null,
      ],
    );
    const seq = rows[0] ? Number(rows[0].chunks) : undefined;
    // The fence: a run whose lease was taken over (LeaseExpired) or released (LeaseReleased) is no longer
    // running, so its chunk rolls back here, before COMMIT.
    if (seq === undefined)
      throw new LeaseLostError(
        `run ${chunk.runId} is no longer running (its lease was taken over or released; see lifecycle.runs)`,
      );
    await this.db.query(
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

  /** Inside the chunk transaction: lists the objects and clears their pending marks. */
  /** Lists objects a chunk wrote, in the chunk's transaction, as `kind` (only 'archive-copy' is the rows' only copy). */
  async insertObjects(
    runId: string,
    chunkSeq: number,
    kind: ObjectKind,
    objects: readonly ArchivedObject[],
  ): Promise<void> {
    if (objects.length === 0) return;
    await this.db.query(
      `INSERT INTO lifecycle.archived_objects
         (run_id, chunk_seq, kind, bucket, key, rows, bytes, sha256, partition, min_time, max_time, min_key, max_key)
       SELECT $1, $2, $4, o.bucket, o.key, o.rows, o.bytes, o.sha256, o.partition, o.min_time, o.max_time, o.min_key, o.max_key
         FROM jsonb_to_recordset($3::jsonb) AS o(bucket text, key text, rows integer, bytes bigint, sha256 text,
              partition text, min_time text, max_time text, min_key jsonb, max_key jsonb)`,
      [
        runId,
        chunkSeq,
        JSON.stringify(
          objects.map((o) => ({
            bucket: o.bucket,
            key: o.key,
            rows: o.rows,
            bytes: o.bytes,
            sha256: o.sha256,
            partition: o.partition,
            min_time: o.minTime,
            max_time: o.maxTime,
            min_key: o.minKey,
            max_key: o.maxKey,
          })),
        ),
        kind,
      ],
    );
    await this.db.query(
      'DELETE FROM lifecycle.pending_objects WHERE bucket = $1 AND key = ANY ($2::text[])',
      [objects[0]?.bucket, objects.map((o) => o.key)],
    );
  }

  /** Outside the chunk transaction (autocommit): announces a key before its upload starts. */
  async announcePending(bucket: string, key: string, runId: string): Promise<void> {
    await this.db.query('INSERT INTO lifecycle.pending_objects (bucket, key, run_id) VALUES ($1, $2, $3)', [
      bucket,
      key,
      runId,
    ]);
  }

  /**
   * Orphans: announced keys of this policy's runs that never made it into archived_objects, from runs
   * that are no longer uploading (this run at its finish, or runs that ended).
   */
  async listOrphans(policy: string, finishingRunId: string): Promise<Array<{ bucket: string; key: string }>> {
    const { rows } = await this.db.query<{ bucket: string; key: string }>(
      `SELECT p.bucket, p.key FROM lifecycle.pending_objects p
         JOIN lifecycle.runs r ON r.run_id = p.run_id
        WHERE r.policy = $1 AND (r.run_id = $2 OR r.status <> 'running')
          AND NOT EXISTS (SELECT 1 FROM lifecycle.archived_objects a WHERE a.bucket = p.bucket AND a.key = p.key)
        ORDER BY p.created_at`,
      [policy, finishingRunId],
    );
    return rows;
  }

  /** Before an orphan's object is deleted: from now on its uploader may not keep it (see isStillPending). */
  async markRemoving(bucket: string, key: string): Promise<void> {
    await this.db.query(
      'UPDATE lifecycle.pending_objects SET removing = true WHERE bucket = $1 AND key = $2',
      [bucket, key],
    );
  }

  /** After an upload: the key is announced and no orphan removal has started on it. */
  async isStillPending(bucket: string, key: string): Promise<boolean> {
    const { rows } = await this.db.query(
      'SELECT 1 FROM lifecycle.pending_objects WHERE bucket = $1 AND key = $2 AND NOT removing',
      [bucket, key],
    );
    return rows.length > 0;
  }

  /** Forgets a pending key once its object is gone; refuses (no-op) for a ledger-listed key. */
  async forgetPending(bucket: string, key: string): Promise<void> {
    await this.db.query('DELETE FROM lifecycle.pending_objects WHERE bucket = $1 AND key = $2', [
      bucket,
      key,
    ]);
  }

  async isArchived(bucket: string, key: string): Promise<boolean> {
    const { rows } = await this.db.query(
      'SELECT 1 FROM lifecycle.archived_objects WHERE bucket = $1 AND key = $2',
      [bucket, key],
    );
    return rows.length > 0;
  }

  /**
   * Closes a running run (idempotent for a retried Finish). A run that was failed meanwhile (lease taken
   * over, RecordFailure) is not turned into a success: LeaseLostError.
   */
  async finishRun(runId: string, status: 'succeeded' | 'dry_run'): Promise<RunRow> {
    const { rows } = await this.db.query(
      `UPDATE lifecycle.runs SET status = $2, finished_at = coalesce(finished_at, clock_timestamp())
        WHERE run_id = $1 AND status IN ('running', $2)
        RETURNING ${RUN_COLUMNS}`,
      [runId, status],
    );
    if (!rows[0]) throw new LeaseLostError(`run ${runId} is not running any more (or not in the ledger)`);
    return toRunRow(rows[0]);
  }

  async addOrphansRemoved(runId: string, orphansRemoved: number): Promise<RunRow> {
    const { rows } = await this.db.query(
      `UPDATE lifecycle.runs SET orphans_removed = orphans_removed + $2 WHERE run_id = $1 RETURNING ${RUN_COLUMNS}`,
      [runId, orphansRemoved],
    );
    if (!rows[0]) throw new LeaseLostError(`run ${runId} not found in the ledger`);
    return toRunRow(rows[0]);
  }

  async getRunOrThrow(runId: string): Promise<RunRow> {
    const run = await this.getRun(runId);
    if (!run) throw new LeaseLostError(`run ${runId} not found in the ledger`);
    return run;
  }

  async setEligibleRows(runId: string, eligibleRows: number): Promise<void> {
    await this.db.query('UPDATE lifecycle.runs SET eligible_rows = $2 WHERE run_id = $1', [
      runId,
      eligibleRows,
    ]);
  }

  /** Purge: the table's estimated live rows at the start of the run (the VACUUM threshold's base). */
  async recordTableRowsBefore(runId: string, rows: number): Promise<void> {
    await this.db.query('UPDATE lifecycle.runs SET table_rows_before = $2 WHERE run_id = $1', [runId, rows]);
  }

  /** What the finish step needs to decide on maintenance; `maintenance` is set once it was done. */
  async getMaintenance(
    runId: string,
  ): Promise<{ tableRowsBefore: number | undefined; maintenance: unknown } | undefined> {
    const { rows } = await this.db.query<{ table_rows_before: string | null; maintenance: string | null }>(
      'SELECT table_rows_before, maintenance FROM lifecycle.runs WHERE run_id = $1',
      [runId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      tableRowsBefore: row.table_rows_before === null ? undefined : Number(row.table_rows_before),
      maintenance: row.maintenance === null ? undefined : JSON.parse(row.maintenance),
    };
  }

  async recordMaintenance(runId: string, maintenance: object): Promise<void> {
    await this.db.query('UPDATE lifecycle.runs SET maintenance = $2::jsonb WHERE run_id = $1', [
      runId,
      JSON.stringify(maintenance),
    ]);
  }

  async failRun(runId: string, errorName: string, cause: string): Promise<void> {
    await this.db.query(
      `UPDATE lifecycle.runs SET status = 'failed', finished_at = clock_timestamp(), error_name = $2, error_cause = $3
        WHERE run_id = $1 AND status = 'running'`,
      [runId, errorName, cause.slice(0, 4000)],
    );
  }
}
