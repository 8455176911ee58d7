/**
 * What one stack can hold. Each enabled policy gets its own functions, roles and state machine (IAM bounded
 * to the policy), so the stack grows with the policies; CloudFormation takes at most 500 resources per stack,
 * and the policies' names become construct ids and state machine names. Pure rules, shared by
 * `deploymentIssues` (`cdk synth`, `validate`) and a CDK test that counts the real template. They bind only
 * the deployed stack: a local run (`run`, `plan`) deploys nothing and is not held to them.
 */
import { resolveThrottle } from './chunking.ts';
import type { LifecycleConfig, Policy } from './config.ts';
import { contractOf } from './policy.ts';

/** CloudFormation's quota of resources in one stack. */
export const MAX_RESOURCES_PER_STACK = 500;

/**
 * CloudFormation resources every enabled policy adds: 4 functions × (function, role, role policy), their
 * shared log group, the state machine with its role and role policy, and its alarm. (The `*`-only actions
 * every role needs live in two managed policies shared by the whole stack.)
 */
export const BASE_RESOURCES_PER_POLICY = 4 * 3 + 1 + 3 + 1;

/**
 * What a schedule adds to a policy: the schedule itself and the policy's overdue alarm
 * (lib/constructs/overdue-alarms.ts; a policy run only by hand is never overdue).
 */
export const SCHEDULE_RESOURCES = 2;

/**
 * The most one enabled policy adds without the backup extras: the base, its schedule (+ overdue alarm), and the
 * chunk role's own policy for cloudwatch:GetMetricData when its throttle reads replica lag there. A backup
 * policy's rdsSnapshot and drill add {@link RDS_SNAPSHOT_RESOURCES} and {@link RESTORE_DRILL_RESOURCES}
 * (policyResourceCount).
 */
export const RESOURCES_PER_POLICY = BASE_RESOURCES_PER_POLICY + SCHEDULE_RESOURCES + 1;

/**
 * Resources that do not depend on the number of policies, in the largest variant (the sandbox: VPC,
 * endpoints, RDS: 44; the compliance check's function, role, policy, log group, schedule and two alarms: 7; the
 * dashboard: 1),
 * with a margin for CDK's own additions.
 */
export const FIXED_RESOURCES_MAX = 57;

/** Enabled policies one stack holds, each at {@link RESOURCES_PER_POLICY} (fewer with backup rdsSnapshot or drill). */
export const MAX_POLICIES_PER_STACK = Math.floor(
  (MAX_RESOURCES_PER_STACK - FIXED_RESOURCES_MAX) / RESOURCES_PER_POLICY,
);

/** Name of the stack when none is given (`-c stackName=…`); also its construct id. */
export const DEFAULT_STACK_NAME = 'PgLifecycle';

/** Step Functions' limit on a state machine name (`<stack>-<policy>`). */
export const MAX_STATE_MACHINE_NAME_LENGTH = 80;

/** `orders-archive` → `OrdersArchive`: a policy's construct ids and output names in the stack. */
export function pascalCase(name: string): string {
  return name
    .split('-')
    .map((part) => (part ? part[0]?.toUpperCase() + part.slice(1) : ''))
    .join('');
}

/**
 * What a backup policy's `rdsSnapshot` adds: the snapshot function, its role, the role's policy and its own
 * policy of X-Ray actions (it runs outside the VPC, so the shared one with the ENI actions is not attached).
 */
export const RDS_SNAPSHOT_RESOURCES = 4;

/**
 * What a backup policy's `drill` adds: the drill function with its role and role policy, the drill state
 * machine with its role and role policy, its schedule and its alarm.
 */
export const RESTORE_DRILL_RESOURCES = 3 + 3 + 1 + 1;

/** CloudFormation resources one enabled policy adds to the stack. */
export function policyResourceCount(config: Pick<LifecycleConfig, 'defaults'>, policy: Policy): number {
  const schedule = policy.schedule === undefined ? 0 : SCHEDULE_RESOURCES;
  const cloudWatchLag = resolveThrottle(config.defaults.throttle, policy.throttle)?.cloudWatch ? 1 : 0;
  const contract = contractOf(policy);
  const rdsSnapshot = contract.rdsSnapshot?.(policy) ? RDS_SNAPSHOT_RESOURCES : 0;
  const drill = contract.restoreDrill?.(policy) ? RESTORE_DRILL_RESOURCES : 0;
  return BASE_RESOURCES_PER_POLICY + schedule + cloudWatchLag + rdsSnapshot + drill;
}

/**
 * Why the config's enabled policies do not fit in one stack named `stackName`, as `<path>: <message>` lines:
 * too many resources, two policies whose construct ids collide, a state machine name Step Functions refuses.
 * Each would otherwise fail `cdk synth` with a raw error, or the deploy.
 */
export function stackLimitProblems(
  config: Pick<LifecycleConfig, 'defaults' | 'policies'>,
  stackName: string = DEFAULT_STACK_NAME,
): string[] {
  const problems: string[] = [];
  const enabled = config.policies.flatMap((policy, index) => (policy.enabled ? [{ policy, index }] : []));
  const resources = enabled.reduce((sum, { policy }) => sum + policyResourceCount(config, policy), 0);
  if (resources + FIXED_RESOURCES_MAX > MAX_RESOURCES_PER_STACK) {
    problems.push(
      `policies: ${enabled.length} enabled policies need ${resources} CloudFormation resources (each has its own ` +
        `functions and state machine: ${BASE_RESOURCES_PER_POLICY}, +${SCHEDULE_RESOURCES} with a schedule (and its ` +
        `overdue alarm), +1 with a CloudWatch throttle, +${RDS_SNAPSHOT_RESOURCES} with rdsSnapshot, ` +
        `+${RESTORE_DRILL_RESOURCES} with a drill), and the rest of the stack up to ${FIXED_RESOURCES_MAX}: more ` +
        `than the ${MAX_RESOURCES_PER_STACK} one stack may hold; ` +
        'split them over two config files, each deployed as its own stack (-c stackName=…)',
    );
  }
  const ids = new Map<string, { name: string; index: number }>();
  for (const { policy, index } of enabled) {
    const id = pascalCase(policy.name);
    const other = ids.get(id);
    if (other) {
      problems.push(
        `policies[${index}].name: "${policy.name}" and "${other.name}" (policies[${other.index}]) both become ` +
          `${id} in the stack's construct ids and outputs (StateMachineArn${id}); rename one`,
      );
    } else {
      ids.set(id, { name: policy.name, index });
    }
    // A drill's machine is `<stack>-<policy>-drill`.
    const stateMachineName = `${stackName}-${policy.name}${contractOf(policy).restoreDrill?.(policy) ? '-drill' : ''}`;
    if (stateMachineName.length > MAX_STATE_MACHINE_NAME_LENGTH) {
      problems.push(
        `policies[${index}].name: its state machine "${stateMachineName}" would have ${stateMachineName.length} ` +
          `characters, Step Functions takes at most ${MAX_STATE_MACHINE_NAME_LENGTH}: shorten the policy name or ` +
          'the stack name (-c stackName=…)',
      );
    }
  }
  return problems;
}
