import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { cloudWatchThrottleConfig, fixtureConfig, logicalIdOf, sandboxConfig, synthesize } from './synth.ts';

const config = fixtureConfig();
const { template } = synthesize(config);
const bucketId = logicalIdOf(template, 'AWS::S3::Bucket', /^ArchiveBucket[0-9A-F]{8}$/);
const secretArn = config.database?.secretArn;
const archiveObjects = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/archive/*']] };

interface Statement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Sid?: string;
  readonly Condition?: unknown;
}

/** Statements of the default policy of the role `<prefix>Role...`. */
function statementsOf(rolePrefix: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy');
  const entry = Object.entries(policies).find(([id]) => id.startsWith(`${rolePrefix}RoleDefaultPolicy`));
  if (!entry) throw new Error(`no default policy for ${rolePrefix}`);
  return entry[1].Properties.PolicyDocument.Statement as Statement[];
}

const actionsOf = (statement: Statement) => [statement.Action].flat();

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
]);

describe('least-privilege IAM', () => {
  it('grants "*" resources only for actions that support nothing else', () => {
    // Prepare
    const allStatements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (policy) => policy.Properties.PolicyDocument.Statement as Statement[],
    );

    // Act
    const starActions = allStatements
      .filter((statement) => statement.Effect === 'Allow' && [statement.Resource].flat().includes('*'))
      .flatMap(actionsOf);

    // Assess
    expect(starActions.length).toBeGreaterThan(0);
    expect(starActions.filter((action) => !STAR_ONLY_ACTIONS.has(action))).toEqual([]);
    expect(allStatements.flatMap(actionsOf).filter((action) => action.includes('*'))).toEqual([]);
  });

  it('lets every function read the one database secret, by its full ARN', () => {
    // Assess
    expect(secretArn).toBeDefined();
    for (const fn of ['StartFunction', 'ChunkFunction', 'FinishFunction', 'RecordFailureFunction']) {
      expect(statementsOf(fn)).toContainEqual({
        Effect: 'Allow',
        Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
        Resource: secretArn,
      });
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
    const decrypts = Object.values(keyed.findResources('AWS::IAM::Policy')).flatMap((policy) =>
      (policy.Properties.PolicyDocument.Statement as Statement[]).filter((st) =>
        actionsOf(st).includes('kms:Decrypt'),
      ),
    );
    expect(decrypts).toHaveLength(4);
    for (const statement of decrypts) {
      expect(statement.Resource).toBe(keyArn);
      expect(JSON.stringify(statement.Condition)).toContain('secretsmanager.');
    }
    // Without a key, no KMS permission at all.
    const unkeyed = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (policy) => policy.Properties.PolicyDocument.Statement as Statement[],
    );
    expect(unkeyed.flatMap(actionsOf).filter((action) => action.startsWith('kms:'))).toEqual([]);
  });

  it('lets the chunk function write and verify objects under archive/ only', () => {
    // Assess
    const s3 = statementsOf('ChunkFunction').filter((statement) =>
      actionsOf(statement).some((a) => a.startsWith('s3:')),
    );
    expect(s3).toEqual([
      {
        Sid: 'WriteAndVerifyArchives',
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
        Resource: archiveObjects,
      },
    ]);
  });

  it('lets the finish function list, read and delete under archive/ only', () => {
    // Assess
    const s3 = statementsOf('FinishFunction').filter((statement) =>
      actionsOf(statement).some((a) => a.startsWith('s3:')),
    );
    expect(s3).toEqual([
      {
        Sid: 'ReadAndRemoveOrphanArchives',
        Effect: 'Allow',
        Action: ['s3:DeleteObject', 's3:GetObject'],
        Resource: archiveObjects,
      },
      {
        Sid: 'ListArchives',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['archive/*'] } },
      },
    ]);
  });

  it('gives start only the bucket check and record-failure only orphan deletion; Glue to start only', () => {
    // Assess: HeadBucket (checked before any row is touched) is authorized by s3:ListBucket on the bucket.
    const s3Actions = (fn: string) =>
      statementsOf(fn)
        .flatMap(actionsOf)
        .filter((action) => action.startsWith('s3:'));
    expect(s3Actions('StartFunction')).toEqual(['s3:ListBucket']);
    expect(s3Actions('RecordFailureFunction')).toEqual(['s3:DeleteObject']);
    for (const fn of ['ChunkFunction', 'FinishFunction', 'RecordFailureFunction']) {
      expect(
        statementsOf(fn)
          .flatMap(actionsOf)
          .filter((action) => action.startsWith('glue:')),
      ).toEqual([]);
    }
  });

  it('lets the start function manage tables of the one Glue database', () => {
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
    expect(statementsOf('StartFunction')).toContainEqual({
      Sid: 'RegisterArchiveTables',
      Effect: 'Allow',
      Action: ['glue:CreateTable', 'glue:GetTable', 'glue:UpdateTable'],
      Resource: [glueArn('catalog'), glueArn('database/pg_lifecycle'), glueArn('table/pg_lifecycle/*')],
    });
    template.hasResourceProperties('AWS::Glue::Database', {
      CatalogId: { Ref: 'AWS::AccountId' },
      DatabaseInput: Match.objectLike({ Name: 'pg_lifecycle' }),
    });
  });

  it('lets each function write only to its own log group', () => {
    // Prepare
    const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup', 'ChunkFunctionLogGroup');

    // Assess
    expect(statementsOf('ChunkFunction')).toContainEqual({
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
    });
    template.resourcePropertiesCountIs('AWS::IAM::Role', { ManagedPolicyArns: Match.anyValue() }, 0);
  });

  it('grants CloudWatch GetMetricData to the chunk function only, and only when a throttle reads lag there', () => {
    // Prepare
    const withThrottle = synthesize(cloudWatchThrottleConfig()).template;
    const policyOf = (tmpl: typeof template, rolePrefix: string) => {
      const entry = Object.entries(tmpl.findResources('AWS::IAM::Policy')).find(([id]) =>
        id.startsWith(`${rolePrefix}RoleDefaultPolicy`),
      );
      return (entry?.[1].Properties.PolicyDocument.Statement ?? []) as Statement[];
    };
    const cloudWatchActions = (tmpl: typeof template, fn: string) =>
      policyOf(tmpl, fn)
        .flatMap(actionsOf)
        .filter((action) => action.startsWith('cloudwatch:'));

    // Assess
    expect(policyOf(withThrottle, 'ChunkFunction')).toContainEqual({
      Sid: 'ReadReplicaLagMetrics',
      Effect: 'Allow',
      Action: 'cloudwatch:GetMetricData',
      Resource: '*',
    });
    for (const fn of ['StartFunction', 'FinishFunction', 'RecordFailureFunction'])
      expect(cloudWatchActions(withThrottle, fn)).toEqual([]);
    expect(cloudWatchActions(template, 'ChunkFunction')).toEqual([]);
    // The sandbox's isolated subnets reach CloudWatch through an interface endpoint, only when needed.
    const monitoringEndpoints = (tmpl: typeof template) =>
      Object.values(tmpl.findResources('AWS::EC2::VPCEndpoint')).filter((endpoint) =>
        JSON.stringify(endpoint.Properties.ServiceName).includes('.monitoring'),
      );
    expect(monitoringEndpoints(withThrottle)).toHaveLength(1);
    expect(monitoringEndpoints(synthesize(sandboxConfig()).template)).toHaveLength(0);
    withThrottle.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^pg-lifecycle Chunk'),
      Environment: { Variables: Match.objectLike({ LIFECYCLE_CLOUDWATCH_LAG: '1' }) },
    });
  });
});
