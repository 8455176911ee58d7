/**
 * `restore-archive --policy P --bucket B --from TIME --to TIME [--where SQL] [--into TABLE] [--allow-no-key]
 * [--json]`: archived rows back into DATABASE_URL (functions/actions/restore-archive). Exit 0 done, 2 for what
 * the operator named wrong (unknown or non-archive policy, bad range, unsafe --where, unknown --into table,
 * a target without the archived columns or without a key) before anything is written, 1 for a failure (an
 * object that is not the ledger's, a count that does not add up: that object rolled back, those before it
 * stay restored and recorded, a rerun resumes).
 */
import {
  type PendingRetrieval,
  RETRIEVAL_TIERS,
  RestoreArchiveInputError,
  type RestoreArchiveResult,
  type RetrievalTier,
  restoreArchive,
} from '../../functions/actions/restore-archive/index.ts';
import { createS3Client } from '../../functions/commons/s3.ts';
import { BucketNameSchema, PolicyNameSchema } from '../../lib/contracts/config.ts';
import { withDatabase } from './database-target.ts';
import { UsageError } from './errors.ts';
import { formatBytes } from './format.ts';
import { requireLedger } from './ledger-checks.ts';

/** The options this command reads (program.ts parses them). */
export interface RestoreArchiveCommandValues {
  readonly policy?: string | undefined;
  readonly bucket?: string | undefined;
  readonly from?: string | undefined;
  readonly to?: string | undefined;
  readonly where?: string | undefined;
  readonly into?: string | undefined;
  readonly allowNoKey?: boolean | undefined;
  readonly tier?: string | undefined;
  readonly json?: boolean | undefined;
}

/** Exit code when objects wait for an S3 restore (Glacier Flexible Retrieval / Deep Archive): run again later. */
export const EXIT_PENDING = 3;

const print = (text: string) => process.stdout.write(`${text}\n`);

function required(value: string | undefined, option: string): string {
  if (value === undefined || value.trim() === '') throw new UsageError(`restore-archive needs ${option}`);
  return value;
}

export async function restoreArchiveCommand(values: RestoreArchiveCommandValues): Promise<number> {
  const policy = required(values.policy, '--policy NAME');
  if (!PolicyNameSchema.safeParse(policy).success)
    throw new UsageError(`--policy ${JSON.stringify(policy)} is not a policy name`);
  const bucket = required(
    values.bucket ?? process.env.PG_LIFECYCLE_BUCKET,
    '--bucket B (or PG_LIFECYCLE_BUCKET)',
  );
  if (!BucketNameSchema.safeParse(bucket).success)
    throw new UsageError(`bucket ${JSON.stringify(bucket)} is not a valid S3 bucket name`);
  const from = required(values.from, '--from TIME');
  const to = required(values.to, '--to TIME');
  const tier = (values.tier ?? 'Standard') as RetrievalTier;
  if (!RETRIEVAL_TIERS.includes(tier))
    throw new UsageError(`--tier must be one of ${RETRIEVAL_TIERS.join(', ')}`);
  const s3 = createS3Client();
  let result: RestoreArchiveResult;
  try {
    result = await withDatabase(async (db) => {
      await requireLedger(db);
      return restoreArchive({
        db,
        s3,
        bucket,
        policy,
        from,
        to,
        where: values.where,
        into: values.into,
        allowNoKey: values.allowNoKey ?? false,
        tier,
        // A long restore says what is done as it goes (stderr: stdout holds the result).
        ...(values.json
          ? {}
          : {
              onObject: (o) =>
                process.stderr.write(
                  o.status === 'skipped'
                    ? `skipped ${o.key}: restored before\n`
                    : `restored ${o.key}: ${o.rowsInserted} of ${o.rowsStaged} rows inserted\n`,
                ),
            }),
      });
    });
  } catch (error) {
    if (error instanceof RestoreArchiveInputError) throw new UsageError(`${error.name}: ${error.message}`);
    throw error;
  } finally {
    s3.destroy();
  }
  print(values.json ? JSON.stringify(result) : formatRestoreArchive(result));
  return result.pending ? EXIT_PENDING : 0;
}

export function formatPending(pending: PendingRetrieval): string {
  return [
    `  ${pending.objects} object(s), ${formatBytes(pending.bytes)} in Glacier Flexible Retrieval / Deep Archive: ` +
      `${pending.tier} retrieval, estimated $${pending.estimatedCostUsd.toFixed(4)} and ${pending.estimatedTime} ` +
      `(an estimate from list prices as of ${pending.pricesAsOf})`,
    `  restores requested now: ${pending.requested}, already under way: ${pending.alreadyInProgress}. ` +
      'Nothing was loaded; run the same command again once S3 has the copies',
  ].join('\n');
}

export function formatRestoreArchive(result: RestoreArchiveResult): string {
  const where = result.where === null ? '' : ` where ${result.where}`;
  return [
    `${result.policy} → ${result.target}, [${result.from}, ${result.to})${where}: restore ${result.restoreId}`,
    `  objects: ${result.objectsConsidered} considered, ${result.objectsRestored} restored ` +
      `(${formatBytes(result.bytesVerified)} verified), ${result.objectsSkipped} skipped (restored before)`,
    `  rows: ${result.rowsStaged} staged, ${result.rowsSelected} selected, ${result.rowsInserted} inserted, ` +
      `${result.rowsSkippedByConflict} already present (ON CONFLICT)`,
    ...(result.pending ? [formatPending(result.pending)] : []),
    ...(result.rearchivedByPolicy && result.rowsInserted > 0
      ? [
          `  NOTE: ${result.target} is the policy's own table and these rows are past its retention: its next run ` +
            'archives them again as new objects (a second copy beside the first); restore --into another table, ' +
            'or disable the policy while you need them',
        ]
      : []),
    ...(result.columnsDefaulted.length > 0
      ? [`  columns not in the archive (took their defaults): ${result.columnsDefaulted.join(', ')}`]
      : []),
  ].join('\n');
}
