/**
 * Lambda: the scheduled compliance check. Every hour (EventBridge Scheduler) it builds the overdue part of the
 * compliance report (functions/reports/compliance.ts: overdue policies, subject requests) for the deployed
 * policies, which the stack gives it in LIFECYCLE_COMPLIANCE_POLICIES, and publishes it as metrics (EMF,
 * namespace PgLifecycle) that the stack's alarms watch. The event is ignored. Logs carry counts and policy
 * names, never a row, a subject key or a request id.
 *
 * Before the report it applies the ledger migrations (as every step that touches the ledger does; sql/ ships
 * beside the bundle) and records each deployed scheduled policy it has not seen before in
 * lifecycle.policy_first_seen (sql/014): a policy that has never succeeded is overdue only two schedule periods
 * after that, not from its first deploy. Both with the stack's database secret, as the other functions: no new
 * IAM permission. A migration or the record that fails fails the invocation, as it fails a run's Start: no
 * metric is published, and the overdue alarm (missing data breaching) says the check did not run.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type pg from 'pg';
import { z } from 'zod';
import {
  COMPLIANCE_POLICIES_ENV,
  COMPLIANCE_STACK_ENV,
  ComplianceDimensions,
  type CompliancePolicy,
  decodeCompliancePolicies,
} from '../lib/contracts/compliance-check.ts';
import { RunMetricDimensions, SECONDS_SINCE_LAST_SUCCESS } from '../lib/contracts/run-metrics.ts';
import { applyMigrations } from './adapters/migrations.ts';
import { connect, resolveClientConfig } from './commons/database.ts';
import { readEnv } from './commons/env.ts';
import { explainTimeout } from './commons/lock-wait.ts';
import { logger, metrics, stepLogger, tracer } from './commons/observability.ts';
import { classifyDatabaseError } from './core/errors.ts';
import { capToDeadline, DEFAULT_SESSION_TIMEOUTS } from './core/session-timeouts.ts';
import { buildOverdueReport, type PolicyCompliance, recordFirstSeen } from './reports/compliance.ts';
import {
  type ComplianceDatum,
  complianceMetricData,
  publishComplianceMetrics,
  type SingleMetricSink,
} from './reports/compliance-metrics.ts';
import type { StepLogger } from './run/dependencies.ts';

/** Powertools Metrics as the check uses it: single metrics, counts (SingleMetricSink) and ages in seconds. */
export interface ComplianceMetricSink extends SingleMetricSink {
  singleMetric(): {
    addDimension(name: string, value: string): void;
    addMetric(name: string, unit: 'Count' | 'Seconds', value: number): void;
  };
}

/** What the check works with; replaceable in tests. */
export interface ComplianceCheckDependencies {
  readonly connect: () => Promise<pg.Client>;
  readonly policies: readonly CompliancePolicy[];
  readonly stack: string;
  readonly metrics: ComplianceMetricSink;
  readonly log: StepLogger;
  readonly now: () => Date;
}

/** What the invocation returns (and logs): counts only. */
export interface ComplianceCheckResult {
  readonly policies: number;
  readonly overduePolicies: string[];
  readonly subjectRequests: { readonly overdue: number; readonly failed: number; readonly pending: number };
  /** Policies this invocation saw for the first time (lifecycle.policy_first_seen); usually none. */
  readonly firstSeen: string[];
}

const StackEnvSchema = z.object({ [COMPLIANCE_STACK_ENV]: z.string().min(1) });

/**
 * Migrates the ledger, records first sightings, builds the report, publishes its metrics, returns the counts.
 * The report reads the sightings just recorded: a policy deployed an hour ago is not overdue yet.
 */
export async function runComplianceCheck(deps: ComplianceCheckDependencies): Promise<ComplianceCheckResult> {
  const client = await deps.connect();
  try {
    // The ledger's schema changes only through its migrations (under their advisory lock); a no-op once current.
    const migrated = await applyMigrations(client);
    if (migrated.length > 0) deps.log.info('ledger migrated', { versions: migrated });
    const firstSeen = await recordFirstSeen(client, deps.policies);
    const report = await buildOverdueReport(
      client,
      deps.policies.map((policy) => ({ ...policy, enabled: true })),
      { now: deps.now() },
    );
    const data = complianceMetricData(report);
    publishComplianceMetrics(deps.metrics, deps.stack, data);
    publishLastSuccessAges(deps.metrics, deps.stack, report.policies, deps.now());
    const result = { ...summarize(report.policies.length, data), firstSeen };
    deps.log.info('compliance check', { ...result });
    return result;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * SecondsSinceLastSuccess per policy that has a succeeded run (dimensions stack, policy, action): the
 * dashboard's "last successful run" age. A policy that never succeeded publishes none (PolicyOverdue says
 * whether that is late); the per-policy overdue alarms watch PolicyOverdue, which knows schedules and time zones.
 */
export function publishLastSuccessAges(
  sink: ComplianceMetricSink,
  stack: string,
  policies: readonly Pick<PolicyCompliance, 'policy' | 'action' | 'lastSuccess'>[],
  now: Date,
): void {
  for (const entry of policies) {
    if (entry.lastSuccess === null) continue;
    const finished = Date.parse(entry.lastSuccess);
    if (Number.isNaN(finished)) continue;
    const single = sink.singleMetric();
    single.addDimension(ComplianceDimensions.stack, stack);
    single.addDimension(RunMetricDimensions.policy, entry.policy);
    single.addDimension(RunMetricDimensions.action, entry.action);
    single.addMetric(
      SECONDS_SINCE_LAST_SUCCESS,
      'Seconds',
      Math.max(0, Math.round((now.getTime() - finished) / 1000)),
    );
  }
}

function summarize(
  policies: number,
  data: readonly ComplianceDatum[],
): Omit<ComplianceCheckResult, 'firstSeen'> {
  const value = (name: ComplianceDatum['name']) => data.find((datum) => datum.name === name)?.value ?? 0;
  return {
    policies,
    overduePolicies: data
      .filter((datum) => datum.name === 'PolicyOverdue' && datum.value > 0)
      .map((datum) => datum.dimensions.policy ?? '?'),
    subjectRequests: {
      overdue: value('SubjectRequestsOverdue'),
      failed: value('SubjectRequestsFailed'),
      pending: value('SubjectRequestsPending'),
    },
  };
}

function lambdaDependencies(context: Pick<Context, 'getRemainingTimeInMillis'>): ComplianceCheckDependencies {
  const env = readEnv();
  // Validated on every invocation: a bad value fails it, and the alarm on missing data fires.
  const policies = decodeCompliancePolicies(process.env[COMPLIANCE_POLICIES_ENV]);
  const stack = StackEnvSchema.parse(process.env)[COMPLIANCE_STACK_ENV];
  return {
    connect: async () =>
      connect(
        await resolveClientConfig(
          env,
          capToDeadline(
            DEFAULT_SESSION_TIMEOUTS,
            context.getRemainingTimeInMillis() - env.LIFECYCLE_SAFETY_MARGIN_MS,
          ),
        ),
      ),
    policies,
    stack,
    metrics,
    log: stepLogger,
    now: () => new Date(),
  };
}

export const createHandler = (
  makeDependencies: (context: Context) => ComplianceCheckDependencies = lambdaDependencies,
) =>
  middy(async (_event: unknown, context: Context) => {
    try {
      return await runComplianceCheck(makeDependencies(context));
    } catch (error) {
      throw classifyDatabaseError(await explainTimeout(error));
    }
  })
    .use(captureLambdaHandler(tracer, { captureResponse: false }))
    .use(injectLambdaContext(logger));

export const handler = createHandler();
