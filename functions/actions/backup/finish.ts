/**
 * A backup's Finish: post-data.sql (sequence positions read after every part), then manifest.json — last,
 * built from the parts the ledger lists for the run, so a backup is listed as restorable only once every
 * part it names is in S3 and in the ledger. Then what the policy's older backups need: those past
 * `retentionDays` are marked expired in the ledger (the bucket's lifecycle rule deletes their objects), and
 * the objects of failed backups are removed (a failed backup never has a manifest: it is never restorable).
 */
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { mapS3Error } from '../../adapters/archive-store.ts';
import { Ledger, type ListedObject } from '../../adapters/ledger/index.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { InvalidPayloadError, TransientStorageError } from '../../core/errors.ts';
import type { BackupPartDetail } from './chunk.ts';
import { addContentChecksums, formatContentChecksum, parseContentChecksum } from './content-checksum.ts';
import { type BackupPolicy, backupPrefix } from './contract.ts';
import { type BackupManifest, BackupManifestSchema, backupKeys } from './manifest.ts';
import { putText, writePostData } from './schema-files.ts';
import type { BackupRunDetail } from './table-plan.ts';

export interface BackupSummary {
  readonly backupId: string;
  readonly manifestKey: string;
  readonly tables: number;
  readonly parts: number;
  readonly consistency: BackupManifest['consistency'];
}

export interface FinishBackupProps {
  readonly client: pg.ClientBase;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly policy: BackupPolicy;
  readonly runId: string;
  readonly detail: BackupRunDetail;
  readonly now: Date;
}

export async function writeBackupManifest(props: FinishBackupProps): Promise<BackupSummary> {
  const { client, s3, bucket, policy, runId, detail } = props;
  const ledger = new Ledger(client);
  const keys = backupKeys(policy.name, detail.backupId);
  // The definition and the sequence positions in one snapshot of their own.
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  let postData: Awaited<ReturnType<typeof writePostData>>;
  let serverVersion: string;
  try {
    postData = await writePostData({ client, s3, bucket, policy: policy.name, detail });
    serverVersion = (await client.query<{ v: string }>('SHOW server_version')).rows[0]?.v ?? 'unknown';
  } finally {
    await client.query('COMMIT').catch(() => undefined);
  }
  const parts = (await ledger.listRunObjects(runId, 'backup-part')).map((object) => ({
    object,
    detail: object.detail as BackupPartDetail,
  }));
  // The backup's snapshot is the first batch's: a table read wholly under it is consistent with every
  // other such table; one with a part read under another step's snapshot is not.
  const backupSnapshot = parts[0]?.detail.snapshot;
  const tables = detail.tables.map((table, index) => {
    const own = parts
      .filter((p) => p.detail.tableIndex === index)
      .sort((a, b) => a.detail.part - b.detail.part);
    // Parts 1..n, each once: anything else (a batch listed twice, a part skipped) would restore rows twice
    // or not at all, and must never get a manifest.
    const numbers = own.map((p) => p.detail.part);
    if (numbers.length === 0 || numbers.some((n, i) => n !== i + 1))
      throw new InvalidPayloadError(
        `backup ${detail.backupId}: the ledger lists parts [${numbers.join(', ')}] of ${table.quotedName}, not 1..n once each`,
      );
    const consistency: 'snapshot' | 'per-part' = own.every((p) => p.detail.snapshot === backupSnapshot)
      ? 'snapshot'
      : 'per-part';
    return {
      table: table.quotedName,
      rows: own.reduce((sum, p) => sum + p.object.rows, 0),
      bytes: own.reduce((sum, p) => sum + p.object.bytes, 0),
      consistency,
      columns: table.columns,
      contentChecksum: formatContentChecksum(
        addContentChecksums(own.map((p) => parseContentChecksum(p.detail.contentChecksum))),
      ),
      parts: own.map(({ object }: { object: ListedObject }) => ({
        key: object.key,
        rows: object.rows,
        bytes: object.bytes,
        sha256: object.sha256,
      })),
    };
  });
  const manifest = BackupManifestSchema.parse({
    formatVersion: 1,
    backupId: detail.backupId,
    policy: policy.name,
    runId,
    startedAt: detail.startedAt,
    finishedAt: props.now.toISOString(),
    serverVersion,
    compression: { codec: policy.backup.compression, level: policy.backup.level },
    consistency: tables.every((t) => t.consistency === 'snapshot') ? 'snapshot' : 'per-part',
    schemaKey: keys.schema,
    postDataKey: keys.postData,
    ...(postData.relocatable ? { relocatable: postData.relocatable } : {}),
    retentionDays: policy.backup.retentionDays,
    fileSha256: postData.fileSha256,
    tables,
    notIncluded: postData.notIncluded,
  });
  // parts.txt and SHA256SUMS: the manifest's parts relative to the backup's prefix, for a restore with a shell,
  // sha256sum, gunzip and psql alone (README); a part object the manifest does not list is never loaded.
  const relative = manifest.tables.flatMap((t) =>
    t.parts.map((p) => ({ path: p.key.slice(keys.base.length), sha256: p.sha256 })),
  );
  await putText(s3, bucket, keys.partsList, relative.map((p) => `${p.path}\n`).join(''));
  await putText(s3, bucket, keys.checksums, relative.map((p) => `${p.sha256}  ${p.path}\n`).join(''));
  await putText(s3, bucket, keys.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
  const summary: BackupSummary = {
    backupId: detail.backupId,
    manifestKey: keys.manifest,
    tables: tables.length,
    parts: parts.length,
    consistency: manifest.consistency,
  };
  await ledger.mergeRunDetail(runId, {
    manifestKey: keys.manifest,
    consistency: manifest.consistency,
    summary,
  });
  return summary;
}

/** Marks the policy's succeeded backups past retention expired (their objects go by the lifecycle rule). */
export async function markExpiredBackups(db: Queryable, policy: BackupPolicy): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE lifecycle.runs SET detail = detail || jsonb_build_object('expiredAt', clock_timestamp())
      WHERE policy = $1 AND action = 'backup' AND status = 'succeeded' AND detail IS NOT NULL
        AND NOT detail ? 'expiredAt' AND finished_at < clock_timestamp() - make_interval(days => $2)`,
    [policy.name, policy.backup.retentionDays],
  );
  return rowCount ?? 0;
}

/**
 * Removes every object of a failed backup (its prefix `backup/<policy>/<id>/`) and forgets its parts: a
 * backup without a manifest is never restorable, and none of its objects is the only copy of any row.
 */
export async function removeBackupObjects(
  db: Queryable,
  s3: S3Client,
  bucket: string,
  policy: string,
  runId: string,
  backupId: string,
): Promise<number> {
  const prefix = `${backupPrefix(policy)}${backupId}/`;
  let removed = 0;
  let token: string | undefined;
  try {
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
      if (keys.length > 0) {
        const result = await s3.send(
          new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }),
        );
        // Quiet mode reports only failures: one left means the prefix is not gone (and must not be marked so).
        const failed = result.Errors ?? [];
        if (failed.length > 0)
          throw new TransientStorageError(
            `${failed.length} objects under ${prefix} not deleted (${failed[0]?.Code ?? 'error'}: ${failed[0]?.Key ?? ''})`,
          );
        removed += keys.length;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (error) {
    if (error instanceof TransientStorageError) throw error;
    throw mapS3Error(error, `removal of ${prefix}`);
  }
  await db.query(`DELETE FROM lifecycle.archived_objects WHERE run_id = $1 AND kind = 'backup-part'`, [
    runId,
  ]);
  await db.query('DELETE FROM lifecycle.pending_objects WHERE run_id = $1', [runId]);
  const ledger = new Ledger(db);
  await ledger.mergeRunDetail(runId, { removedAt: new Date().toISOString(), objectsRemoved: removed });
  return removed;
}

/** Failed backups of the policy whose objects are still there (RecordFailure could not remove them). */
export async function failedBackupsLeft(
  db: Queryable,
  policy: string,
): Promise<Array<{ runId: string; backupId: string }>> {
  const { rows } = await db.query<{ run_id: string; backup_id: string }>(
    `SELECT run_id, detail->>'backupId' AS backup_id FROM lifecycle.runs
      WHERE policy = $1 AND action = 'backup' AND status = 'failed'
        AND detail ? 'backupId' AND NOT detail ? 'removedAt'`,
    [policy],
  );
  return rows.map((r) => ({ runId: r.run_id, backupId: r.backup_id }));
}
