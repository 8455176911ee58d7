import { Duration, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { LifecycleConfig, Policy } from '../contracts/config.ts';
import { contractOf, policySubject } from '../contracts/policy.ts';
import type { DrillInput } from '../contracts/restore-drill-payloads.ts';
import { buildExecutionInput } from '../execution-input.ts';

/** Properties of {@link PolicySchedules}. */
export interface PolicySchedulesProps {
  /** The validated config; every enabled policy with a `schedule` gets one schedule. */
  readonly config: LifecycleConfig;

  /** The chunk-loop state machine of each enabled policy, by policy name; a schedule starts its policy's. */
  readonly stateMachines: ReadonlyMap<string, IStateMachine>;

  /**
   * The restore-drill state machine of each enabled backup policy with `backup.drill`, by policy name; its
   * drill schedule starts it. @default - none
   */
  readonly drillStateMachines?: ReadonlyMap<string, IStateMachine>;

  /**
   * How long Scheduler keeps trying to start an execution before the event goes to the dead-letter
   * queue. A run that starts an hour late is still useful; one that starts the next day overlaps the next.
   * @default Duration.hours(1)
   */
  readonly maxEventAge?: Duration;

  /**
   * Retries of a failed StartExecution (throttling, service errors). Scheduler's own default is 185.
   * @default 3
   */
  readonly retryAttempts?: number;
}

/**
 * One EventBridge Scheduler schedule per enabled, scheduled policy. Each starts its policy's chunk-loop
 * state machine with the policy's `ExecutionInput` (trigger `schedule`, built by `buildExecutionInput`,
 * the same function the CLI uses), in the policy's time zone, with a bounded retry policy and a shared
 * encrypted dead-letter queue for events that could not be delivered. A backup policy with `backup.drill` also
 * gets a drill schedule starting its restore-drill machine (input `{ "trigger": "schedule" }`) in the drill's
 * time zone. All schedules share one role (one per target would cost two resources per policy) that may start
 * exactly these state machines.
 */
export class PolicySchedules extends Construct {
  /** Schedules by policy name. */
  public readonly schedules: ReadonlyMap<string, Schedule>;

  /** Restore-drill schedules by policy name. */
  public readonly drillSchedules: ReadonlyMap<string, Schedule>;

  /** Where Scheduler puts start requests it gave up on. */
  public readonly deadLetterQueue: Queue;

  /** The role every schedule of the stack uses (the compliance check's too). */
  public readonly role: Role;

  public constructor(scope: Construct, id: string, props: PolicySchedulesProps) {
    super(scope, id);

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter queue of the EventBridge Scheduler schedules (target ' +
        'DeadLetterConfig); nothing consumes it automatically, an alarm on its depth notifies operators.',
    });

    const account = Stack.of(this).account;
    const role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
      }),
      description:
        'EventBridge Scheduler: starts the pg-lifecycle state machine of each scheduled policy, invokes the compliance check',
    });
    this.role = role;
    const schedules = new Map<string, Schedule>();
    for (const policy of props.config.policies) {
      if (!policy.enabled || policy.schedule === undefined) continue;
      const stateMachine = props.stateMachines.get(policy.name);
      if (!stateMachine) throw new Error(`policy ${policy.name} has no state machine to schedule`);
      const target = new StepFunctionsStartExecution(stateMachine, {
        role,
        input: ScheduleTargetInput.fromObject(
          buildExecutionInput(props.config, policy.name, 'schedule', false),
        ),
        deadLetterQueue: this.deadLetterQueue,
        maxEventAge: props.maxEventAge ?? Duration.hours(1),
        retryAttempts: props.retryAttempts ?? 3,
      });
      schedules.set(
        policy.name,
        new Schedule(this, `Schedule-${policy.name}`, {
          schedule: scheduleExpression(policy),
          target,
          description: `pg-lifecycle ${policy.action} of ${policySubject(policy)} (policy ${policy.name})`,
        }),
      );
    }
    this.schedules = schedules;

    const drillSchedules = new Map<string, Schedule>();
    for (const policy of props.config.policies) {
      const drill = policy.enabled ? contractOf(policy).restoreDrill?.(policy) : undefined;
      if (!drill) continue;
      const stateMachine = props.drillStateMachines?.get(policy.name);
      if (!stateMachine) throw new Error(`policy ${policy.name} has no drill state machine to schedule`);
      const input: DrillInput = { trigger: 'schedule' };
      drillSchedules.set(
        policy.name,
        new Schedule(this, `DrillSchedule-${policy.name}`, {
          schedule: ScheduleExpression.expression(drill.schedule, TimeZone.of(drill.timezone)),
          target: new StepFunctionsStartExecution(stateMachine, {
            role,
            input: ScheduleTargetInput.fromObject(input),
            deadLetterQueue: this.deadLetterQueue,
            maxEventAge: props.maxEventAge ?? Duration.hours(1),
            retryAttempts: props.retryAttempts ?? 3,
          }),
          description: `pg-lifecycle restore drill of the latest backup of policy ${policy.name}`,
        }),
      );
    }
    this.drillSchedules = drillSchedules;
  }
}

/** `cron(...)` is read in the policy's time zone; `rate(...)` ignores it. */
function scheduleExpression(policy: Policy): ScheduleExpression {
  if (policy.schedule === undefined) throw new Error(`policy ${policy.name} has no schedule`);
  return ScheduleExpression.expression(policy.schedule, TimeZone.of(policy.timezone));
}
