import { fileURLToPath } from 'node:url';
import { Duration, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Metric,
  Stats,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  COMPLIANCE_POLICIES_ENV,
  COMPLIANCE_STACK_ENV,
  ComplianceDimensions,
  ComplianceMetricNames,
  type CompliancePolicy,
  encodeCompliancePolicies,
  SERVICE_NAME,
} from '../contracts/compliance-check.ts';
import { acknowledgeWildcardResource } from '../nag.ts';
import { LifecycleFunction, METRICS_NAMESPACE } from './lifecycle-function.ts';
import { grantSecretKey } from './policy-grants.ts';
import type { StarOnlyManagedPolicy } from './wildcard-confined-role.ts';

/** Handler of the compliance check, relative to the repository root. */
export const COMPLIANCE_HANDLER_ENTRY = 'functions/compliance.ts';

const REPO_ROOT = new URL('../../', import.meta.url);

/**
 * Lambda takes at most 4 KB of environment variables (names and values together); the policy list may have
 * most of it, the rest is the other variables'.
 */
export const MAX_COMPLIANCE_POLICIES_ENV_BYTES = 3_072;

/** How often the check runs, and the period of its alarms. */
export const COMPLIANCE_CHECK_PERIOD = Duration.hours(1);

/** Properties of a {@link ComplianceCheck}. */
export interface ComplianceCheckProps {
  /** The deployed policies the check watches (compliancePolicies of the config). */
  readonly policies: readonly CompliancePolicy[];
  readonly vpc: IVpc;
  readonly subnets: SubnetSelection;
  readonly securityGroup: ISecurityGroup;
  /**
   * The database secret: the check reads the ledger, applies its pending migrations and records first sightings
   * (lifecycle.policy_first_seen), as the same database role every other function of the stack uses.
   */
  readonly secret: ISecret;
  /** Customer-managed key of the secret. @default - none */
  readonly secretKmsKeyArn?: string | undefined;
  /** Retention of the function's log group. */
  readonly logRetention: RetentionDays;
  /** Customer-managed key of the function's log group. @default - none */
  readonly logEncryptionKey?: IKey | undefined;
  /** The stack's managed policy of the `*`-only actions every function needs. */
  readonly sharedStarOnly: StarOnlyManagedPolicy;
  /** The role the stack's schedules share; it gets lambda:InvokeFunction on the check. */
  readonly scheduleRole: IRole;
  /** The schedules' dead-letter queue (its alarm already notifies the topic). */
  readonly deadLetterQueue: IQueue;
  /** The stack's alarm topic. */
  readonly alarmTopic: ITopic;
  /** Prefix of the alarm names; the topic's key lets CloudWatch encrypt only for alarms named `<prefix>-…`. */
  readonly alarmNamePrefix: string;
}

/**
 * The scheduled compliance check: a function (in the VPC, database secret only) that every hour builds the
 * overdue part of the compliance report for the deployed policies and publishes it as metrics in the
 * PgLifecycle namespace, dimension `stack` (EMF: the function's log group turns them into metrics, so it needs
 * no cloudwatch:PutMetricData); a schedule invoking it (the stack's shared schedule role and dead-letter
 * queue); and two alarms on the stack's topic. Before the report the function applies the ledger migrations
 * (shipped beside its bundle in sql/, as for every LifecycleFunction) and records when it first saw each
 * scheduled policy (lifecycle.policy_first_seen, sql/014): a policy that never succeeded is overdue only two
 * schedule periods after that, so a first deploy does not page. That is database work under the secret's role,
 * nothing new in IAM.
 *
 * - `<prefix>-compliance-policy-overdue`: OverduePolicies ≥ 1 in two hourly periods running. Missing data is
 *   breaching: a check that does not run (failing, cannot reach the database, schedule gone) must page too,
 *   or a silent check would look like a compliant stack. Two periods, so that one missed run (an invocation
 *   that landed in the next hour, a transient failure Lambda's own two retries did not cover) does not page;
 *   an overdue policy is already two schedule periods late, one hour more is not what matters.
 * - `<prefix>-compliance-subject-requests`: SubjectRequestsOverdue + SubjectRequestsFailed ≥ 1 in an hour.
 *   Missing data is ignored (the alarm keeps its state): the first alarm already says the check stopped, and
 *   an all-clear because nothing was measured would be false.
 */
export class ComplianceCheck extends Construct {
  public readonly function: LifecycleFunction;
  public readonly schedule: Schedule;
  public readonly policyOverdueAlarm: Alarm;
  public readonly subjectRequestsAlarm: Alarm;

  public constructor(scope: Construct, id: string, props: ComplianceCheckProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const encoded = encodeCompliancePolicies(props.policies);
    this.node.addValidation({
      validate: () => {
        const bytes = Buffer.byteLength(encoded, 'utf8');
        return bytes > MAX_COMPLIANCE_POLICIES_ENV_BYTES
          ? [
              `the compliance check's ${COMPLIANCE_POLICIES_ENV} would hold ${bytes} bytes (${props.policies.length} ` +
                `policies), more than the ${MAX_COMPLIANCE_POLICIES_ENV_BYTES} Lambda's 4 KB of environment leaves ` +
                'it: shorten policy names or split the policies over two config files (stacks)',
            ]
          : [];
      },
    });

    this.function = new LifecycleFunction(this, 'Function', {
      entry: fileURLToPath(new URL(COMPLIANCE_HANDLER_ENTRY, REPO_ROOT)),
      description:
        'pg-lifecycle compliance check: overdue policies and subject requests from the ledger, as metrics',
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [props.securityGroup],
      environment: {
        DB_SECRET_ARN: props.secret.secretArn,
        DB_SSL: 'verify-full',
        [COMPLIANCE_POLICIES_ENV]: encoded,
        [COMPLIANCE_STACK_ENV]: stack.stackName,
      },
      // A few small ledger statements (the migrations a no-op once current, one INSERT … ON CONFLICT DO NOTHING,
      // the report's reads): little memory, and well within a minute (statements capped to the deadline).
      memorySize: 256,
      timeout: Duration.minutes(2),
      logRetention: props.logRetention,
      logEncryptionKey: props.logEncryptionKey,
      sharedStarOnly: props.sharedStarOnly,
    });
    props.secret.grantRead(this.function);
    grantSecretKey([this.function], props.secretKmsKeyArn, stack.region);

    this.schedule = new Schedule(this, 'Schedule', {
      schedule: ScheduleExpression.rate(COMPLIANCE_CHECK_PERIOD),
      target: new LambdaInvoke(this.function, {
        role: props.scheduleRole,
        // As the drill schedules send (the handler needs nothing from it; the logs show what invoked it).
        input: ScheduleTargetInput.fromObject({ trigger: 'schedule' }),
        deadLetterQueue: props.deadLetterQueue,
        maxEventAge: COMPLIANCE_CHECK_PERIOD,
        retryAttempts: 3,
      }),
      description: 'pg-lifecycle compliance check: overdue policies and subject requests as metrics',
    });
    acknowledgeWildcardResource(
      props.scheduleRole,
      `${this.function.functionArn}:*`,
      "lambda:InvokeFunction on the compliance check's qualified ARNs (versions/aliases), added with the " +
        'unqualified ARN by the Scheduler LambdaInvoke target; no other function is reachable.',
    );

    const metric = (metricName: string) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: {
          [ComplianceDimensions.service]: SERVICE_NAME,
          [ComplianceDimensions.stack]: stack.stackName,
        },
        period: COMPLIANCE_CHECK_PERIOD,
        statistic: Stats.MAXIMUM,
      });
    const action = new SnsAction(props.alarmTopic);

    this.policyOverdueAlarm = new Alarm(this, 'PolicyOverdue', {
      alarmName: `${props.alarmNamePrefix}-compliance-policy-overdue`,
      alarmDescription:
        'A pg-lifecycle policy has had no successful run within two schedule periods (the PolicyOverdue metric ' +
        'names it; `pg-lifecycle report` says since when), or the compliance check itself did not run for two ' +
        'hours (its function log says why).',
      metric: metric(ComplianceMetricNames.overduePolicies),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
      treatMissingData: TreatMissingData.BREACHING,
    });
    this.subjectRequestsAlarm = new Alarm(this, 'SubjectRequests', {
      alarmName: `${props.alarmNamePrefix}-compliance-subject-requests`,
      alarmDescription:
        'A pg-lifecycle subject request is past its due date or failed (`pg-lifecycle report` and ' +
        'lifecycle.subject_requests say which).',
      metric: new MathExpression({
        expression: 'overdue + failed',
        label: 'Subject requests overdue or failed',
        period: COMPLIANCE_CHECK_PERIOD,
        usingMetrics: {
          overdue: metric(ComplianceMetricNames.requestsOverdue),
          failed: metric(ComplianceMetricNames.requestsFailed),
        },
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.IGNORE,
    });
    for (const alarm of [this.policyOverdueAlarm, this.subjectRequestsAlarm]) {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
  }
}
