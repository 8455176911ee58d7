import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Stats,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/** Properties of a {@link FailureAlarm}. */
export interface FailureAlarmProps {
  /**
   * The chunk-loop state machines by policy name; each policy's failed, timed-out and aborted executions
   * raise its own alarm.
   */
  readonly stateMachines: ReadonlyMap<string, IStateMachine>;

  /**
   * Prefix of every alarm name; the key policy lets CloudWatch use the key only for alarms named so.
   * @default the stack name
   */
  readonly alarmNamePrefix?: string;

  /**
   * The restore-drill state machines by policy name; each policy's failed (a drill that did not pass), timed-out
   * and aborted drills raise its own drill alarm. @default - none
   */
  readonly drillStateMachines?: ReadonlyMap<string, IStateMachine>;

  /** The schedules' dead-letter queue; any message in it raises a second alarm. @default - no DLQ alarm */
  readonly deadLetterQueue?: IQueue;

  /** Email address subscribed to the alarm topic (confirmed by the recipient). @default - no subscription */
  readonly alarmEmail?: string;

  /** Period of both alarms. @default Duration.minutes(5) */
  readonly period?: Duration;
}

/**
 * Tells a human when a run did not end well. Alarms:
 *
 * - `<prefix>-<policy>-runs-not-succeeded`, one per policy: `ExecutionsFailed + ExecutionsTimedOut +
 *   ExecutionsAborted >= 1` in one period on that policy's state machine;
 * - `<prefix>-<policy>-drills-not-succeeded`, one per backup policy with a drill: the same on its drill machine;
 * - `<prefix>-schedule-dead-letters` (with a DLQ): at least one visible message in the schedules' DLQ.
 *
 * All notify (alarm and OK) an SNS topic that only accepts TLS and is encrypted with a customer-managed,
 * rotated KMS key (CloudWatch cannot publish to a topic under the AWS-managed `aws/sns` key, whose policy
 * cannot grant it). The key lets CloudWatch encrypt for this account's alarms of this stack only
 * (`aws:SourceAccount`, `aws:SourceArn`), so no other account's alarm can use it (confused deputy).
 */
export class FailureAlarm extends Construct {
  /** Topic the alarms notify; subscribe more endpoints to it. */
  public readonly topic: Topic;

  /** Prefix of every alarm name; only alarms named `<prefix>-…` may use the topic's key. */
  public readonly alarmNamePrefix: string;

  /** Failed + timed-out + aborted executions, by policy name. */
  public readonly executionAlarms: ReadonlyMap<string, Alarm>;

  /** Failed + timed-out + aborted restore drills, by policy name. */
  public readonly drillAlarms: ReadonlyMap<string, Alarm>;

  /** Messages in the schedules' dead-letter queue. */
  public readonly deadLetterAlarm?: Alarm;

  public constructor(scope: Construct, id: string, props: FailureAlarmProps) {
    super(scope, id);
    const period = props.period ?? Duration.minutes(5);

    const key = new Key(this, 'TopicKey', {
      description: 'Encrypts pg-lifecycle alarm notifications',
      enableKeyRotation: true,
      // It only protects notifications in flight; nothing stored depends on it.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    const stack = Stack.of(this);
    const prefix = props.alarmNamePrefix ?? stack.stackName;
    this.alarmNamePrefix = prefix;
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisStack',
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: `${prefix}-*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );

    this.topic = new Topic(this, 'Topic', {
      displayName: 'pg-lifecycle alarms',
      masterKey: key,
      enforceSSL: true,
    });
    if (props.alarmEmail !== undefined) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const action = new SnsAction(this.topic);

    const metricOptions = { period, statistic: Stats.SUM };
    const notSucceeded = (
      id: string,
      alarmName: string,
      alarmDescription: string,
      stateMachine: IStateMachine,
    ) => {
      const alarm = new Alarm(this, id, {
        alarmName,
        alarmDescription,
        metric: new MathExpression({
          expression: 'failed + timedOut + aborted',
          label: 'Executions not succeeded',
          period,
          usingMetrics: {
            failed: stateMachine.metricFailed(metricOptions),
            timedOut: stateMachine.metricTimedOut(metricOptions),
            aborted: stateMachine.metricAborted(metricOptions),
          },
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      return alarm;
    };
    const executionAlarms = new Map<string, Alarm>();
    for (const [policy, stateMachine] of props.stateMachines) {
      executionAlarms.set(
        policy,
        notSucceeded(
          `RunsNotSucceeded-${policy}`,
          `${prefix}-${policy}-runs-not-succeeded`,
          `A pg-lifecycle execution of policy ${policy} failed, timed out or was aborted. The run row in ` +
            'lifecycle.runs and the execution history say why.',
          stateMachine,
        ),
      );
    }
    this.executionAlarms = executionAlarms;
    const drillAlarms = new Map<string, Alarm>();
    for (const [policy, stateMachine] of props.drillStateMachines ?? []) {
      drillAlarms.set(
        policy,
        notSucceeded(
          `DrillsNotSucceeded-${policy}`,
          `${prefix}-${policy}-drills-not-succeeded`,
          `A pg-lifecycle restore drill of backup policy ${policy} did not pass, could not run, timed out or was ` +
            'aborted. lifecycle.restore_drills and the execution history say why.',
          stateMachine,
        ),
      );
    }
    this.drillAlarms = drillAlarms;

    if (props.deadLetterQueue !== undefined) {
      this.deadLetterAlarm = new Alarm(this, 'ScheduleDeadLetters', {
        alarmName: `${prefix}-schedule-dead-letters`,
        alarmDescription:
          'EventBridge Scheduler could not start a pg-lifecycle execution (see the messages in the dead-letter queue).',
        metric: props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period,
          statistic: Stats.MAXIMUM,
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      this.deadLetterAlarm.addAlarmAction(action);
      this.deadLetterAlarm.addOkAction(action);
    }
  }
}
