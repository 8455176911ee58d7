import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { fixtureConfig, logicalIdOf, pascal, synthesize } from './synth.ts';

const config = fixtureConfig();
const { template } = synthesize(config);
const stateMachineIdOf = (policy: string) =>
  logicalIdOf(template, 'AWS::StepFunctions::StateMachine', `Policy${pascal(policy)}ChunkLoop`);
const SCHEDULED = [
  ['orders-archive', 'cron(15 2 * * ? *)'],
  ['events-archive', 'rate(6 hours)'],
  ['sessions-purge', 'cron(0 * * * ? *)'],
] as const;
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
    // Plus the hourly compliance check's (test/cdk/compliance-check.test.ts).
    template.resourceCountIs('AWS::Scheduler::Schedule', 3 + 1);
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

  it("starts each policy's own state machine with a bounded retry policy and a dead-letter queue", () => {
    // Assess
    for (const [policy, expression] of SCHEDULED)
      expect((scheduleOf(expression).Target as { Arn: unknown }).Arn).toEqual({
        Ref: stateMachineIdOf(policy),
      });
    template.allResourcesProperties('AWS::Scheduler::Schedule', {
      Target: {
        Arn: Match.anyValue(),
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

  it("lets one scheduler role start the scheduled policies' state machines, and nothing else", () => {
    // Prepare
    const roleId = logicalIdOf(template, 'AWS::IAM::Role', /^SchedulesRole[0-9A-F]{8}$/);
    const policies = Object.values(
      template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }),
    );

    // Assess
    for (const schedule of Object.values(template.findResources('AWS::Scheduler::Schedule')))
      expect(schedule.Properties.Target.RoleArn).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
    const statements = policies.flatMap((policy) => policy.Properties.PolicyDocument.Statement);
    const starts = statements.filter((st: { Action: string }) => st.Action === 'states:StartExecution');
    const resources = starts.flatMap((st: { Resource: unknown }) => [st.Resource].flat());
    expect(resources.map((r: unknown) => JSON.stringify(r)).sort()).toEqual(
      SCHEDULED.map(([policy]) => JSON.stringify({ Ref: stateMachineIdOf(policy) })).sort(),
    );
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: { Service: 'scheduler.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ],
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
