/**
 * Lambda: the RDS snapshot stage of a backup policy (create, check, copy, check-copy, prune). Input:
 * `{ operation, runId | progress }`; output: the stage's progress. Outside the VPC: it talks to the RDS API
 * only, in two regions, and never to the database.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { lambdaRdsSnapshotDependencies } from './actions/backup/rds-snapshot/lambda-dependencies.ts';
import { runRdsSnapshotOperation } from './actions/backup/rds-snapshot/operation.ts';
import type { RdsSnapshotStepDependencies } from './actions/backup/rds-snapshot/steps.ts';
import { logger, tracer } from './commons/observability.ts';

export const createHandler = (
  makeDependencies: () => RdsSnapshotStepDependencies = lambdaRdsSnapshotDependencies,
) =>
  middy(async (event: unknown) => runRdsSnapshotOperation(makeDependencies(), event))
    .use(captureLambdaHandler(tracer, { captureResponse: false }))
    .use(injectLambdaContext(logger));

export const handler = createHandler();
