/**
 * The hourly compliance check in the stack: a function in the VPC that reads the ledger with the database
 * secret and nothing else, told the deployed policies (name, action, schedule) in its environment; a
 * schedule on the stack's shared role and dead-letter queue; two alarms on the stack's topic, the overdue one
 * also firing when the check stops publishing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app.ts';
import { parseConfig } from '../../lib/config-file.ts';
import {
  COMPLIANCE_POLICIES_ENV,
  COMPLIANCE_STACK_ENV,
  compliancePolicies,
  decodeCompliancePolicies,
} from '../../lib/contracts/compliance-check.ts';
import type { LifecycleConfig, LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { actionsOf, fixtureConfig, logicalIdOf, type Statement, sandboxConfig, synthesize } from './synth.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

const subjects = {
  name: 'gdpr',
  action: 'subjects',
  subjects: {
    keyName: 'user_id',
    tables: [{ table: 'public.users', keyColumn: 'id', action: 'delete' }],
  },
} as PolicyInput;

const config = parseConfig(
  {
    ...(fixtureConfig() as unknown as LifecycleConfigInput),
    policies: [...fixtureConfig().policies, subjects],
  },
  'fixture with a subjects policy',
);
const { template } = synthesize(config);
const resources = template.toJSON().Resources as Record<
  string,
  { Type: string; Properties: Record<string, unknown> }
>;
const functionId = logicalIdOf(template, 'AWS::Lambda::Function', /^ComplianceCheckFunction[0-9A-F]{8}$/);
const fn = resources[functionId]?.Properties as Record<string, unknown> & {
  Environment: { Variables: Record<string, unknown> };
};
const topicId = logicalIdOf(template, 'AWS::SNS::Topic', 'FailureAlarmTopic');
const dlqId = logicalIdOf(template, 'AWS::SQS::Queue', 'SchedulesDeadLetterQueue');
const scheduleRoleId = logicalIdOf(template, 'AWS::IAM::Role', /^SchedulesRole[0-9A-F]{8}$/);

/** Every statement of the policies attached to a role (inline policies, not the shared managed one). */
function statementsOfRole(roleId: string): Statement[] {
  return Object.values(resources)
    .filter(
      (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(`"${roleId}"`),
    )
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

function alarmNamed(name: string): Record<string, unknown> {
  const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter(
    (a) => a.Properties.AlarmName === name,
  );
  expect(alarms, name).toHaveLength(1);
  return alarms[0]?.Properties as Record<string, unknown>;
}

const checkDimensions = [
  { Name: 'service', Value: 'pg-lifecycle' },
  { Name: 'stack', Value: 'PgLifecycle' },
];

describe('the compliance check in the stack', () => {
  it('runs a function in the VPC with the database secret, the stack name and the deployed policies', () => {
    expect(fn.VpcConfig).toBeDefined();
    expect(fn.Timeout).toBe(120);
    expect(fn.Environment.Variables).toMatchObject({
      DB_SECRET_ARN: config.database?.secretArn,
      DB_SSL: 'verify-full',
      POWERTOOLS_METRICS_NAMESPACE: 'PgLifecycle',
      POWERTOOLS_SERVICE_NAME: 'pg-lifecycle',
      [COMPLIANCE_STACK_ENV]: 'PgLifecycle',
    });
    // What the handler reads back: the enabled policies that can be overdue or have requests, nothing more
    // (no table, filter or retention); manual-purge (no schedule) and paused-purge (disabled) are left out.
    const policies = decodeCompliancePolicies(fn.Environment.Variables[COMPLIANCE_POLICIES_ENV] as string);
    expect(policies).toEqual([
      { name: 'orders-archive', action: 'archive', schedule: 'cron(15 2 * * ? *)', timezone: 'Europe/Paris' },
      { name: 'events-archive', action: 'archive', schedule: 'rate(6 hours)', timezone: 'UTC' },
      { name: 'sessions-purge', action: 'purge', schedule: 'cron(0 * * * ? *)', timezone: 'UTC' },
      { name: 'gdpr', action: 'subjects', timezone: 'UTC' },
    ]);
    expect(policies).toEqual(compliancePolicies(config));
    expect(String(fn.Environment.Variables[COMPLIANCE_POLICIES_ENV])).not.toMatch(/table|retention|filter/);
  });

  it('invokes it every hour through the shared schedule role, with a bounded retry and the dead-letter queue', () => {
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule')).filter((s) =>
      JSON.stringify(s.Properties.Target.Arn).includes(functionId),
    );
    expect(schedules).toHaveLength(1);
    const schedule = schedules[0]?.Properties;
    expect(schedule.ScheduleExpression).toBe('rate(1 hour)');
    expect(schedule.State).toBe('ENABLED');
    expect(schedule.Target).toMatchObject({
      Arn: { 'Fn::GetAtt': [functionId, 'Arn'] },
      RoleArn: { 'Fn::GetAtt': [scheduleRoleId, 'Arn'] },
      Input: JSON.stringify({ trigger: 'schedule' }),
      RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 3 },
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlqId, 'Arn'] } },
    });
    // The shared role may invoke this function (and its versions), no other.
    const invokes = statementsOfRole(scheduleRoleId).filter((s) =>
      actionsOf(s).includes('lambda:InvokeFunction'),
    );
    expect(invokes.flatMap((s) => [s.Resource].flat())).toEqual([
      { 'Fn::GetAtt': [functionId, 'Arn'] },
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [functionId, 'Arn'] }, ':*']] },
    ]);
  });

  it('alarms into the topic when a policy is overdue, or when the check publishes nothing for two hours', () => {
    const alarm = alarmNamed('PgLifecycle-compliance-policy-overdue');
    expect(alarm).toMatchObject({
      Namespace: 'PgLifecycle',
      MetricName: 'OverduePolicies',
      Dimensions: checkDimensions,
      Statistic: 'Maximum',
      Period: 3600,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
      TreatMissingData: 'breaching',
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
    });
  });

  it('alarms into the topic when a subject request is overdue or failed, keeping its state without data', () => {
    const alarm = alarmNamed('PgLifecycle-compliance-subject-requests');
    const metric = (id: string, metricName: string) => ({
      Id: id,
      ReturnData: false,
      MetricStat: {
        Metric: { Namespace: 'PgLifecycle', MetricName: metricName, Dimensions: checkDimensions },
        Period: 3600,
        Stat: 'Maximum',
      },
    });
    expect(alarm).toMatchObject({
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      TreatMissingData: 'ignore',
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
    });
    expect(alarm.Metrics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Expression: 'overdue + failed', ReturnData: true }),
        metric('overdue', 'SubjectRequestsOverdue'),
        metric('failed', 'SubjectRequestsFailed'),
      ]),
    );
  });

  it('lets the function read the database secret and write its logs, nothing else (metrics go out as EMF)', () => {
    const roleId = logicalIdOf(template, 'AWS::IAM::Role', /^ComplianceCheckFunctionRole[0-9A-F]{8}$/);
    const statements = statementsOfRole(roleId);
    expect([...new Set(statements.flatMap(actionsOf))].sort()).toEqual([
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:DescribeSecret',
      'secretsmanager:GetSecretValue',
    ]);
    for (const statement of statements) expect(statement.Resource).not.toBe('*');
    const secret = statements.find((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'));
    expect(JSON.stringify(secret?.Resource)).toContain('pg-lifecycle/orders-db');
    // The "*"-only actions (ENIs, X-Ray) come from the stack's shared managed policy, as for every function.
    const role = resources[roleId]?.Properties as { ManagedPolicyArns: unknown[] };
    expect(JSON.stringify(role.ManagedPolicyArns)).toContain('FunctionStarOnlyActions');
  });

  it('decrypts a secret under a customer-managed key only through Secrets Manager', () => {
    const keyArn = 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555';
    const withKey = fixtureConfig();
    const { template: keyed } = synthesize({
      ...withKey,
      database: {
        ...(withKey.database as NonNullable<LifecycleConfig['database']>),
        secretKmsKeyArn: keyArn,
      },
    });
    const keyedResources = keyed.toJSON().Resources as typeof resources;
    const roleId = logicalIdOf(keyed, 'AWS::IAM::Role', /^ComplianceCheckFunctionRole[0-9A-F]{8}$/);
    const statements = Object.values(keyedResources)
      .filter(
        (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(`"${roleId}"`),
      )
      .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    expect(statements.filter((s) => actionsOf(s).includes('kms:Decrypt'))).toEqual([
      expect.objectContaining({
        Resource: keyArn,
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': expect.anything() } } },
      }),
    ]);
  });

  it('refuses at synth a policy list past what the environment holds', () => {
    // 20: within the stack's resource limit (each scheduled policy also has its overdue alarm), past the 3 KB.
    const many = Array.from(
      { length: 20 },
      (_, i) =>
        ({
          name: `${'p'.repeat(50)}-${String(i).padStart(2, '0')}`,
          action: 'purge',
          table: `t_${i}`,
          timeColumn: 'created_at',
          retention: 'P1Y',
          schedule: 'cron(0 3 ? * MON-FRI *)',
          timezone: 'America/Argentina/Buenos_Aires',
        }) as PolicyInput,
    );
    expect(() => synthesize(parseConfig({ sandbox: true, policies: many }, 'many'))).toThrow(
      /LIFECYCLE_COMPLIANCE_POLICIES would hold \d+ bytes \(20 policies\)/,
    );
  });
});

describe('the compliance check and cdk-nag', () => {
  const outdirs: string[] = [];
  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['an existing database and a subjects policy', config],
    ['the sandbox database', sandboxConfig()],
  ])('leaves no unacknowledged finding with %s', (_name, nagConfig) => {
    const outdir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-compliance-nag-'));
    outdirs.push(outdir);
    const { app } = buildApp(nagConfig, { bundling: false, validation: false, outdir });
    expect(() => app.synth()).not.toThrow();
    const direct = new AwsSolutionsChecks().validateScope(app);
    expect(direct.violations.map((violation) => violation.ruleName)).toEqual([]);
  });
});
