/**
 * The compliance report as CloudWatch metrics (the scheduled check, functions/compliance.ts): counts and 0/1
 * flags only. Policy names are the only names that leave the report; no row, subject key or request id does.
 */
import { ComplianceDimensions, ComplianceMetricNames } from '../../lib/contracts/compliance-check.ts';
import type { ComplianceReport } from './compliance.ts';

/** One value to publish, with the dimensions it carries besides `service` and `stack`. */
export interface ComplianceDatum {
  readonly name: (typeof ComplianceMetricNames)[keyof typeof ComplianceMetricNames];
  readonly value: number;
  readonly dimensions: Readonly<Record<string, string>>;
}

/**
 * OverduePolicies (how many), PolicyOverdue per policy (0/1, dimension `policy`) and the subject requests
 * overdue, failed and pending over every subjects policy of the report (0 when there is none: the alarm
 * then reads a real 0, not missing data).
 */
export function complianceMetricData(report: ComplianceReport): ComplianceDatum[] {
  const requests = report.policies.flatMap((entry) => (entry.requests ? [entry.requests] : []));
  const sum = (pick: (counts: (typeof requests)[number]) => number) =>
    requests.reduce((total, counts) => total + pick(counts), 0);
  return [
    {
      name: ComplianceMetricNames.overduePolicies,
      value: report.policies.filter((entry) => entry.overdue).length,
      dimensions: {},
    },
    ...report.policies.map((entry) => ({
      name: ComplianceMetricNames.policyOverdue,
      value: entry.overdue ? 1 : 0,
      dimensions: { [ComplianceDimensions.policy]: entry.policy },
    })),
    { name: ComplianceMetricNames.requestsOverdue, value: sum((c) => c.overdue), dimensions: {} },
    { name: ComplianceMetricNames.requestsFailed, value: sum((c) => c.failed), dimensions: {} },
    { name: ComplianceMetricNames.requestsPending, value: sum((c) => c.pending), dimensions: {} },
  ];
}

/** What publishing needs of Powertools Metrics (its `singleMetric()` emits one EMF document per metric). */
export interface SingleMetricSink {
  singleMetric(): {
    addDimension(name: string, value: string): void;
    addMetric(name: string, unit: 'Count', value: number): void;
  };
}

/**
 * Emits each datum as its own EMF document with the `stack` dimension (and its own), so PolicyOverdue of two
 * policies never share a document and every metric has exactly the dimensions the alarms name.
 */
export function publishComplianceMetrics(
  sink: SingleMetricSink,
  stack: string,
  data: readonly ComplianceDatum[],
): void {
  for (const datum of data) {
    const single = sink.singleMetric();
    single.addDimension(ComplianceDimensions.stack, stack);
    for (const [name, value] of Object.entries(datum.dimensions)) single.addDimension(name, value);
    single.addMetric(datum.name, 'Count', datum.value);
  }
}
