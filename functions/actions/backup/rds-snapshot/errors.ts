/**
 * Errors of the RDS snapshot stage. Each is terminal (RecordFailure → RunFailed: the failure alarm fires)
 * except RdsSourceBusyError, which the create and copy tasks retry for an hour, and the transient service
 * errors (TransientServiceError) every task retries.
 */
import { RDS_SOURCE_BUSY_ERROR } from '../../../../lib/contracts/rds-snapshot-payloads.ts';
import { LifecycleError } from '../../../core/errors.ts';

/** RDS reports the snapshot (or its copy) failed, or it is gone. */
export class RdsSnapshotFailedError extends LifecycleError {
  override readonly name = 'RdsSnapshotFailedError';
}

/** The snapshot (or its copy) was not available within RDS_SNAPSHOT_MAX_WAIT_HOURS. */
export class RdsSnapshotTimeoutError extends LifecycleError {
  override readonly name = 'RdsSnapshotTimeoutError';
}

/** A snapshot of the name this run would take exists and was not taken by this run. */
export class RdsSnapshotConflictError extends LifecycleError {
  override readonly name = 'RdsSnapshotConflictError';
}

/** What the config names does not fit the database: no such instance, a copy key missing or refused. */
export class RdsSnapshotConfigError extends LifecycleError {
  override readonly name = 'RdsSnapshotConfigError';
}

/** The region's manual snapshot quota is reached (100 by default). */
export class RdsSnapshotQuotaError extends LifecycleError {
  override readonly name = 'RdsSnapshotQuotaError';
}

/** RDS cannot start the snapshot or copy now (the instance is backing up or being modified): retried later. */
export class RdsSourceBusyError extends LifecycleError {
  override readonly name = RDS_SOURCE_BUSY_ERROR;
}
