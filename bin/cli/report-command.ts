/**
 * `pg-lifecycle report [--policy P] [--json]`: the compliance report (functions/reports/compliance.ts) of the
 * config's enabled policies against the ledger of DATABASE_URL. Exit 1 when a policy or a subject request is
 * overdue or a request failed; 2 for a database without a ledger or an unknown policy.
 */
import {
  buildComplianceReport,
  type ComplianceReport,
  OVERDUE_PERIODS,
  type PolicyCompliance,
} from '../../functions/reports/compliance.ts';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { UnknownPolicyError } from '../../lib/execution-input.ts';
import { withDatabase } from './database-target.ts';
import { requireLedger } from './ledger-checks.ts';

export interface ReportOptions {
  readonly policy?: string | undefined;
  readonly json: boolean;
  readonly now?: Date;
}

/** Runs the report; returns the exit code and the text to print on stdout. */
export async function reportCommand(
  config: LifecycleConfig,
  options: ReportOptions,
): Promise<{ code: number; output: string }> {
  if (options.policy !== undefined && !config.policies.some((p) => p.name === options.policy))
    throw new UnknownPolicyError(
      `no policy named "${options.policy}" (known: ${config.policies.map((p) => p.name).join(', ')})`,
    );
  const report = await withDatabase(async (client) => {
    await requireLedger(client);
    return buildComplianceReport(client, config, {
      now: options.now ?? new Date(),
      ...(options.policy !== undefined ? { policy: options.policy } : {}),
    });
  });
  return {
    code: report.attention ? 1 : 0,
    output: options.json ? JSON.stringify(report) : formatComplianceReport(report),
  };
}

/** `3d 4h`, `25h`, `15m`: a period or an age, in its two largest units. */
export function formatDuration(seconds: number): string {
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ];
  const parts: string[] = [];
  let rest = Math.max(0, Math.round(seconds));
  for (const [name, size] of units) {
    const count = Math.floor(rest / size);
    if (count > 0 && parts.length < 2) {
      parts.push(`${count}${name}`);
      rest -= count * size;
    }
  }
  return parts.length > 0 ? parts.join(' ') : `${rest}s`;
}

function scheduleText(entry: PolicyCompliance): string {
  const { schedule } = entry;
  if (schedule.expression === null) return 'manual';
  const period =
    schedule.periodSeconds === null ? 'period unknown' : `every ${formatDuration(schedule.periodSeconds)}`;
  const zone = schedule.expression.startsWith('cron(') ? ` ${schedule.timezone}` : '';
  return `${schedule.expression}${zone} (${period})`;
}

function backlogText(entry: PolicyCompliance): string {
  const rows = entry.rowsPastRetention;
  if (rows) {
    const what = entry.action === 'anonymize' ? 'rows unmasked past retention' : 'rows past retention';
    if (rows.status === 'counted') return `${rows.rows} ${what}`;
    if (rows.status === 'timeout') return `${what}: not counted (over ${rows.timeoutMs} ms)`;
    return `${what}: not counted (${rows.error})`;
  }
  const requests = entry.requests;
  if (requests) {
    return `requests: ${requests.pending} pending, ${requests.overdue} overdue, ${requests.failed} failed, ${requests.completedRecently} completed (30 d)`;
  }
  return '';
}

/** OVERDUE (the policy), REQUESTS (a subject request overdue or failed), ok, or disabled. */
function stateText(entry: PolicyCompliance): string {
  if (entry.overdue) return 'OVERDUE';
  if (entry.requests && (entry.requests.overdue > 0 || entry.requests.failed > 0)) return 'REQUESTS';
  return entry.enabled ? 'ok' : 'disabled';
}

/** The text form: one line per policy, then what needs attention. */
export function formatComplianceReport(report: ComplianceReport): string {
  const now = new Date(report.generatedAt).getTime();
  const rows = report.policies.map((entry) => [
    entry.policy,
    entry.action,
    scheduleText(entry),
    entry.lastSuccess === null
      ? 'never'
      : `${entry.lastSuccess.slice(0, 16).replace('T', ' ')}Z (${formatDuration((now - new Date(entry.lastSuccess).getTime()) / 1000)} ago)`,
    stateText(entry),
    backlogText(entry),
  ]);
  const header = ['POLICY', 'ACTION', 'SCHEDULE', 'LAST SUCCESS', 'STATE', 'BACKLOG'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const lines = [`Compliance report for database ${report.database} at ${report.generatedAt}`, line(header)];
  for (const row of rows) lines.push(line(row));
  if (report.policies.length === 0) lines.push('(no enabled policies)');
  lines.push(
    report.attention
      ? `ATTENTION: overdue policies (no success within ${OVERDUE_PERIODS} schedule periods) or overdue/failed subject requests`
      : 'OK: nothing overdue',
  );
  return lines.join('\n');
}
