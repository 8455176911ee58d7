import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { fixtureConfig, logicalIdOf, synthesize } from './synth.ts';

const config = fixtureConfig();
const { template } = synthesize(config);
const stateMachineId = logicalIdOf(template, 'AWS::StepFunctions::StateMachine', 'ChunkLoop');
const dlqId = logicalIdOf(template, 'AWS::SQS::Queue', 'SchedulesDeadLetterQueue');

function scheduleOf(expression: string): Record<string, unknown> {
  const matches = Object.values(
    template.findResources('AWS::Scheduler::Schedule', { Properties: { ScheduleExpression: expression } }),
  );
  expect(matches).toHaveLength(1);
  return (matches[0] as { Properties: Record<string, unknown> }).Properties;
}

describe('policy schedules', () => {
  it('creates one schedule per enabled policy with a schedule (not for manual or disabled ones)', () => {
    // Assess
    template.resourceCountIs('AWS::Scheduler::Schedule', 3);
    expect(JSON.stringify(template.findResources('AWS::Scheduler::Schedule'))).not.toMatch(
      /paused-purge|manual-purge/,
    );
  });

  it('reads cron in the policy time zone (UTC unless set)', () => {
    // Assess
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(15 2 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Paris',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 * * * ? *)',
      ScheduleExpressionTimezone: 'UTC',
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(6 hours)',
      ScheduleExpressionTimezone: 'UTC',
    });
  });

  it('starts the chunk loop with a bounded retry policy and a dead-letter queue', () => {
    // Assess
    template.allResourcesProperties('AWS::Scheduler::Schedule', {
      Target: {
        Arn: { Ref: stateMachineId },
        RoleArn: Match.anyValue(),
        RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 3 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlqId, 'Arn'] } },
        Input: Match.anyValue(),
      },
    });
  });

  it('sends the same ExecutionInput the CLI builds (trigger schedule, not a dry run)', () => {
    // Prepare
    const target = scheduleOf('cron(15 2 * * ? *)').Target as { Input: string };

    // Act
    const input: unknown = JSON.parse(target.Input);

    // Assess
    expect(input).toEqual(buildExecutionInput(config, 'orders-archive', 'schedule', false));
  });

  it('lets the scheduler role start executions of this state machine only', () => {
    // Assess
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          { Action: 'states:StartExecution', Effect: 'Allow', Resource: { Ref: stateMachineId } },
        ]),
      },
    });
  });

  it('keeps undeliverable starts in an encrypted, TLS-only queue for 14 days', () => {
    // Assess
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: dlqId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});
