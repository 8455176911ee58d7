/**
 * The RDS snapshot stage's task steps. Each does one RDS call or a few and returns at once; the state machine
 * waits between checks (Wait states), so no Lambda ever sleeps for RDS.
 *
 * - create: a manual snapshot `pg-lifecycle-<policy>-<yyyymmddhhmmss>`, tagged with policy, stack and run. A
 *   retried create (its first response lost) adopts the snapshot tagged with its run instead of taking a second.
 * - check / check-copy: RDS's status; `available` ends the wait, a failed one fails the run, and so does a wait
 *   past RDS_SNAPSHOT_MAX_WAIT_HOURS.
 * - copy: the same name in copyToRegion, encrypted with copyKmsKeyArn.
 * - prune: this policy's snapshots (its prefix + 14 digits, manual, tagged with its policy and stack) whose
 *   name time is older than retentionDays, in the source region and copyToRegion; never the one just taken,
 *   and only once it is available, so a policy whose snapshots fail never loses its older ones.
 */
import {
  type PrunedSnapshot,
  RDS_SNAPSHOT_AVAILABLE,
  RDS_SNAPSHOT_FIRST_WAIT_SECONDS,
  RDS_SNAPSHOT_MAX_WAIT_HOURS,
  RDS_SNAPSHOT_MAX_WAIT_SECONDS,
  type RdsSnapshotProgress,
  type RdsSnapshotRef,
} from '../../../../lib/contracts/rds-snapshot-payloads.ts';
import type { StepLogger } from '../../../run/dependencies.ts';
import {
  RDS_SNAPSHOT_TAGS,
  type RdsSnapshotSettings,
  rdsSnapshotName,
  rdsSnapshotNameTime,
} from './contract.ts';
import {
  RdsSnapshotConfigError,
  RdsSnapshotConflictError,
  RdsSnapshotFailedError,
  RdsSnapshotQuotaError,
  RdsSnapshotTimeoutError,
  RdsSourceBusyError,
} from './errors.ts';
import { type RdsClientFactory, RdsSnapshotApi, rdsErrorName, type SnapshotRecord } from './rds-api.ts';

export interface RdsSnapshotStepDependencies {
  /** What the stack deployed (the database, the prefix, the copy region and key, the retention). */
  readonly settings: RdsSnapshotSettings;
  /** The region of the database and its snapshots (the Lambda's own). */
  readonly sourceRegion: string;
  readonly rds: RdsClientFactory;
  now(): Date;
  readonly log: StepLogger;
}

/** RDS statuses after which a snapshot will never become available. */
const FAILED_STATUSES = new Set(['failed', 'error', 'deleted', 'deleting']);

function isFailedStatus(status: string): boolean {
  return FAILED_STATUSES.has(status) || status.startsWith('incompatible');
}

function api(deps: RdsSnapshotStepDependencies, region: string): RdsSnapshotApi {
  return new RdsSnapshotApi(deps.rds(region), deps.settings.kind, region);
}

function ref(record: SnapshotRecord): RdsSnapshotRef {
  return {
    identifier: record.identifier,
    arn: record.arn,
    region: record.region,
    status: record.status,
    ...(record.percentProgress !== undefined ? { percentProgress: record.percentProgress } : {}),
    encrypted: record.encrypted,
  };
}

function tagsOf(settings: RdsSnapshotSettings, runId: string, sourceArn?: string): Record<string, string> {
  return {
    [RDS_SNAPSHOT_TAGS.policy]: settings.policy,
    [RDS_SNAPSHOT_TAGS.stack]: settings.stack,
    [RDS_SNAPSHOT_TAGS.runId]: runId,
    ...(sourceArn ? { [RDS_SNAPSHOT_TAGS.source]: sourceArn } : {}),
  };
}

/** One of this policy's snapshots: its exact name pattern, manual, tagged with its policy and stack. */
function isPolicySnapshot(settings: RdsSnapshotSettings, record: SnapshotRecord): boolean {
  return (
    rdsSnapshotNameTime(settings.prefix, record.identifier) !== undefined &&
    record.snapshotType === 'manual' &&
    record.tags[RDS_SNAPSHOT_TAGS.policy] === settings.policy &&
    record.tags[RDS_SNAPSHOT_TAGS.stack] === settings.stack
  );
}

const takenBy = (record: SnapshotRecord, runId: string) => record.tags[RDS_SNAPSHOT_TAGS.runId] === runId;

/** What a wait starts with. */
function waiting(
  deps: RdsSnapshotStepDependencies,
): Pick<RdsSnapshotProgress, 'waitSeconds' | 'checks' | 'waitingSince'> {
  return { waitSeconds: RDS_SNAPSHOT_FIRST_WAIT_SECONDS, checks: 0, waitingSince: deps.now().toISOString() };
}

/** Errors RDS answers a create or copy with that mean "not now" or "never" rather than a broken call. */
function mapStartError(error: unknown, settings: RdsSnapshotSettings, what: string, region: string): unknown {
  const name = rdsErrorName(error);
  const message = (error as Error).message;
  switch (name) {
    case 'InvalidDBInstanceStateFault':
    case 'InvalidDBClusterStateFault':
    case 'InvalidDBSnapshotStateFault':
    case 'InvalidDBClusterSnapshotStateFault':
      return new RdsSourceBusyError(`${what}: RDS cannot start it now (${message}); retried`, {
        policy: settings.policy,
        cause: error,
      });
    case 'SnapshotQuotaExceededFault':
      return new RdsSnapshotQuotaError(
        `${what}: the manual snapshot quota of ${region} is reached (${message}); lower ` +
          'backup.rdsSnapshot.retentionDays or raise the quota',
        { policy: settings.policy, cause: error },
      );
    case 'DBInstanceNotFoundFault':
    case 'DBClusterNotFoundFault':
      return new RdsSnapshotConfigError(
        `${what}: no ${settings.kind === 'instance' ? 'DB instance' : 'Aurora cluster'} ${settings.source} ` +
          `in ${region} (backup.rdsSnapshot)`,
        { policy: settings.policy, cause: error },
      );
    case 'KMSKeyNotAccessibleFault':
      return new RdsSnapshotConfigError(`${what}: RDS cannot use the KMS key (${message})`, {
        policy: settings.policy,
        cause: error,
      });
    default:
      return error;
  }
}

/** A snapshot of `identifier` exists already: this run's (a retry) is adopted, another's is a conflict. */
async function adoptExisting(
  target: RdsSnapshotApi,
  identifier: string,
  runId: string,
  error: unknown,
): Promise<SnapshotRecord> {
  const existing = await target.describe(identifier);
  if (existing && takenBy(existing, runId)) return existing;
  throw new RdsSnapshotConflictError(
    `snapshot ${identifier} exists in ${target.region} and was not taken by run ${runId}`,
    { cause: error },
  );
}

const ALREADY_EXISTS = new Set(['DBSnapshotAlreadyExistsFault', 'DBClusterSnapshotAlreadyExistsFault']);

/** Takes the snapshot (or adopts the one a retried attempt of this run took). */
export async function createRdsSnapshot(
  deps: RdsSnapshotStepDependencies,
  runId: string,
): Promise<RdsSnapshotProgress> {
  const { settings } = deps;
  const source = api(deps, deps.sourceRegion);
  const earlier = (await source.listManual(settings.source)).find(
    (record) => isPolicySnapshot(settings, record) && takenBy(record, runId),
  );
  let record: SnapshotRecord;
  if (earlier) {
    record = earlier;
    deps.log.info('rds snapshot adopted', { runId, snapshot: record.identifier, status: record.status });
  } else {
    const identifier = rdsSnapshotName(settings.prefix, deps.now());
    try {
      record = await source.create(identifier, settings.source, tagsOf(settings, runId));
    } catch (error) {
      if (!ALREADY_EXISTS.has(rdsErrorName(error) ?? '')) {
        throw mapStartError(
          error,
          settings,
          `snapshot ${identifier} of ${settings.source}`,
          deps.sourceRegion,
        );
      }
      record = await adoptExisting(source, identifier, runId, error);
    }
    deps.log.info('rds snapshot started', { runId, snapshot: record.identifier, source: settings.source });
  }
  return {
    runId,
    kind: settings.kind,
    source: settings.source,
    snapshot: ref(record),
    ...waiting(deps),
  };
}

/** Reads one snapshot's status for a wait: available, still going, failed or overdue. */
async function checkOne(
  deps: RdsSnapshotStepDependencies,
  progress: RdsSnapshotProgress,
  current: RdsSnapshotRef,
  what: 'snapshot' | 'copy',
): Promise<RdsSnapshotRef> {
  const record = await api(deps, current.region).describe(current.identifier);
  const label = `${what === 'copy' ? 'copy' : 'snapshot'} ${current.identifier} of ${progress.source} (${current.region})`;
  if (!record) {
    throw new RdsSnapshotFailedError(`${label} is gone: deleted while it was being made?`, {
      policy: deps.settings.policy,
    });
  }
  if (isFailedStatus(record.status)) {
    throw new RdsSnapshotFailedError(`RDS reports ${label} ${record.status}`, {
      policy: deps.settings.policy,
    });
  }
  if (record.status !== RDS_SNAPSHOT_AVAILABLE) {
    const waitedMs = deps.now().getTime() - Date.parse(progress.waitingSince);
    if (waitedMs > RDS_SNAPSHOT_MAX_WAIT_HOURS * 3_600_000) {
      throw new RdsSnapshotTimeoutError(
        `${label} is still ${record.status} (${record.percentProgress ?? 0} %) after ` +
          `${RDS_SNAPSHOT_MAX_WAIT_HOURS} hours; it goes on in RDS, the next run's retention removes it in time`,
        { policy: deps.settings.policy },
      );
    }
  }
  return ref(record);
}

function nextWait(checks: number): number {
  return Math.min(RDS_SNAPSHOT_MAX_WAIT_SECONDS, RDS_SNAPSHOT_FIRST_WAIT_SECONDS * 2 ** checks);
}

/** One check of the snapshot; `snapshot.status` is `available` once it is. */
export async function checkRdsSnapshot(
  deps: RdsSnapshotStepDependencies,
  progress: RdsSnapshotProgress,
): Promise<RdsSnapshotProgress> {
  const snapshot = await checkOne(deps, progress, progress.snapshot, 'snapshot');
  const checks = progress.checks + 1;
  deps.log.info('rds snapshot checked', { snapshot: snapshot.identifier, status: snapshot.status, checks });
  return { ...progress, snapshot, checks, waitSeconds: nextWait(checks) };
}

/** Starts the copy into copyToRegion (or adopts the one a retried attempt started). */
export async function copyRdsSnapshot(
  deps: RdsSnapshotStepDependencies,
  progress: RdsSnapshotProgress,
): Promise<RdsSnapshotProgress> {
  const { settings } = deps;
  const region = settings.copyToRegion;
  if (region === undefined) throw new RdsSnapshotConfigError('copy asked for without copyToRegion');
  const { snapshot } = progress;
  if (snapshot.status !== RDS_SNAPSHOT_AVAILABLE)
    throw new RdsSnapshotFailedError(`snapshot ${snapshot.identifier} is ${snapshot.status}, not available`);
  if (snapshot.encrypted && settings.copyKmsKeyArn === undefined) {
    throw new RdsSnapshotConfigError(
      `snapshot ${snapshot.identifier} of ${progress.source} is encrypted: its copy in ${region} needs ` +
        `backup.rdsSnapshot.copyKmsKeyArn, a KMS key of ${region}`,
      { policy: settings.policy },
    );
  }
  if (!snapshot.encrypted && settings.kind === 'cluster' && settings.copyKmsKeyArn !== undefined) {
    throw new RdsSnapshotConfigError(
      `snapshot ${snapshot.identifier} of Aurora cluster ${progress.source} is not encrypted, and Aurora cannot ` +
        'encrypt a copy of it: remove backup.rdsSnapshot.copyKmsKeyArn (or encrypt the cluster)',
      { policy: settings.policy },
    );
  }
  const target = api(deps, region);
  const what = `copy of ${snapshot.identifier} to ${region}`;
  let record = await target.describe(snapshot.identifier);
  if (record && !takenBy(record, progress.runId)) {
    throw new RdsSnapshotConflictError(
      `snapshot ${snapshot.identifier} exists in ${region} and was not copied by run ${progress.runId}`,
      { policy: settings.policy },
    );
  }
  if (!record) {
    try {
      record = await target.copy({
        sourceArn: snapshot.arn,
        identifier: snapshot.identifier,
        kmsKeyId: settings.copyKmsKeyArn,
        tags: tagsOf(settings, progress.runId, snapshot.arn),
      });
    } catch (error) {
      if (!ALREADY_EXISTS.has(rdsErrorName(error) ?? '')) throw mapStartError(error, settings, what, region);
      record = await adoptExisting(target, snapshot.identifier, progress.runId, error);
    }
  }
  deps.log.info('rds snapshot copy started', { snapshot: record.identifier, region, status: record.status });
  return { ...progress, copy: ref(record), ...waiting(deps) };
}

/** One check of the copy; `copy.status` is `available` once it is. */
export async function checkRdsSnapshotCopy(
  deps: RdsSnapshotStepDependencies,
  progress: RdsSnapshotProgress,
): Promise<RdsSnapshotProgress> {
  if (!progress.copy) throw new RdsSnapshotFailedError('no copy to check');
  const copy = await checkOne(deps, progress, progress.copy, 'copy');
  const checks = progress.checks + 1;
  deps.log.info('rds snapshot copy checked', { snapshot: copy.identifier, status: copy.status, checks });
  return { ...progress, copy, checks, waitSeconds: nextWait(checks) };
}

/** Deletes this policy's snapshots past retentionDays in the source region and copyToRegion. */
export async function pruneRdsSnapshots(
  deps: RdsSnapshotStepDependencies,
  progress: RdsSnapshotProgress,
): Promise<RdsSnapshotProgress> {
  const { settings } = deps;
  // Reached only after the new snapshot (and copy) became available; checked again, since deleting is final.
  const fresh = [progress.snapshot, ...(progress.copy ? [progress.copy] : [])];
  if (fresh.some((snapshot) => snapshot.status !== RDS_SNAPSHOT_AVAILABLE)) {
    throw new RdsSnapshotFailedError('retention runs only once the new snapshot is available', {
      policy: settings.policy,
    });
  }
  const cutoff = deps.now().getTime() - settings.retentionDays * 86_400_000;
  const regions = [deps.sourceRegion, ...(settings.copyToRegion ? [settings.copyToRegion] : [])];
  const pruned: PrunedSnapshot[] = [];
  for (const region of regions) {
    const regionApi = api(deps, region);
    const expired = (await regionApi.listManual(settings.source)).filter((record) => {
      const takenAt = rdsSnapshotNameTime(settings.prefix, record.identifier);
      return (
        takenAt !== undefined &&
        takenAt.getTime() < cutoff &&
        isPolicySnapshot(settings, record) &&
        record.status === RDS_SNAPSHOT_AVAILABLE &&
        !fresh.some((snapshot) => snapshot.identifier === record.identifier)
      );
    });
    for (const record of expired) {
      const takenAt = rdsSnapshotNameTime(settings.prefix, record.identifier)?.toISOString() ?? '';
      try {
        await regionApi.delete(record.identifier);
        pruned.push({ identifier: record.identifier, region, takenAt });
      } catch (error) {
        const name = rdsErrorName(error);
        if (name === 'DBSnapshotNotFoundFault' || name === 'DBClusterSnapshotNotFoundFault') continue;
        if (name === 'InvalidDBSnapshotStateFault' || name === 'InvalidDBClusterSnapshotStateFault') {
          // Being copied or shared right now: the next run deletes it.
          pruned.push({ identifier: record.identifier, region, takenAt, skipped: (error as Error).message });
          continue;
        }
        throw error;
      }
    }
  }
  deps.log.info('rds snapshots pruned', {
    policy: settings.policy,
    deleted: pruned.filter((p) => !p.skipped).length,
    skipped: pruned.filter((p) => p.skipped).length,
  });
  return { ...progress, waitSeconds: 0, pruned };
}
