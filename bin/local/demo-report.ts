/** The demo's report: what each policy's run did and whether its independent verification passed. */
import type { RetiredPartition } from '../../functions/adapters/ledger/index.ts';
import type { ComplianceReport } from '../../functions/reports/compliance.ts';
import { formatBytes } from '../cli/format.ts';
import { formatComplianceReport } from '../cli/report-command.ts';
import type { SubjectsReport } from './demo-subjects.ts';

/** An archive or purge policy's run and its independent verification. */
export interface PolicyReport {
  policy: string;
  action: string;
  table: string;
  status: string;
  rowsBefore: number;
  rowsAfter: number;
  rowsArchived: number;
  objects: number;
  bytes: number;
  chunks: number;
  durationMs: number;
  tierPrefix: string;
  tiers: string;
  verified: boolean;
  problems: string[];
  /** Purge only: the post-purge VACUUM, in words. */
  maintenance?: string;
  /** Partitions the run retired as whole units (archived, then detached and dropped or kept). */
  partitions?: RetiredPartition[];
}

/** An anonymize policy's two runs and their independent verification. */
export interface AnonymizeReport {
  readonly policy: string;
  readonly table: string;
  readonly status: string;
  readonly rows: number;
  readonly chunks: number;
  readonly durationMs: number;
  readonly rerunRows: number;
  readonly columns: string[];
  readonly verified: boolean;
  readonly problems: string[];
}

/** A backup policy's run, its independent verification and its restore drill. */
export interface BackupReport {
  policy: string;
  status: string;
  backupId: string | undefined;
  tables: number;
  rows: number;
  parts: number;
  bytes: number;
  consistency: string;
  durationMs: number;
  drill: { status: string; durationMs: number; scratchSchema: string; tables: number } | undefined;
  verified: boolean;
  problems: string[];
}

function describePartitions(retired: readonly RetiredPartition[]): string {
  const first = retired[0];
  const last = retired[retired.length - 1];
  if (!first || !last) return 'none';
  const rows = retired.reduce((sum, p) => sum + p.rows, 0);
  const verb = retired.every((p) => p.state === 'dropped') ? 'dropped' : 'retired';
  return `${retired.length} ${verb} (${first.partition} … ${last.partition}, ${first.boundFrom} → ${last.boundTo}, ${rows} rows)`;
}

/** Everything the demo found, as `--json` prints it. */
export interface DemoResults {
  readonly bucket: string;
  readonly policies: readonly PolicyReport[];
  readonly anonymized: readonly AnonymizeReport[];
  readonly subjects: readonly SubjectsReport[];
  readonly backups: readonly BackupReport[];
  readonly compliance: ComplianceReport | undefined;
}

/** The report as text, one block per policy, then the compliance report and the verdict. */
export function printDemoReport(
  say: (text: string) => void,
  results: DemoResults,
  ok: boolean,
  totalMs: number,
): void {
  const { bucket: BUCKET, policies: reports, anonymized, subjects, backups, compliance } = results;
  say('');
  for (const r of reports) {
    say(`${r.policy}  (${r.action} ${r.table})  ${r.status.toUpperCase()}`);
    if (r.action === 'purge') {
      say(
        `  rows before ${r.rowsBefore}  after ${r.rowsAfter}  purged ${r.rowsArchived}  (${r.chunks} chunks, ${r.durationMs} ms)`,
      );
      say(`  maintenance ${r.maintenance}`);
      say(`  verification ${r.verified ? 'OK (before = after + purged, no eligible row left)' : 'FAILED'}`);
      for (const problem of r.problems.slice(0, 10)) say(`    - ${problem}`);
      continue;
    }
    say(`  rows before ${r.rowsBefore}  after ${r.rowsAfter}  archived ${r.rowsArchived}`);
    say(
      `  ${r.objects} Parquet objects, ${(r.bytes / 1024).toFixed(0)} KiB, ${r.chunks} chunks, ${r.durationMs} ms`,
    );
    say(`  prefix ${r.tierPrefix}  tiers ${r.tiers}`);
    if (r.partitions?.length) say(`  partitions ${describePartitions(r.partitions)}`);
    say(
      `  verification ${r.verified ? 'OK (lengths, SHA-256, Parquet row counts, no orphans, rows conserved)' : 'FAILED'}`,
    );
    for (const problem of r.problems.slice(0, 10)) say(`    - ${problem}`);
  }
  for (const a of anonymized) {
    say(`${a.policy}  (anonymize ${a.table})  ${a.status.toUpperCase()}`);
    say(`  ${a.columns.join(', ')}`);
    say(
      `  rows masked ${a.rows}  (${a.chunks} chunks, ${a.durationMs} ms); second run masked ${a.rerunRows}`,
    );
    say(
      `  verification ${a.verified ? 'OK (changed rows = reported, all due, none left, second run changed no row version)' : 'FAILED'}`,
    );
    for (const problem of a.problems.slice(0, 10)) say(`    - ${problem}`);
  }
  for (const s of subjects) {
    say(`${s.policy}  (subject requests)  ${s.status.toUpperCase()}`);
    say(`  erasure ${s.erased.requestId}: ${s.erased.tables}`);
    say(`  export ${s.exported.requestId}: ${s.exported.rows} rows in s3://${BUCKET}/${s.exported.key}`);
    say(`  archives: ${s.archives}`);
    say(
      `  verification ${s.verified ? "OK (erased user's rows gone or stripped, live and archived; others untouched; export = live rows; no key in proofs)" : 'FAILED'}`,
    );
    for (const problem of s.problems.slice(0, 10)) say(`    - ${problem}`);
  }
  for (const b of backups) {
    say(`${b.policy}  (backup ${b.backupId ?? '-'})  ${b.status.toUpperCase()}`);
    say(
      `  ${b.tables} tables, ${b.rows} rows in ${b.parts} parts, ${formatBytes(b.bytes)}, consistency ${b.consistency}, ${b.durationMs} ms`,
    );
    if (b.drill)
      say(
        `  restore drill ${b.drill.status.toUpperCase()}: ${b.drill.tables} tables into ${b.drill.scratchSchema} (dropped), ${b.drill.durationMs} ms`,
      );
    say(
      `  verification ${b.verified ? 'OK (parts = manifest = ledger, row counts, drill checksums equal)' : 'FAILED'}`,
    );
    for (const problem of b.problems.slice(0, 10)) say(`    - ${problem}`);
  }
  if (compliance) {
    say('');
    say('Compliance report (pg-lifecycle report):');
    say(formatComplianceReport(compliance));
  }
  say('');
  say(`${ok ? 'All verifications passed' : 'VERIFICATION FAILED'} in ${(totalMs / 1000).toFixed(1)} s.`);
}
