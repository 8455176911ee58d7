import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Stats,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/** Properties of a {@link FailureAlarm}. */
export interface FailureAlarmProps {
  /** The chunk-loop state machine whose failed, timed-out and aborted executions raise the alarm. */
  readonly stateMachine: IStateMachine;

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
 * - `RunsNotSucceeded`: `ExecutionsFailed + ExecutionsTimedOut + ExecutionsAborted >= 1` in one period;
 * - `ScheduleDeadLetters` (with a DLQ): at least one visible message in the schedules' dead-letter queue.
 *
 * Both notify (alarm and OK) an SNS topic that only accepts TLS and is encrypted with a customer-managed,
 * rotated KMS key (CloudWatch cannot publish to a topic under the AWS-managed `aws/sns` key, whose policy
 * cannot grant it).
 */
export class FailureAlarm extends Construct {
  /** Topic the alarms notify; subscribe more endpoints to it. */
  public readonly topic: Topic;

  /** Failed + timed-out + aborted executions. */
  public readonly executionAlarm: Alarm;

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
    key.grant(new ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');

    this.topic = new Topic(this, 'Topic', {
      displayName: 'pg-lifecycle alarms',
      masterKey: key,
      enforceSSL: true,
    });
    if (props.alarmEmail !== undefined) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const action = new SnsAction(this.topic);

    const metricOptions = { period, statistic: Stats.SUM };
    this.executionAlarm = new Alarm(this, 'RunsNotSucceeded', {
      alarmDescription:
        'A pg-lifecycle execution failed, timed out or was aborted. The run row in lifecycle.runs and the ' +
        'execution history say why.',
      metric: new MathExpression({
        expression: 'failed + timedOut + aborted',
        label: 'Executions not succeeded',
        period,
        usingMetrics: {
          failed: props.stateMachine.metricFailed(metricOptions),
          timedOut: props.stateMachine.metricTimedOut(metricOptions),
          aborted: props.stateMachine.metricAborted(metricOptions),
        },
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.executionAlarm.addAlarmAction(action);
    this.executionAlarm.addOkAction(action);

    if (props.deadLetterQueue !== undefined) {
      this.deadLetterAlarm = new Alarm(this, 'ScheduleDeadLetters', {
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
