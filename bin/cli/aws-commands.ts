/**
 * `start` and `status` against the Step Functions API. `start` sends exactly the input the policy's
 * schedule sends (buildExecutionInput), with trigger "manual".
 */
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { UsageError } from './errors.ts';

export function requireStateMachineArn(arn: string | undefined): string {
  const value = arn ?? process.env.PG_LIFECYCLE_STATE_MACHINE_ARN;
  if (!value)
    throw new UsageError(
      'the state machine ARN is needed: --state-machine-arn ARN or PG_LIFECYCLE_STATE_MACHINE_ARN (stack output StateMachineArn)',
    );
  if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$/.test(value)) {
    throw new UsageError(`${value} is not a Step Functions state machine ARN`);
  }
  return value;
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

/** Recent executions, newest first; the policy is read from each execution's input. */
export async function listExecutions(
  sfn: SFNClient,
  options: { stateMachineArn: string; policy?: string | undefined; limit: number },
): Promise<ExecutionStatus[]> {
  const listed = await sfn.send(
    new ListExecutionsCommand({
      stateMachineArn: options.stateMachineArn,
      maxResults: Math.min(100, options.limit * 3),
    }),
  );
  const statuses: ExecutionStatus[] = [];
  for (const execution of listed.executions ?? []) {
    if (statuses.length >= options.limit) break;
    const described = await sfn.send(new DescribeExecutionCommand({ executionArn: execution.executionArn }));
    let policy: string | undefined;
    try {
      policy = (JSON.parse(described.input ?? '{}') as { policy?: { name?: string } }).policy?.name;
    } catch {
      policy = undefined;
    }
    if (options.policy && policy !== options.policy) continue;
    statuses.push({
      name: execution.name ?? '',
      status: execution.status ?? 'UNKNOWN',
      policy,
      startDate: execution.startDate?.toISOString(),
      stopDate: execution.stopDate?.toISOString(),
      executionArn: execution.executionArn ?? '',
    });
  }
  return statuses;
}
