/** Lambda: Finish step (orphans, totals, lease). Input: RunState; output: RunSummary. */
import { type DependencyFactory, lifecycleHandler } from './commons/middleware.ts';
import { finishRun } from './run/finish-run.ts';

export const createHandler = (makeDependencies?: DependencyFactory) =>
  lifecycleHandler(finishRun, makeDependencies);

export const handler = createHandler();
