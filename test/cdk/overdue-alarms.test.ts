/**
 * An alarm per scheduled policy on the compliance check's PolicyOverdue for that policy (no success within two
 * schedule periods), notifying the stack's topic; none for a policy run by hand or disabled.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config-file.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { fixtureConfig, logicalIdOf, synthesize } from './synth.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

const config = parseConfig(
  {
    ...(fixtureConfig() as unknown as LifecycleConfigInput),
    policies: [
      ...(fixtureConfig() as unknown as LifecycleConfigInput).policies,
      {
        name: 'nightly',
        action: 'backup',
        schedule: 'cron(0 1 * * ? *)',
        backup: { tables: ['public.*'] },
      } as PolicyInput,
      {
        name: 'gdpr',
        action: 'subjects',
        subjects: {
          keyName: 'user_id',
          tables: [{ table: 'public.users', keyColumn: 'id', action: 'delete' }],
        },
      } as PolicyInput,
    ],
  },
  'fixture with a backup and an unscheduled subjects policy',
);
const { template } = synthesize(config);
const topicId = logicalIdOf(template, 'AWS::SNS::Topic', 'FailureAlarmTopic');
const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
  (alarm) => alarm.Properties as Record<string, unknown>,
);
// The compliance check's aggregate alarm (`<prefix>-compliance-policy-overdue`, OverduePolicies) is not one of them.
const overdueAlarms = alarms.filter((alarm) => alarm.MetricName === 'PolicyOverdue');

describe('the per-policy overdue alarms', () => {
  it('exist for each enabled, scheduled policy, whatever its action, and for no other', () => {
    expect(overdueAlarms.map((alarm) => alarm.AlarmName).toSorted()).toEqual(
      ['orders-archive', 'events-archive', 'sessions-purge', 'nightly']
        .map((policy) => `PgLifecycle-${policy}-overdue`)
        .toSorted(),
    );
  });

  it.each(['orders-archive', 'events-archive', 'sessions-purge', 'nightly'])(
    '%s: PolicyOverdue ≥ 1 in one hourly period, missing data keeping the state, alarm and OK to the topic',
    (policy) => {
      const alarm = overdueAlarms.find((a) => a.AlarmName === `PgLifecycle-${policy}-overdue`);
      expect(alarm).toMatchObject({
        Namespace: 'PgLifecycle',
        MetricName: 'PolicyOverdue',
        Statistic: 'Maximum',
        Period: 3600,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'ignore',
        AlarmActions: [{ Ref: topicId }],
        OKActions: [{ Ref: topicId }],
      });
      const dimensions = (alarm?.Dimensions ?? []) as Array<{ Name: string; Value: string }>;
      expect(dimensions.toSorted((a, b) => a.Name.localeCompare(b.Name))).toEqual([
        { Name: 'policy', Value: policy },
        { Name: 'service', Value: 'pg-lifecycle' },
        { Name: 'stack', Value: 'PgLifecycle' },
      ]);
      expect(alarm?.DatapointsToAlarm).toBeUndefined();
      expect(String(alarm?.AlarmDescription)).toContain(`pg-lifecycle report --policy ${policy}`);
    },
  );

  it('are named under the prefix the topic key lets CloudWatch encrypt for', () => {
    for (const alarm of overdueAlarms) expect(String(alarm.AlarmName)).toMatch(/^PgLifecycle-/);
  });
});
