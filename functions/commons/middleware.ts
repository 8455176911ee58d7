/**
 * The middy stack every handler shares: Powertools context in logs, EMF metrics flushed per
 * invocation, X-Ray segments. Handlers stay thin: parse, wire, call the core, return the contract.
 */

import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { classifyDatabaseError } from '../core/errors.ts';
import type { StepDependencies } from '../run/dependencies.ts';
import { lambdaDependencies } from './lambda-dependencies.ts';
import { explainTimeout } from './lock-wait.ts';
import { logger, metrics, tracer } from './observability.ts';

export type DependencyFactory = (context: Context) => StepDependencies;

/**
 * Wraps a step as a Lambda handler; `makeDependencies` is replaceable for the local runner and tests.
 * `withMetrics` flushes EMF metrics after each invocation (only the chunk step records any).
 */
export function lifecycleHandler<TResult>(
  step: (deps: StepDependencies, event: unknown) => Promise<TResult>,
  makeDependencies: DependencyFactory = lambdaDependencies,
  options: { withMetrics?: boolean } = {},
) {
  const handler = middy(async (event: unknown, context: Context) => {
    try {
      return await step(makeDependencies(context), event);
    } catch (error) {
      // Step Functions retries by name: a dropped connection must surface as TransientDatabaseError. A lock
      // timeout names who held the lock; no error text quotes a row value (core/redact-database-error.ts).
      throw classifyDatabaseError(await explainTimeout(error));
    }
  })
    .use(captureLambdaHandler(tracer, { captureResponse: false }))
    .use(injectLambdaContext(logger));
  return options.withMetrics ? handler.use(logMetrics(metrics)) : handler;
}
