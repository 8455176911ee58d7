/**
 * `restore`: a backup back into a database, in the order pg_restore uses and with checks it does not make.
 *
 * 1. Plan (restore-plan.ts) and read the target (target-state.ts): refusals happen before any download.
 * 2. Read every selected part once — length, SHA-256, COPY block, row count — and the DDL files it runs: a
 *    missing, truncated, altered or miscounted part fails the restore before anything is written.
 * 3. full / schema-only: pre-data (schema.sql) in one transaction.
 * 4. data: each table in its own transaction (load-table.ts: COPY FROM STDIN per part, each re-verified as it
 *    is downloaded; content checksum equal to the manifest's before COMMIT). Data-only empties the targets
 *    first with `ifExists: 'truncate'` (one TRUNCATE of them all, so tables that reference each other can be
 *    emptied together) and loads referenced tables first.
 * 5. full / schema-only: post-data (constraints, indexes, sequence positions, comments) in one transaction,
 *    after the data as pg_restore does: indexes build once and constraints check the loaded rows.
 *    data-only: the positions of the sequences its tables use (sequence-positions.ts).
 *
 * A failure after something was committed is a RestoreIncompleteError saying which tables are in and which
 * are not; before that, the failure itself (the target unchanged).
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { Queryable } from '../../../adapters/transactions.ts';
import { classifyDatabaseError } from '../../../core/errors.ts';
import { describeError } from '../../../core/redact-database-error.ts';
import { type ErasureReplay, replayErasures } from '../../subjects/erasure-replay.ts';
import type { BackupManifest } from '../manifest.ts';
import { checkDecompression } from '../part-compression.ts';
import { readObjectText } from './backup-store.ts';
import { type BackupProblem, checkParts } from './check-parts.ts';
import { runDdl } from './ddl.ts';
import {
  BackupDamagedError,
  BackupManifestError,
  RestoreIncompleteError,
  RestoreTargetError,
} from './errors.ts';
import { loadTable } from './load-table.ts';
import { manifestPlacementProblems } from './manifest-checks.ts';
import {
  type IfExists,
  type PlannedDdl,
  planRestore,
  type RestoreMode,
  type RestorePlan,
} from './restore-plan.ts';
import { applySequencePositions, sequencePositions } from './sequence-positions.ts';
import { checkDataTargets, checkTablesAbsent, type DataTarget, readTargetTable } from './target-state.ts';

export interface RestoreBackupProps {
  /** The target database's connection; the restore runs its own transactions on it, one at a time. */
  readonly db: pg.ClientBase;
  readonly s3: S3Client;
  readonly bucket: string;
  /** From findBackup (or listBackups): a complete backup's manifest. */
  readonly manifest: BackupManifest;
  readonly mode: RestoreMode;
  /** Table patterns (data-only): only these tables' data. */
  readonly tables?: readonly string[] | undefined;
  /** Restore next to the original, every table in this schema (relocatable DDL for full and schema-only). */
  readonly intoSchema?: string | undefined;
  /** Data-only into a table that has rows: refuse, empty it first, or add to it. */
  readonly ifExists: IfExists;
  /** Longest wait for any lock (a TRUNCATE, a foreign key to a busy table). @default 2000 */
  readonly lockTimeoutMs?: number;
  /** Parts read at once while verifying. @default 4 */
  readonly concurrency?: number;
  /** Where parts are downloaded to while loading. @default os.tmpdir() */
  readonly tempDir?: string;
  /**
   * Erasures completed since the backup was taken (subjects/erasure-replay.ts): done again on each restored
   * table before it commits, so a restore never brings an erased subject back.
   */
  readonly erasures?: ErasureReplay | undefined;
  /** Called as each table is committed (drills record what they found). */
  readonly onTableRestored?: (table: RestoredTable) => void;
}

export interface RestoredTable {
  /** As the manifest names it. */
  readonly table: string;
  /** Where it went, quoted. */
  readonly target: string;
  readonly rows: number;
  /** Of the rows restored; equal to the manifest's (else the table was rolled back). */
  readonly contentChecksum: string;
  /** Rows of subjects erased since the backup, deleted or masked again before the table committed. */
  readonly erased: number;
}

export interface RestoreResult {
  readonly policy: string;
  readonly backupId: string;
  readonly mode: RestoreMode;
  readonly intoSchema: string | undefined;
  readonly tables: readonly RestoredTable[];
  /** Data-only: the sequences whose positions were set; full and schema-only set them in post-data. */
  readonly sequencesSet: readonly string[];
  /** Parts and bytes read before loading. */
  readonly partsVerified: number;
  readonly bytesVerified: number;
  readonly durationMs: number;
}

const DEFAULT_LOCK_TIMEOUT_MS = 2000;

interface DdlTexts {
  readonly preData: string;
  readonly postData: string;
}

/** Reads the DDL a mode needs; a missing file is damage found before anything was written. */
async function readDdl(
  props: RestoreBackupProps,
  ddl: PlannedDdl | undefined,
  problems: BackupProblem[],
): Promise<DdlTexts | undefined> {
  if (!ddl) return undefined;
  const read = async (key: string) => {
    const text = await readObjectText(props.s3, props.bucket, key);
    if (text === undefined)
      problems.push({
        kind: 'missing-file',
        key,
        message: `${key}: listed in the manifest, not in the bucket`,
      });
    const expected = props.manifest.fileSha256?.[key];
    if (
      text !== undefined &&
      expected !== undefined &&
      createHash('sha256').update(text, 'utf8').digest('hex') !== expected
    )
      problems.push({ kind: 'file-sha256', key, message: `${key}: SHA-256 differs from the manifest's` });
    return text === undefined ? '' : ddl.prepare(text);
  };
  const preData = props.mode === 'data-only' ? '' : await read(ddl.preDataKey);
  return { preData, postData: await read(ddl.postDataKey) };
}

/** Step 2: everything the restore will read, read once and checked. */
async function verifyInputs(props: RestoreBackupProps, plan: RestorePlan) {
  const { manifest } = props;
  const placement = manifestPlacementProblems(manifest, manifest.policy, manifest.backupId);
  if (placement.length > 0) {
    throw new BackupManifestError(`backup ${manifest.backupId}: ${placement.join('; ')}`, {
      policy: manifest.policy,
    });
  }
  const problems: BackupProblem[] = [];
  const ddl = await readDdl(props, plan.ddl, problems);
  const parts =
    plan.mode === 'schema-only'
      ? { problems: [], checked: 0, bytes: 0 }
      : await checkParts(
          props.s3,
          props.bucket,
          manifest.compression.codec,
          plan.tables.map((t) => t.entry),
          props.concurrency ?? 4,
        );
  problems.push(...parts.problems);
  if (problems.length > 0) {
    throw new BackupDamagedError(
      `backup ${manifest.backupId} is damaged, nothing was restored: ${problems.map((p) => p.message).join('; ')}`,
      problems,
      { policy: manifest.policy },
    );
  }
  return { ddl, partsVerified: parts.checked, bytesVerified: parts.bytes };
}

/**
 * Empties the targets that hold rows, all in one statement, inside the caller's open transaction (the one the
 * rows are then loaded in: a failed load rolls the TRUNCATE back with it); returns their names.
 */
async function truncateTargets(
  db: Queryable,
  targets: readonly DataTarget[],
  lockTimeoutMs: number,
): Promise<string[]> {
  const full = targets.filter((t) => t.nonEmpty);
  if (full.length === 0) return [];
  const names = full.map((t) => `${t.table.partitioned ? '' : 'ONLY '}${t.planned.target.quotedName}`);
  try {
    // SET, not a SELECT: no snapshot is taken before the loads' locks.
    await db.query(`SET LOCAL lock_timeout = '${Math.trunc(lockTimeoutMs)}ms'`);
    // No CASCADE: a table outside the restore that references one of these refuses the TRUNCATE, and
    // nothing is emptied, rather than losing its rows.
    await db.query(`TRUNCATE ${names.join(', ')}`);
  } catch (error) {
    // 0A000: another table references one of them (named in the message); the target, not the backup, is at fault.
    if ((error as { code?: unknown }).code === '0A000')
      throw new RestoreTargetError(`--if-exists truncate: ${describeError(error)}; nothing was emptied`, {
        cause: classifyDatabaseError(error),
      });
    throw classifyDatabaseError(error);
  }
  return full.map((t) => t.planned.target.quotedName);
}

export async function restoreBackup(props: RestoreBackupProps): Promise<RestoreResult> {
  const started = performance.now();
  const { db, manifest } = props;
  const lockTimeoutMs = props.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const plan = planRestore(manifest, {
    mode: props.mode,
    tables: props.tables,
    intoSchema: props.intoSchema,
    ifExists: props.ifExists,
  });
  checkDecompression(manifest.compression.codec);
  // Step 1: the target as it is.
  const dataTargets = plan.mode === 'data-only' ? await checkDataTargets(db, plan) : undefined;
  if (plan.mode !== 'data-only') await checkTablesAbsent(db, plan);
  const verified = await verifyInputs(props, plan);

  const restored: RestoredTable[] = [];
  const done: string[] = [];
  let written = false;
  let inProgress: string | undefined;
  let sequencesSet: string[] = [];
  try {
    if (plan.mode !== 'data-only' && verified.ddl) {
      await runDdl(db, verified.ddl.preData, { label: 'schema.sql', lockTimeoutMs });
      written = true;
      done.push('schema (pre-data)');
    }
    if (plan.mode !== 'schema-only') {
      const targets = dataTargets ?? (await createdTargets(db, plan));
      // Truncate-and-reload is one transaction: the TRUNCATE and every table's rows commit together or not at
      // all (a load that fails must never leave the targets emptied).
      const together = plan.ifExists === 'truncate' && targets.some((t) => t.nonEmpty);
      if (together) {
        await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        const emptied = await truncateTargets(db, targets, lockTimeoutMs).catch(async (error: unknown) => {
          await db.query('ROLLBACK').catch(() => undefined);
          throw error;
        });
        done.push(`emptied ${emptied.join(', ')}`);
      }
      const loadedTables: RestoredTable[] = [];
      for (const target of targets) {
        const entry = target.planned.entry;
        inProgress = entry.table;
        const loaded = await loadTable({
          db,
          s3: props.s3,
          bucket: props.bucket,
          codec: manifest.compression.codec,
          entry,
          quotedName: target.planned.target.quotedName,
          table: target.table,
          append: plan.ifExists === 'append',
          lockTimeoutMs,
          tempDir: props.tempDir,
          inTransaction: together,
        }).catch(async (error: unknown) => {
          if (together) {
            await db.query('ROLLBACK').catch(() => undefined);
            // Nothing of the truncate-and-reload committed: the targets hold what they held.
            done.length = 0;
            loadedTables.length = 0;
          }
          throw error;
        });
        inProgress = undefined;
        const table = { table: entry.table, target: target.planned.target.quotedName, ...loaded, erased: 0 };
        loadedTables.push(table);
        if (!together) {
          restored.push(table);
          done.push(entry.table);
          written = true;
          props.onTableRestored?.(table);
        }
      }
      if (props.erasures) {
        // After every table is in, children first (the erasures' own order): a parent's subject row deleted
        // before its children were loaded would refuse them (foreign key), and in full mode before post-data
        // adds the keys at all. A truncate-and-reload does it in its one transaction.
        inProgress = 'erasures done again';
        if (!together) await db.query('BEGIN');
        try {
          const erased = await replayAllErasures(db, props.erasures, loadedTables);
          if (!together) await db.query('COMMIT');
          const count = (t: RestoredTable) => ({ ...t, erased: erased.get(t.table) ?? 0 });
          loadedTables.splice(0, loadedTables.length, ...loadedTables.map(count));
          restored.splice(0, restored.length, ...restored.map(count));
        } catch (error) {
          await db.query('ROLLBACK').catch(() => undefined);
          if (together) {
            done.length = 0;
            loadedTables.length = 0;
          }
          throw classifyDatabaseError(error);
        }
        inProgress = undefined;
      }
      if (together) {
        await db.query('COMMIT');
        written = true;
        for (const table of loadedTables) {
          restored.push(table);
          done.push(table.table);
          props.onTableRestored?.(table);
        }
      }
    }
    if (plan.mode !== 'data-only' && verified.ddl) {
      inProgress = 'post-data';
      await runDdl(db, verified.ddl.postData, { label: 'post-data.sql', lockTimeoutMs });
    } else if (plan.mode === 'data-only' && verified.ddl && dataTargets) {
      inProgress = 'sequence positions';
      sequencesSet = await applySequencePositions(
        db,
        sequencePositions(verified.ddl.postData),
        dataTargets.map((t) => t.table.oid),
        { forwardOnly: plan.ifExists === 'append', lockTimeoutMs },
      );
    }
  } catch (error) {
    // Nothing committed yet: the target is as it was, and the failure says it all.
    if (!written) throw error;
    throw incomplete(plan, manifest, { error, stoppedAt: inProgress, done, restored });
  }
  return {
    policy: manifest.policy,
    backupId: manifest.backupId,
    mode: plan.mode,
    intoSchema: plan.intoSchema,
    tables: restored,
    sequencesSet,
    partsVerified: verified.partsVerified,
    bytesVerified: verified.bytesVerified,
    durationMs: Math.round(performance.now() - started),
  };
}

/** Every erasure done again on the tables just loaded, in the erasures' order: rows changed per table. */
async function replayAllErasures(
  db: Queryable,
  replay: ErasureReplay,
  tables: readonly RestoredTable[],
): Promise<Map<string, number>> {
  const erased = new Map<string, number>();
  for (const table of replay.tables.keys()) {
    const loaded = tables.find((t) => t.table === table);
    if (loaded) erased.set(table, await replayErasures(db, replay, table, loaded.target));
  }
  return erased;
}

/** Full mode: the tables pre-data just created (empty, so nothing to truncate). */
async function createdTargets(db: Queryable, plan: RestorePlan): Promise<DataTarget[]> {
  const targets: DataTarget[] = [];
  for (const planned of plan.tables) {
    const table = await readTargetTable(db, planned.target.quotedName);
    if (!table) throw new Error(`${planned.target.quotedName} was not created by schema.sql`);
    targets.push({ planned, table, nonEmpty: false });
  }
  return targets;
}

/** What is in and what is not, once a restore stopped after committing something. */
function incomplete(
  plan: RestorePlan,
  manifest: BackupManifest,
  state: {
    error: unknown;
    stoppedAt: string | undefined;
    done: readonly string[];
    restored: readonly RestoredTable[];
  },
): RestoreIncompleteError {
  const restoredNames = state.restored.map((t) => t.table);
  const notRestored =
    plan.mode === 'schema-only'
      ? []
      : plan.tables.map((t) => t.entry.table).filter((t) => !restoredNames.includes(t));
  const where = state.stoppedAt === undefined ? '' : ` at ${state.stoppedAt}`;
  const postData =
    plan.mode !== 'data-only'
      ? '; post-data (keys, indexes, foreign keys, sequence positions) was not applied'
      : '';
  const name = (state.error as Error | undefined)?.name ?? 'Error';
  return new RestoreIncompleteError(
    `restore of backup ${manifest.backupId} stopped${where}: ${name}: ${describeError(state.error)}; ` +
      `done: ${state.done.length > 0 ? state.done.join(', ') : 'nothing'}; ` +
      `not restored: ${notRestored.length > 0 ? notRestored.join(', ') : 'none'}${postData}`,
    restoredNames,
    notRestored,
    {
      cause: state.error,
      ...(state.stoppedAt !== undefined && plan.tables.some((t) => t.entry.table === state.stoppedAt)
        ? { table: state.stoppedAt }
        : {}),
    },
  );
}
