/**
 * Loads one table's parts in one transaction and proves, before COMMIT, that it now holds what was backed up:
 * the content checksum of its own rows (over the manifest's columns, with the text settings the backup read
 * them with) must equal the manifest's, or the transaction rolls back and the table keeps none of it.
 *
 * REPEATABLE READ: the checksum sees this transaction's rows plus exactly what was there when it started,
 * whatever other sessions commit meanwhile. Appending to a table that has rows, the checksum of those is taken
 * first and subtracted (sums of row hashes add up), so the rows the restore added are checked all the same.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { classifyDatabaseError } from '../../../core/errors.ts';
import {
  type ContentChecksum,
  contentChecksumSql,
  formatContentChecksum,
  parseContentChecksum,
  sameContent,
} from '../content-checksum.ts';
import type { BackupTableEntry } from '../manifest.ts';
import type { PartCompression } from '../part-compression.ts';
import { restorePart } from '../part-reader.ts';
import { PINNED_TEXT_SETTINGS } from '../part-writer.ts';
import { RestoreCheckError, RestoreTargetError } from './errors.ts';
import { ownRows, type TargetTable } from './target-state.ts';

export interface LoadTableProps {
  readonly db: pg.ClientBase;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly codec: PartCompression['codec'];
  readonly entry: BackupTableEntry;
  readonly quotedName: string;
  readonly table: Pick<TargetTable, 'partitioned'>;
  /** Rows already in the table stay (their checksum is subtracted); else the table must be empty. */
  readonly append: boolean;
  readonly lockTimeoutMs: number;
  readonly tempDir?: string | undefined;
  /**
   * The caller's transaction (REPEATABLE READ, begun before any query) holds the load: it commits or rolls back
   * all of it (a truncate-and-reload of several tables must never commit the TRUNCATE without the rows).
   */
  readonly inTransaction?: boolean;
}

export interface LoadedTable {
  readonly rows: number;
  /** Of the rows this load added, equal to the manifest's. */
  readonly contentChecksum: string;
}

/**
 * A part is downloaded (and verified) while the transaction is open: allow that much idle time rather than the
 * connection's usual 2 minutes, which a slow download of a large part could pass.
 */
const IDLE_WHILE_DOWNLOADING = '15min';

async function checksum(props: LoadTableProps): Promise<ContentChecksum> {
  // contentChecksumSql's `only` would read no row of a partitioned table: ownRows says which it is.
  const sql = contentChecksumSql(ownRows(props.quotedName, props.table), props.entry.columns);
  const { rows } = await props.db.query<{ rows: string; sum: string }>(sql);
  const row = rows[0];
  if (!row) throw new Error('content checksum returned no row');
  return { rows: String(row.rows), sum: String(row.sum) };
}

function subtract(after: ContentChecksum, before: ContentChecksum): ContentChecksum {
  return {
    rows: (BigInt(after.rows) - BigInt(before.rows)).toString(),
    sum: (BigInt(after.sum) - BigInt(before.sum)).toString(),
  };
}

export async function loadTable(props: LoadTableProps): Promise<LoadedTable> {
  const { db, entry } = props;
  if (!props.inTransaction) await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  try {
    // Before the transaction's snapshot (LOCK takes none): no other session writes the table while it loads,
    // so the emptiness check and the checksum see every row it will hold.
    await db.query(`SET LOCAL lock_timeout = '${Math.trunc(props.lockTimeoutMs)}ms'`);
    await db.query(`LOCK TABLE ${props.quotedName} IN SHARE ROW EXCLUSIVE MODE`);
    await db.query(PINNED_TEXT_SETTINGS);
    await db.query(
      `SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', $1, true),
              set_config('idle_in_transaction_session_timeout', $2, true)`,
      [`${Math.trunc(props.lockTimeoutMs)}ms`, IDLE_WHILE_DOWNLOADING],
    );
    const before: ContentChecksum = props.append ? await checksum(props) : { rows: '0', sum: '0' };
    if (!props.append) {
      // Checked before the download started; a session may have written since.
      const { rows } = await db.query<{ found: string }>(
        `SELECT EXISTS (SELECT 1 FROM ${ownRows(props.quotedName, props.table)})::text AS found`,
      );
      if (rows[0]?.found === 'true')
        throw new RestoreTargetError(
          `${props.quotedName} received rows from another session during the restore`,
          {
            table: props.quotedName,
          },
        );
    }
    let loaded = 0;
    for (const part of entry.parts) {
      const result = await restorePart({
        client: db,
        s3: props.s3,
        bucket: props.bucket,
        part,
        codec: props.codec,
        targetQuotedName: props.quotedName,
        columns: entry.columns,
        ...(props.tempDir !== undefined ? { tempDir: props.tempDir } : {}),
      });
      loaded += result.rows;
    }
    const added = subtract(await checksum(props), before);
    const expected = parseContentChecksum(entry.contentChecksum);
    if (!sameContent(added, expected)) {
      throw new RestoreCheckError(
        `${props.quotedName}: the restored rows are not the backed-up ones (${added.rows} rows restored, ` +
          `${expected.rows} backed up; content checksums ${added.sum === expected.sum ? 'equal' : 'differ'}); rolled back`,
        expected,
        added,
        { table: props.quotedName },
      );
    }
    if (!props.inTransaction) await db.query('COMMIT');
    return { rows: loaded, contentChecksum: formatContentChecksum(added) };
  } catch (error) {
    if (!props.inTransaction) await db.query('ROLLBACK').catch(() => undefined);
    throw classifyDatabaseError(error);
  }
}
