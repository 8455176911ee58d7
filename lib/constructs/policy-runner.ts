import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { type ILogGroup, LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import {
  RDS_SNAPSHOT_SETTINGS_ENV,
  rdsSnapshotSettings,
} from '../../functions/actions/backup/rds-snapshot/contract.ts';
import { contractOf, type LifecycleConfig, type Policy, resolveChunking } from '../contracts/config.ts';
import { parallelismOf } from '../contracts/policy.ts';
import { DEPLOYED_POLICIES_ENV, policyDigest } from '../contracts/policy-digest.ts';
import { RDS_SNAPSHOT_EXECUTION_TIMEOUT_HOURS } from '../contracts/rds-snapshot-payloads.ts';
import { buildExecutionInput } from '../execution-input.ts';
import { type ChunkLoopFunctions, ChunkLoopStateMachine } from './chunk-loop-state-machine.ts';
import { LifecycleFunction } from './lifecycle-function.ts';
import {
  archivedTablesOf,
  grantArchiveErasure,
  grantCloudWatchLag,
  grantGlueTable,
  grantObjectAccess,
  grantObjectReads,
  grantSecretKey,
} from './policy-grants.ts';
import { grantRdsSnapshots } from './rds-snapshot-grants.ts';
import { RestoreDrill } from './restore-drill.ts';
import type { StarOnlyManagedPolicy } from './wildcard-confined-role.ts';

/** How the functions reach the database. */
export interface DatabaseConnectivity {
  readonly vpc: IVpc;
  readonly subnets: SubnetSelection;
  readonly securityGroup: ISecurityGroup;
  readonly secret: ISecret;
}

/** Handler entry files, relative to the repository root; each exports `handler`. */
export const HANDLER_ENTRIES: { readonly [K in keyof ChunkLoopFunctions]: string } = {
  start: 'functions/start.ts',
  chunk: 'functions/chunk.ts',
  finish: 'functions/finish.ts',
  recordFailure: 'functions/record-failure.ts',
};

/** Handler of a backup policy's RDS snapshot function, relative to the repository root. */
export const RDS_SNAPSHOT_HANDLER_ENTRY = 'functions/rds-snapshot.ts';

/** The four step handlers of one policy, keyed like {@link ChunkLoopFunctions}. */
export type LifecycleFunctions = { readonly [K in keyof ChunkLoopFunctions]: LifecycleFunction };

const REPO_ROOT = new URL('../../', import.meta.url);

/** Properties of a {@link PolicyRunner}. */
export interface PolicyRunnerProps {
  /** The validated config (defaults and throttles resolve against it). */
  readonly config: LifecycleConfig;
  /** The policy this runner serves; it must be enabled. */
  readonly policy: Policy;
  readonly connectivity: DatabaseConnectivity;
  /**
   * The archive bucket (archive policies get access to their own prefix of it, purge policies none, a subjects
   * policy its own prefix and those of the archive policies of the tables it maps).
   */
  readonly bucket: IBucket;
  /** The Glue database archive tables are registered in. */
  readonly glueDatabaseName: string;
  /** Execution log group shared by the stack's state machines. */
  readonly stateMachineLogGroup: ILogGroup;
  /** Retention of the functions' log groups. */
  readonly logRetention: RetentionDays;
  /** Customer-managed key of the functions' log groups. @default - none */
  readonly logEncryptionKey?: IKey;
  /** Let execution data (inputs, outputs, error causes) into the state machine log. */
  readonly logExecutionData: boolean;
  /** The stack's managed policies of `*`-only actions, for the function roles and the state machine role. */
  readonly sharedStarOnly: {
    readonly functions: StarOnlyManagedPolicy;
    readonly stateMachine: StarOnlyManagedPolicy;
  };
}

/**
 * Everything one policy runs on, and nothing another policy can use: its own four step functions (one code
 * asset per handler, shared by every policy) with their own roles, and its own chunk-loop state machine
 * named `<stack>-<policy>`. IAM therefore bounds a run to its policy whatever its input or the ledger say:
 * an archive policy's functions reach only `archive/<policy>/` of the bucket and the policy's Glue table,
 * a purge policy's functions no S3 object and no Glue table at all, a subjects policy's `subjects/<policy>/` and
 * the prefixes of the archive policies of the tables it maps (their rows are the subjects' data too), and its
 * Start function accepts only this policy as deployed (digest).
 *
 * A backup policy may add two things its action contract asks for: with `rdsSnapshot`, a snapshot function
 * (outside the VPC, IAM bounded to the named database and the policy's snapshot prefix) and the snapshot
 * stage after Finish in its machine (48 h execution timeout); with `drill`, a {@link RestoreDrill} (function
 * reading only the policy's prefix, and `<stack>-<policy>-drill` state machine).
 */
export class PolicyRunner extends Construct {
  /** The step handlers. */
  public readonly functions: LifecycleFunctions;

  /** The policy's chunk loop. */
  public readonly chunkLoop: ChunkLoopStateMachine;

  /** The log group its functions write to. */
  public readonly logGroup: LogGroup;

  /** A backup policy with rdsSnapshot: the function of its snapshot stage (outside the VPC). */
  public readonly rdsSnapshotFunction?: LifecycleFunction;

  /** A backup policy with drill: its restore drill (function and state machine). */
  public readonly drill?: RestoreDrill;

  /**
   * The Start (checks and plan) and Chunk (the work) of a policy that uses the hash key (its contract says:
   * anonymize with hash or email, subjects) read the hash key secret, when the config names one. Without it such
   * a policy is refused by Start (HashKeyError) before anything changes; the local runner synthesizes this stack
   * too, and takes its key from PG_LIFECYCLE_HASH_KEY.
   */
  private grantHashKey(config: LifecycleConfig): void {
    const arn = config.anonymization?.hashKeySecretArn;
    if (!arn) return;
    const secret = Secret.fromSecretCompleteArn(this, 'HashKeySecret', arn);
    for (const fn of [this.functions.start, this.functions.chunk]) {
      fn.addEnvironment('HASH_KEY_SECRET_ARN', arn);
      secret.grantRead(fn);
    }
  }

  public constructor(scope: Construct, id: string, props: PolicyRunnerProps) {
    super(scope, id);
    const { config, policy, connectivity } = props;
    if (!policy.enabled) throw new Error(`policy ${policy.name} is disabled: it gets no runner`);
    const stack = Stack.of(this);
    const chunking = resolveChunking(config, policy);
    const cloudWatchLag = chunking.throttle?.cloudWatch !== undefined;
    const contract = contractOf(policy);
    const storage = contract.storage(policy);
    const rdsSnapshot = contract.rdsSnapshot?.(policy);
    const drill = contract.restoreDrill?.(policy);

    const input = buildExecutionInput(config, policy.name, 'schedule', false);
    const environment = {
      DB_SECRET_ARN: connectivity.secret.secretArn,
      DB_SSL: 'verify-full',
      // A policy that keeps nothing (purge) gets no bucket and no Glue database: it has nothing to do there.
      ...(storage ? { ARCHIVE_BUCKET: props.bucket.bucketName } : {}),
      ...(storage?.glueTable ? { GLUE_DATABASE: props.glueDatabaseName } : {}),
    };
    const what = `${policy.action} policy ${policy.name}`;
    const descriptions: { readonly [K in keyof ChunkLoopFunctions]: string } = {
      start: `pg-lifecycle Start (${what}): lease, catalog, cutoff, run row, Glue table`,
      chunk: `pg-lifecycle Chunk (${what}): chunk transactions until done or time budget`,
      finish: `pg-lifecycle Finish (${what}): object lock, orphan cleanup, totals, lease release`,
      recordFailure: `pg-lifecycle RecordFailure (${what}): marks the run failed, releases the lease`,
    };
    // One log group for the policy's four functions: one place to read a run, one resource instead of four.
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      encryptionKey: props.logEncryptionKey,
      // The logs are the audit trail of what the policy deleted and archived: they outlive the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const makeFunction = (name: keyof ChunkLoopFunctions, functionId: string, memorySize?: number) =>
      new LifecycleFunction(this, functionId, {
        entry: fileURLToPath(new URL(HANDLER_ENTRIES[name], REPO_ROOT)),
        description: descriptions[name],
        vpc: connectivity.vpc,
        vpcSubnets: connectivity.subnets,
        securityGroups: [connectivity.securityGroup],
        environment,
        memorySize,
        logGroup: this.logGroup,
        sharedStarOnly: props.sharedStarOnly.functions,
        starOnlyGrants:
          name === 'chunk' && cloudWatchLag
            ? [
                {
                  actions: ['cloudwatch:GetMetricData'],
                  reason:
                    'reads the replicas’ lag metric before each chunk (throttle.cloudWatch); GetMetricData ' +
                    'has no resource-level permissions',
                },
              ]
            : [],
      });
    this.functions = {
      start: makeFunction('start', 'StartFunction'),
      // Parquet encoding is CPU-bound and Lambda's CPU scales with memory: 1769 MB is one full vCPU.
      chunk: makeFunction('chunk', 'ChunkFunction', 1769),
      finish: makeFunction('finish', 'FinishFunction'),
      recordFailure: makeFunction('recordFailure', 'RecordFailureFunction'),
    };
    // Start refuses any other policy, and this one unless deployed as it is: StartExecution rights alone
    // cannot point a run at another table, filter or retention.
    this.functions.start.addEnvironment(
      DEPLOYED_POLICIES_ENV,
      JSON.stringify({ [policy.name]: policyDigest(input.policy, input.chunking) }),
    );

    const functionList = Object.values(this.functions);
    for (const fn of functionList) connectivity.secret.grantRead(fn);
    grantSecretKey(functionList, config.database?.secretKmsKeyArn, stack.region);
    if (storage)
      grantObjectAccess(this.functions, props.bucket, { name: policy.name, action: policy.action, storage });
    // A policy that reads and rewrites the archived rows of some tables (subjects: export and erasure).
    const rewritten = contract.rewritesArchivesOf?.(policy);
    if (storage && rewritten)
      grantArchiveErasure(
        this.functions,
        props.bucket,
        policy.name,
        archivedTablesOf(rewritten, config.policies),
      );
    grantObjectReads(this.functions, contract.readsObjects?.(policy) ?? []);
    if (storage?.glueTable) grantGlueTable(this.functions.start, props.glueDatabaseName, policy.name);
    if (cloudWatchLag) grantCloudWatchLag(this.functions.chunk);
    if (contract.usesHashKey?.(policy)) this.grantHashKey(config);

    if (rdsSnapshot) {
      if (!Token.isUnresolved(stack.region) && rdsSnapshot.copyToRegion === stack.region) {
        throw new Error(
          `policy ${policy.name}: backup.rdsSnapshot.copyToRegion is the stack's own region (${stack.region})`,
        );
      }
      const settings = rdsSnapshotSettings(policy.name, rdsSnapshot, stack.stackName);
      // The RDS API only (two regions), never the database: outside the VPC, no NAT or endpoint needed.
      this.rdsSnapshotFunction = new LifecycleFunction(this, 'RdsSnapshotFunction', {
        entry: fileURLToPath(new URL(RDS_SNAPSHOT_HANDLER_ENTRY, REPO_ROOT)),
        description: `pg-lifecycle RDS snapshot (${what}): create, wait, copy, retention of ${settings.source}`,
        environment: { [RDS_SNAPSHOT_SETTINGS_ENV]: JSON.stringify(settings) },
        memorySize: 256,
        timeout: Duration.minutes(2),
        logGroup: this.logGroup,
      });
      grantRdsSnapshots(this.rdsSnapshotFunction, settings);
    }

    this.chunkLoop = new ChunkLoopStateMachine(this, 'ChunkLoop', {
      functions: this.functions,
      stateMachineName: stateMachineNameFor(stack.stackName, policy.name),
      logGroup: props.stateMachineLogGroup,
      includeExecutionData: props.logExecutionData,
      sharedStarOnly: props.sharedStarOnly.stateMachine,
      parallelism: parallelismOf(policy),
      ...(this.rdsSnapshotFunction
        ? {
            rdsSnapshot: {
              function: this.rdsSnapshotFunction,
              copies: rdsSnapshot?.copyToRegion !== undefined,
            },
            executionTimeout: Duration.hours(RDS_SNAPSHOT_EXECUTION_TIMEOUT_HOURS),
          }
        : {}),
    });

    if (drill) {
      if (!storage) throw new Error(`policy ${policy.name}: a restore drill needs the policy's objects`);
      this.drill = new RestoreDrill(this, 'Drill', {
        policyName: policy.name,
        stateMachineName: drillStateMachineNameFor(stack.stackName, policy.name),
        vpc: connectivity.vpc,
        subnets: connectivity.subnets,
        securityGroup: connectivity.securityGroup,
        secret: connectivity.secret,
        secretKmsKeyArn: config.database?.secretKmsKeyArn,
        bucket: props.bucket,
        prefix: storage.prefix,
        partMiB: drill.partMiB,
        logGroup: this.logGroup,
        stateMachineLogGroup: props.stateMachineLogGroup,
        logExecutionData: props.logExecutionData,
        sharedStarOnly: props.sharedStarOnly,
      });
    }
  }
}

/** `<stack>-<policy>-drill`: the physical name of a backup policy's restore-drill state machine. */
export function drillStateMachineNameFor(stackName: string, policyName: string): string {
  return `${stateMachineNameFor(stackName, policyName)}-drill`;
}

/** `<stack>-<policy>`: the physical name of a policy's state machine (`pg-lifecycle start` needs its ARN). */
export function stateMachineNameFor(stackName: string, policyName: string): string {
  return `${stackName}-${policyName}`;
}
