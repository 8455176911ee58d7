import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { fixtureConfig, logicalIdOf, synthesize } from './synth.ts';

const { template } = synthesize(fixtureConfig());
const topicId = logicalIdOf(template, 'AWS::SNS::Topic', 'FailureAlarmTopic');
const keyId = logicalIdOf(template, 'AWS::KMS::Key', 'FailureAlarmTopicKey');
const stateMachineId = logicalIdOf(template, 'AWS::StepFunctions::StateMachine', 'ChunkLoop');
const dlqId = logicalIdOf(template, 'AWS::SQS::Queue', 'SchedulesDeadLetterQueue');

const executionMetric = (id: string, metricName: string) => ({
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
  it('alarms when failed + timed-out + aborted executions reach 1 in 5 minutes', () => {
    // Assess
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'failed + timedOut + aborted', ReturnData: true }),
        executionMetric('failed', 'ExecutionsFailed'),
        executionMetric('timedOut', 'ExecutionsTimedOut'),
        executionMetric('aborted', 'ExecutionsAborted'),
      ]),
    });
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
    template.resourceCountIs('AWS::CloudWatch::Alarm', 2);
  });

  it('notifies a TLS-only topic encrypted with a rotated key CloudWatch may use', () => {
    // Assess
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
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
    expect(Object.keys(silent.findResources('AWS::CloudWatch::Alarm'))).toHaveLength(2);
  });
});
