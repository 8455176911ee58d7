/**
 * The lifecycle ledger (schema `lifecycle`, sql/001_ledger.sql and after), one module per table family:
 * leases, runs, chunks, objects (listed and pending) and partition units. `Ledger` gathers what the steps
 * write and read on one client. Methods that must be atomic with a chunk's DELETE take the chunk
 * transaction's client; the rest run on whatever client is given. All values come back as text (the
 * connection parses nothing), so counts are converted in each module.
 */
import type { Queryable } from '../transactions.ts';
import { type ChunkRecord, recordChunk } from './chunks.ts';
import { acquireLease, type LeaseHolderBackend, releaseLease, renewLease } from './leases.ts';
import {
  type ArchivedObject,
  announcePending,
  forgetPending,
  insertObjects,
  isArchived,
  isStillPending,
  type ListedObject,
  listOrphans,
  listRunObjects,
  markRemoving,
  type ObjectKind,
} from './objects.ts';
import {
  addOrphansRemoved,
  claimStep,
  failRun,
  findRunningRunOfExecution,
  finishRun,
  getMaintenance,
  getRun,
  getRunOrThrow,
  insertRun,
  listRuns,
  mergeRunDetail,
  type NewRun,
  type RunRow,
  recordMaintenance,
  recordTableRowsBefore,
  setExecutionId,
} from './runs.ts';

export type { ChunkRecord } from './chunks.ts';
export * from './leases.ts';
export type { ArchivedObject, ListedObject, ObjectKind } from './objects.ts';
export * from './partition-units.ts';
export * from './ranges.ts';
export type { NewRun, RunRow, RunStatus } from './runs.ts';

export class Ledger {
  constructor(private readonly db: Queryable) {}

  /**
   * Takes the policy's lease, or takes over an expired one (the run that held it is marked failed).
   * Throws LeaseHeldError while another run's lease is live. See leases.ts.
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
  renewLease(policy: string, runId: string, ttlSeconds: number): Promise<void> {
    return renewLease(this.db, policy, runId, ttlSeconds);
  }

  releaseLease(policy: string, runId: string): Promise<void> {
    return releaseLease(this.db, policy, runId);
  }

  insertRun(run: NewRun): Promise<void> {
    return insertRun(this.db, run);
  }

  setExecutionId(runId: string, executionId: string): Promise<void> {
    return setExecutionId(this.db, runId, executionId);
  }

  getRun(runId: string): Promise<RunRow | undefined> {
    return getRun(this.db, runId);
  }

  getRunOrThrow(runId: string): Promise<RunRow> {
    return getRunOrThrow(this.db, runId);
  }

  /** The run a given execution opened and that is still running (a retried Start resumes it). */
  findRunningRunOfExecution(executionId: string): Promise<RunRow | undefined> {
    return findRunningRunOfExecution(this.db, executionId);
  }

  listRuns(options: { policy?: string; limit: number }): Promise<RunRow[]> {
    return listRuns(this.db, options);
  }

  /**
   * Inside the chunk transaction: counts the chunk into the run (row-locking the run, which also
   * serializes chunk commits of one run) and stores the cursor. Returns the chunk's sequence number.
   */
  recordChunk(chunk: ChunkRecord): Promise<number> {
    return recordChunk(this.db, chunk);
  }

  /** Inside the chunk transaction: lists the objects as `kind` and clears their pending marks. */
  insertObjects(
    runId: string,
    chunkSeq: number,
    kind: ObjectKind,
    objects: readonly ArchivedObject[],
  ): Promise<void> {
    return insertObjects(this.db, runId, chunkSeq, kind, objects);
  }

  /** Outside the chunk transaction (autocommit): announces a key before its upload starts. */
  announcePending(bucket: string, key: string, runId: string): Promise<void> {
    return announcePending(this.db, bucket, key, runId);
  }

  /** Announced keys of this policy's runs that are no longer uploading and were never listed. */
  listOrphans(policy: string, finishingRunId: string): Promise<Array<{ bucket: string; key: string }>> {
    return listOrphans(this.db, policy, finishingRunId);
  }

  /** Before an orphan's object is deleted: from now on its uploader may not keep it (see isStillPending). */
  markRemoving(bucket: string, key: string): Promise<void> {
    return markRemoving(this.db, bucket, key);
  }

  /** After an upload: the key is announced and no orphan removal has started on it. */
  isStillPending(bucket: string, key: string): Promise<boolean> {
    return isStillPending(this.db, bucket, key);
  }

  forgetPending(bucket: string, key: string): Promise<void> {
    return forgetPending(this.db, bucket, key);
  }

  isArchived(bucket: string, key: string): Promise<boolean> {
    return isArchived(this.db, bucket, key);
  }

  /** Closes a running run (idempotent for a retried Finish); LeaseLostError when it was failed meanwhile. */
  finishRun(runId: string, status: 'succeeded' | 'dry_run'): Promise<RunRow> {
    return finishRun(this.db, runId, status);
  }

  addOrphansRemoved(runId: string, orphansRemoved: number): Promise<RunRow> {
    return addOrphansRemoved(this.db, runId, orphansRemoved);
  }

  /** Purge: the table's estimated live rows at the start of the run (the VACUUM threshold's base). */
  recordTableRowsBefore(runId: string, rows: number): Promise<void> {
    return recordTableRowsBefore(this.db, runId, rows);
  }

  getMaintenance(
    runId: string,
  ): Promise<{ tableRowsBefore: number | undefined; maintenance: unknown } | undefined> {
    return getMaintenance(this.db, runId);
  }

  recordMaintenance(runId: string, maintenance: object): Promise<void> {
    return recordMaintenance(this.db, runId, maintenance);
  }

  failRun(runId: string, errorName: string, cause: string): Promise<void> {
    return failRun(this.db, runId, errorName, cause);
  }

  mergeRunDetail(runId: string, patch: Readonly<Record<string, unknown>>): Promise<void> {
    return mergeRunDetail(this.db, runId, patch);
  }

  listRunObjects(runId: string, kind: ObjectKind): Promise<ListedObject[]> {
    return listRunObjects(this.db, runId, kind);
  }

  claimStep(runId: string, token: string): Promise<void> {
    return claimStep(this.db, runId, token);
  }
}
