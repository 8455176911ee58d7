/**
 * Independent verification of a backup run, as the demo reports it: the backup is listed complete, every part
 * is in S3 as its manifest and the ledger say (length, SHA-256, COPY block, rows), each table's row count is
 * what the table holds now (nothing changes the demo's tables after the backup), and a restore drill puts the
 * whole backup into a scratch schema whose every table checks out against the manifest's content checksum.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import {
  type DrillResult,
  findBackup,
  restoreDrillsLedger,
  runDrill,
  verifyBackup,
} from '../../functions/actions/backup/restore/index.ts';
import { Ledger } from '../../functions/adapters/ledger/index.ts';

export interface BackupVerification {
  readonly ok: boolean;
  readonly problems: string[];
  readonly tables: number;
  readonly parts: number;
  readonly consistency: string;
  readonly drill: DrillResult | undefined;
}

export async function verifyBackupRun(
  db: pg.Client,
  s3: S3Client,
  bucket: string,
  run: { policy: string; backupId: string },
): Promise<BackupVerification> {
  const problems: string[] = [];
  const manifest = await findBackup(s3, bucket, run.policy, run.backupId);
  const verification = await verifyBackup(s3, bucket, manifest, { ledger: new Ledger(db) });
  for (const problem of verification.problems) problems.push(`${problem.kind}: ${problem.message}`);
  for (const table of manifest.tables) {
    const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table.table}`);
    if (Number(rows[0]?.n) !== table.rows)
      problems.push(`${table.table}: the manifest says ${table.rows} rows, the table holds ${rows[0]?.n}`);
  }
  const drill = await runDrill({
    db,
    s3,
    bucket,
    policy: run.policy,
    backup: run.backupId,
    ledger: restoreDrillsLedger(db),
  });
  if (drill.status !== 'passed') problems.push(`restore drill failed: ${drill.error ?? 'a table differs'}`);
  return {
    ok: problems.length === 0,
    problems,
    tables: manifest.tables.length,
    parts: manifest.tables.reduce((sum, t) => sum + t.parts.length, 0),
    consistency: manifest.consistency,
    drill,
  };
}
