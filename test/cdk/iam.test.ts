import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { glueTableName } from '../../functions/core/glue-table.ts';
import { parseConfig } from '../../lib/config-file.ts';
import {
  actionsOf,
  cloudWatchThrottleConfig,
  fixtureConfig,
  logicalIdOf,
  pascal,
  roleStatements,
  STEPS,
  type Statement,
  sandboxConfig,
  synthesize,
} from './synth.ts';

const config = fixtureConfig();
const { template } = synthesize(config);
const bucketId = logicalIdOf(template, 'AWS::S3::Bucket', /^ArchiveBucket[0-9A-F]{8}$/);
const secretArn = config.database?.secretArn;
const objectsOf = (policy: string) => ({
  'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/archive/${policy}/*`]],
});
const ENABLED = ['orders-archive', 'events-archive', 'sessions-purge', 'manual-purge'];

const s3Of = (statements: Statement[]) =>
  statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('s3:')));

/** Every statement of every IAM policy (inline and managed) in a template. */
function allStatements(tmpl: typeof template): Statement[] {
  return ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'].flatMap((type) =>
    Object.values(tmpl.findResources(type)).flatMap(
      (policy) => policy.Properties.PolicyDocument.Statement as Statement[],
    ),
  );
}

/** Actions that AWS only authorizes on `*`. */
const STAR_ONLY_ACTIONS = new Set([
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
  'logs:CreateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:DescribeLogGroups',
  'logs:DescribeResourcePolicies',
  'logs:GetLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:UpdateLogDelivery',
  'cloudwatch:GetMetricData',
]);

describe('least-privilege IAM', () => {
  it('grants "*" resources only for actions that support nothing else, and no wildcard action', () => {
    // Act
    const statements = allStatements(synthesize(cloudWatchThrottleConfig()).template);
    const starActions = statements
      .filter((statement) => statement.Effect === 'Allow' && [statement.Resource].flat().includes('*'))
      .flatMap(actionsOf);

    // Assess
    expect(starActions.length).toBeGreaterThan(0);
    expect(starActions.filter((action) => !STAR_ONLY_ACTIONS.has(action))).toEqual([]);
    expect(statements.flatMap(actionsOf).filter((action) => action.includes('*'))).toEqual([]);
  });

  it('gives every enabled policy its own four functions and roles, and a disabled one none', () => {
    // Assess
    for (const policy of ENABLED) {
      for (const step of STEPS)
        logicalIdOf(
          template,
          'AWS::IAM::Role',
          new RegExp(`^Policy${pascal(policy)}${step}FunctionRole[0-9A-F]{8}$`),
        );
    }
    // Plus the stack's compliance check (test/cdk/compliance-check.test.ts).
    template.resourceCountIs('AWS::Lambda::Function', 4 * ENABLED.length + 1);
    expect(JSON.stringify(template.toJSON())).not.toMatch(/PausedPurge/);
  });

  it('lets every function read the one database secret, by its full ARN', () => {
    // Assess
    expect(secretArn).toBeDefined();
    for (const policy of ENABLED) {
      for (const step of STEPS) {
        expect(roleStatements(template, policy, step)).toContainEqual({
          Effect: 'Allow',
          Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
          Resource: secretArn,
        });
      }
    }
  });

  it('lets the functions decrypt a secret under a customer-managed key only through Secrets Manager', () => {
    // Prepare
    const keyArn = 'arn:aws:kms:eu-west-1:123456789012:key/0b5d9c1e-0000-4000-8000-000000000000';
    const withKey = {
      ...config,
      database: { ...(config.database as NonNullable<typeof config.database>), secretKmsKeyArn: keyArn },
    };
    // Act
    const { template: keyed } = synthesize(withKey);
    // Assess
    const decrypts = allStatements(keyed).filter((st) => actionsOf(st).includes('kms:Decrypt'));
    // Every step function's, and the compliance check's.
    expect(decrypts).toHaveLength(4 * ENABLED.length + 1);
    for (const statement of decrypts) {
      expect(statement.Resource).toBe(keyArn);
      expect(JSON.stringify(statement.Condition)).toContain('secretsmanager.');
    }
    // Without a key, no KMS permission for any function.
    const functionStatements = ENABLED.flatMap((policy) =>
      STEPS.flatMap((step) => roleStatements(template, policy, step)),
    );
    expect(functionStatements.flatMap(actionsOf).filter((action) => action.startsWith('kms:'))).toEqual([]);
  });

  it("bounds each archive policy's S3 access to its own prefix, step by step", () => {
    for (const policy of ['orders-archive', 'events-archive']) {
      const objects = objectsOf(policy);
      // Start lists only its prefix (its bucket check): ListBucket with an s3:prefix condition.
      expect(s3Of(roleStatements(template, policy, 'Start'))).toEqual([
        {
          Sid: 'CheckArchivePrefix',
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] },
          Condition: { StringLike: { 's3:prefix': [`archive/${policy}/*`] } },
        },
      ]);
      // Every deleter lists the versions of the keys it deletes, on its own prefix only: a stale upload's
      // Chunk and the orphans' Finish / RecordFailure delete every version (functions/adapters/object-versions.ts).
      const ownVersions = {
        Sid: 'ListOwnObjectVersions',
        Effect: 'Allow',
        Action: ['s3:ListBucket', 's3:ListBucketVersions'],
        Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': [`archive/${policy}/*`] } },
      };
      expect(s3Of(roleStatements(template, policy, 'Chunk'))).toEqual([
        {
          Sid: 'WriteVerifyAndLockArchives',
          Effect: 'Allow',
          Action: [
            's3:AbortMultipartUpload',
            's3:DeleteObject',
            's3:DeleteObjectVersion',
            's3:GetObject',
            's3:PutObject',
          ],
          Resource: objects,
        },
        ownVersions,
      ]);
      for (const step of ['Finish', 'RecordFailure'] as const) {
        expect(s3Of(roleStatements(template, policy, step)), step).toEqual([
          {
            Sid: 'RemoveOrphansAndLockArchives',
            Effect: 'Allow',
            // GetObject: the HEAD that proves no version of a deleted orphan is left.
            Action: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObject'],
            Resource: objects,
          },
          ownVersions,
        ]);
      }
    }
  });

  it('lets only the deleters delete or list object versions, each on its own prefix and never the whole bucket', () => {
    // Prepare: every statement granting a version action, or a listing, to any role of the stack.
    const versionActions = ['s3:DeleteObjectVersion', 's3:ListBucketVersions'];
    const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };

    for (const policy of ['orders-archive', 'events-archive']) {
      // Act
      const byStep = Object.fromEntries(
        STEPS.map((step) => [
          step,
          roleStatements(template, policy, step).filter((statement) =>
            actionsOf(statement).some((a) => versionActions.includes(a) || a === 's3:ListBucket'),
          ),
        ]),
      );

      // Assess: Start lists (its bucket check) but never versions; each listing is bounded to the policy's own
      // prefix by its s3:prefix condition, each version delete to the policy's own objects.
      expect(byStep.Start?.flatMap(actionsOf)).toEqual(['s3:ListBucket']);
      for (const step of ['Chunk', 'Finish', 'RecordFailure'] as const) {
        const statements = byStep[step] ?? [];
        expect(
          statements
            .flatMap(actionsOf)
            .filter((a) => versionActions.includes(a))
            .sort(),
          step,
        ).toEqual(versionActions);
        for (const statement of statements) {
          const listing = actionsOf(statement).some((a) => a.startsWith('s3:ListBucket'));
          if (listing) {
            expect(statement.Resource, step).toEqual(bucketArn);
            expect(statement.Condition, step).toEqual({
              StringLike: { 's3:prefix': [`archive/${policy}/*`] },
            });
          } else {
            expect(statement.Resource, step).toEqual(objectsOf(policy));
            expect(statement.Condition, step).toBeUndefined();
          }
        }
      }
    }
    // Nobody else in the stack: purge policies have no S3 at all, and no statement grants a version action on
    // a resource beyond one policy's own prefix.
    for (const statement of allStatements(template)) {
      if (!actionsOf(statement).some((a) => versionActions.includes(a))) continue;
      const text = JSON.stringify(statement);
      expect(text).toMatch(/archive\/(orders|events)-archive\//);
      expect(text).not.toContain('"*"');
    }
  });

  it('gives purge policies no S3 and no Glue permission at all, and no bucket in their environment', () => {
    for (const policy of ['sessions-purge', 'manual-purge']) {
      for (const step of STEPS) {
        const actions = roleStatements(template, policy, step).flatMap(actionsOf);
        expect(
          actions.filter((a) => a.startsWith('s3:') || a.startsWith('glue:')),
          `${policy} ${step}`,
        ).toEqual([]);
      }
    }
    for (const [id, fn] of Object.entries(template.findResources('AWS::Lambda::Function'))) {
      const variables = fn.Properties.Environment.Variables as Record<string, unknown>;
      // The compliance check reads the ledger only: no bucket either.
      const bucketless =
        String(fn.Properties.Description).includes('purge policy') || id.startsWith('ComplianceCheck');
      expect('ARCHIVE_BUCKET' in variables, id).toBe(!bucketless);
    }
  });

  it("lets an archive policy's start function manage that policy's Glue table only", () => {
    // Prepare
    const glueArn = (resource: string) => ({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':glue:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          `:${resource}`,
        ],
      ],
    });

    // Assess
    expect(roleStatements(template, 'orders-archive', 'Start')).toContainEqual({
      Sid: 'RegisterArchiveTable',
      Effect: 'Allow',
      Action: ['glue:CreateTable', 'glue:GetTable', 'glue:UpdateTable'],
      Resource: [
        glueArn('catalog'),
        glueArn('database/pg_lifecycle'),
        glueArn('table/pg_lifecycle/orders_archive'),
      ],
    });
    for (const step of ['Chunk', 'Finish', 'RecordFailure'] as const) {
      expect(
        roleStatements(template, 'orders-archive', step)
          .flatMap(actionsOf)
          .filter((a) => a.startsWith('glue:')),
      ).toEqual([]);
    }
    // The IAM resource names the table the start step creates (both take lib/contracts/glue-table-name.ts).
    expect(glueTableName('orders-archive')).toBe('orders_archive');
    template.hasResourceProperties('AWS::Glue::Database', {
      CatalogId: { Ref: 'AWS::AccountId' },
      DatabaseInput: Match.objectLike({ Name: 'pg_lifecycle' }),
    });
  });

  it("lets a policy's functions write only to that policy's log group", () => {
    // Prepare
    const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup', /^PolicyOrdersArchiveLogs[0-9A-F]{8}$/);

    // Assess
    for (const step of STEPS) {
      const logs = roleStatements(template, 'orders-archive', step).filter((st) =>
        actionsOf(st).some((a) => a.startsWith('logs:')),
      );
      expect(logs, step).toEqual([
        {
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
        },
      ]);
    }
    // No AWS-managed policy on any role; only the stack's own policies of "*"-only actions.
    const managed = Object.values(template.findResources('AWS::IAM::Role')).flatMap(
      (role) => (role.Properties.ManagedPolicyArns ?? []) as unknown[],
    );
    expect(JSON.stringify(managed)).not.toMatch(/arn:aws:iam::aws:policy|iam::aws:policy/);
  });

  it('grants CloudWatch GetMetricData to the chunk function only, and only of a policy whose throttle reads lag there', () => {
    // Prepare
    const throttled = cloudWatchThrottleConfig();
    const { template: withThrottle } = synthesize(throttled);
    const starOnlyOf = (tmpl: typeof template, policy: string, step: string) => {
      const entry = Object.entries(tmpl.findResources('AWS::IAM::Policy')).find(([id]) =>
        id.startsWith(`Policy${pascal(policy)}${step}FunctionRoleStarOnlyActions`),
      );
      return (entry?.[1].Properties.PolicyDocument.Statement ?? []) as Statement[];
    };

    // Assess
    expect(starOnlyOf(withThrottle, 'sessions-purge', 'Chunk')).toEqual([
      { Sid: 'ReadReplicaLagMetrics', Effect: 'Allow', Action: 'cloudwatch:GetMetricData', Resource: '*' },
    ]);
    const cloudWatchGrants = (tmpl: typeof template) =>
      allStatements(tmpl).filter((st) => actionsOf(st).some((a) => a.startsWith('cloudwatch:')));
    expect(cloudWatchGrants(withThrottle)).toHaveLength(1);
    expect(cloudWatchGrants(template)).toHaveLength(0);
    // The sandbox's isolated subnets reach CloudWatch through an interface endpoint, only when needed.
    const monitoringEndpoints = (tmpl: typeof template) =>
      Object.values(tmpl.findResources('AWS::EC2::VPCEndpoint')).filter((endpoint) =>
        JSON.stringify(endpoint.Properties.ServiceName).includes('.monitoring'),
      );
    expect(monitoringEndpoints(withThrottle)).toHaveLength(1);
    expect(monitoringEndpoints(synthesize(sandboxConfig()).template)).toHaveLength(0);
    withThrottle.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^pg-lifecycle Chunk \\(purge policy sessions-purge\\)'),
      Environment: { Variables: Match.objectLike({ LIFECYCLE_CLOUDWATCH_LAG: '1' }) },
    });
  });

  it('with objectLock: lets start read the bucket lock setting and the writers lock objects, never bypass a lock', () => {
    // Prepare
    const locked = parseConfig(
      {
        ...sandboxConfig(),
        policies: [
          {
            name: 'orders-archive',
            action: 'archive',
            table: 'orders',
            timeColumn: 'created_at',
            retention: 'P1Y',
            archive: { objectLock: { mode: 'COMPLIANCE', days: 3650 } },
          },
        ],
      },
      'locked',
    );

    // Act
    const { template: tmpl } = synthesize(locked);
    const bucket = logicalIdOf(tmpl, 'AWS::S3::Bucket', /^ArchiveBucket[0-9A-F]{8}$/);
    const objects = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/archive/orders-archive/*']] };

    // Assess
    expect(roleStatements(tmpl, 'orders-archive', 'Start')).toContainEqual({
      Sid: 'CheckObjectLockEnabled',
      Effect: 'Allow',
      Action: 's3:GetBucketObjectLockConfiguration',
      Resource: { 'Fn::GetAtt': [bucket, 'Arn'] },
    });
    expect(s3Of(roleStatements(tmpl, 'orders-archive', 'Chunk'))[0]?.Action).toContain(
      's3:PutObjectRetention',
    );
    for (const step of ['Finish', 'RecordFailure'] as const) {
      expect(s3Of(roleStatements(tmpl, 'orders-archive', step))).toEqual([
        {
          Sid: 'RemoveOrphansAndLockArchives',
          Effect: 'Allow',
          Action: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObject', 's3:PutObjectRetention'],
          Resource: objects,
        },
        {
          Sid: 'ListOwnObjectVersions',
          Effect: 'Allow',
          Action: ['s3:ListBucket', 's3:ListBucketVersions'],
          Resource: { 'Fn::GetAtt': [bucket, 'Arn'] },
          Condition: { StringLike: { 's3:prefix': ['archive/orders-archive/*'] } },
        },
      ]);
    }
    const actions = allStatements(tmpl).flatMap(actionsOf);
    expect(actions).not.toContain('s3:BypassGovernanceRetention');
    expect(actions).not.toContain('s3:PutObjectLegalHold');
    expect(actions).not.toContain('s3:PutBucketObjectLockConfiguration');
  });
});
