/**
 * Every listed part of some tables read once and compared with the manifest: what `verify --backup` reports
 * and what a restore checks for its tables before it loads anything (a missing, truncated, altered or
 * miscounted part then fails the restore while the target is still untouched).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { BackupTableEntry } from '../manifest.ts';
import { checkDecompression, type PartCompression } from '../part-compression.ts';
import { mapLimit } from './backup-store.ts';
import { inspectPart } from './part-inspection.ts';

export type BackupProblemKind =
  /** The manifest is missing, unreadable, or contradicts itself or its place. */
  | 'manifest'
  | 'missing-part'
  | 'part-length'
  | 'part-sha256'
  /** Right bytes, but not a COPY block of the manifest's columns (it was written wrong). */
  | 'part-format'
  /** Right bytes, but another number of rows than the manifest lists. */
  | 'part-rows'
  /** schema.sql, post-data.sql, the relocatable copies, parts.txt or SHA256SUMS. */
  | 'missing-file'
  /** A DDL file whose SHA-256 is not the manifest's (edited or replaced since the backup). */
  | 'file-sha256'
  /** parts.txt or SHA256SUMS lists other parts than the manifest (a shell restore would load those). */
  | 'part-list'
  | 'unlisted-object'
  /** The ledger's record of the backup's run disagrees with the manifest. */
  | 'ledger';

export interface BackupProblem {
  readonly kind: BackupProblemKind;
  readonly key?: string;
  readonly message: string;
}

export interface PartsCheck {
  readonly problems: BackupProblem[];
  readonly checked: number;
  readonly bytes: number;
  /** Rows counted in the parts; undefined when this Node cannot decompress the codec (zstd before 22.15). */
  readonly rows: number | undefined;
}

/** Reads every part of `tables` (`concurrency` at a time); problems in manifest order. */
export async function checkParts(
  s3: S3Client,
  bucket: string,
  codec: PartCompression['codec'],
  tables: readonly BackupTableEntry[],
  concurrency: number,
): Promise<PartsCheck> {
  let readable: PartCompression['codec'] | undefined = codec;
  try {
    checkDecompression(codec);
  } catch {
    readable = undefined; // length and SHA-256 only
  }
  const listed = tables.flatMap((table) => table.parts.map((part) => ({ table, part })));
  const problems: BackupProblem[] = [];
  let bytes = 0;
  let rows: number | undefined = readable === undefined ? undefined : 0;
  await mapLimit(listed, concurrency, async ({ table, part }) => {
    const key = part.key;
    const found = await inspectPart({ s3, bucket, key, codec: readable, columns: table.columns });
    if (!found.found) {
      problems.push({
        kind: 'missing-part',
        key,
        message: `${key}: listed for ${table.table}, not in the bucket`,
      });
      return;
    }
    bytes += found.bytes;
    if (found.bytes !== part.bytes) {
      problems.push({
        kind: 'part-length',
        key,
        message: `${key}: ${found.bytes} bytes in the bucket, the manifest lists ${part.bytes}`,
      });
    } else if (found.sha256 !== part.sha256) {
      problems.push({ kind: 'part-sha256', key, message: `${key}: SHA-256 differs from the manifest's` });
    } else if (found.unreadable !== undefined) {
      problems.push({ kind: 'part-format', key, message: found.unreadable });
    } else if (found.rows !== undefined && found.rows !== part.rows) {
      problems.push({
        kind: 'part-rows',
        key,
        message: `${key}: holds ${found.rows} rows, the manifest lists ${part.rows}`,
      });
    }
    if (rows !== undefined) rows = found.rows === undefined ? undefined : rows + found.rows;
  });
  // In manifest order, whatever order the reads finished in.
  const order = new Map(listed.map(({ part }, index) => [part.key, index]));
  problems.sort((a, b) => (order.get(a.key ?? '') ?? 0) - (order.get(b.key ?? '') ?? 0));
  return { problems, checked: listed.length, bytes, rows };
}
