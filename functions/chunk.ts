/** Lambda: Chunk step (chunk transactions until done or out of time). Input and output: RunState. */

import { type DependencyFactory, lifecycleHandler } from './commons/middleware.ts';
import { withPolicyMetrics } from './commons/observability.ts';
import { runChunks } from './run/run-chunks.ts';

export const createHandler = (makeDependencies?: DependencyFactory) =>
  lifecycleHandler(
    (deps, event) =>
      withPolicyMetrics(deps, event, async (stepDeps, { metrics }) => {
        const state = await runChunks(stepDeps, event);
        // The step says in its result that a replica lagged (run-chunks.ts stepResult): the Pause waits for it.
        metrics?.recordChunkStep({ waitedForReplicaLag: state.replicaLagSeconds !== undefined });
        return state;
      }),
    makeDependencies,
  );

export const handler = createHandler();
