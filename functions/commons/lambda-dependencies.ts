/**
 * Wires the run steps to the real world inside a Lambda (or the local runner, which calls the same
 * handlers with a Lambda-shaped context): pg from the environment, S3, Powertools.
 */

import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { GlueClient } from '@aws-sdk/client-glue';
import type { Context } from 'aws-lambda';
import { S3_SINGLE_PUT_MAX_BYTES, S3ObjectStore } from '../adapters/archive-store.ts';
import { GlueTableCatalog } from '../adapters/glue-catalog.ts';
import { capToDeadline, DEFAULT_SESSION_TIMEOUTS } from '../core/session-timeouts.ts';
import type { StepDependencies } from '../run/dependencies.ts';
import { AWS_CLIENT_TIMEOUTS } from './aws-clients.ts';
import { connect, resolveClientConfig } from './database.ts';
import { readEnv } from './env.ts';
import { readHashKey } from './hash-key-secret.ts';
import { chunkMetrics, stepLogger } from './observability.ts';
import { createS3Client } from './s3.ts';

export function lambdaDependencies(context: Pick<Context, 'getRemainingTimeInMillis'>): StepDependencies {
  const env = readEnv();
  const s3 = env.ARCHIVE_BUCKET ? createS3Client() : undefined;
  return {
    // No statement may outlive the invocation: its backend would still wait after the Lambda ended, beside
    // the one a Step Functions retry of the step opens.
    connect: async (timeouts = DEFAULT_SESSION_TIMEOUTS) =>
      connect(
        await resolveClientConfig(
          env,
          capToDeadline(timeouts, context.getRemainingTimeInMillis() - env.LIFECYCLE_SAFETY_MARGIN_MS),
        ),
      ),
    // One PUT per object up to S3's limit: S3 then checks and keeps the full-object SHA-256 (multipart keeps
    // only a checksum of the parts' checksums, which `verify` cannot compare for objects in cold storage).
    store:
      s3 && env.ARCHIVE_BUCKET
        ? new S3ObjectStore(s3, env.ARCHIVE_BUCKET, { singlePutMaxBytes: S3_SINGLE_PUT_MAX_BYTES })
        : undefined,
    tableCatalog: env.GLUE_DATABASE
      ? new GlueTableCatalog(new GlueClient({ ...AWS_CLIENT_TIMEOUTS }), env.GLUE_DATABASE)
      : undefined,
    deployedPolicies: env.LIFECYCLE_DEPLOYED_POLICIES,
    now: () => new Date(),
    remainingMs: () => context.getRemainingTimeInMillis() - env.LIFECYCLE_SAFETY_MARGIN_MS,
    log: stepLogger,
    metrics: chunkMetrics,
    hashKey: () => readHashKey(env),
    // Built only when a throttle reads lag from CloudWatch (the stack then grants GetMetricData).
    cloudWatch: env.LIFECYCLE_CLOUDWATCH_LAG ? new CloudWatchClient({ ...AWS_CLIENT_TIMEOUTS }) : undefined,
  };
}
