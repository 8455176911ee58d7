/**
 * `start` and `status` against the Step Functions API. `start` sends exactly the input the policy's
 * schedule sends (buildExecutionInput), with trigger "manual".
 */
import { ListExecutionsCommand, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { UsageError } from './errors.ts';

const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$/;

/**
 * The state machine of one policy. Each policy has its own (named `<stack>-<policy>`, so that its IAM
 * grants reach only its own prefix): `--state-machine-arn` names it exactly, or
 * PG_LIFECYCLE_STATE_MACHINE_PREFIX (stack output StateMachineArnPrefix, `arn:…:stateMachine:<stack>-`)
 * gives every policy's by appending the policy name. With both, the ARN must be the prefix's for the policy.
 */
export function stateMachineArnFor(policy: string, explicit: string | undefined): string {
  if (explicit !== undefined) {
    checkStateMachineArn(explicit);
    const prefix = process.env.PG_LIFECYCLE_STATE_MACHINE_PREFIX;
    // Without the prefix only the name's end can be checked: `<stack>-orders-archive` ends in `-archive` too.
    if (prefix ? explicit !== `${prefix}${policy}` : !explicit.endsWith(`-${policy}`)) {
      throw new UsageError(
        `${explicit} is not the state machine of policy ${policy} (each policy has its own, named ` +
          `${prefix ? `${prefix}${policy}` : `<stack>-${policy}`})`,
      );
    }
    return explicit;
  }
  const prefix = process.env.PG_LIFECYCLE_STATE_MACHINE_PREFIX;
  if (!prefix) {
    throw new UsageError(
      `the state machine of policy ${policy} is needed: --state-machine-arn ARN (stack output ` +
        'StateMachineArn<Policy>) or PG_LIFECYCLE_STATE_MACHINE_PREFIX (stack output StateMachineArnPrefix)',
    );
  }
  const arn = `${prefix}${policy}`;
  if (!prefix.endsWith('-') || !STATE_MACHINE_ARN.test(arn)) {
    throw new UsageError(
      `PG_LIFECYCLE_STATE_MACHINE_PREFIX ${prefix} is not a state machine ARN prefix (arn:aws:states:<region>:<account>:stateMachine:<stack>-)`,
    );
  }
  return arn;
}

/** @throws UsageError unless `arn` is a state machine ARN */
export function checkStateMachineArn(arn: string): string {
  if (!STATE_MACHINE_ARN.test(arn)) throw new UsageError(`${arn} is not a Step Functions state machine ARN`);
  return arn;
}

/**
 * The policy a state machine serves, as its name says: the rest of the ARN after
 * PG_LIFECYCLE_STATE_MACHINE_PREFIX; undefined without the prefix or for a machine outside it.
 */
export function policyOfStateMachine(stateMachineArn: string): string | undefined {
  const prefix = process.env.PG_LIFECYCLE_STATE_MACHINE_PREFIX;
  if (!prefix || !stateMachineArn.startsWith(prefix)) return undefined;
  return stateMachineArn.slice(prefix.length) || undefined;
}

/** Whether `start`/`status` can find state machines at all (an ARN or the prefix is configured). */
export function stateMachinesConfigured(explicit: string | undefined): boolean {
  return explicit !== undefined || Boolean(process.env.PG_LIFECYCLE_STATE_MACHINE_PREFIX);
}

/** Execution names: 80 chars of [A-Za-z0-9_-]; unique per start. */
export function manualExecutionName(policy: string, now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 17);
  return `manual-${policy}-${stamp}`.slice(0, 80);
}

export async function startCommand(
  sfn: SFNClient,
  options: {
    config: LifecycleConfig;
    policy: string;
    stateMachineArn: string;
    dryRun: boolean;
    force?: boolean;
    now: Date;
  },
): Promise<{ executionArn: string; startDate: string; name: string }> {
  const input = buildExecutionInput(options.config, options.policy, 'manual', options.dryRun, {
    force: options.force ?? false,
  });
  const name = manualExecutionName(options.policy, options.now);
  const result = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: options.stateMachineArn,
      name,
      input: JSON.stringify(input),
    }),
  );
  return { executionArn: result.executionArn ?? '', startDate: result.startDate?.toISOString() ?? '', name };
}

export interface ExecutionStatus {
  readonly name: string;
  readonly status: string;
  readonly policy: string | undefined;
  readonly startDate: string | undefined;
  readonly stopDate: string | undefined;
  readonly executionArn: string;
}

/**
 * Recent executions of one state machine, newest first, in one ListExecutions call. Each policy has its own
 * machine (whose Start refuses any other policy), so `policy`, the machine's, is every execution's: nothing
 * is described.
 */
export async function listExecutions(
  sfn: SFNClient,
  options: { stateMachineArn: string; policy: string | undefined; limit: number },
): Promise<ExecutionStatus[]> {
  const listed = await sfn.send(
    new ListExecutionsCommand({ stateMachineArn: options.stateMachineArn, maxResults: options.limit }),
  );
  return (listed.executions ?? []).slice(0, options.limit).map((execution) => ({
    name: execution.name ?? '',
    status: execution.status ?? 'UNKNOWN',
    policy: options.policy,
    startDate: execution.startDate?.toISOString(),
    stopDate: execution.stopDate?.toISOString(),
    executionArn: execution.executionArn ?? '',
  }));
}
