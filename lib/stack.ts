import {
  Aws,
  CfnOutput,
  CfnResource,
  Fn,
  RemovalPolicy,
  Stack,
  type StackProps,
  Validations,
} from 'aws-cdk-lib';
import { SecurityGroup, Vpc } from 'aws-cdk-lib/aws-ec2';
import { CfnDatabase } from 'aws-cdk-lib/aws-glue';
import { type IKey, Key } from 'aws-cdk-lib/aws-kms';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { ArchiveBucket } from './constructs/archive-bucket.ts';
import { STATE_MACHINE_STAR_ONLY_GRANTS } from './constructs/chunk-loop-state-machine.ts';
import { ComplianceCheck } from './constructs/compliance-check.ts';
import { LifecycleDashboard } from './constructs/dashboard.ts';
import { FailureAlarm } from './constructs/failure-alarm.ts';
import { LAMBDA_STAR_ONLY_GRANTS } from './constructs/lifecycle-function.ts';
import { OverdueAlarms } from './constructs/overdue-alarms.ts';
import { type DatabaseConnectivity, PolicyRunner } from './constructs/policy-runner.ts';
import { PolicySchedules } from './constructs/policy-schedule.ts';
import { SandboxDatabase } from './constructs/sandbox-database.ts';
import { StarOnlyManagedPolicy } from './constructs/wildcard-confined-role.ts';
import { compliancePolicies } from './contracts/compliance-check.ts';
import { contractOf, type LifecycleConfig, resolveChunking } from './contracts/config.ts';
import { MAX_RESOURCES_PER_STACK, pascalCase } from './contracts/stack-limits.ts';

export { HANDLER_ENTRIES } from './constructs/policy-runner.ts';

/** Properties of a {@link PgLifecycleStack}. */
export interface PgLifecycleStackProps extends StackProps {
  /** The validated `lifecycle.config.json`. */
  readonly config: LifecycleConfig;
}

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
 * or a sandbox VPC + RDS with `sandbox: true`), the archive bucket, the Glue database the start steps
 * register archive tables in, one {@link PolicyRunner} per enabled policy (its own four step functions and
 * chunk-loop state machine, IAM bounded to that policy), one schedule per scheduled policy, the failure
 * alarms, the hourly compliance check (overdue policies and subject requests as metrics, two alarms), an overdue
 * alarm per scheduled policy, one dashboard (lib/constructs/dashboard.ts), and the state machines' execution log
 * group.
 */
export class PgLifecycleStack extends Stack {
  /** Each enabled policy's functions and state machine, by policy name. */
  public readonly runners: ReadonlyMap<string, PolicyRunner>;

  /** The archive bucket. */
  public readonly archiveBucket: ArchiveBucket;

  /** Name of the Glue database holding the archive tables. */
  public readonly glueDatabaseName: string;

  /** Where every state machine of the stack logs its executions. */
  public readonly stateMachineLogGroup: LogGroup;

  /** The hourly compliance check: its function, schedule and alarms. */
  public readonly complianceCheck: ComplianceCheck;

  /** The stack's CloudWatch dashboard: every alarm's state, and each policy's runs, chunks and executions. */
  public readonly dashboard: LifecycleDashboard;

  public constructor(scope: Construct, id: string, props: PgLifecycleStackProps) {
    super(scope, id, {
      description: 'pg-lifecycle: scheduled, chunked data-lifecycle runs (archive/purge) for PostgreSQL',
      ...props,
    });
    const { config } = props;
    const connectivity = this.databaseConnectivity(config);
    const { observability } = config;

    // Every policy that keeps objects (the bucket is created even when none does: the stack's outputs name it).
    const storingPolicies = config.policies.flatMap((policy) => {
      const storage = contractOf(policy).storage(policy);
      return storage ? [{ name: policy.name, action: policy.action, storage }] : [];
    });
    this.archiveBucket = new ArchiveBucket(this, 'ArchiveBucket', {
      policies: storingPolicies,
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

    const logRetention = observability.logRetentionDays as RetentionDays;
    const logEncryptionKey: IKey | undefined = observability.logKmsKeyArn
      ? Key.fromKeyArn(this, 'LogKey', observability.logKmsKeyArn)
      : undefined;
    this.stateMachineLogGroup = new LogGroup(this, 'StateMachineLogs', {
      // The vendedlogs prefix keeps CloudWatch Logs resource policies from growing per log group. The stack's
      // id (a GUID) in the name: the group outlives the stack, and a stack created again under the same name
      // must not collide with it.
      logGroupName: Fn.join('', [
        `/aws/vendedlogs/states/${this.stackName}-`,
        Fn.select(2, Fn.split('/', this.stackId)),
      ]),
      retention: logRetention,
      encryptionKey: logEncryptionKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // "*"-only actions every function (every state machine) needs alike: one managed policy each for the stack.
    const sharedStarOnly = {
      functions: new StarOnlyManagedPolicy(this, 'FunctionStarOnlyActions', {
        grants: LAMBDA_STAR_ONLY_GRANTS,
        description:
          'pg-lifecycle functions: VPC network interfaces and X-Ray (actions authorized only on *)',
      }),
      stateMachine: new StarOnlyManagedPolicy(this, 'StateMachineStarOnlyActions', {
        grants: STATE_MACHINE_STAR_ONLY_GRANTS,
        description: 'pg-lifecycle state machines: log delivery and X-Ray (actions authorized only on *)',
      }),
    };
    const runners = new Map<string, PolicyRunner>();
    for (const policy of config.policies) {
      if (!policy.enabled) continue;
      runners.set(
        policy.name,
        new PolicyRunner(this, `Policy${pascalCase(policy.name)}`, {
          config,
          policy,
          connectivity,
          bucket,
          glueDatabaseName: this.glueDatabaseName,
          stateMachineLogGroup: this.stateMachineLogGroup,
          logRetention,
          logEncryptionKey,
          logExecutionData: observability.logExecutionData,
          sharedStarOnly,
        }),
      );
    }
    this.runners = runners;
    const stateMachines = new Map<string, IStateMachine>(
      [...runners].map(([name, runner]) => [name, runner.chunkLoop.stateMachine]),
    );

    const drillStateMachines = new Map<string, IStateMachine>(
      [...runners].flatMap(([name, runner]) => (runner.drill ? [[name, runner.drill.stateMachine]] : [])),
    );

    const schedules = new PolicySchedules(this, 'Schedules', { config, stateMachines, drillStateMachines });
    const failureAlarm = new FailureAlarm(this, 'FailureAlarm', {
      stateMachines,
      drillStateMachines,
      deadLetterQueue: schedules.deadLetterQueue,
      alarmEmail: config.alarmEmail,
    });
    const watched = compliancePolicies(config);
    this.complianceCheck = new ComplianceCheck(this, 'ComplianceCheck', {
      policies: watched,
      vpc: connectivity.vpc,
      subnets: connectivity.subnets,
      securityGroup: connectivity.securityGroup,
      secret: connectivity.secret,
      secretKmsKeyArn: config.database?.secretKmsKeyArn,
      logRetention,
      logEncryptionKey,
      sharedStarOnly: sharedStarOnly.functions,
      scheduleRole: schedules.role,
      deadLetterQueue: schedules.deadLetterQueue,
      alarmTopic: failureAlarm.topic,
      alarmNamePrefix: failureAlarm.alarmNamePrefix,
    });
    const overdueAlarms = new OverdueAlarms(this, 'OverdueAlarms', {
      policies: watched,
      alarmTopic: failureAlarm.topic,
      alarmNamePrefix: failureAlarm.alarmNamePrefix,
    });
    const watchedNames = new Set(watched.map((policy) => policy.name));
    this.dashboard = new LifecycleDashboard(this, 'Dashboard', {
      policies: config.policies.flatMap((policy) => {
        const stateMachine = stateMachines.get(policy.name);
        return stateMachine
          ? [
              {
                name: policy.name,
                action: policy.action,
                schedule: policy.schedule,
                stateMachine,
                drillStateMachine: drillStateMachines.get(policy.name),
                watchedByComplianceCheck: watchedNames.has(policy.name),
              },
            ]
          : [];
      }),
      alarms: [
        ...failureAlarm.executionAlarms.values(),
        ...overdueAlarms.alarms.values(),
        ...failureAlarm.drillAlarms.values(),
        ...(failureAlarm.deadLetterAlarm ? [failureAlarm.deadLetterAlarm] : []),
        this.complianceCheck.policyOverdueAlarm,
        this.complianceCheck.subjectRequestsAlarm,
      ],
    });

    new CfnOutput(this, 'ArchiveBucketName', { value: bucket.bucketName, description: 'Archive bucket' });
    for (const [name, stateMachine] of stateMachines) {
      new CfnOutput(this, `StateMachineArn${pascalCase(name)}`, {
        value: stateMachine.stateMachineArn,
        description: `State machine of policy ${name} (pg-lifecycle start --policy ${name} --state-machine-arn)`,
      });
    }
    for (const [name, stateMachine] of drillStateMachines) {
      new CfnOutput(this, `DrillStateMachineArn${pascalCase(name)}`, {
        value: stateMachine.stateMachineArn,
        description: `Restore-drill state machine of backup policy ${name} (start it for a drill now)`,
      });
    }
    new CfnOutput(this, 'StateMachineArnPrefix', {
      value: `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:stateMachine:${this.stackName}-`,
      description: 'Prefix of every policy state machine ARN (PG_LIFECYCLE_STATE_MACHINE_PREFIX for the CLI)',
    });
    new CfnOutput(this, 'GlueDatabaseName', {
      value: this.glueDatabaseName,
      description: 'Glue database of archives',
    });
    new CfnOutput(this, 'DatabaseSecretArn', {
      value: connectivity.secret.secretArn,
      description: 'Database secret',
    });
    // CloudFormation refuses a template past its resource quota only at deploy time; say it at synth.
    this.node.addValidation({
      validate: () => {
        const count = this.node.findAll().filter((construct) => construct instanceof CfnResource).length;
        return count > MAX_RESOURCES_PER_STACK
          ? [
              `${count} CloudFormation resources, more than the ${MAX_RESOURCES_PER_STACK} one stack may hold: ` +
                'split the policies over two configs (stacks)',
            ]
          : [];
      },
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
}

/** Some enabled policy's throttle reads replica lag from CloudWatch. */
function readsLagFromCloudWatch(config: LifecycleConfig): boolean {
  return config.policies.some(
    (policy) => policy.enabled && resolveChunking(config, policy).throttle?.cloudWatch !== undefined,
  );
}
