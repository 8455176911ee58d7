import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config-file.ts';
import { DEPLOYED_POLICIES_ENV, policyDigest } from '../../lib/contracts/policy-digest.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { fixtureConfig, logicalIdOf, sandboxConfig, synthesize } from './synth.ts';

const config = fixtureConfig();
const { template } = synthesize(config);
const bucketId = logicalIdOf(template, 'AWS::S3::Bucket', /^ArchiveBucket[0-9A-F]{8}$/);

describe('lifecycle functions', () => {
  it('run the four handlers on nodejs24.x / arm64 with tracing and the shared environment', () => {
    // Assess
    template.resourceCountIs('AWS::Lambda::Function', 4);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      Timeout: 300,
      TracingConfig: { Mode: 'Active' },
      Environment: {
        Variables: {
          NODE_OPTIONS: '--enable-source-maps',
          NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
          POWERTOOLS_SERVICE_NAME: 'pg-lifecycle',
          POWERTOOLS_METRICS_NAMESPACE: 'PgLifecycle',
          DB_SECRET_ARN: config.database?.secretArn,
          DB_SSL: 'verify-full',
          ARCHIVE_BUCKET: { Ref: bucketId },
          GLUE_DATABASE: 'pg_lifecycle',
        },
      },
    });
  });

  it('give the chunk function a full vCPU (1769 MB, Parquet encoding is CPU-bound) and the others 1024 MB', () => {
    // Assess
    const memory = Object.values(template.findResources('AWS::Lambda::Function')).map(
      (fn) => [String(fn.Properties.Description).split(':')[0], fn.Properties.MemorySize] as const,
    );
    expect(memory.sort()).toEqual([
      ['pg-lifecycle Chunk', 1769],
      ['pg-lifecycle Finish', 1024],
      ['pg-lifecycle RecordFailure', 1024],
      ['pg-lifecycle Start', 1024],
    ]);
  });

  it('give the start function the digest of every enabled policy, and only the start function', () => {
    // Assess
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    const withDigests = functions.filter((fn) => fn.Properties.Environment.Variables[DEPLOYED_POLICIES_ENV]);
    expect(withDigests.map((fn) => String(fn.Properties.Description).split(':')[0])).toEqual([
      'pg-lifecycle Start',
    ]);
    const deployed = JSON.parse(withDigests[0]?.Properties.Environment.Variables[DEPLOYED_POLICIES_ENV]);
    const enabled = config.policies.filter((p) => p.enabled);
    expect(enabled.length).toBeLessThan(config.policies.length);
    expect(deployed).toEqual(
      Object.fromEntries(
        enabled.map((p) => {
          const input = buildExecutionInput(config, p.name, 'schedule', false);
          return [p.name, policyDigest(input.policy, input.chunking)];
        }),
      ),
    );
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

  it('log to their own log group kept one month', () => {
    // Assess
    for (const name of ['Start', 'Chunk', 'Finish', 'RecordFailure']) {
      const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup', `${name}FunctionLogGroup`);
      template.hasResource('AWS::Logs::LogGroup', {
        Properties: { RetentionInDays: 30 },
        DeletionPolicy: 'Delete',
      });
      template.hasResourceProperties('AWS::Lambda::Function', {
        Description: Match.stringLikeRegexp(`^pg-lifecycle ${name}:`),
        LoggingConfig: { LogGroup: { Ref: logGroupId } },
      });
    }
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
  it('outputs the bucket name, state machine ARN and Glue database name', () => {
    // Assess
    template.hasOutput('ArchiveBucketName', { Value: { Ref: bucketId } });
    template.hasOutput('StateMachineArn', {
      Value: { Ref: Match.stringLikeRegexp('^ChunkLoopStateMachine') },
    });
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
    // (The fifth function is CDK's custom resource that strips the VPC default security group's rules.)
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
      4,
    );
    sandbox.resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });
});
