/**
 * The stack's one dashboard: every alarm's state on top, then per enabled policy (whatever its action) one
 * widget per figure, each graphing the metrics the handlers publish under the names and dimensions the
 * handlers use (namespace PgLifecycle; service, policy, action), the compliance check's, and the policy's own
 * state machines'.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config-file.ts';
import { rowsVerb } from '../../lib/constructs/dashboard.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { RunMetricNames, SECONDS_SINCE_LAST_SUCCESS } from '../../lib/contracts/run-metrics.ts';
import { fixtureConfig, logicalIdOf, pascal, synthesize } from './synth.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

const extraPolicies = [
  {
    name: 'nightly',
    action: 'backup',
    schedule: 'cron(0 1 * * ? *)',
    backup: { tables: ['public.*'], drill: { schedule: 'cron(0 4 ? * SUN *)' } },
  },
  {
    name: 'old-profiles',
    action: 'anonymize',
    table: 'public.user_profiles',
    timeColumn: 'last_login',
    retention: 'P5Y',
    schedule: 'cron(0 3 ? * SUN *)',
    anonymize: { columns: { notes: { strategy: 'null' } } },
  },
  {
    // Run by hand, yet watched by the compliance check (its requests): it has a last-success age.
    name: 'gdpr',
    action: 'subjects',
    subjects: { keyName: 'user_id', tables: [{ table: 'public.users', keyColumn: 'id', action: 'delete' }] },
  },
] as PolicyInput[];

const config = parseConfig(
  {
    ...(fixtureConfig() as unknown as LifecycleConfigInput),
    policies: [...(fixtureConfig() as unknown as LifecycleConfigInput).policies, ...extraPolicies],
  },
  'fixture with backup, anonymize and subjects policies',
);
const { template } = synthesize(config);
const enabled = config.policies.filter((policy) => policy.enabled);

/** A CloudFormation value in the body as a readable string: `{Ref: X}` → `ref:X`, GetAtt → `att:X.Y`. */
function tokenText(part: unknown): string {
  if (typeof part === 'string') return part;
  const token = part as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  if (token.Ref) return `ref:${token.Ref}`;
  if (token['Fn::GetAtt']) return `att:${token['Fn::GetAtt'].join('.')}`;
  throw new Error(`unexpected token in the dashboard body: ${JSON.stringify(part)}`);
}

interface Widget {
  readonly type: string;
  readonly width: number;
  readonly properties: {
    readonly title?: string;
    readonly markdown?: string;
    readonly alarms?: string[];
    readonly metrics?: unknown[][];
  };
}

/** One graphed metric: its name, dimensions, statistic, axis (expressions have an `expression` instead). */
interface GraphedMetric {
  readonly namespace?: string;
  readonly name?: string;
  readonly dimensions: Record<string, string>;
  readonly options: { stat?: string; yAxis?: string; expression?: string; id?: string; visible?: boolean };
}

const dashboards = template.findResources('AWS::CloudWatch::Dashboard');
const dashboardId = logicalIdOf(template, 'AWS::CloudWatch::Dashboard', 'Dashboard');
const dashboard = dashboards[dashboardId]?.Properties as {
  DashboardName: unknown;
  DashboardBody: { 'Fn::Join': [string, unknown[]] };
};
const body = JSON.parse(dashboard.DashboardBody['Fn::Join'][1].map(tokenText).join('')) as {
  widgets: Widget[];
};

/** A CloudWatch dashboard metric array: `[ns, name, dim, value, …, {options}]` or `[{expression…}]`. */
function graphed(entry: unknown[]): GraphedMetric {
  const last = entry[entry.length - 1];
  const options = (typeof last === 'object' ? last : {}) as GraphedMetric['options'];
  const names = entry.filter((item): item is string => typeof item === 'string');
  if (names.length === 0) return { dimensions: {}, options };
  // A later entry may repeat the one before with '.' (CloudWatch's shorthand): CDK never writes it.
  const [namespace, name, ...pairs] = names;
  const dimensions: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) dimensions[pairs[i] as string] = pairs[i + 1] as string;
  return { namespace, name, dimensions, options };
}

function widgetTitled(title: string): { widget: Widget; metrics: GraphedMetric[] } {
  const widgets = body.widgets.filter((w) => w.properties.title === title);
  expect(widgets, title).toHaveLength(1);
  const widget = widgets[0] as Widget;
  return { widget, metrics: (widget.properties.metrics ?? []).map(graphed) };
}

const runDimensions = (policy: { name: string; action: string }) => ({
  service: 'pg-lifecycle',
  policy: policy.name,
  action: policy.action,
});

/** The metric `name` with the run dimensions of the policy, on `axis` with statistic `stat` (Average: unset). */
function expectRunMetric(
  metrics: GraphedMetric[],
  policy: { name: string; action: string },
  name: string,
  stat: string,
  axis: 'left' | 'right' = 'left',
) {
  const found = metrics.filter((m) => m.name === name && m.namespace === 'PgLifecycle');
  expect(found, name).toHaveLength(1);
  const metric = found[0] as GraphedMetric;
  expect(metric.dimensions).toEqual(runDimensions(policy));
  expect(metric.options.stat ?? 'Average').toBe(stat);
  expect(metric.options.yAxis ?? 'left').toBe(axis);
}

/** The chunk-loop machine of a policy, or its drill machine. */
const machineIdOf = (policy: string, machine: 'ChunkLoop' | 'DrillStateMachine' = 'ChunkLoop') =>
  logicalIdOf(template, 'AWS::StepFunctions::StateMachine', `Policy${pascal(policy)}${machine}`);

describe('the stack dashboard', () => {
  it('is one dashboard named after the stack and its region', () => {
    expect(Object.keys(dashboards)).toHaveLength(1);
    expect(dashboard.DashboardName).toEqual({ 'Fn::Join': ['', ['PgLifecycle-', { Ref: 'AWS::Region' }]] });
  });

  it("shows every alarm of the stack, each policy's overdue alarm included, in one status widget", () => {
    const alarmWidgets = body.widgets.filter((w) => w.type === 'alarm');
    expect(alarmWidgets).toHaveLength(1);
    const shown = alarmWidgets[0]?.properties.alarms ?? [];
    const alarmIds = Object.keys(template.findResources('AWS::CloudWatch::Alarm'));
    expect(shown.toSorted()).toEqual(alarmIds.map((id) => `att:${id}.Arn`).toSorted());
    expect(alarmIds.filter((id) => id.startsWith('OverdueAlarms'))).toHaveLength(5);
  });

  it('has a header per enabled policy naming its action and schedule, none for a disabled one', () => {
    const headers = body.widgets.flatMap((w) =>
      w.type === 'text' && w.properties.markdown?.startsWith('## ') ? [w.properties.markdown] : [],
    );
    expect(headers).toEqual(
      enabled.map((p) => `## ${p.name} · ${p.action} · ${p.schedule ?? 'run by hand'}`),
    );
    expect(body.widgets.some((w) => w.properties.title?.startsWith('paused-purge'))).toBe(false);
  });

  describe.each(enabled.map((policy) => [policy.name, policy] as const))('policy %s', (name, policy) => {
    const verb = rowsVerb(policy.action);

    it('graphs rows per run (RunRows) beside the rows its chunks committed (RowsProcessed)', () => {
      const { metrics } = widgetTitled(`${name}: rows ${verb} per run`);
      expect(metrics).toHaveLength(2);
      expectRunMetric(metrics, policy, RunMetricNames.runRows, 'Average');
      expectRunMetric(metrics, policy, RunMetricNames.rowsProcessed, 'Sum', 'right');
    });

    it('graphs the run duration (RunDuration) and the chunks’ p90 (ChunkDuration)', () => {
      const { metrics } = widgetTitled(`${name}: run duration`);
      expect(metrics).toHaveLength(2);
      expectRunMetric(metrics, policy, RunMetricNames.runDuration, 'Maximum');
      expectRunMetric(metrics, policy, RunMetricNames.chunkDuration, 'p90', 'right');
    });

    it('graphs chunks per run (RunChunks) and the objects written (ObjectsWritten)', () => {
      const { metrics } = widgetTitled(`${name}: chunks per run`);
      expect(metrics).toHaveLength(2);
      expectRunMetric(metrics, policy, RunMetricNames.runChunks, 'Average');
      expectRunMetric(metrics, policy, RunMetricNames.objectsWritten, 'Sum', 'right');
    });

    it('graphs the bytes to S3 per run (RunBytes) and by chunks (BytesWritten)', () => {
      const { metrics } = widgetTitled(`${name}: bytes to S3`);
      expect(metrics).toHaveLength(2);
      expectRunMetric(metrics, policy, RunMetricNames.runBytes, 'Average');
      expectRunMetric(metrics, policy, RunMetricNames.bytesWritten, 'Sum', 'right');
    });

    it('graphs the runs that succeeded (RunSucceeded) and failed (RunFailed)', () => {
      const { metrics } = widgetTitled(`${name}: runs and failures`);
      expect(metrics).toHaveLength(2);
      expectRunMetric(metrics, policy, RunMetricNames.runSucceeded, 'Sum');
      expectRunMetric(metrics, policy, RunMetricNames.runFailed, 'Sum');
    });

    it('graphs the chunk steps that waited for replica lag (ReplicaLagWaits) out of all chunk steps', () => {
      const { metrics } = widgetTitled(`${name}: replica-lag waits`);
      expect(metrics.map((m) => [m.name, m.options.stat, m.options.yAxis ?? 'left'])).toEqual([
        [RunMetricNames.replicaLagWaits, 'Sum', 'left'],
        [RunMetricNames.replicaLagWaits, 'SampleCount', 'right'],
      ]);
      for (const metric of metrics) expect(metric.dimensions).toEqual(runDimensions(policy));
    });

    it("graphs its state machine's executions (AWS/States) and their time", () => {
      const { metrics } = widgetTitled(`${name}: executions`);
      const arn = `ref:${machineIdOf(name)}`;
      expect(metrics.map((m) => [m.namespace, m.name, m.options.stat, m.options.yAxis ?? 'left'])).toEqual([
        ['AWS/States', 'ExecutionsSucceeded', 'Sum', 'left'],
        ['AWS/States', 'ExecutionsFailed', 'Sum', 'left'],
        ['AWS/States', 'ExecutionsTimedOut', 'Sum', 'left'],
        ['AWS/States', 'ExecutionsAborted', 'Sum', 'left'],
        ['AWS/States', 'ExecutionTime', 'Maximum', 'right'],
      ]);
      for (const metric of metrics) expect(metric.dimensions).toEqual({ StateMachineArn: arn });
    });
  });

  it('graphs the last successful run age of every policy the compliance check watches, none else', () => {
    const watched = enabled.filter((p) => p.schedule !== undefined || p.action === 'subjects');
    expect(watched.map((p) => p.name)).toContain('gdpr');
    for (const policy of watched) {
      const { metrics } = widgetTitled(`${policy.name}: last successful run age`);
      const age = metrics.find((m) => m.name === SECONDS_SINCE_LAST_SUCCESS);
      expect(age?.dimensions).toEqual({
        service: 'pg-lifecycle',
        stack: 'PgLifecycle',
        policy: policy.name,
        action: policy.action,
      });
      expect(age?.options).toMatchObject({ stat: 'Maximum', visible: false });
      const hours = metrics.find((m) => m.options.expression !== undefined);
      expect(hours?.options.expression).toBe(`${age?.options.id} / 3600`);
      const overdue = metrics.find((m) => m.name === 'PolicyOverdue');
      expect(overdue?.dimensions).toEqual({
        service: 'pg-lifecycle',
        stack: 'PgLifecycle',
        policy: policy.name,
      });
      expect(overdue?.options).toMatchObject({ stat: 'Maximum', yAxis: 'right' });
    }
    expect(body.widgets.some((w) => w.properties.title === 'manual-purge: last successful run age')).toBe(
      false,
    );
  });

  it('graphs the restore drills of a backup policy with a drill on its drill machine', () => {
    const { metrics } = widgetTitled('nightly: restore drills');
    const arn = `ref:${machineIdOf('nightly', 'DrillStateMachine')}`;
    expect(metrics.map((m) => m.name)).toEqual([
      'ExecutionsSucceeded',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
      'ExecutionsAborted',
      'ExecutionTime',
    ]);
    for (const metric of metrics) expect(metric.dimensions).toEqual({ StateMachineArn: arn });
    expect(body.widgets.filter((w) => w.properties.title?.endsWith(': restore drills'))).toHaveLength(1);
  });

  it('names each rows widget after what the action does to rows, and any other action "processed"', () => {
    expect(['archive', 'purge', 'backup', 'anonymize', 'maintain'].map(rowsVerb)).toEqual([
      'archived',
      'purged',
      'backed up',
      'anonymized',
      'processed',
    ]);
  });
});
