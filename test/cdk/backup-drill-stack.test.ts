/**
 * `backup.drill` in the stack: a schedule in the drill's time zone starts the policy's drill state machine;
 * its function runs in the VPC with the database secret, 15 minutes and /tmp for one part, and may only read
 * `backup/<policy>/`; a drill that does not pass fails the execution and the policy's drill alarm watches it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app.ts';
import { extractStateMachineDefinitions } from '../../lib/asl/resolve-definition.ts';
import { deploymentIssues, parseConfig } from '../../lib/config-file.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { RetryableErrorNames } from '../../lib/contracts/payloads.ts';
import { DrillStateNames } from '../../lib/contracts/restore-drill-payloads.ts';
import { policyResourceCount } from '../../lib/contracts/stack-limits.ts';
import { actionsOf, logicalIdOf, type Statement, sandboxConfig, synthesize } from './synth.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

const drilled: PolicyInput = {
  name: 'nightly',
  action: 'backup',
  schedule: 'cron(0 1 * * ? *)',
  backup: {
    tables: ['public.*'],
    partMiB: 1024,
    drill: { schedule: 'cron(0 4 ? * SUN *)', timezone: 'Europe/Berlin' },
  },
} as PolicyInput;
const undrilled: PolicyInput = {
  name: 'weekly',
  action: 'backup',
  schedule: 'cron(0 2 ? * SAT *)',
  backup: { tables: ['public.*'] },
} as PolicyInput;

const config = sandboxConfig({ policies: [drilled, undrilled] });
const { template, json } = synthesize(config);
const resources = template.toJSON().Resources as Record<
  string,
  { Type: string; Properties: Record<string, unknown> }
>;

const drillMachineId = logicalIdOf(
  template,
  'AWS::StepFunctions::StateMachine',
  /^PolicyNightlyDrillStateMachine/,
);
const drillFunctionId = logicalIdOf(
  template,
  'AWS::Lambda::Function',
  /^PolicyNightlyDrillFunction[0-9A-F]{8}$/,
);

function roleStatements(roleIdPattern: RegExp): Statement[] {
  const roleId = logicalIdOf(template, 'AWS::IAM::Role', roleIdPattern);
  return Object.values(resources)
    .filter(
      (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(`"${roleId}"`),
    )
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

describe('backup.drill in the stack', () => {
  it('schedules the drill in its time zone, starting the drill machine with a bounded retry and the DLQ', () => {
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule')).filter(
      (s) => s.Properties.ScheduleExpression === 'cron(0 4 ? * SUN *)',
    );
    expect(schedules).toHaveLength(1);
    const schedule = schedules[0]?.Properties;
    expect(schedule.ScheduleExpressionTimezone).toBe('Europe/Berlin');
    expect(schedule.Target.Arn).toEqual({ Ref: drillMachineId });
    expect(JSON.parse(schedule.Target.Input)).toEqual({ trigger: 'schedule' });
    expect(schedule.Target.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 3 });
    expect(schedule.Target.DeadLetterConfig).toBeDefined();
    // The backup itself keeps its own schedule; the undrilled policy gets no drill.
    // (And the stack's compliance check.)
    template.resourceCountIs('AWS::Scheduler::Schedule', 3 + 1);
    expect(Object.keys(resources).filter((id) => id.startsWith('PolicyWeeklyDrill'))).toEqual([]);
    // The schedules' role may start the drill machine.
    const starts = roleStatements(/^SchedulesRole[0-9A-F]{8}$/).filter((s) =>
      actionsOf(s).includes('states:StartExecution'),
    );
    expect(starts.flatMap((s) => [s.Resource].flat())).toContainEqual({ Ref: drillMachineId });
  });

  it('runs the drill function in the VPC for 15 minutes, with a vCPU and /tmp for one part', () => {
    const fn = resources[drillFunctionId]?.Properties as Record<string, unknown> & {
      Environment: { Variables: Record<string, unknown> };
    };
    expect(fn.VpcConfig).toBeDefined();
    expect(fn.Timeout).toBe(900);
    expect(fn.MemorySize).toBe(1769);
    expect(fn.EphemeralStorage).toEqual({ Size: Math.ceil(1024 * 1.1) + 64 });
    expect(fn.Environment.Variables).toMatchObject({
      LIFECYCLE_DRILL_POLICY: 'nightly',
      DB_SSL: 'verify-full',
      ARCHIVE_BUCKET: { Ref: logicalIdOf(template, 'AWS::S3::Bucket', /^ArchiveBucket[0-9A-F]{8}$/) },
      DB_SECRET_ARN: expect.anything(),
    });
  });

  it('lets the drill function read only backup/<policy>/ and the database secret', () => {
    const statements = roleStatements(/^PolicyNightlyDrillFunctionRole[0-9A-F]{8}$/);
    const s3 = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    expect(s3.flatMap(actionsOf).sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
    const list = s3.find((s) => actionsOf(s).includes('s3:ListBucket'));
    expect(list?.Condition).toEqual({ StringLike: { 's3:prefix': ['backup/nightly/*'] } });
    const get = s3.find((s) => actionsOf(s).includes('s3:GetObject'));
    expect(JSON.stringify(get?.Resource)).toMatch(/"\/backup\/nightly\/\*"\]/);
    expect(statements.flatMap(actionsOf)).toEqual(
      expect.arrayContaining(['secretsmanager:GetSecretValue', 'logs:PutLogEvents']),
    );
    expect(statements.flatMap(actionsOf).filter((a) => /^(s3:(Put|Delete)|rds:|states:)/.test(a))).toEqual(
      [],
    );
  });

  it('fails the execution when the drill does not pass, retrying only transient errors, never a timeout', () => {
    const machine = extractStateMachineDefinitions(json).find((m) => m.logicalId === drillMachineId);
    const definition = machine?.definition as unknown as {
      StartAt: string;
      TimeoutSeconds: number;
      States: Record<string, Record<string, unknown>>;
    };
    expect(definition.StartAt).toBe(DrillStateNames.drill);
    expect(definition.TimeoutSeconds).toBe(3600);
    const drill = definition.States[DrillStateNames.drill] as {
      Resource: string;
      Retry: Array<{ ErrorEquals: string[] }>;
      Next: string;
    };
    expect(drill.Resource).toContain(`:function:${drillFunctionId}`);
    expect(drill.Retry).toEqual([
      expect.objectContaining({
        ErrorEquals: RetryableErrorNames.filter((n) => n !== 'TimeoutError'),
        MaxAttempts: 3,
      }),
    ]);
    expect(drill.Next).toBe(DrillStateNames.passed);
    expect(definition.States[DrillStateNames.passed]).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.status', StringEquals: 'passed', Next: DrillStateNames.succeeded }],
      Default: DrillStateNames.failed,
    });
    expect(definition.States[DrillStateNames.failed]).toMatchObject({
      Type: 'Fail',
      Error: 'RestoreDrillFailed',
      CausePath: '$.cause',
    });
    expect(resources[drillMachineId]?.Properties).toMatchObject({
      StateMachineName: 'PgLifecycle-nightly-drill',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false },
    });
    // Its role may invoke the drill function and nothing else of the stack.
    const invokes = roleStatements(/^PolicyNightlyDrillRole[0-9A-F]{8}$/).filter((s) =>
      actionsOf(s).includes('lambda:InvokeFunction'),
    );
    expect(JSON.stringify(invokes)).toContain(drillFunctionId);
    expect(JSON.stringify(invokes)).not.toMatch(/ChunkFunction|StartFunction/);
  });

  it('raises the policy’s drill alarm on a failed, timed-out or aborted drill', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgLifecycle-nightly-drills-not-succeeded',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [Match.anyValue()],
      OKActions: [Match.anyValue()],
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'failed + timedOut + aborted' }),
        ...['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted'].map((metric) =>
          Match.objectLike({
            MetricStat: Match.objectLike({
              Metric: Match.objectLike({
                MetricName: metric,
                Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: drillMachineId } }],
              }),
            }),
          }),
        ),
      ]),
    });
    expect(JSON.stringify(template.findResources('AWS::CloudWatch::Alarm'))).not.toContain('weekly-drills');
    template.hasOutput('DrillStateMachineArnNightly', { Value: { Ref: drillMachineId } });
  });

  it('counts the drill’s resources and refuses a drill machine name Step Functions would not take', () => {
    const without = synthesize(sandboxConfig({ policies: [undrilled] }));
    const count = (s: { json: Record<string, unknown> }) => Object.keys(s.json.Resources as object).length;
    expect(count({ json }) - count(without)).toBe(policyResourceCount(config, config.policies[0] as never));
    const long = parseConfig(
      {
        sandbox: true,
        policies: [{ ...drilled, name: 'n'.repeat(55) }] as unknown as LifecycleConfigInput['policies'],
      },
      'inline',
    );
    expect(deploymentIssues(long, { stackName: 'PgLifecycle-production' }).join('\n')).toMatch(
      /policies\[0\]\.name: its state machine "PgLifecycle-production-n+-drill" would have 84 characters/,
    );
  });
});

describe('backup.drill and cdk-nag', () => {
  const outdirs: string[] = [];
  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  it('leaves no unacknowledged finding', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-drill-nag-'));
    outdirs.push(outdir);
    const { app } = buildApp(config, { bundling: false, validation: false, outdir });
    expect(() => app.synth()).not.toThrow();
    expect(new AwsSolutionsChecks().validateScope(app).violations.map((v) => v.ruleName)).toEqual([]);
  });
});
