/**
 * The backup commands: `backups list`, `restore`, `verify --backup`, `drill`. Each returns its exit code: 0
 * done (verify: no problem; drill: passed), 1 a failure (a problem found, a damaged backup, a failed drill or
 * restore), and a UsageError (exit 2) for what the operator named wrong — an unknown backup or table, a bad
 * mode, a missing bucket, a target that is not as the mode needs — before anything is written.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import {
  BACKUP_ID_PATTERN,
  BackupInputError,
  type BackupSummary,
  type BackupVerification,
  checkRestoreRequest,
  type DrillResult,
  findBackup,
  IF_EXISTS_CHOICES,
  type IfExists,
  listBackups,
  RESTORE_MODES,
  type RestoredTable,
  type RestoreMode,
  type RestoreResult,
  restoreBackup,
  restoreDrillsLedger,
  runDrill,
  verifyBackup,
} from '../../functions/actions/backup/restore/index.ts';
import { loadErasureReplay } from '../../functions/actions/subjects/erasure-replay.ts';
import { Ledger } from '../../functions/adapters/ledger/index.ts';
import { createS3Client } from '../../functions/commons/s3.ts';
import { StorageConfigurationError } from '../../functions/core/errors.ts';
import { BucketNameSchema, PolicyNameSchema } from '../../lib/contracts/config.ts';
import { withDatabase } from './database-target.ts';
import { UsageError } from './errors.ts';
import { formatBytes } from './format.ts';
import { requireLedger, requireMigratedLedger } from './ledger-checks.ts';

/** The options these commands read (program.ts parses them). */
export interface BackupCommandValues {
  readonly policy?: string | undefined;
  readonly bucket?: string | undefined;
  readonly backup?: string | undefined;
  readonly table?: string[] | undefined;
  readonly mode?: string | undefined;
  readonly intoSchema?: string | undefined;
  readonly ifExists?: string | undefined;
  readonly json?: boolean | undefined;
}

const print = (text: string) => process.stdout.write(`${text}\n`);

function bucketOf(values: BackupCommandValues, command: string): string {
  const bucket = values.bucket ?? process.env.PG_LIFECYCLE_BUCKET;
  if (!bucket) throw new UsageError(`${command} needs the bucket: --bucket B or PG_LIFECYCLE_BUCKET`);
  if (!BucketNameSchema.safeParse(bucket).success)
    throw new UsageError(`bucket ${JSON.stringify(bucket)} is not a valid S3 bucket name`);
  return bucket;
}

function policyOf(values: BackupCommandValues, required: true): string;
function policyOf(values: BackupCommandValues, required: false): string | undefined;
function policyOf(values: BackupCommandValues, required: boolean): string | undefined {
  const policy = values.policy;
  if (policy === undefined) {
    if (required) throw new UsageError('--policy NAME is required');
    return undefined;
  }
  // The name becomes a key prefix: only what a policy name can be.
  if (!PolicyNameSchema.safeParse(policy).success)
    throw new UsageError(`--policy ${JSON.stringify(policy)} is not a policy name`);
  return policy;
}

function backupOf(values: BackupCommandValues): string {
  if (!values.backup) throw new UsageError('--backup ID|latest is required');
  // Checked before S3 or the database is reached: the id becomes a key prefix.
  if (values.backup !== 'latest' && !BACKUP_ID_PATTERN.test(values.backup))
    throw new UsageError(`--backup ${JSON.stringify(values.backup)} is not a backup id (or latest)`);
  return values.backup;
}

/** S3, with a missing bucket or refused access (and the backup commands' input errors) as usage errors. */
async function withS3<T>(work: (s3: S3Client) => Promise<T>): Promise<T> {
  const s3 = createS3Client();
  try {
    return await work(s3);
  } catch (error) {
    if (error instanceof BackupInputError || error instanceof StorageConfigurationError)
      throw new UsageError(`${error.name}: ${error.message}`);
    throw error;
  } finally {
    s3.destroy();
  }
}

function hasDatabase(): boolean {
  return Boolean(process.env.DATABASE_URL || process.env.PGHOST || process.env.PGDATABASE);
}

/** `backups list [--policy P] --bucket B [--json]` */
export async function backupsCommand(values: BackupCommandValues): Promise<number> {
  const bucket = bucketOf(values, 'backups list');
  const policy = policyOf(values, false);
  const backups = await withS3((s3) => listBackups(s3, bucket, { policy }));
  if (values.json) print(JSON.stringify({ bucket, backups }));
  else print(formatBackupList(bucket, backups));
  return 0;
}

export function formatBackupList(bucket: string, backups: readonly BackupSummary[]): string {
  if (backups.length === 0) return `no backups in s3://${bucket}/backup/`;
  return backups
    .map((b) => {
      const head = `${b.policy}  ${b.backupId}  ${b.time ?? '?'}`;
      if (b.status === 'incomplete') return `${head}  INCOMPLETE: ${b.problem}`;
      const expiry = b.expiresAt ? `, expires ${b.expiresAt}` : '';
      return `${head}  ${b.tables} tables, ${b.rows} rows, ${formatBytes(b.bytes ?? 0)}, ${b.consistency}${expiry}`;
    })
    .join('\n');
}

function choice<T extends string>(
  value: string | undefined,
  choices: readonly T[],
  option: string,
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value))
    throw new UsageError(`${option} ${JSON.stringify(value)}: must be one of ${choices.join(', ')}`);
  return value as T;
}

/** `restore --backup ID|latest --policy P --bucket B [--table T …] [--mode …] [--into-schema S] [--if-exists …]` */
export async function restoreCommand(values: BackupCommandValues): Promise<number> {
  const policy = policyOf(values, true);
  const bucket = bucketOf(values, 'restore');
  const backup = backupOf(values);
  const mode: RestoreMode = choice(values.mode, RESTORE_MODES, '--mode', 'full');
  const ifExists: IfExists = choice(values.ifExists, IF_EXISTS_CHOICES, '--if-exists', 'fail');
  // What the request says on its own is refused before the backup is read or the database reached.
  try {
    checkRestoreRequest({ mode, ifExists, tables: values.table, intoSchema: values.intoSchema });
  } catch (error) {
    if (error instanceof BackupInputError) throw new UsageError(error.message);
    throw error;
  }
  const result = await withS3(async (s3) => {
    const manifest = await findBackup(s3, bucket, policy, backup);
    return withDatabase(async (db) =>
      restoreBackup({
        db,
        s3,
        bucket,
        manifest,
        mode,
        // Subjects erased since the backup was taken are erased again before each table commits.
        erasures:
          mode === 'schema-only'
            ? undefined
            : await loadErasureReplay(db, manifest.startedAt, process.env.PG_LIFECYCLE_HASH_KEY),
        tables: values.table,
        intoSchema: values.intoSchema,
        ifExists,
        // A long restore says what is done as it goes (stderr: stdout holds the result).
        ...(values.json
          ? {}
          : {
              onTableRestored: (table: RestoredTable) =>
                process.stderr.write(
                  `restored ${table.target}: ${table.rows} rows, checked` +
                    `${table.erased > 0 ? `; ${table.erased} rows of erased subjects erased again` : ''}\n`,
                ),
            }),
      }),
    );
  });
  print(values.json ? JSON.stringify(result) : formatRestore(result));
  return 0;
}

export function formatRestore(result: RestoreResult): string {
  const where = result.intoSchema === undefined ? '' : ` into schema ${result.intoSchema}`;
  const lines = [
    `${result.policy} ${result.backupId}: ${result.mode} restore${where} done in ${result.durationMs} ms ` +
      `(${result.partsVerified} parts, ${formatBytes(result.bytesVerified)} verified before loading)`,
  ];
  for (const table of result.tables)
    lines.push(`  ${table.target}: ${table.rows} rows, content checksum equal to the backup's`);
  if (result.sequencesSet.length > 0) lines.push(`  sequences positioned: ${result.sequencesSet.join(', ')}`);
  return lines.join('\n');
}

/** `verify --backup ID|latest --policy P --bucket B`: exit 1 on any problem. */
export async function verifyBackupCommand(values: BackupCommandValues): Promise<number> {
  const policy = policyOf(values, true);
  const bucket = bucketOf(values, 'verify');
  const backup = backupOf(values);
  const result = await withS3(async (s3) => {
    const target =
      backup === 'latest' ? await findBackup(s3, bucket, policy, backup) : { policy, backupId: backup };
    if (!hasDatabase()) return verifyBackup(s3, bucket, target);
    // With a database, its ledger must hold the backup's run: a database without a ledger is the wrong one.
    return withDatabase(async (client) => {
      await requireLedger(client);
      return verifyBackup(s3, bucket, target, { ledger: new Ledger(client) });
    });
  });
  print(values.json ? JSON.stringify(result) : formatVerification(result));
  return result.ok ? 0 : 1;
}

export function formatVerification(result: BackupVerification): string {
  const rows = result.rowsCounted === undefined ? 'rows not counted' : `${result.rowsCounted} rows`;
  const ledger = result.ledger === 'checked' ? 'ledger compared' : 'ledger not compared (no database)';
  const lines = [
    `${result.policy} ${result.backupId}: ${result.partsChecked} parts, ${formatBytes(result.bytesChecked)}, ${rows}, ` +
      `${ledger}: ${result.ok ? 'OK' : 'PROBLEMS'}`,
  ];
  for (const problem of result.problems) lines.push(`  - ${problem.kind}: ${problem.message}`);
  return lines.join('\n');
}

/** `drill --policy P --bucket B`: exit 1 when the drill failed (it is recorded either way). */
export async function drillCommand(values: BackupCommandValues): Promise<number> {
  const policy = policyOf(values, true);
  const bucket = bucketOf(values, 'drill');
  const result = await withS3(async (s3) =>
    withDatabase(async (db) => {
      const database = await requireLedger(db);
      // The drill records itself in lifecycle.restore_drills (sql/010): a ledger without it is asked to migrate.
      await requireMigratedLedger(db, database, 'drill');
      return runDrill({ db, s3, bucket, policy, ledger: restoreDrillsLedger(db) });
    }),
  );
  print(values.json ? JSON.stringify(result) : formatDrill(result));
  return result.status === 'passed' ? 0 : 1;
}

export function formatDrill(result: DrillResult): string {
  const lines = [
    `${result.policy} ${result.backupId}: drill ${result.status.toUpperCase()} in ${result.durationMs} ms ` +
      `(restored into ${result.scratchSchema}, ${result.scratchDropped ? 'dropped' : 'NOT dropped'})`,
  ];
  for (const table of result.tables) {
    const found = table.found ? `${table.found.rows} rows` : 'not restored';
    lines.push(
      `  ${table.table}: expected ${table.expected.rows} rows, found ${found}${table.ok ? '' : ' — DIFFERS'}`,
    );
  }
  if (result.error) lines.push(`  error: ${result.error}`);
  if (result.caveats.length > 0) {
    lines.push('  not proven by a drill in the source database (a restore elsewhere needs them):');
    for (const caveat of result.caveats) lines.push(`    ${caveat}`);
  }
  return lines.join('\n');
}
