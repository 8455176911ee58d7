/**
 * Lambda: a scheduled restore drill of one backup policy (`backup.drill`). Input: `{ trigger }`; output: the
 * drill's result (DrillOutput). The policy, bucket and database come from the environment the stack set.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { DRILL_POLICY_ENV } from '../lib/contracts/restore-drill-payloads.ts';
import { type DrillStepDependencies, runScheduledDrill } from './actions/backup/scheduled-drill.ts';
import { connect, resolveClientConfig } from './commons/database.ts';
import { readEnv } from './commons/env.ts';
import { explainTimeout } from './commons/lock-wait.ts';
import { logger, stepLogger, tracer } from './commons/observability.ts';
import { createS3Client } from './commons/s3.ts';
import { classifyDatabaseError } from './core/errors.ts';
import { capToDeadline, DEFAULT_SESSION_TIMEOUTS } from './core/session-timeouts.ts';

const DrillEnvSchema = z.object({
  [DRILL_POLICY_ENV]: z.string().min(1),
  ARCHIVE_BUCKET: z.string().min(3),
});

function lambdaDrillDependencies(context: Pick<Context, 'getRemainingTimeInMillis'>): DrillStepDependencies {
  const env = readEnv();
  const drillEnv = DrillEnvSchema.parse(process.env);
  return {
    // A drill's COPY of a large table may run for minutes: statements are bounded by the invocation, not 60 s.
    connect: async () =>
      connect(
        await resolveClientConfig(
          env,
          capToDeadline(
            { lockTimeoutMs: DEFAULT_SESSION_TIMEOUTS.lockTimeoutMs, statementTimeoutMs: 15 * 60_000 },
            context.getRemainingTimeInMillis() - env.LIFECYCLE_SAFETY_MARGIN_MS,
          ),
        ),
      ),
    s3: createS3Client(),
    bucket: drillEnv.ARCHIVE_BUCKET,
    policy: drillEnv[DRILL_POLICY_ENV],
    log: stepLogger,
  };
}

export const createHandler = (
  makeDependencies: (context: Context) => DrillStepDependencies = lambdaDrillDependencies,
) =>
  middy(async (event: unknown, context: Context) => {
    try {
      return await runScheduledDrill(makeDependencies(context), event);
    } catch (error) {
      // As every step: a dropped connection is a TransientDatabaseError, a lock wait names its holder.
      throw classifyDatabaseError(await explainTimeout(error));
    }
  })
    .use(captureLambdaHandler(tracer, { captureResponse: false }))
    .use(injectLambdaContext(logger));

export const handler = createHandler();
