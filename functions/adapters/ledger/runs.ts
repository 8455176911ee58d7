/**
 * `lifecycle.runs` (sql/001): one row per run, its totals, cursor, status and failure. A run that is no
 * longer `running` (finished, failed, or its lease taken over or released) is never written as running again.
 */

import { StoredWorkCursorSchema, type WorkCursor } from '../../../lib/contracts/work-cursor.ts';
import { InvalidPayloadError, LeaseLostError } from '../../core/errors.ts';
import type { WorkSourceKind } from '../../sources/work-source.ts';
import type { Queryable } from '../transactions.ts';

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'dry_run';

export interface NewRun {
  readonly runId: string;
  readonly policy: string;
  readonly action: string;
  readonly tableName: string;
  /** The work source's kind (sql/008): `time-cutoff` runs have a time column and a cutoff. */
  readonly source: WorkSourceKind;
  readonly timeColumn: string | undefined;
  readonly cutoff: string | undefined;
  readonly filter: string | undefined;
  readonly dryRun: boolean;
  readonly trigger: string;
  readonly executionId: string | undefined;
  /** What the run fixes at its start for its steps (runs.detail, sql/010): JSON, never row values. */
  readonly detail?: Readonly<Record<string, unknown>> | undefined;
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
  readonly detail: Readonly<Record<string, unknown>> | undefined;
}

const RUN_COLUMNS = `run_id, policy, action, status, to_char(cutoff AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cutoff,
  rows, objects, bytes, chunks, orphans_removed, eligible_rows, cursor, started_at::text, finished_at::text,
  (extract(epoch FROM (coalesce(finished_at, clock_timestamp()) - started_at)) * 1000)::bigint AS duration_ms,
  error_name, error_cause, execution_id, detail`;

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
    cursor: r.cursor === null ? null : readCursor(r.run_id as string, r.cursor as string),
    startedAt: r.started_at as string,
    finishedAt: r.finished_at ?? undefined,
    durationMs: Number(r.duration_ms),
    errorName: r.error_name ?? undefined,
    errorCause: r.error_cause ?? undefined,
    executionId: r.execution_id ?? undefined,
    detail: r.detail === null || r.detail === undefined ? undefined : JSON.parse(r.detail),
  };
}

export async function insertRun(db: Queryable, run: NewRun): Promise<void> {
  await db.query(
    `INSERT INTO lifecycle.runs (run_id, policy, action, table_name, time_column, cutoff, filter, dry_run, trigger, execution_id, source, detail)
     VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7, $8, $9, $10, $11, $12::jsonb)`,
    [
      run.runId,
      run.policy,
      run.action,
      run.tableName,
      run.timeColumn ?? null,
      run.cutoff ?? null,
      run.filter ?? null,
      run.dryRun,
      run.trigger,
      run.executionId ?? null,
      run.source,
      run.detail === undefined ? null : JSON.stringify(run.detail),
    ],
  );
}

export async function setExecutionId(db: Queryable, runId: string, executionId: string): Promise<void> {
  await db.query('UPDATE lifecycle.runs SET execution_id = $2 WHERE run_id = $1', [runId, executionId]);
}

export async function getRun(db: Queryable, runId: string): Promise<RunRow | undefined> {
  const { rows } = await db.query(`SELECT ${RUN_COLUMNS} FROM lifecycle.runs WHERE run_id = $1`, [runId]);
  return rows[0] ? toRunRow(rows[0]) : undefined;
}

export async function getRunOrThrow(db: Queryable, runId: string): Promise<RunRow> {
  const run = await getRun(db, runId);
  if (!run) throw new LeaseLostError(`run ${runId} not found in the ledger`);
  return run;
}

/** The run a given execution opened and that is still running (a retried Start resumes it). */
export async function findRunningRunOfExecution(
  db: Queryable,
  executionId: string,
): Promise<RunRow | undefined> {
  const { rows } = await db.query(
    `SELECT ${RUN_COLUMNS} FROM lifecycle.runs WHERE execution_id = $1 AND status = 'running'`,
    [executionId],
  );
  return rows[0] ? toRunRow(rows[0]) : undefined;
}

export async function listRuns(
  db: Queryable,
  options: { policy?: string; limit: number },
): Promise<RunRow[]> {
  const { rows } = await db.query(
    `SELECT ${RUN_COLUMNS} FROM lifecycle.runs WHERE ($1::text IS NULL OR policy = $1)
      ORDER BY started_at DESC LIMIT $2`,
    [options.policy ?? null, options.limit],
  );
  return rows.map(toRunRow);
}

/**
 * Closes a running run (idempotent for a retried Finish). A run that was failed meanwhile (lease taken
 * over, RecordFailure) is not turned into a success: LeaseLostError.
 */
export async function finishRun(
  db: Queryable,
  runId: string,
  status: 'succeeded' | 'dry_run',
): Promise<RunRow> {
  const { rows } = await db.query(
    `UPDATE lifecycle.runs SET status = $2, finished_at = coalesce(finished_at, clock_timestamp())
      WHERE run_id = $1 AND status IN ('running', $2)
      RETURNING ${RUN_COLUMNS}`,
    [runId, status],
  );
  if (!rows[0]) throw new LeaseLostError(`run ${runId} is not running any more (or not in the ledger)`);
  return toRunRow(rows[0]);
}

export async function addOrphansRemoved(
  db: Queryable,
  runId: string,
  orphansRemoved: number,
): Promise<RunRow> {
  const { rows } = await db.query(
    `UPDATE lifecycle.runs SET orphans_removed = orphans_removed + $2 WHERE run_id = $1 RETURNING ${RUN_COLUMNS}`,
    [runId, orphansRemoved],
  );
  if (!rows[0]) throw new LeaseLostError(`run ${runId} not found in the ledger`);
  return toRunRow(rows[0]);
}

/** Purge: the table's estimated live rows at the start of the run (the VACUUM threshold's base). */
export async function recordTableRowsBefore(db: Queryable, runId: string, rows: number): Promise<void> {
  await db.query('UPDATE lifecycle.runs SET table_rows_before = $2 WHERE run_id = $1', [runId, rows]);
}

/** What the finish step needs to decide on maintenance; `maintenance` is set once it was done. */
export async function getMaintenance(
  db: Queryable,
  runId: string,
): Promise<{ tableRowsBefore: number | undefined; maintenance: unknown } | undefined> {
  const { rows } = await db.query<{ table_rows_before: string | null; maintenance: string | null }>(
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

export async function recordMaintenance(db: Queryable, runId: string, maintenance: object): Promise<void> {
  await db.query('UPDATE lifecycle.runs SET maintenance = $2::jsonb WHERE run_id = $1', [
    runId,
    JSON.stringify(maintenance),
  ]);
}

export async function failRun(db: Queryable, runId: string, errorName: string, cause: string): Promise<void> {
  await db.query(
    `UPDATE lifecycle.runs SET status = 'failed', finished_at = clock_timestamp(), error_name = $2, error_cause = $3
      WHERE run_id = $1 AND status = 'running'`,
    [runId, errorName, cause.slice(0, 4000)],
  );
}

/** A stored cursor (jsonb as text), of any shape a release wrote; one no release wrote is a named error. */
function readCursor(runId: string, text: string): WorkCursor {
  const parsed = StoredWorkCursorSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new InvalidPayloadError(
      `run ${runId} has a cursor no release of pg-lifecycle wrote; fix or fail the run`,
    );
  }
  return parsed.data;
}

/** Merges `patch` into a run's detail (a backup marked expired, its manifest written). */
export async function mergeRunDetail(
  db: Queryable,
  runId: string,
  patch: Readonly<Record<string, unknown>>,
): Promise<void> {
  await db.query(
    `UPDATE lifecycle.runs SET detail = coalesce(detail, '{}'::jsonb) || $2::jsonb WHERE run_id = $1`,
    [runId, JSON.stringify(patch)],
  );
}

/**
 * A Chunk step's claim on its run: later chunks commit only with this token (recordChunk), so an older
 * invocation still running commits nothing more. Waits for a chunk such an invocation is committing now.
 */
export async function claimStep(db: Queryable, runId: string, token: string): Promise<void> {
  await db.query(`UPDATE lifecycle.runs SET step_token = $2 WHERE run_id = $1 AND status = 'running'`, [
    runId,
    token,
  ]);
}
