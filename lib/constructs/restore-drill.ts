import { fileURLToPath } from 'node:url';
import { Duration, Size, Stack } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import {
  Choice,
  Condition,
  DefinitionBody,
  Fail,
  LogLevel,
  StateMachine,
  StateMachineType,
  Succeed,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { RetryableErrorNames } from '../contracts/payloads.ts';
import {
  DRILL_FAILED_ERROR,
  DRILL_POLICY_ENV,
  DrillStateNames,
} from '../contracts/restore-drill-payloads.ts';
import { acknowledgeWildcardResource } from '../nag.ts';
import { LAMBDA_RETRY } from './chunk-loop-state-machine.ts';
import { LifecycleFunction } from './lifecycle-function.ts';
import { grantSecretKey } from './policy-grants.ts';
import { type StarOnlyManagedPolicy, WildcardConfinedRole } from './wildcard-confined-role.ts';

/** Handler of the drill function, relative to the repository root. */
export const DRILL_HANDLER_ENTRY = 'functions/drill.ts';

const REPO_ROOT = new URL('../../', import.meta.url);

/**
 * A drill is retried on the transient names, but not on TimeoutError: one that ran into the Lambda's 15 minutes
 * would only do so again (a backup that large needs a longer runtime, see the README).
 */
export const DRILL_RETRY = {
  ...LAMBDA_RETRY,
  errors: RetryableErrorNames.filter((name) => name !== 'TimeoutError'),
  maxAttempts: 3,
};

/** Properties of a {@link RestoreDrill}. */
export interface RestoreDrillProps {
  /** The backup policy whose latest backup is drilled. */
  readonly policyName: string;
  /** Physical name of the drill's state machine (`<stack>-<policy>-drill`). */
  readonly stateMachineName: string;
  readonly vpc: IVpc;
  readonly subnets: SubnetSelection;
  readonly securityGroup: ISecurityGroup;
  /** The database secret (the drill restores into the database the backups are of). */
  readonly secret: ISecret;
  /** Customer-managed key of the secret. @default - none */
  readonly secretKmsKeyArn?: string | undefined;
  /** The bucket holding the backups; the drill reads only under `prefix`. */
  readonly bucket: IBucket;
  /** `backup/<policy>/`. */
  readonly prefix: string;
  /** The policy's part size (MiB): /tmp must hold one compressed part while it is loaded. */
  readonly partMiB: number;
  /** The policy's function log group. */
  readonly logGroup: ILogGroup;
  /** The stack's state machine log group. */
  readonly stateMachineLogGroup: ILogGroup;
  readonly logExecutionData: boolean;
  readonly sharedStarOnly: {
    readonly functions: StarOnlyManagedPolicy;
    readonly stateMachine: StarOnlyManagedPolicy;
  };
}

/**
 * A scheduled restore drill of one backup policy: a function (in the VPC, 15 minutes, reads only
 * `backup/<policy>/`) that restores the latest backup into a scratch schema, compares it with the manifest,
 * records it in lifecycle.restore_drills and drops the scratch schema; and a small state machine
 * `Drill` → `DrillPassed` → `DrillSucceeded` | `DrillFailed`, so that a drill that did not pass, or could not
 * run, fails the execution and the policy's drill alarm fires. The schedule is made with the others
 * (PolicySchedules), the alarm with the others (FailureAlarm).
 */
export class RestoreDrill extends Construct {
  public readonly function: LifecycleFunction;
  public readonly stateMachine: StateMachine;

  public constructor(scope: Construct, id: string, props: RestoreDrillProps) {
    super(scope, id);
    const stack = Stack.of(this);
    // One compressed part on disk at a time (at most partMiB, a little more for incompressible data).
    const tmpMiB = Math.min(10_240, Math.max(512, Math.ceil(props.partMiB * 1.1) + 64));
    this.function = new LifecycleFunction(this, 'Function', {
      entry: fileURLToPath(new URL(DRILL_HANDLER_ENTRY, REPO_ROOT)),
      description: `pg-lifecycle restore drill (backup policy ${props.policyName}): latest backup into a scratch schema, compared, recorded, dropped`,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [props.securityGroup],
      environment: {
        DB_SECRET_ARN: props.secret.secretArn,
        DB_SSL: 'verify-full',
        ARCHIVE_BUCKET: props.bucket.bucketName,
        [DRILL_POLICY_ENV]: props.policyName,
      },
      // Decompression and COPY are CPU-bound: a full vCPU.
      memorySize: 1769,
      timeout: Duration.minutes(15),
      ephemeralStorageSize: Size.mebibytes(tmpMiB),
      logGroup: props.logGroup,
      sharedStarOnly: props.sharedStarOnly.functions,
    });
    props.secret.grantRead(this.function);
    grantSecretKey([this.function], props.secretKmsKeyArn, stack.region);
    const objects = props.bucket.arnForObjects(`${props.prefix}*`);
    this.function.addToRolePolicy(
      new PolicyStatement({
        sid: 'ListBackups',
        effect: Effect.ALLOW,
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${props.prefix}*`] } },
      }),
    );
    this.function.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadBackups',
        effect: Effect.ALLOW,
        actions: ['s3:GetObject'],
        resources: [objects],
      }),
    );
    acknowledgeWildcardResource(
      this.function.role ?? this.function,
      objects,
      `Backup keys are generated per run (${props.prefix}<backupId>/…); the drill of policy ${props.policyName} ` +
        `reads (never writes or deletes) objects only under ${props.prefix} of the bucket.`,
    );

    const drill = new LambdaInvoke(this, DrillStateNames.drill, {
      lambdaFunction: this.function,
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
      comment: 'Restores the latest backup into a scratch schema, compares, records, drops (runDrill).',
    });
    drill.addRetry(DRILL_RETRY);
    const passed = new Choice(this, DrillStateNames.passed)
      .when(Condition.stringEquals('$.status', 'passed'), new Succeed(this, DrillStateNames.succeeded))
      .otherwise(
        new Fail(this, DrillStateNames.failed, {
          error: DRILL_FAILED_ERROR,
          causePath: '$.cause',
          comment: 'The drill ran and did not pass (recorded in lifecycle.restore_drills): the alarm fires.',
        }),
      );
    drill.next(passed);

    const role = new WildcardConfinedRole(this, 'Role', {
      assumedBy: new ServicePrincipal('states.amazonaws.com'),
      description: `Execution role of the state machine ${props.stateMachineName}`,
      shared: props.sharedStarOnly.stateMachine,
    });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromChainable(drill),
      timeout: Duration.hours(1),
      tracingEnabled: true,
      role,
      logs: {
        destination: props.stateMachineLogGroup,
        level: LogLevel.ALL,
        includeExecutionData: props.logExecutionData,
      },
      comment: `pg-lifecycle restore drill of backup policy ${props.policyName}: Drill → DrillPassed`,
    });
    acknowledgeWildcardResource(
      role,
      `${this.function.functionArn}:*`,
      "lambda:InvokeFunction on the drill function's qualified ARNs (versions/aliases), added by LambdaInvoke.",
    );
  }
}
