/**
 * The metrics of a policy's runs, as the step handlers publish them (functions/commons/observability.ts, EMF)
 * and the stack's dashboard and alarms read them (lib/constructs/dashboard.ts, overdue-alarms.ts). One module
 * so the names cannot drift apart. Namespace `PgLifecycle` (METRICS_NAMESPACE), the one every handler uses.
 */

/**
 * Dimensions of every run metric: Powertools adds `service` (POWERTOOLS_SERVICE_NAME, `pg-lifecycle`); the
 * handlers add the run's `policy` (its name) and `action` (archive, purge, backup, … whatever the policy's
 * action is), both for the whole invocation.
 */
export const RunMetricDimensions = { service: 'service', policy: 'policy', action: 'action' } as const;

/** Metric names of the Chunk, Finish and RecordFailure handlers. */
export const RunMetricNames = {
  /** Rows one committed chunk took (archived, purged, backed up, masked …); Count, one value per chunk. */
  rowsProcessed: 'RowsProcessed',
  /** Bytes one committed chunk wrote to S3; Bytes. */
  bytesWritten: 'BytesWritten',
  /** Objects one committed chunk wrote to S3; Count. */
  objectsWritten: 'ObjectsWritten',
  /** Wall time of one committed chunk, its transaction and uploads; Milliseconds. */
  chunkDuration: 'ChunkDuration',
  /** 1 per Chunk step that ran no further chunk because a replica lagged, else 0; Count. */
  replicaLagWaits: 'ReplicaLagWaits',
  /** 1 per run that succeeded (Finish; dry runs excepted); Count. */
  runSucceeded: 'RunSucceeded',
  /** 1 per execution that failed (RecordFailure, a Start refusal included; dry runs excepted); Count. */
  runFailed: 'RunFailed',
  /** A succeeded run's duration from its start to Finish, over every execution it spanned; Milliseconds. */
  runDuration: 'RunDuration',
  /** A succeeded run's rows (the ledger's total); Count. */
  runRows: 'RunRows',
  /** A succeeded run's chunks; Count. */
  runChunks: 'RunChunks',
  /** A succeeded run's bytes written to S3; Bytes. */
  runBytes: 'RunBytes',
} as const;

/**
 * Published by the hourly compliance check (functions/compliance.ts) per policy with a succeeded run in the
 * ledger: seconds since that run finished, dimensions `service`, `stack`, `policy` and `action`. A policy
 * that never succeeded has no value (its PolicyOverdue says whether that is late).
 */
export const SECONDS_SINCE_LAST_SUCCESS = 'SecondsSinceLastSuccess';
