/**
 * The scheduled restore drill's step (`backup.drill`): the latest complete backup of the function's policy
 * restored into a scratch schema, compared with its manifest, recorded in lifecycle.restore_drills and the
 * scratch schema dropped (`runDrill`). A drill that ran and did not pass is returned as `failed` (the state
 * machine's DrillFailed state then fails the execution); one that could not run (no backup, no ledger) throws.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import {
  DrillInputSchema,
  type DrillOutput,
  DrillOutputSchema,
} from '../../../lib/contracts/restore-drill-payloads.ts';
import { applyMigrations } from '../../adapters/migrations.ts';
import { InvalidPayloadError } from '../../core/errors.ts';
import type { StepLogger } from '../../run/dependencies.ts';
import { restoreDrillsLedger, runDrill } from './restore/index.ts';

export interface DrillStepDependencies {
  /** A connection to the database the backups are of (the drill restores next to the original). */
  connect(): Promise<pg.Client>;
  readonly s3: S3Client;
  readonly bucket: string;
  /** The backup policy whose latest backup is drilled (as deployed, never from the input). */
  readonly policy: string;
  readonly log: StepLogger;
  /** Longest wait for any lock the restore takes. @default 2000 */
  readonly lockTimeoutMs?: number | undefined;
  /** Where parts are downloaded while loading. @default os.tmpdir() */
  readonly tempDir?: string | undefined;
}

/** Tables named in the output at most; lifecycle.restore_drills has them all. */
const MAX_NAMED_TABLES = 20;

export async function runScheduledDrill(deps: DrillStepDependencies, event: unknown): Promise<DrillOutput> {
  const parsed = DrillInputSchema.safeParse(event ?? {});
  if (!parsed.success) {
    throw new InvalidPayloadError(
      `invalid drill input: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const db = await deps.connect();
  try {
    // The drill records itself in lifecycle.restore_drills (sql/010): a ledger a backup never migrated gets it.
    await applyMigrations(db);
    const result = await runDrill({
      db,
      s3: deps.s3,
      bucket: deps.bucket,
      policy: deps.policy,
      ledger: restoreDrillsLedger(db),
      ...(deps.lockTimeoutMs !== undefined ? { lockTimeoutMs: deps.lockTimeoutMs } : {}),
      ...(deps.tempDir !== undefined ? { tempDir: deps.tempDir } : {}),
    });
    const failed = result.tables.filter((table) => !table.ok);
    const output: DrillOutput = {
      drillId: result.drillId,
      policy: result.policy,
      backupId: result.backupId,
      status: result.status,
      durationMs: result.durationMs,
      tables: result.tables.length,
      failedTables: failed.slice(0, MAX_NAMED_TABLES).map((table) => ({
        table: table.table,
        expectedRows: table.expected.rows,
        foundRows: table.found?.rows ?? null,
      })),
      scratchDropped: result.scratchDropped,
      ...(result.status === 'failed'
        ? {
            cause: `drill ${result.drillId} of backup ${result.backupId}: ${result.error ?? 'a table differs'}`,
          }
        : {}),
    };
    const fields = { ...output, failedTables: failed.length };
    if (result.status === 'passed') deps.log.info('restore drill passed', fields);
    else deps.log.error('restore drill failed', fields);
    return DrillOutputSchema.parse(output);
  } finally {
    await db.end().catch(() => undefined);
  }
}
