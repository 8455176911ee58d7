/**
 * The snapshot function's one entry: the task input names the operation (create, check, copy, check-copy,
 * prune); what it returns goes back under `$.rdsSnapshot` of the run's summary.
 */
import {
  type RdsSnapshotProgress,
  RdsSnapshotProgressSchema,
  RdsSnapshotTaskInputSchema,
} from '../../../../lib/contracts/rds-snapshot-payloads.ts';
import { InvalidPayloadError } from '../../../core/errors.ts';
import {
  checkRdsSnapshot,
  checkRdsSnapshotCopy,
  copyRdsSnapshot,
  createRdsSnapshot,
  pruneRdsSnapshots,
  type RdsSnapshotStepDependencies,
} from './steps.ts';

export async function runRdsSnapshotOperation(
  deps: RdsSnapshotStepDependencies,
  event: unknown,
): Promise<RdsSnapshotProgress> {
  const parsed = RdsSnapshotTaskInputSchema.safeParse(event);
  if (!parsed.success) {
    throw new InvalidPayloadError(
      `invalid rds snapshot task input: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const input = parsed.data;
  if (input.operation === 'create')
    return RdsSnapshotProgressSchema.parse(await createRdsSnapshot(deps, input.runId));
  const steps = {
    check: checkRdsSnapshot,
    copy: copyRdsSnapshot,
    'check-copy': checkRdsSnapshotCopy,
    prune: pruneRdsSnapshots,
  } as const;
  return RdsSnapshotProgressSchema.parse(await steps[input.operation](deps, input.progress));
}
