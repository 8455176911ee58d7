/**
 * How many policies one stack holds. Each enabled policy gets its own functions, roles and state machine
 * (IAM bounded to the policy), so the stack grows with the policies; CloudFormation takes at most 500
 * resources per stack. Pure numbers, shared by `validate` and a CDK test that counts the real template.
 */

/** CloudFormation's quota of resources in one stack. */
export const MAX_RESOURCES_PER_STACK = 500;

/**
 * CloudFormation resources one enabled policy adds at most: 4 functions × (function, role, role policy),
 * their shared log group, the state machine with its role and role policy, its alarm, its schedule, and the
 * chunk role's own policy for cloudwatch:GetMetricData when its throttle reads lag there. (The `*`-only
 * actions every role needs live in two managed policies shared by the whole stack.)
 */
export const RESOURCES_PER_POLICY = 4 * 3 + 1 + 3 + 1 + 1 + 1;

/**
 * Resources that do not depend on the policies, in the largest variant (the sandbox: VPC, endpoints, RDS:
 * 44), with a margin for CDK's own additions.
 */
export const FIXED_RESOURCES_MAX = 50;

/** Enabled policies one stack can hold. */
export const MAX_POLICIES_PER_STACK = Math.floor(
  (MAX_RESOURCES_PER_STACK - FIXED_RESOURCES_MAX) / RESOURCES_PER_POLICY,
);

/** Why `enabledPolicies` do not fit in one stack, or undefined when they do. */
export function stackLimitProblem(enabledPolicies: number): string | undefined {
  if (enabledPolicies <= MAX_POLICIES_PER_STACK) return undefined;
  return (
    `${enabledPolicies} enabled policies: one stack holds at most ${MAX_POLICIES_PER_STACK} (each policy has its ` +
    `own functions and state machine, ${RESOURCES_PER_POLICY} CloudFormation resources, and a stack takes ` +
    `${MAX_RESOURCES_PER_STACK}); split them over two config files, each deployed as its own stack`
  );
}
