/**
 * `restore-archive`: archived rows back from the Parquet objects the ledger lists for an archive policy,
 * exact and idempotent. The order:
 *
 * 1. input: the policy is an archive policy of the ledger, [from, to) a real range, the target resolvable
 *    (default: the policy's table), keyed (or --allow-no-key), `--where` safe — all before any object is read;
 * 2. objects: the policy's archive copies whose [min_time, max_time] overlaps [from, to);
 * 3. cold objects (./cold-objects.ts): when any object to read is in Glacier Flexible Retrieval / Deep Archive
 *    without a readable copy, the retrieval is estimated, requested, and returned as `pending`: nothing loads;
 * 4. per object, skipped when restored already into this target (same bytes, covering predicate); else read,
 *    length and SHA-256 checked against the ledger, decoded (footer's columns must exist in the target), and
 *    loaded in one transaction (./load-object.ts).
 *
 * The time range selects objects, not rows: an object overlapping the range is restored whole (narrow it with
 * `--where`). A failure stops at that object: those before it stay restored and recorded, a rerun resumes.
 */
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { applyMigrations } from '../../adapters/migrations.ts';
import {
  estimateRetrieval,
  type PendingRetrieval,
  type RetrievalTier,
  readObjectStates,
  requestRestores,
} from './cold-objects.ts';
import {
  InvalidTimeRangeError,
  RestoreArchiveInputError,
  RestoreArchivePartialError,
  RestoreArchiveTargetError,
} from './errors.ts';
import { alreadyRestored, findArchivedTable, listObjectsInRange, restoredBefore } from './ledger.ts';
import { archivedKey, loadObject } from './load-object.ts';
import { readVerifiedObject } from './object-reader.ts';
import { decodeArchiveObject } from './parquet-decode.ts';
import { checkPredicate, missingColumns, resolveRestoreTarget } from './target.ts';

export interface RestoreArchiveProps {
  readonly db: pg.ClientBase;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly policy: string;
  /** Range start (inclusive), any text `timestamptz` reads (UTC unless it names a zone). */
  readonly from: string;
  /** Range end (exclusive). */
  readonly to: string;
  /** A boolean SQL expression over the table's columns: only rows it keeps are inserted. */
  readonly where?: string | undefined;
  /** Another existing table with the archived columns; default the policy's table. */
  readonly into?: string | undefined;
  /** Restore into a table without a primary key (idempotence then rests on the ledger alone). @default false */
  readonly allowNoKey?: boolean | undefined;
  /** @default 10_000 */
  readonly lockTimeoutMs?: number | undefined;
  /** Retrieval tier for objects in Glacier Flexible Retrieval / Deep Archive. @default 'Standard' */
  readonly tier?: RetrievalTier | undefined;
  /** Days S3 keeps a restored copy of a cold object. @default 7 */
  readonly restoreDays?: number | undefined;
  readonly onObject?: ((object: RestoredObjectReport) => void) | undefined;
}

export interface RestoredObjectReport {
  readonly key: string;
  readonly status: 'restored' | 'skipped';
  readonly rows: number;
  readonly rowsStaged?: number;
  readonly rowsSelected?: number;
  readonly rowsInserted?: number;
}

export interface RestoreArchiveResult {
  readonly restoreId: string;
  readonly policy: string;
  readonly bucket: string;
  readonly target: string;
  readonly from: string;
  readonly to: string;
  readonly where: string | null;
  readonly objectsConsidered: number;
  readonly objectsSkipped: number;
  readonly objectsRestored: number;
  readonly bytesVerified: number;
  readonly rowsStaged: number;
  readonly rowsSelected: number;
  readonly rowsInserted: number;
  readonly rowsSkippedByConflict: number;
  /** Target columns no restored object holds: they took their defaults. */
  readonly columnsDefaulted: string[];
  /**
   * The target is the policy's own table: the restored rows are older than its retention, so its next run
   * archives them again, as new objects beside the ones they came from (two copies in S3, both in Athena).
   */
  readonly rearchivedByPolicy: boolean;
  /**
   * Objects in Glacier Flexible Retrieval / Deep Archive without a readable copy: their restores were
   * requested (or are under way) and nothing was loaded; run again once S3 has the copies. Null: none.
   */
  readonly pending: PendingRetrieval | null;
  readonly objects: RestoredObjectReport[];
}

/** [from, to) as the server reads them (timestamptz text, UTC), or InvalidTimeRangeError. */
async function readRange(db: pg.ClientBase, from: string, to: string): Promise<{ from: string; to: string }> {
  let rows: Array<{ from: string; to: string; ordered: string | boolean }>;
  try {
    ({ rows } = await db.query(
      `SELECT $1::timestamptz::text AS from, $2::timestamptz::text AS to,
              $1::timestamptz < $2::timestamptz AS ordered`,
      [from, to],
    ));
  } catch (error) {
    if (/^22/.test((error as { code?: string }).code ?? '')) {
      throw new InvalidTimeRangeError(
        '--from and --to must be timestamps (e.g. 2024-01-01 or 2024-01-01T00:00:00Z)',
      );
    }
    throw error;
  }
  const row = rows[0];
  if (!row || !(row.ordered === true || row.ordered === 't')) {
    throw new InvalidTimeRangeError(`--from ${from} must be before --to ${to}`);
  }
  return { from: row.from, to: row.to };
}

export async function restoreArchive(props: RestoreArchiveProps): Promise<RestoreArchiveResult> {
  const { db, s3, bucket, policy } = props;
  const predicate = props.where?.trim() === '' ? undefined : props.where;
  const range = await readRange(db, props.from, props.to);
  const archived = await findArchivedTable(db, policy);
  const target = await resolveRestoreTarget(db, props.into ?? archived.tableName, {
    allowNoKey: props.allowNoKey ?? false,
  });
  if (predicate !== undefined) await checkPredicate(db, target, predicate, archived.timeColumn);
  // restore-archive records what it restored (sql/011): the ledger must have that table.
  await applyMigrations(db);

  const objects = await listObjectsInRange(db, { policy, bucket, ...range });
  const restoreId = randomUUID();
  const done = new Set<string>();
  for (const object of objects) {
    if (await alreadyRestored(db, object, target.table, predicate)) done.add(object.key);
  }
  const states = await readObjectStates(
    s3,
    objects.filter((o) => !done.has(o.key)),
  );
  const base = {
    restoreId,
    policy,
    bucket,
    target: target.qualifiedName,
    from: range.from,
    to: range.to,
    where: predicate ?? null,
    objectsConsidered: objects.length,
    rearchivedByPolicy: target.qualifiedName === archived.tableName,
  };
  if (states.some((s) => s.state !== 'readable')) {
    // Nothing is loaded while any object of the range is out of reach: the range comes back whole.
    const tier = props.tier ?? 'Standard';
    const estimate = estimateRetrieval(states, tier);
    const sent = await requestRestores(s3, bucket, states, tier, props.restoreDays ?? 7);
    return {
      ...base,
      objectsSkipped: done.size,
      objectsRestored: 0,
      bytesVerified: 0,
      rowsStaged: 0,
      rowsSelected: 0,
      rowsInserted: 0,
      rowsSkippedByConflict: 0,
      columnsDefaulted: [],
      objects: [],
      pending: { ...estimate, ...sent },
    };
  }
  const reports: RestoredObjectReport[] = [];
  const archivedColumns = new Set<string>();
  let bytesVerified = 0;
  try {
    for (const object of objects) {
      let report: RestoredObjectReport;
      if (done.has(object.key) || (await alreadyRestored(db, object, target.table, predicate))) {
        report = { key: object.key, status: 'skipped', rows: object.rows };
      } else {
        const read = await readVerifiedObject(s3, object);
        bytesVerified += read.body.byteLength;
        const decoded = await decodeArchiveObject(read.body);
        const names = decoded.columns.map((c) => c.name);
        const missing = missingColumns(target, names);
        if (missing.length > 0) {
          throw new RestoreArchiveTargetError(
            `${object.key}: ${target.qualifiedName} lacks the archived column(s) ${missing.join(', ')} ` +
              `(archived: ${names.join(', ')}); restore into a table that has them (--into)`,
          );
        }
        for (const name of names) archivedColumns.add(name);
        if (!archivedKey(target, names)) {
          if (!props.allowNoKey)
            throw new RestoreArchiveTargetError(
              `${target.qualifiedName}: its primary key is not made of archived columns (archived: ${names.join(', ')}): ` +
                'ON CONFLICT cannot tell a row restored before from a new one. Pass --allow-no-key to rely on the ledger alone',
            );
          // Without a key the ledger is all there is: an object restored before under another --where cannot be
          // restored again without inserting the rows both predicates select twice.
          if (await restoredBefore(db, object, target.table))
            throw new RestoreArchiveTargetError(
              `${object.key} was restored into ${target.qualifiedName} before under another --where, and the table has no archived key: restoring it again would insert rows twice`,
            );
        }
        const outcome = await loadObject({
          db,
          restoreId,
          policy,
          object,
          decoded,
          versionId: read.versionId,
          etag: read.etag,
          target,
          predicate,
          lockTimeoutMs: props.lockTimeoutMs ?? 10_000,
        });
        report =
          outcome.status === 'skipped'
            ? { key: object.key, status: 'skipped', rows: object.rows }
            : { key: object.key, rows: object.rows, ...outcome };
      }
      reports.push(report);
      props.onObject?.(report);
    }
  } catch (error) {
    // Bad input found after objects were committed: a failure part way, not "nothing written".
    const committed = reports.filter((r) => r.status === 'restored').length;
    if (committed > 0 && error instanceof RestoreArchiveInputError)
      throw new RestoreArchivePartialError(
        `${error.message}; ${committed} objects were restored before it (recorded: running it again goes on after them)`,
        { cause: error },
      );
    throw error;
  }
  const sum = (field: 'rowsStaged' | 'rowsSelected' | 'rowsInserted') =>
    reports.reduce((total, r) => total + (r[field] ?? 0), 0);
  const restored = reports.filter((r) => r.status === 'restored');
  return {
    ...base,
    objectsSkipped: reports.length - restored.length,
    objectsRestored: restored.length,
    bytesVerified,
    rowsStaged: sum('rowsStaged'),
    rowsSelected: sum('rowsSelected'),
    rowsInserted: sum('rowsInserted'),
    rowsSkippedByConflict: sum('rowsSelected') - sum('rowsInserted'),
    columnsDefaulted:
      restored.length === 0
        ? []
        : target.table.columns.map((c) => c.name).filter((name) => !archivedColumns.has(name)),
    objects: reports,
    pending: null,
  };
}
