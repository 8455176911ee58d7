/**
 * The scheduled compliance check (functions/compliance.ts, lib/constructs/compliance-check.ts): what the stack
 * tells the function about the deployed policies, and the metrics it publishes, which the alarms watch. One
 * module so the construct and the handler cannot drift apart.
 */
import { z } from 'zod';
import type { LifecycleConfig } from './config.ts';
import { PolicyNameSchema } from './policy-base.ts';
import { ScheduleSchema, TimeZoneSchema } from './schedule.ts';

/** Environment variable holding the {@link CompliancePolicy} list of the deployed policies (JSON). */
export const COMPLIANCE_POLICIES_ENV = 'LIFECYCLE_COMPLIANCE_POLICIES';

/** Environment variable holding the stack name: the `stack` dimension of every compliance metric. */
export const COMPLIANCE_STACK_ENV = 'LIFECYCLE_STACK_NAME';

/** Metric names (namespace `PgLifecycle`, the one every handler publishes in). */
export const ComplianceMetricNames = {
  /**
   * Enabled, scheduled policies without a success within two schedule periods (one that never succeeded: two
   * periods after the check first saw it, lifecycle.policy_first_seen; functions/reports/compliance.ts isOverdue).
   */
  overduePolicies: 'OverduePolicies',
  /** 1 when the policy (dimension `policy`) is overdue, else 0. */
  policyOverdue: 'PolicyOverdue',
  /** Subject requests past due_at and not completed, over every subjects policy. */
  requestsOverdue: 'SubjectRequestsOverdue',
  /** Subject requests that failed, over every subjects policy. */
  requestsFailed: 'SubjectRequestsFailed',
  /** Subject requests pending, over every subjects policy. */
  requestsPending: 'SubjectRequestsPending',
} as const;

/**
 * Dimensions: Powertools adds `service` (POWERTOOLS_SERVICE_NAME) to every metric; the check adds `stack`, so
 * that two stacks in one account and region (a config split in two) do not feed each other's alarms, and
 * `policy` to PolicyOverdue.
 */
export const ComplianceDimensions = { service: 'service', stack: 'stack', policy: 'policy' } as const;

/** The Powertools service name of every handler (the `service` dimension). */
export const SERVICE_NAME = 'pg-lifecycle';

/**
 * What the check needs of a policy: its name, action (subjects policies get request counts) and schedule.
 * Not its table, filter or chunking: the check reads only the ledger, and Lambda holds at most 4 KB of
 * environment. `timezone` is left out when UTC, `schedule` when the policy runs only by hand.
 */
export const CompliancePolicySchema = z
  .object({
    name: PolicyNameSchema,
    action: z.enum(['archive', 'purge', 'backup', 'anonymize', 'subjects', 'import', 'maintain']),
    schedule: ScheduleSchema.optional(),
    timezone: TimeZoneSchema.default('UTC'),
  })
  .strict();

export type CompliancePolicy = z.output<typeof CompliancePolicySchema>;

export const CompliancePoliciesSchema = z.array(CompliancePolicySchema).superRefine((policies, ctx) => {
  const seen = new Set<string>();
  policies.forEach((policy, index) => {
    if (seen.has(policy.name))
      ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate policy "${policy.name}"` });
    seen.add(policy.name);
  });
});

/**
 * The policies the check watches: every enabled policy that can be overdue (it has a schedule) or has
 * subject requests (subjects, scheduled or not). A disabled policy is not deployed and never overdue.
 */
export function compliancePolicies(config: Pick<LifecycleConfig, 'policies'>): CompliancePolicy[] {
  return config.policies
    .filter((policy) => policy.enabled && (policy.schedule !== undefined || policy.action === 'subjects'))
    .map((policy) => ({
      name: policy.name,
      action: policy.action,
      ...(policy.schedule === undefined ? {} : { schedule: policy.schedule }),
      timezone: policy.timezone,
    }));
}

/** The environment value: compact JSON, UTC left out. */
export function encodeCompliancePolicies(policies: readonly CompliancePolicy[]): string {
  return JSON.stringify(
    policies.map(({ timezone, ...rest }) => (timezone === 'UTC' ? rest : { ...rest, timezone })),
  );
}

/** Thrown for a policy list the function cannot read: the invocation fails, and the missing metric alarms. */
export class CompliancePoliciesError extends Error {
  public override readonly name = 'CompliancePoliciesError';
}

/**
 * Reads and validates the environment value.
 * @throws CompliancePoliciesError naming what is wrong (not valid JSON, or the fields that do not validate)
 */
export function decodeCompliancePolicies(text: string | undefined): CompliancePolicy[] {
  if (text === undefined || text === '')
    throw new CompliancePoliciesError(`${COMPLIANCE_POLICIES_ENV} is not set`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CompliancePoliciesError(`${COMPLIANCE_POLICIES_ENV} is not valid JSON`);
  }
  const parsed = CompliancePoliciesSchema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(list)'}: ${issue.message}`,
    );
    throw new CompliancePoliciesError(`${COMPLIANCE_POLICIES_ENV} is invalid: ${issues.join('; ')}`);
  }
  return parsed.data;
}
