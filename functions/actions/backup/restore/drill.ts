/**
 * A restore drill: the latest complete backup of a policy restored in full into a scratch schema of the same
 * database (relocatable DDL), each table's row count and content checksum compared with the manifest, the
 * result recorded in `lifecycle.restore_drills` with the measured recovery time, and the scratch schema
 * dropped whatever happened. A drill that fails returns `status: 'failed'` (recorded so); it throws only when
 * there is no backup to drill or the ledger cannot be written.
 *
 * The scratch schema is new (`pgl_drill_<8 hex>`, refused if it exists) and only it is dropped. What a drill
 * does to the rest of the database: the restore's DDL creates missing extensions (each lock wait bounded by
 * `lockTimeoutMs`); a foreign key to a table the backup does not hold is not recreated (the relocatable DDL
 * leaves it out), so no live table is locked or read.
 *
 * What a drill cannot prove: restored into the database it came from, the tables find every function,
 * collation, type and referenced table the backup does not carry. A restore into a fresh database would miss
 * them; the manifest's notIncluded names each, and the drill repeats them as `caveats`, passed or not.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { quoteIdent } from '../../../../lib/contracts/identifiers.ts';
import { describeError } from '../../../core/redact-database-error.ts';
import { formatContentChecksum } from '../content-checksum.ts';
import type { BackupManifest } from '../manifest.ts';
import type { DrillLedger, DrillTable } from './drill-record.ts';
import { RestoreCheckError, RestoreIncompleteError, RestoreTargetError } from './errors.ts';
import { findBackup } from './list-backups.ts';
import { type RestoredTable, restoreBackup } from './restore-backup.ts';

export interface RunDrillProps {
  /** The database the drill restores into (next to the original) and whose ledger records it. */
  readonly db: pg.ClientBase;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly policy: string;
  readonly ledger: DrillLedger;
  /** A backup id, or `latest`. @default 'latest' */
  readonly backup?: string;
  /** @default 2000 */
  readonly lockTimeoutMs?: number;
  readonly tempDir?: string;
}

export interface DrillResult {
  readonly drillId: string;
  readonly policy: string;
  readonly backupId: string;
  readonly status: 'passed' | 'failed';
  /** Measured recovery time: from the first download to the last table checked (post-data included). */
  readonly durationMs: number;
  readonly scratchSchema: string;
  readonly scratchDropped: boolean;
  readonly tables: readonly DrillTable[];
  /** Why it failed: an error's name and text (no row values). */
  readonly error: string | undefined;
  /** What a restore into another database needs and this drill could not show (see the module comment). */
  readonly caveats: readonly string[];
}

/** The manifest's notIncluded lines a drill in the source database passes over. */
export function drillCaveats(manifest: Pick<BackupManifest, 'notIncluded'>): string[] {
  return manifest.notIncluded.filter(
    (line) => line.includes(': needs ') || line.startsWith('restore --into-schema and drills: foreign key'),
  );
}

const DROP_ATTEMPTS = 3;
/** A drill still running after this long was killed: a Lambda's is at most 15 minutes. */
const ABANDONED_AFTER_MS = 60 * 60 * 1000;

/** The scratch schema of a drill: it follows from the drill's id, so a killed drill's can be found again. */
export function scratchSchemaOf(drillId: string): string {
  return `pgl_drill_${drillId.slice(0, 8)}`;
}

async function schemaExists(db: pg.ClientBase, schema: string): Promise<boolean> {
  const { rows } = await db.query<{ found: string }>(
    'SELECT (to_regnamespace($1) IS NOT NULL)::text AS found',
    [quoteIdent(schema)],
  );
  return rows[0]?.found === 'true';
}

/** Drops the scratch schema, retrying a lock wait; returns why it could not. */
async function dropScratch(
  db: pg.ClientBase,
  schema: string,
  lockTimeoutMs: number,
): Promise<string | undefined> {
  let failure: string | undefined;
  for (let attempt = 1; attempt <= DROP_ATTEMPTS; attempt++) {
    try {
      await db.query('BEGIN');
      await db.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.trunc(lockTimeoutMs)}ms`]);
      await db.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      await db.query('COMMIT');
      return undefined;
    } catch (error) {
      await db.query('ROLLBACK').catch(() => undefined);
      failure = `scratch schema ${quoteIdent(schema)} not dropped: ${describeError(error)}`;
      if (attempt < DROP_ATTEMPTS) await sleep(1000 * attempt);
    }
  }
  return failure;
}

function drillTables(
  manifest: BackupManifest,
  restored: ReadonlyMap<string, RestoredTable>,
  error: unknown,
): DrillTable[] {
  // The one table a checksum refused (rolled back): what it held is in the error.
  const mismatch =
    error instanceof RestoreIncompleteError && error.cause instanceof RestoreCheckError
      ? { table: error.table, found: error.cause.found }
      : error instanceof RestoreCheckError
        ? { table: undefined, found: error.found }
        : undefined;
  return manifest.tables.map((entry) => {
    const expected = { rows: entry.rows, contentChecksum: entry.contentChecksum };
    const copy = restored.get(entry.table);
    const found = copy
      ? { rows: copy.rows, contentChecksum: copy.contentChecksum }
      : mismatch?.table === entry.table
        ? { rows: Number(mismatch.found.rows), contentChecksum: formatContentChecksum(mismatch.found) }
        : null;
    return {
      table: entry.table,
      expected,
      found,
      ok: found !== null && found.contentChecksum === entry.contentChecksum,
    };
  });
}

/**
 * Runs one drill and records it.
 * @throws BackupNotFoundError (or another BackupInputError) when there is no backup to drill: nothing recorded
 */
export async function runDrill(props: RunDrillProps): Promise<DrillResult> {
  const { db, policy } = props;
  const lockTimeoutMs = props.lockTimeoutMs ?? 2000;
  const manifest = await findBackup(props.s3, props.bucket, policy, props.backup ?? 'latest');
  const drillId = randomUUID();
  const scratchSchema = scratchSchemaOf(drillId);
  // A drill killed mid-restore (Lambda timeout, out of memory, ^C) left its scratch copy of the data: drop it
  // now (its name follows from its id), so killed drills never pile up copies of production rows.
  for (const abandoned of (await props.ledger.abandonedDrills?.(ABANDONED_AFTER_MS)) ?? []) {
    const failure = await dropScratch(db, scratchSchemaOf(abandoned), lockTimeoutMs);
    await props.ledger.markAbandoned?.(
      abandoned,
      `never finished (killed); ${failure ?? `its scratch schema was dropped by drill ${drillId}`}`,
    );
  }
  if (await schemaExists(db, scratchSchema)) {
    throw new RestoreTargetError(
      `scratch schema ${quoteIdent(scratchSchema)} exists already; run the drill again`,
    );
  }
  await props.ledger.startDrill({ drillId, policy, backupId: manifest.backupId });
  const restored = new Map<string, RestoredTable>();
  let error: unknown;
  const started = performance.now();
  try {
    await restoreBackup({
      db,
      s3: props.s3,
      bucket: props.bucket,
      manifest,
      mode: 'full',
      intoSchema: scratchSchema,
      ifExists: 'fail',
      lockTimeoutMs,
      ...(props.tempDir !== undefined ? { tempDir: props.tempDir } : {}),
      onTableRestored: (table) => restored.set(table.table, table),
    });
  } catch (thrown) {
    error = thrown;
  }
  const durationMs = Math.round(performance.now() - started);
  const dropFailure = await dropScratch(db, scratchSchema, lockTimeoutMs);
  const tables = drillTables(manifest, restored, error);
  const problems = [
    ...(error === undefined ? [] : [`${(error as Error).name ?? 'Error'}: ${describeError(error)}`]),
    ...(dropFailure ? [dropFailure] : []),
  ];
  const status = problems.length === 0 && tables.every((t) => t.ok) ? 'passed' : 'failed';
  const errorText =
    problems.length > 0 ? problems.join('; ') : status === 'failed' ? 'a table differs' : undefined;
  await props.ledger.finishDrill({ drillId, status, durationMs, tables, error: errorText });
  return {
    drillId,
    policy,
    backupId: manifest.backupId,
    status,
    durationMs,
    scratchSchema,
    scratchDropped: dropFailure === undefined,
    tables,
    error: errorText,
    caveats: drillCaveats(manifest),
  };
}
