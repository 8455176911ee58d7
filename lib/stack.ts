import { fileURLToPath } from 'node:url';
import { CfnOutput, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import {
  type ISecurityGroup,
  type IVpc,
  SecurityGroup,
  type SubnetSelection,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { CfnDatabase } from 'aws-cdk-lib/aws-glue';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { ARCHIVE_KEY_PATTERN, ArchiveBucket } from './constructs/archive-bucket.ts';
import { type ChunkLoopFunctions, ChunkLoopStateMachine } from './constructs/chunk-loop-state-machine.ts';
import { FailureAlarm } from './constructs/failure-alarm.ts';
import { LifecycleFunction } from './constructs/lifecycle-function.ts';
import { PolicySchedules } from './constructs/policy-schedule.ts';
import { SandboxDatabase } from './constructs/sandbox-database.ts';
import { type ArchivePolicy, type LifecycleConfig, resolveChunking } from './contracts/config.ts';
import { DEPLOYED_POLICIES_ENV, policyDigest } from './contracts/policy-digest.ts';
import { buildExecutionInput } from './execution-input.ts';
import { acknowledgeWildcardResource } from './nag.ts';

/** Properties of a {@link PgLifecycleStack}. */
export interface PgLifecycleStackProps extends StackProps {
  /** The validated `lifecycle.config.json`. */
  readonly config: LifecycleConfig;
}

/** How the functions reach the database. */
interface DatabaseConnectivity {
  readonly vpc: IVpc;
  readonly subnets: SubnetSelection;
  readonly securityGroup: ISecurityGroup;
  readonly secret: ISecret;
}

/** The four step handlers, keyed like {@link ChunkLoopFunctions}. */
export type LifecycleFunctions = { readonly [K in keyof ChunkLoopFunctions]: LifecycleFunction };

/** Handler entry files, relative to the repository root; each exports `handler`. */
export const HANDLER_ENTRIES: { readonly [K in keyof ChunkLoopFunctions]: string } = {
  start: 'functions/start.ts',
  chunk: 'functions/chunk.ts',
  finish: 'functions/finish.ts',
  recordFailure: 'functions/record-failure.ts',
};

const REPO_ROOT = new URL('../', import.meta.url);

/** Glue database names allow lowercase letters, digits and underscores: `PgLifecycle` → `pg_lifecycle`. */
export function glueDatabaseNameFor(stackName: string): string {
  return stackName
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/**
 * Everything pg-lifecycle deploys: database connectivity (an existing database from `config.database`,
 * or a sandbox VPC + RDS with `sandbox: true`), the archive bucket, the Glue database the start step
 * registers archive tables in, the four step functions with least-privilege roles, the chunk-loop state
 * machine, one schedule per scheduled policy and the failure alarms.
 */
export class PgLifecycleStack extends Stack {
  /** The chunk loop. */
  public readonly chunkLoop: ChunkLoopStateMachine;

  /** The step handlers. */
  public readonly functions: LifecycleFunctions;

  /** The archive bucket. */
  public readonly archiveBucket: ArchiveBucket;

  /** Name of the Glue database holding the archive tables. */
  public readonly glueDatabaseName: string;

  public constructor(scope: Construct, id: string, props: PgLifecycleStackProps) {
    super(scope, id, {
      description: 'pg-lifecycle: scheduled, chunked data-lifecycle runs (archive/purge) for PostgreSQL',
      ...props,
    });
    const { config } = props;
    const connectivity = this.databaseConnectivity(config);

    const archivePolicies = config.policies.filter(
      (policy): policy is ArchivePolicy => policy.action === 'archive',
    );
    this.archiveBucket = new ArchiveBucket(this, 'ArchiveBucket', {
      policies: archivePolicies,
      existingBucketName: config.bucketName,
    });
    const bucket = this.archiveBucket.bucket;

    this.glueDatabaseName = glueDatabaseNameFor(this.stackName);
    new CfnDatabase(this, 'GlueDatabase', {
      catalogId: this.account,
      databaseInput: {
        name: this.glueDatabaseName,
        description: 'pg-lifecycle archives (tables created by the start step, partition projection)',
      },
    });

    const environment = {
      DB_SECRET_ARN: connectivity.secret.secretArn,
      DB_SSL: 'verify-full',
      ARCHIVE_BUCKET: bucket.bucketName,
      GLUE_DATABASE: this.glueDatabaseName,
    };
    const descriptions: { readonly [K in keyof ChunkLoopFunctions]: string } = {
      start: 'pg-lifecycle Start: lease, catalog, cutoff, run row, Glue table',
      chunk: 'pg-lifecycle Chunk: chunk transactions (archive to S3 / purge) until done or time budget',
      finish: 'pg-lifecycle Finish: orphan cleanup, totals, lease release',
      recordFailure: 'pg-lifecycle RecordFailure: marks the run failed, releases the lease',
    };
    // Start refuses a policy that is not deployed as it is: StartExecution rights alone cannot point a run
    // at another table, filter or retention.
    const deployedPolicies = JSON.stringify(
      Object.fromEntries(
        config.policies
          .filter((policy) => policy.enabled)
          .map((policy) => {
            const input = buildExecutionInput(config, policy.name, 'schedule', false);
            return [policy.name, policyDigest(input.policy, input.chunking)];
          }),
      ),
    );
    const makeFunction = (name: keyof ChunkLoopFunctions, id: string, memorySize?: number) =>
      new LifecycleFunction(this, id, {
        entry: fileURLToPath(new URL(HANDLER_ENTRIES[name], REPO_ROOT)),
        description: descriptions[name],
        vpc: connectivity.vpc,
        vpcSubnets: connectivity.subnets,
        securityGroups: [connectivity.securityGroup],
        environment,
        memorySize,
      });
    this.functions = {
      start: makeFunction('start', 'StartFunction'),
      // Parquet encoding is CPU-bound and Lambda's CPU scales with memory: 1769 MB is one full vCPU.
      chunk: makeFunction('chunk', 'ChunkFunction', 1769),
      finish: makeFunction('finish', 'FinishFunction'),
      recordFailure: makeFunction('recordFailure', 'RecordFailureFunction'),
    };
    if (deployedPolicies.length > 3_000) {
      throw new Error(
        `${config.policies.length} policies: too many for one stack (Lambda environment limit); split the config`,
      );
    }
    this.functions.start.addEnvironment(DEPLOYED_POLICIES_ENV, deployedPolicies);
    for (const fn of Object.values(this.functions)) connectivity.secret.grantRead(fn);
    this.grantSecretKey(config.database?.secretKmsKeyArn);
    this.grantArchiveAccess();
    this.grantGlueTables();
    this.grantCloudWatchLag(config);

    this.chunkLoop = new ChunkLoopStateMachine(this, 'ChunkLoop', { functions: this.functions });
    const schedules = new PolicySchedules(this, 'Schedules', {
      config,
      stateMachine: this.chunkLoop.stateMachine,
    });
    new FailureAlarm(this, 'FailureAlarm', {
      stateMachine: this.chunkLoop.stateMachine,
      deadLetterQueue: schedules.deadLetterQueue,
      alarmEmail: config.alarmEmail,
    });

    new CfnOutput(this, 'ArchiveBucketName', { value: bucket.bucketName, description: 'Archive bucket' });
    new CfnOutput(this, 'StateMachineArn', {
      value: this.chunkLoop.stateMachine.stateMachineArn,
      description: 'Chunk-loop state machine (pg-lifecycle start --state-machine-arn)',
    });
    new CfnOutput(this, 'GlueDatabaseName', {
      value: this.glueDatabaseName,
      description: 'Glue database of archives',
    });
    new CfnOutput(this, 'DatabaseSecretArn', {
      value: connectivity.secret.secretArn,
      description: 'Database secret',
    });
  }

  private databaseConnectivity(config: LifecycleConfig): DatabaseConnectivity {
    if (config.database) {
      const { database } = config;
      const vpc = Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: database.vpcId,
        availabilityZones: database.availabilityZones,
        privateSubnetIds: database.subnetIds,
      });
      Validations.of(vpc).acknowledge({
        id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
        reason:
          'The functions only attach network interfaces to these subnets; nothing reads their route tables.',
      });
      return {
        vpc,
        subnets: { subnets: vpc.privateSubnets },
        securityGroup: SecurityGroup.fromSecurityGroupId(
          this,
          'FunctionSecurityGroup',
          database.securityGroupId,
          {
            mutable: false,
          },
        ),
        secret: Secret.fromSecretCompleteArn(this, 'DatabaseSecret', database.secretArn),
      };
    }
    if (config.sandbox) {
      const sandbox = new SandboxDatabase(this, 'Sandbox', {
        cloudWatchEndpoint: readsLagFromCloudWatch(config),
      });
      return {
        vpc: sandbox.vpc,
        subnets: sandbox.functionSubnets,
        securityGroup: sandbox.functionSecurityGroup,
        secret: sandbox.secret,
      };
    }
    throw new Error('config needs `database` (an existing PostgreSQL) or `sandbox: true` (a throw-away RDS)');
  }

  /**
   * A secret encrypted with a customer-managed key: the functions may decrypt with that key, and only
   * through Secrets Manager (kms:ViaService). An imported key cannot take a grant on its own policy.
   */
  private grantSecretKey(keyArn: string | undefined): void {
    if (!keyArn) return;
    for (const fn of Object.values(this.functions)) {
      fn.addToRolePolicy(
        new PolicyStatement({
          sid: 'DecryptDatabaseSecret',
          effect: Effect.ALLOW,
          actions: ['kms:Decrypt'],
          resources: [keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${this.region}.amazonaws.com` } },
        }),
      );
    }
  }

  /** Chunk writes and verifies objects; finish lists and deletes orphans. Both only under `archive/`. */
  private grantArchiveAccess(): void {
    const bucket = this.archiveBucket.bucket;
    const objects = bucket.arnForObjects(ARCHIVE_KEY_PATTERN);
    const { start, chunk, finish, recordFailure } = this.functions;

    // Start checks the bucket (HeadBucket) before any row is touched. HeadBucket is authorized by
    // s3:ListBucket and carries no prefix, so this grant cannot have a prefix condition.
    start.addToRolePolicy(
      new PolicyStatement({
        sid: 'CheckArchiveBucket',
        effect: Effect.ALLOW,
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
      }),
    );

    chunk.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteAndVerifyArchives',
        effect: Effect.ALLOW,
        actions: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'],
        resources: [objects],
      }),
    );
    finish.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadAndRemoveOrphanArchives',
        effect: Effect.ALLOW,
        actions: ['s3:GetObject', 's3:DeleteObject'],
        resources: [objects],
      }),
    );
    finish.addToRolePolicy(
      new PolicyStatement({
        sid: 'ListArchives',
        effect: Effect.ALLOW,
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [ARCHIVE_KEY_PATTERN] } },
      }),
    );
    // RecordFailure removes the orphans of a failed run (objects announced for chunks that rolled back).
    recordFailure.addToRolePolicy(
      new PolicyStatement({
        sid: 'RemoveOrphanArchives',
        effect: Effect.ALLOW,
        actions: ['s3:DeleteObject'],
        resources: [objects],
      }),
    );
    for (const [fn, what] of [
      [chunk, 'writes one Parquet object per chunk and verifies it'],
      [finish, 'reads and deletes orphaned objects'],
      [recordFailure, 'deletes the orphaned objects of a failed run'],
    ] as const) {
      acknowledgeWildcardResource(
        fn.role ?? fn,
        objects,
        `Object keys are generated per run and chunk (archive/<policy>/<partition>/<run>-<n>.parquet); the ` +
          `function ${what} only under archive/ in the one archive bucket.`,
      );
    }
  }

  /**
   * A throttle with `cloudWatch` reads the replicas' lag metric before each chunk: the Chunk function gets
   * GetMetricData, and only when some enabled policy needs it.
   */
  private grantCloudWatchLag(config: LifecycleConfig): void {
    if (!readsLagFromCloudWatch(config)) return;
    const { chunk } = this.functions;
    chunk.addEnvironment('LIFECYCLE_CLOUDWATCH_LAG', '1');
    chunk.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadReplicaLagMetrics',
        effect: Effect.ALLOW,
        actions: ['cloudwatch:GetMetricData'],
        resources: ['*'],
      }),
    );
    acknowledgeWildcardResource(
      chunk.role ?? chunk,
      '*',
      'cloudwatch:GetMetricData supports no resource-level permissions (AWS service authorization ' +
        'reference); the grant is read-only and given only when a throttle reads replica lag from CloudWatch.',
    );
  }

  /** The start step creates/updates the Glue table of an archive policy (columns from the live catalog). */
  private grantGlueTables(): void {
    const glueArn = (resource: string) => this.formatArn({ service: 'glue', resource });
    const catalog = glueArn('catalog');
    const database = glueArn(`database/${this.glueDatabaseName}`);
    const tables = glueArn(`table/${this.glueDatabaseName}/*`);
    const { start } = this.functions;
    start.addToRolePolicy(
      new PolicyStatement({
        sid: 'RegisterArchiveTables',
        effect: Effect.ALLOW,
        actions: ['glue:GetTable', 'glue:CreateTable', 'glue:UpdateTable'],
        resources: [catalog, database, tables],
      }),
    );
    acknowledgeWildcardResource(
      start.role ?? start,
      tables,
      'Tables are created at run time, one per archive policy, named after the policy; access is limited to ' +
        'tables of the one pg-lifecycle Glue database.',
    );
  }
}

/** Some enabled policy's throttle reads replica lag from CloudWatch. */
function readsLagFromCloudWatch(config: LifecycleConfig): boolean {
  return config.policies.some(
    (policy) => policy.enabled && resolveChunking(config, policy).throttle?.cloudWatch !== undefined,
  );
}
