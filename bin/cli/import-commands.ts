/**
 * `pg-lifecycle import report`: the validation report of an import policy from the ledger (recent runs'
 * figures, the source rows the target still refuses by reason). Read only. Exit 1 while refused rows remain,
 * so a script can wait for a clean import; 0 when every source row is in.
 */
import { type ImportReport, importReport } from '../../functions/reports/import-report.ts';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { UnknownPolicyError } from '../../lib/execution-input.ts';
import { withDatabase } from './database-target.ts';
import { UsageError } from './errors.ts';
import { requireLedger } from './ledger-checks.ts';

export interface ImportReportOptions {
  readonly policy?: string | undefined;
  readonly json: boolean;
  /** Source keys shown per reason. */
  readonly samples?: number | undefined;
}

export async function importReportCommand(
  config: LifecycleConfig,
  options: ImportReportOptions,
): Promise<{ code: number; output: string }> {
  const imports = config.policies.filter((p) => p.action === 'import');
  const names = options.policy === undefined ? imports.map((p) => p.name) : [options.policy];
  if (options.policy !== undefined) {
    const policy = config.policies.find((p) => p.name === options.policy);
    if (!policy)
      throw new UnknownPolicyError(
        `no policy named "${options.policy}" (known: ${config.policies.map((p) => p.name).join(', ')})`,
      );
    if (policy.action !== 'import')
      throw new UsageError(`policy "${options.policy}" is a ${policy.action} policy, not an import`);
  }
  if (names.length === 0) throw new UsageError('the config has no import policy');
  const reports = await withDatabase(async (client) => {
    await requireLedger(client);
    const found: ImportReport[] = [];
    for (const name of names) found.push(await importReport(client, name, { samples: options.samples }));
    return found;
  });
  const refused = reports.some((r) => r.outstandingRejects > 0);
  return {
    code: refused ? 1 : 0,
    output: options.json
      ? JSON.stringify({ policies: reports })
      : reports.map(formatImportReport).join('\n\n'),
  };
}

export function formatImportReport(report: ImportReport): string {
  const lines = [`${report.policy}: ${report.outstandingRejects} source rows refused and not imported`];
  if (report.runs.length === 0) lines.push('  no run yet');
  for (const run of report.runs) {
    lines.push(
      `  run ${run.runId} ${run.status} ${run.startedAt}: examined ${run.examined}, imported ${run.inserted}, ` +
        `already there ${run.skipped}, refused ${run.rejected}`,
    );
  }
  for (const reason of report.reasons) {
    const keys = reason.sampleKeys.map((key) => `(${key.join(', ')})`).join(' ');
    lines.push(`  refused ${reason.rows} × ${reason.reason}; e.g. source keys ${keys}`);
  }
  return lines.join('\n');
}
