import { Duration, Stack } from 'aws-cdk-lib';
import {
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  type IAlarm,
  type IMetric,
  type IWidget,
  MathExpression,
  Metric,
  Stats,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ComplianceDimensions, ComplianceMetricNames, SERVICE_NAME } from '../contracts/compliance-check.ts';
import { RunMetricDimensions, RunMetricNames, SECONDS_SINCE_LAST_SUCCESS } from '../contracts/run-metrics.ts';
import { COMPLIANCE_CHECK_PERIOD } from './compliance-check.ts';
import { METRICS_NAMESPACE } from './lifecycle-function.ts';

/** One deployed policy as the dashboard shows it. */
export interface DashboardPolicy {
  readonly name: string;
  /** Its action, whatever it is: the `action` dimension of its metrics. */
  readonly action: string;
  /** Its schedule expression. @default - run by hand */
  readonly schedule?: string | undefined;
  /** Its chunk-loop state machine. */
  readonly stateMachine: IStateMachine;
  /** Its restore-drill state machine (backup policies with a drill). @default - none */
  readonly drillStateMachine?: IStateMachine | undefined;
  /**
   * The compliance check watches it (scheduled, or subjects), so it publishes SecondsSinceLastSuccess and
   * PolicyOverdue for it. @default false
   */
  readonly watchedByComplianceCheck?: boolean | undefined;
}

/** Properties of a {@link LifecycleDashboard}. */
export interface LifecycleDashboardProps {
  /** The enabled policies, in config order: one block of widgets each. */
  readonly policies: readonly DashboardPolicy[];
  /** Every alarm of the stack, shown in one status widget at the top. @default - none */
  readonly alarms?: readonly IAlarm[] | undefined;
  /** Period of the graphed metrics. @default Duration.hours(1) */
  readonly period?: Duration | undefined;
}

/** The widgets' width (a row is 24) and height. */
const WIDTH = 6;
const HEIGHT = 6;
/** CloudWatch takes at most 100 alarms in one alarm status widget. */
const MAX_ALARMS_PER_WIDGET = 100;

/** What a policy's rows are called in titles; an action not listed here (a new one) has its rows "processed". */
const ROWS_VERB: Readonly<Record<string, string>> = {
  archive: 'archived',
  purge: 'purged',
  backup: 'backed up',
  anonymize: 'anonymized',
};

/** `archived` for an archive policy, … `processed` for any other. */
export function rowsVerb(action: string): string {
  return ROWS_VERB[action] ?? 'processed';
}

/**
 * The stack's one CloudWatch dashboard, `<stack>-<region>` (dashboard names are per account, not per region): on
 * top the state of every alarm of the stack; then per policy a header and its figures, from the metrics its
 * handlers publish (namespace PgLifecycle, dimensions service, policy, action: lib/contracts/run-metrics.ts),
 * the compliance check's (SecondsSinceLastSuccess, PolicyOverdue) and its state machines' (AWS/States):
 *
 * rows per run · run duration · chunks per run · bytes to S3 · runs succeeded and failed · replica-lag waits ·
 * last successful run age (policies the compliance check watches) · executions (and drills, with a drill).
 *
 * docs/operations.md describes each widget and what normal looks like.
 */
export class LifecycleDashboard extends Construct {
  public readonly dashboard: Dashboard;

  public constructor(scope: Construct, id: string, props: LifecycleDashboardProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const period = props.period ?? Duration.hours(1);
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${stack.stackName}-${stack.region}`,
      defaultInterval: Duration.days(14),
    });

    const alarms = props.alarms ?? [];
    const top: IWidget[] = [
      new TextWidget({
        markdown:
          `# pg-lifecycle: ${stack.stackName}\n` +
          'Per policy: its runs (RunRows, RunDuration, RunChunks, RunBytes, RunSucceeded, RunFailed), its chunks ' +
          '(RowsProcessed, BytesWritten, ObjectsWritten, ChunkDuration), replica-lag waits, the age of its last ' +
          'successful run and its executions. What each shows and what to do when an alarm fires: ' +
          'docs/operations.md.',
        width: 24,
        height: 2,
      }),
    ];
    for (let start = 0; start < alarms.length; start += MAX_ALARMS_PER_WIDGET) {
      top.push(
        new AlarmStatusWidget({
          title:
            alarms.length > MAX_ALARMS_PER_WIDGET
              ? `Alarms (${start / MAX_ALARMS_PER_WIDGET + 1})`
              : 'Alarms',
          alarms: alarms.slice(start, start + MAX_ALARMS_PER_WIDGET),
          width: 24,
          height: 3,
        }),
      );
    }
    for (const widget of top) this.dashboard.addWidgets(widget);
    for (const policy of props.policies) {
      const widgets = policyWidgets(policy, stack.stackName, period);
      this.dashboard.addWidgets(widgets.header);
      // Four to a row.
      for (let start = 0; start < widgets.figures.length; start += 24 / WIDTH) {
        this.dashboard.addWidgets(...widgets.figures.slice(start, start + 24 / WIDTH));
      }
    }
  }
}

function policyWidgets(
  policy: DashboardPolicy,
  stackName: string,
  period: Duration,
): { header: TextWidget; figures: GraphWidget[] } {
  const run = (metricName: string, statistic: string, label: string): Metric =>
    new Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: {
        [RunMetricDimensions.service]: SERVICE_NAME,
        [RunMetricDimensions.policy]: policy.name,
        [RunMetricDimensions.action]: policy.action,
      },
      statistic,
      period,
      label,
    });
  const verb = rowsVerb(policy.action);
  const graph = (title: string, left: IMetric[], right: IMetric[] = []) =>
    new GraphWidget({ title: `${policy.name}: ${title}`, left, right, width: WIDTH, height: HEIGHT });
  const executions = (title: string, stateMachine: IStateMachine) =>
    graph(
      title,
      [
        stateMachine.metricSucceeded({ period, statistic: Stats.SUM, label: 'succeeded' }),
        stateMachine.metricFailed({ period, statistic: Stats.SUM, label: 'failed' }),
        stateMachine.metricTimedOut({ period, statistic: Stats.SUM, label: 'timed out' }),
        stateMachine.metricAborted({ period, statistic: Stats.SUM, label: 'aborted' }),
      ],
      [stateMachine.metricTime({ period, statistic: Stats.MAXIMUM, label: 'execution time (ms, max)' })],
    );

  const figures = [
    graph(
      `rows ${verb} per run`,
      [run(RunMetricNames.runRows, Stats.AVERAGE, `rows ${verb} per run`)],
      [run(RunMetricNames.rowsProcessed, Stats.SUM, `rows ${verb} by chunks (sum)`)],
    ),
    graph(
      'run duration',
      [run(RunMetricNames.runDuration, Stats.MAXIMUM, 'run duration (ms)')],
      [run(RunMetricNames.chunkDuration, Stats.p(90), 'chunk duration (ms, p90)')],
    ),
    graph(
      'chunks per run',
      [run(RunMetricNames.runChunks, Stats.AVERAGE, 'chunks per run')],
      [run(RunMetricNames.objectsWritten, Stats.SUM, 'objects written (sum)')],
    ),
    graph(
      'bytes to S3',
      [run(RunMetricNames.runBytes, Stats.AVERAGE, 'bytes per run')],
      [run(RunMetricNames.bytesWritten, Stats.SUM, 'bytes written by chunks (sum)')],
    ),
    graph('runs and failures', [
      run(RunMetricNames.runSucceeded, Stats.SUM, 'runs succeeded'),
      run(RunMetricNames.runFailed, Stats.SUM, 'runs failed'),
    ]),
    graph(
      'replica-lag waits',
      [run(RunMetricNames.replicaLagWaits, Stats.SUM, 'chunk steps that waited for replica lag')],
      [run(RunMetricNames.replicaLagWaits, Stats.SAMPLE_COUNT, 'chunk steps')],
    ),
  ];
  if (policy.watchedByComplianceCheck) {
    const compliance = (metricName: string, dimensions: Record<string, string>) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: {
          [ComplianceDimensions.service]: SERVICE_NAME,
          [ComplianceDimensions.stack]: stackName,
          [ComplianceDimensions.policy]: policy.name,
          ...dimensions,
        },
        statistic: Stats.MAXIMUM,
        period: COMPLIANCE_CHECK_PERIOD,
      });
    figures.push(
      graph(
        'last successful run age',
        [
          new MathExpression({
            expression: 'age / 3600',
            label: 'hours since the last successful run',
            period: COMPLIANCE_CHECK_PERIOD,
            usingMetrics: {
              age: compliance(SECONDS_SINCE_LAST_SUCCESS, { [RunMetricDimensions.action]: policy.action }),
            },
          }),
        ],
        [
          compliance(ComplianceMetricNames.policyOverdue, {}).with({
            label: 'overdue (1: no success within two schedule periods)',
          }),
        ],
      ),
    );
  }
  figures.push(executions('executions', policy.stateMachine));
  if (policy.drillStateMachine) figures.push(executions('restore drills', policy.drillStateMachine));

  const header = new TextWidget({
    markdown: `## ${policy.name} · ${policy.action} · ${policy.schedule ?? 'run by hand'}`,
    width: 24,
    height: 1,
  });
  return { header, figures };
}
