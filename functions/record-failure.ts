/** Lambda: RecordFailure step (mark the run failed, remove orphans, release the lease). Input: state + `error`. */
import { type DependencyFactory, lifecycleHandler } from './commons/middleware.ts';
import { recordFailure } from './run/record-failure.ts';

export const createHandler = (makeDependencies?: DependencyFactory) =>
  lifecycleHandler(recordFailure, makeDependencies);

export const handler = createHandler();
