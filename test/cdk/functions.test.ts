import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config-file.ts';
import { DEPLOYED_POLICIES_ENV, policyDigest } from '../../lib/contracts/policy-digest.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { fixtureConfig, logicalIdOf, pascal, STEPS, sandboxConfig, synthesize } from './synth.ts';

const config = fixtureConfig();
const enabled = config.policies.filter((policy) => policy.enabled);
const { template } = synthesize(config);
const bucketId = logicalIdOf(template, 'AWS::S3::Bucket', /^ArchiveBucket[0-9A-F]{8}$/);

describe('lifecycle functions', () => {
  it('run the four handlers of each enabled policy on nodejs24.x / arm64 with tracing and the shared environment', () => {
    // Assess
    // Plus the stack's one compliance check (test/cdk/compliance-check.test.ts), on the same defaults.
    template.resourceCountIs('AWS::Lambda::Function', 4 * enabled.length + 1);
    const defaults = {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      TracingConfig: { Mode: 'Active' },
      Environment: {
        Variables: {
          NODE_OPTIONS: '--enable-source-maps',
          NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
          POWERTOOLS_SERVICE_NAME: 'pg-lifecycle',
          POWERTOOLS_METRICS_NAMESPACE: 'PgLifecycle',
          DB_SECRET_ARN: config.database?.secretArn,
          DB_SSL: 'verify-full',
        },
      },
    };
    for (const [id, fn] of Object.entries(template.findResources('AWS::Lambda::Function'))) {
      expect(fn.Properties, id).toMatchObject(
        id.startsWith('ComplianceCheck') ? defaults : { ...defaults, Timeout: 300 },
      );
    }
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^pg-lifecycle Chunk \\(archive policy orders-archive\\)'),
      Environment: {
        Variables: Match.objectLike({ ARCHIVE_BUCKET: { Ref: bucketId }, GLUE_DATABASE: 'pg_lifecycle' }),
      },
    });
  });

  it('give the chunk function a full vCPU (1769 MB, Parquet encoding is CPU-bound) and the others 1024 MB', () => {
    // Assess
    const memory = Object.entries(template.findResources('AWS::Lambda::Function'))
      .filter(([id]) => !id.startsWith('ComplianceCheck'))
      .map(([, fn]) => [String(fn.Properties.Description).split(' ')[1], fn.Properties.MemorySize] as const);
    const expected = enabled.flatMap(() => [
      ['Chunk', 1769],
      ['Finish', 1024],
      ['RecordFailure', 1024],
      ['Start', 1024],
    ]);
    expect(memory.sort()).toEqual(expected.sort());
  });

  it('give each start function the digest of its own policy only, and no other function a digest', () => {
    // Assess
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    const withDigests = functions.filter((fn) => fn.Properties.Environment.Variables[DEPLOYED_POLICIES_ENV]);
    expect(withDigests).toHaveLength(enabled.length);
    expect(enabled.length).toBeLessThan(config.policies.length);
    for (const policy of enabled) {
      const start = withDigests.find((fn) =>
        String(fn.Properties.Description).startsWith(
          `pg-lifecycle Start (${policy.action} policy ${policy.name})`,
        ),
      );
      const input = buildExecutionInput(config, policy.name, 'schedule', false);
      expect(JSON.parse(start?.Properties.Environment.Variables[DEPLOYED_POLICIES_ENV])).toEqual({
        [policy.name]: policyDigest(input.policy, input.chunking),
      });
    }
  });

  it('attach to the configured subnets with the configured security group', () => {
    // Assess
    template.allResourcesProperties('AWS::Lambda::Function', {
      VpcConfig: {
        SubnetIds: config.database?.subnetIds,
        SecurityGroupIds: [config.database?.securityGroupId],
      },
    });
    template.resourceCountIs('AWS::EC2::SecurityGroup', 0);
  });

  it("log to their policy's log group, kept two years and when the stack is deleted", () => {
    // Assess
    for (const policy of enabled) {
      const logGroupId = logicalIdOf(
        template,
        'AWS::Logs::LogGroup',
        new RegExp(`^Policy${pascal(policy.name)}Logs[0-9A-F]{8}$`),
      );
      expect(template.toJSON().Resources[logGroupId]).toMatchObject({
        Properties: { RetentionInDays: 731 },
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
      for (const step of STEPS) {
        template.hasResourceProperties('AWS::Lambda::Function', {
          Description: Match.stringLikeRegexp(
            `^pg-lifecycle ${step} \\(${policy.action} policy ${policy.name}\\)`,
          ),
          LoggingConfig: { LogGroup: { Ref: logGroupId } },
        });
      }
    }
    // Every log group of the stack is retained (the state machines' too).
    for (const [id, group] of Object.entries(template.findResources('AWS::Logs::LogGroup')))
      expect(group.DeletionPolicy, id).toBe('Retain');
  });

  it('log with the configured retention and customer-managed key', () => {
    // Prepare
    const keyArn = 'arn:aws:kms:eu-west-1:123456789012:key/0b5d9c1e-0000-4000-8000-000000000000';
    const configured = parseConfig(
      { ...fixtureConfig(), observability: { logRetentionDays: 3653, logKmsKeyArn: keyArn } },
      'inline',
    );

    // Act
    const { template: tmpl } = synthesize(configured);

    // Assess
    const groups = Object.values(tmpl.findResources('AWS::Logs::LogGroup'));
    // One per policy, the state machines' and the compliance check's.
    expect(groups).toHaveLength(enabled.length + 2);
    for (const group of groups)
      expect(group.Properties).toMatchObject({ RetentionInDays: 3653, KmsKeyId: keyArn });
  });

  it('refuse a log retention CloudWatch does not offer, and default to two years', () => {
    // Act / Assess
    expect(() =>
      parseConfig({ ...fixtureConfig(), observability: { logRetentionDays: 500 } }, 'inline'),
    ).toThrow(
      /observability\.logRetentionDays: must be one of CloudWatch Logs' retention periods: .*365, 400, 545, 731/,
    );
    expect(config.observability).toEqual({ logRetentionDays: 731, logExecutionData: false });
  });

  it('are created after their role policy (ENI permissions must exist first)', () => {
    // Assess
    const functions = template.findResources('AWS::Lambda::Function');
    expect(Object.keys(functions).length).toBeGreaterThanOrEqual(4);
    for (const [id, fn] of Object.entries(functions)) {
      expect(fn.DependsOn, id).toEqual(expect.arrayContaining([expect.stringMatching(/RoleDefaultPolicy/)]));
    }
  });
});

describe('stack outputs and database choice', () => {
  it("outputs the bucket name, each policy's state machine ARN and the Glue database name", () => {
    // Assess
    template.hasOutput('ArchiveBucketName', { Value: { Ref: bucketId } });
    for (const policy of enabled) {
      template.hasOutput(`StateMachineArn${pascal(policy.name)}`, {
        Value: { Ref: Match.stringLikeRegexp(`^Policy${pascal(policy.name)}ChunkLoopStateMachine`) },
      });
    }
    template.hasOutput('GlueDatabaseName', { Value: 'pg_lifecycle' });
  });

  it('refuses a config with neither database nor sandbox', () => {
    // Prepare
    const { database: _database, ...rest } = config;
    const neither = parseConfig({ ...rest, database: undefined }, 'inline');

    // Act / Assess
    expect(() => synthesize(neither)).toThrow(
      'config needs `database` (an existing PostgreSQL) or `sandbox: true`',
    );
  });
});

describe('sandbox database', () => {
  const { template: sandbox } = synthesize(sandboxConfig());
  const functionSgId = logicalIdOf(sandbox, 'AWS::EC2::SecurityGroup', 'SandboxFunctionSecurityGroup');
  const databaseSgId = logicalIdOf(sandbox, 'AWS::EC2::SecurityGroup', 'SandboxDatabaseSecurityGroup');

  it('creates an encrypted, TLS-only PostgreSQL 16 t4g.micro with a generated secret', () => {
    // Assess
    sandbox.hasResourceProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      EngineVersion: '16',
      DBInstanceClass: 'db.t4g.micro',
      StorageEncrypted: true,
      MultiAZ: false,
      DeletionProtection: false,
      BackupRetentionPeriod: 1,
      PubliclyAccessible: false,
      VPCSecurityGroups: [{ 'Fn::GetAtt': [databaseSgId, 'GroupId'] }],
    });
    sandbox.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: { 'rds.force_ssl': '1' } });
    sandbox.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: Match.objectLike({ SecretStringTemplate: '{"username":"lifecycle_admin"}' }),
    });
  });

  it('admits PostgreSQL only from the functions security group', () => {
    // Assess
    sandbox.resourceCountIs('AWS::EC2::SecurityGroupIngress', 2);
    sandbox.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [databaseSgId, 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [functionSgId, 'GroupId'] },
      IpProtocol: 'tcp',
      FromPort: 5432,
      ToPort: 5432,
    });
  });

  it('uses an isolated two-zone VPC with flow logs and endpoints instead of a NAT', () => {
    // Assess
    sandbox.resourceCountIs('AWS::EC2::NatGateway', 0);
    sandbox.resourceCountIs('AWS::EC2::InternetGateway', 0);
    sandbox.resourceCountIs('AWS::EC2::Subnet', 2);
    sandbox.hasResourceProperties('AWS::EC2::FlowLog', {
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
    });
    sandbox.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway' });
    for (const service of ['secretsmanager', 'glue']) {
      sandbox.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Interface',
        ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, `.${service}`]] },
        PrivateDnsEnabled: true,
      });
    }
  });

  it('gives the functions the generated secret and the isolated subnets', () => {
    // Assess
    // (The compliance check is the fifth; the sixth function is CDK's custom resource that strips the VPC
    // default security group's rules.)
    sandbox.resourcePropertiesCountIs(
      'AWS::Lambda::Function',
      {
        Description: Match.stringLikeRegexp('^pg-lifecycle '),
        VpcConfig: {
          SecurityGroupIds: [{ 'Fn::GetAtt': [functionSgId, 'GroupId'] }],
          SubnetIds: [
            { Ref: Match.stringLikeRegexp('isolatedSubnet1') },
            { Ref: Match.stringLikeRegexp('isolatedSubnet2') },
          ],
        },
        Environment: {
          Variables: Match.objectLike({
            DB_SECRET_ARN: { Ref: Match.stringLikeRegexp('^SandboxInstanceSecretAttachment') },
          }),
        },
      },
      5,
    );
    sandbox.resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });
});
