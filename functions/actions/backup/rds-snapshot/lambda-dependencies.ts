/**
 * The snapshot function's dependencies inside a Lambda: its settings from `LIFECYCLE_RDS_SNAPSHOT` (set by the
 * stack), the region it runs in as the source region, SDK clients per region.
 */
import { stepLogger } from '../../../commons/observability.ts';
import { InvalidPayloadError } from '../../../core/errors.ts';
import { RDS_SNAPSHOT_SETTINGS_ENV, RdsSnapshotSettingsSchema } from './contract.ts';
import { sdkRdsClients } from './rds-api.ts';
import type { RdsSnapshotStepDependencies } from './steps.ts';

const clients = sdkRdsClients();

export function lambdaRdsSnapshotDependencies(
  env: NodeJS.ProcessEnv = process.env,
): RdsSnapshotStepDependencies {
  const text = env[RDS_SNAPSHOT_SETTINGS_ENV];
  const region = env.AWS_REGION;
  if (!text || !region)
    throw new InvalidPayloadError(`${RDS_SNAPSHOT_SETTINGS_ENV} and AWS_REGION must be set`);
  return {
    settings: RdsSnapshotSettingsSchema.parse(JSON.parse(text)),
    sourceRegion: region,
    rds: clients,
    now: () => new Date(),
    log: stepLogger,
  };
}
