/**
 * The compliance check's bundle, built as `cdk deploy` builds it (esbuild, bundling on) for a stack holding only
 * the check: the ledger migrations ship beside it in sql/, and the bundled handler, run in a process of its own
 * against an empty database, finds them there, migrates the ledger (sql/014 included) and records the deployed
 * scheduled policies' first sighting. (test/cdk/bundling.test.ts checks every handler's bundle of the full
 * stack loads and carries sql/; this one runs the check's.)
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import { SecurityGroup, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { listMigrations } from '../../functions/adapters/migrations.ts';
import { ComplianceCheck } from '../../lib/constructs/compliance-check.ts';
import { LAMBDA_STAR_ONLY_GRANTS } from '../../lib/constructs/lifecycle-function.ts';
import { StarOnlyManagedPolicy } from '../../lib/constructs/wildcard-confined-role.ts';
import {
  COMPLIANCE_POLICIES_ENV,
  COMPLIANCE_STACK_ENV,
  type CompliancePolicy,
  encodeCompliancePolicies,
} from '../../lib/contracts/compliance-check.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const run = promisify(execFile);
const outdir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-compliance-bundle-'));
let database: TestDatabase | undefined;
afterAll(async () => {
  rmSync(outdir, { recursive: true, force: true });
  await database?.drop();
});

const policies: CompliancePolicy[] = [
  { name: 'orders-archive', action: 'archive', schedule: 'cron(15 2 * * ? *)', timezone: 'Europe/Paris' },
  { name: 'sessions-purge', action: 'purge', schedule: 'rate(1 hour)', timezone: 'UTC' },
  { name: 'gdpr', action: 'subjects', timezone: 'UTC' },
];

/** A stack holding the compliance check alone, synthesized with bundling on; the check's asset directory. */
function bundleComplianceCheck(): string {
  const app = new App({ outdir });
  const stack = new Stack(app, 'ComplianceBundle', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = new Vpc(stack, 'Vpc', {
    maxAzs: 1,
    natGateways: 0,
    subnetConfiguration: [{ name: 'isolated', subnetType: SubnetType.PRIVATE_ISOLATED }],
  });
  new ComplianceCheck(stack, 'ComplianceCheck', {
    policies,
    vpc,
    subnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
    securityGroup: new SecurityGroup(stack, 'SecurityGroup', { vpc }),
    secret: new Secret(stack, 'Secret'),
    logRetention: RetentionDays.ONE_WEEK,
    sharedStarOnly: new StarOnlyManagedPolicy(stack, 'StarOnly', {
      grants: LAMBDA_STAR_ONLY_GRANTS,
      description: 'test',
    }),
    scheduleRole: new Role(stack, 'ScheduleRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com'),
    }),
    deadLetterQueue: new Queue(stack, 'DeadLetters'),
    alarmTopic: new Topic(stack, 'Alarms'),
    alarmNamePrefix: 'ComplianceBundle',
  });
  const template = app.synth().getStackByName(stack.stackName).template as {
    Resources: Record<string, { Type: string; Properties: { Code?: { S3Key?: string } } }>;
  };
  const dirs = Object.entries(template.Resources)
    .filter(([id, resource]) => resource.Type === 'AWS::Lambda::Function' && id.startsWith('ComplianceCheck'))
    .map(([, resource]) => join(outdir, `asset.${resource.Properties.Code?.S3Key?.replace(/\.zip$/, '')}`));
  expect(dirs).toHaveLength(1);
  return dirs[0] as string;
}

describe("the compliance check's bundle", () => {
  // Bundling and a child process: generous when the other bundling test (test/cdk/bundling.test.ts) runs beside it.
  it('carries the ledger migrations and, run against an empty database, migrates it and records first sightings', async () => {
    // Prepare
    const dir = bundleComplianceCheck();
    database = await createTestDatabase('compliance_bundle');
    const bundle = pathToFileURL(join(dir, 'index.mjs')).href;
    const context = {
      functionName: 'ComplianceBundle-ComplianceCheck',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:ComplianceBundle-ComplianceCheck',
      memoryLimitInMB: '256',
      awsRequestId: '00000000-0000-4000-8000-000000000000',
    };
    const script =
      `const { handler } = await import(${JSON.stringify(bundle)});` +
      `const context = { ...${JSON.stringify(context)}, getRemainingTimeInMillis: () => 110000 };` +
      `const result = await handler({ trigger: 'schedule' }, context);` +
      "process.stdout.write('\\n' + JSON.stringify(result) + '\\n');";

    // Act: a process of its own, the bundle's directory its only source of sql/.
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 120_000,
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: database.url,
        [COMPLIANCE_POLICIES_ENV]: encodeCompliancePolicies(policies),
        [COMPLIANCE_STACK_ENV]: 'ComplianceBundle',
        POWERTOOLS_SERVICE_NAME: 'pg-lifecycle',
        POWERTOOLS_METRICS_NAMESPACE: 'PgLifecycle',
        POWERTOOLS_METRICS_DISABLED: 'true',
        POWERTOOLS_LOG_LEVEL: 'SILENT',
        POWERTOOLS_TRACE_ENABLED: 'false',
      },
    });

    // Assess
    expect(existsSync(join(dir, 'index.mjs'))).toBe(true);
    expect(readdirSync(join(dir, 'sql')).sort()).toEqual(listMigrations().map((m) => `${m.version}.sql`));
    expect(readdirSync(join(dir, 'sql'))).toContain('014_policy_first_seen.sql');
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    expect(result).toMatchObject({
      policies: 3,
      overduePolicies: [],
      firstSeen: ['orders-archive', 'sessions-purge'],
    });
    const { rows: applied } = await database.pool.query<{ version: string }>(
      'SELECT version FROM lifecycle.schema_migrations ORDER BY version',
    );
    expect(applied.map((r) => r.version)).toEqual(listMigrations().map((m) => m.version));
    const { rows: seen } = await database.pool.query<{ policy: string }>(
      'SELECT policy FROM lifecycle.policy_first_seen ORDER BY policy',
    );
    expect(seen.map((r) => r.policy)).toEqual(['orders-archive', 'sessions-purge']);
  }, 180_000);
});
