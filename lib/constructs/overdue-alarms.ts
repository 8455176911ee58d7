import { Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, Stats, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import {
  ComplianceDimensions,
  ComplianceMetricNames,
  type CompliancePolicy,
  SERVICE_NAME,
} from '../contracts/compliance-check.ts';
import { pascalCase } from '../contracts/stack-limits.ts';
import { COMPLIANCE_CHECK_PERIOD } from './compliance-check.ts';
import { METRICS_NAMESPACE } from './lifecycle-function.ts';

/** Properties of {@link OverdueAlarms}. */
export interface OverdueAlarmsProps {
  /**
   * The policies the compliance check watches (compliancePolicies of the config); those with a schedule get an
   * alarm (one run only by hand is never overdue).
   */
  readonly policies: readonly CompliancePolicy[];
  /** The stack's alarm topic. */
  readonly alarmTopic: ITopic;
  /** Prefix of the alarm names; the topic's key lets CloudWatch encrypt only for alarms named `<prefix>-…`. */
  readonly alarmNamePrefix: string;
}

/**
 * One alarm per scheduled policy, `<prefix>-<policy>-overdue`: the compliance check's PolicyOverdue (dimensions
 * service, stack, policy) is 1 in an hourly period, i.e. the policy has had no successful run within two of its
 * schedule periods. The check decides that (functions/reports/compliance.ts isOverdue: cron periods in the
 * policy's time zone, the grace after a first deploy), so the alarm needs no period of its own and cannot
 * disagree with `pg-lifecycle report`.
 *
 * One period: a 1 is the check's verdict, not a sample that might be noise (a success brings the next hour's 0).
 * Missing data is ignored, the alarm keeps its state: a check that stopped publishing is the aggregate alarm's
 * (`<prefix>-compliance-policy-overdue`, missing data breaching), and an all-clear because nothing was measured
 * would be false.
 */
export class OverdueAlarms extends Construct {
  /** The alarm of each scheduled policy, by policy name. */
  public readonly alarms: ReadonlyMap<string, Alarm>;

  public constructor(scope: Construct, id: string, props: OverdueAlarmsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const action = new SnsAction(props.alarmTopic);
    const alarms = new Map<string, Alarm>();
    for (const policy of props.policies) {
      if (policy.schedule === undefined) continue;
      const alarm = new Alarm(this, pascalCase(policy.name), {
        alarmName: `${props.alarmNamePrefix}-${policy.name}-overdue`,
        alarmDescription:
          `pg-lifecycle policy ${policy.name} (${policy.action}, ${policy.schedule}) has had no successful run ` +
          'within two schedule periods. `pg-lifecycle report --policy ' +
          `${policy.name}\` says since when, \`pg-lifecycle status --policy ${policy.name}\` what its last ` +
          'executions did (docs/operations.md, "Policy overdue").',
        metric: new Metric({
          namespace: METRICS_NAMESPACE,
          metricName: ComplianceMetricNames.policyOverdue,
          dimensionsMap: {
            [ComplianceDimensions.service]: SERVICE_NAME,
            [ComplianceDimensions.stack]: stack.stackName,
            [ComplianceDimensions.policy]: policy.name,
          },
          period: COMPLIANCE_CHECK_PERIOD,
          statistic: Stats.MAXIMUM,
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.IGNORE,
      });
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      alarms.set(policy.name, alarm);
    }
    this.alarms = alarms;
  }
}
