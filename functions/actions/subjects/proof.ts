/**
 * What a request's proof says besides the live tables: where else the subject's rows may be. Archive copies of
 * the mapped tables (listed in the ledger) are counted per policy — not yet rewritten without the subject, which
 * the proof says plainly; backups that hold a mapped table are listed with the time they were taken, so an
 * operator knows which copies still hold the subject until they expire. Counts and names only.
 */
import type { Queryable } from '../../adapters/transactions.ts';

export interface ArchiveExposure {
  readonly policy: string;
  readonly objects: number;
  readonly rows: number;
}

export interface BackupExposure {
  readonly policy: string;
  readonly backupId: string;
  readonly takenAt: string;
  /** When its objects expire (taken + the policy's retentionDays then); null for a backup that did not record it. */
  readonly expiresAt: string | null;
}

export async function readArchiveExposure(
  db: Queryable,
  tables: readonly string[],
): Promise<ArchiveExposure[]> {
  const { rows } = await db.query<{ policy: string; objects: string; rows: string }>(
    `SELECT r.policy, count(*)::text AS objects, sum(o.rows)::text AS rows
       FROM lifecycle.archived_objects o JOIN lifecycle.runs r ON r.run_id = o.run_id
      WHERE o.kind = 'archive-copy' AND r.table_name = ANY ($1::text[])
      GROUP BY r.policy ORDER BY r.policy`,
    [tables],
  );
  return rows.map((r) => ({ policy: r.policy, objects: Number(r.objects), rows: Number(r.rows) }));
}

export async function readBackupExposure(
  db: Queryable,
  tables: readonly string[],
): Promise<BackupExposure[]> {
  const { rows } = await db.query<{
    policy: string;
    backup_id: string;
    taken_at: string;
    expires_at: string | null;
  }>(
    `SELECT r.policy, r.detail->>'backupId' AS backup_id, r.started_at::text AS taken_at,
            (r.started_at + make_interval(days => (r.detail->>'retentionDays')::int))::text AS expires_at
       FROM lifecycle.runs r
      WHERE r.action = 'backup' AND r.status = 'succeeded' AND NOT coalesce(r.detail ? 'expiredAt', false)
        AND EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(r.detail->'tables', '[]')) AS t
                     WHERE t->>'quotedName' = ANY ($1::text[]))
      ORDER BY r.started_at`,
    [tables],
  );
  return rows.map((r) => ({
    policy: r.policy,
    backupId: r.backup_id,
    takenAt: r.taken_at,
    expiresAt: r.expires_at,
  }));
}
