/** Lambda: Finish step (orphans, totals, lease). Input: RunState; output: RunSummary. */

import { type DependencyFactory, lifecycleHandler } from './commons/middleware.ts';
import { withPolicyMetrics } from './commons/observability.ts';
import { finishRun } from './run/finish-run.ts';

export const createHandler = (makeDependencies?: DependencyFactory) =>
  lifecycleHandler(
    (deps, event) =>
      withPolicyMetrics(deps, event, async (stepDeps, { metrics }) => {
        const summary = await finishRun(stepDeps, event);
        // A dry run ('dry_run') changed nothing: it is no run of the policy's record.
        if (summary.status === 'succeeded') metrics?.recordRunSucceeded(summary);
        return summary;
      }),
    makeDependencies,
  );

export const handler = createHandler();
