/** Lambda: Start step (validate, cutoff, lease, run row). Input: { input, executionId, stateMachineArn }. */
import { type DependencyFactory, lifecycleHandler } from './commons/middleware.ts';
import { startRun } from './run/start-run.ts';

export const createHandler = (makeDependencies?: DependencyFactory) =>
  lifecycleHandler(async (deps, event) => {
    const request = (event ?? {}) as { input?: unknown; executionId?: string };
    return startRun(deps, { input: request.input, executionId: request.executionId });
  }, makeDependencies);

export const handler = createHandler();
