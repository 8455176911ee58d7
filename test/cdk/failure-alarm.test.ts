import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { fixtureConfig, logicalIdOf, pascal, synthesize } from './synth.ts';

const config = fixtureConfig();
const { template } = synthesize(config);
const topicId = logicalIdOf(template, 'AWS::SNS::Topic', 'FailureAlarmTopic');
const keyId = logicalIdOf(template, 'AWS::KMS::Key', 'FailureAlarmTopicKey');
const dlqId = logicalIdOf(template, 'AWS::SQS::Queue', 'SchedulesDeadLetterQueue');
const enabled = config.policies.filter((policy) => policy.enabled).map((policy) => policy.name);
/** Scheduled enabled policies: each also has its overdue alarm (test/cdk/overdue-alarms.test.ts). */
const scheduled = config.policies.filter((policy) => policy.enabled && policy.schedule !== undefined).length;
const stateMachineIdOf = (policy: string) =>
  logicalIdOf(template, 'AWS::StepFunctions::StateMachine', `Policy${pascal(policy)}ChunkLoop`);

const executionMetric = (stateMachineId: string, id: string, metricName: string) => ({
  Id: id,
  ReturnData: false,
  MetricStat: {
    Metric: {
      Namespace: 'AWS/States',
      MetricName: metricName,
      Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: stateMachineId } }],
    },
    Period: 300,
    Stat: 'Sum',
  },
});

describe('failure alarms', () => {
  it('alarms, per policy, when its failed + timed-out + aborted executions reach 1 in 5 minutes', () => {
    // Assess
    for (const policy of enabled) {
      const stateMachineId = stateMachineIdOf(policy);
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: `PgLifecycle-${policy}-runs-not-succeeded`,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: topicId }],
        OKActions: [{ Ref: topicId }],
        Metrics: Match.arrayWith([
          Match.objectLike({ Expression: 'failed + timedOut + aborted', ReturnData: true }),
          executionMetric(stateMachineId, 'failed', 'ExecutionsFailed'),
          executionMetric(stateMachineId, 'timedOut', 'ExecutionsTimedOut'),
          executionMetric(stateMachineId, 'aborted', 'ExecutionsAborted'),
        ]),
      });
    }
  });

  it('alarms when the schedules dead-letter queue holds a message', () => {
    // Assess
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }],
      Statistic: 'Maximum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: topicId }],
    });
    // One per policy, this one, the compliance check's two (test/cdk/compliance-check.test.ts), the overdue ones.
    template.resourceCountIs('AWS::CloudWatch::Alarm', enabled.length + 1 + 2 + scheduled);
  });

  it("notifies a TLS-only topic encrypted with a rotated key that only this account's alarms of this stack may use", () => {
    // Prepare
    const keyPolicy = template.toJSON().Resources[keyId].Properties.KeyPolicy as {
      Statement: Array<{ Principal?: { Service?: string }; Condition?: unknown }>;
    };

    // Assess
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    const forCloudWatch = keyPolicy.Statement.filter(
      (st) => st.Principal?.Service === 'cloudwatch.amazonaws.com',
    );
    expect(forCloudWatch).toEqual([
      {
        Sid: 'CloudWatchAlarmsOfThisStack',
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        Resource: '*',
        Condition: {
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
          ArnLike: {
            'aws:SourceArn': {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':cloudwatch:',
                  { Ref: 'AWS::Region' },
                  ':',
                  { Ref: 'AWS::AccountId' },
                  ':alarm:PgLifecycle-*',
                ],
              ],
            },
          },
        },
      },
    ]);
    // Every alarm the key serves matches that name pattern.
    for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm')))
      expect(alarm.Properties.AlarmName).toMatch(/^PgLifecycle-/);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('subscribes config.alarmEmail, and nobody without it', () => {
    // Prepare
    const { alarmEmail: _ignored, ...withoutEmail } = fixtureConfig();

    // Act
    const { template: silent } = synthesize(withoutEmail);

    // Assess
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
      TopicArn: { Ref: topicId },
    });
    silent.resourceCountIs('AWS::SNS::Subscription', 0);
    expect(Object.keys(silent.findResources('AWS::CloudWatch::Alarm'))).toHaveLength(
      enabled.length + 1 + 2 + scheduled,
    );
  });
});
