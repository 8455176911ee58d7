/** Lambda: Chunk step (chunk transactions until done or out of time). Input and output: RunState. */
import { type DependencyFactory, lifecycleHandler } from './commons/middleware.ts';
import { runChunks } from './run/run-chunks.ts';

export const createHandler = (makeDependencies?: DependencyFactory) =>
  lifecycleHandler(runChunks, makeDependencies, { withMetrics: true });

export const handler = createHandler();
