/** Lambda: RecordFailure step (mark the run failed, remove orphans, release the lease). Input: state + `error`. */

import { type DependencyFactory, lifecycleHandler } from './commons/middleware.ts';
import { withPolicyMetrics } from './commons/observability.ts';
import { recordFailure } from './run/record-failure.ts';

export const createHandler = (makeDependencies?: DependencyFactory) =>
  lifecycleHandler(
    (deps, event) =>
      withPolicyMetrics(deps, event, async (stepDeps, { metrics, dryRun }) => {
        const record = await recordFailure(stepDeps, event);
        // Counted once the failure is recorded (a RecordFailure that fails is retried, then the execution fails:
        // ExecutionsFailed counts it). A Start refusal counts too: the run never opened, the schedule's run failed.
        if (!dryRun) metrics?.recordRunFailed();
        return record;
      }),
    makeDependencies,
  );

export const handler = createHandler();
