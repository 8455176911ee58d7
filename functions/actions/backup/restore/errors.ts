/**
 * What reading a backup back can refuse or find. Two families: input errors (`BackupInputError`: the backup,
 * table, mode or target named cannot be restored as asked; nothing was read into the database, nothing
 * written — the CLI exits 2) and failures (the backup is damaged, or a restored table is not what was backed
 * up — exit 1). Messages name tables, keys and counts, never a row value.
 */
import { LifecycleError } from '../../../core/errors.ts';
import type { ContentChecksum } from '../content-checksum.ts';
import type { BackupProblem } from './check-parts.ts';

/** The request cannot be carried out as given; nothing was written. */
export abstract class BackupInputError extends LifecycleError {}

/** No backup of that id (or no complete one, for `latest`) under the policy's prefix. */
export class BackupNotFoundError extends BackupInputError {
  override readonly name = 'BackupNotFoundError';
}

/** The backup has no manifest.json: it failed or is still being written, and is never restorable. */
export class BackupIncompleteError extends BackupInputError {
  override readonly name = 'BackupIncompleteError';
}

/**
 * The selection cannot be restored as asked: an unknown `--table`, a mode that does not take a subset,
 * `--into-schema` for a backup without relocatable DDL, two tables that would land on one name.
 */
export class RestoreSelectionError extends BackupInputError {
  override readonly name = 'RestoreSelectionError';
}

/**
 * The target database is not in the state the mode needs: a non-empty table without `--if-exists`, a table
 * a full restore would create that exists, a table data-only would load that is missing or lacks columns.
 */
export class RestoreTargetError extends BackupInputError {
  override readonly name = 'RestoreTargetError';
}

/** The manifest is unreadable or contradicts itself or its place in the bucket: nothing of it is trusted. */
export class BackupManifestError extends LifecycleError {
  override readonly name = 'BackupManifestError';
}

/**
 * The backup's objects are not what its manifest lists (missing, truncated, altered, miscounted), found by
 * reading them before anything was loaded: the target was not touched.
 */
export class BackupDamagedError extends LifecycleError {
  override readonly name = 'BackupDamagedError';

  constructor(
    message: string,
    readonly problems: readonly BackupProblem[],
    options: { policy?: string } = {},
  ) {
    super(message, options);
  }
}

/**
 * A table was loaded but does not hold what the manifest says (its content checksum, which counts its rows):
 * its transaction was rolled back, so the target holds none of it.
 */
export class RestoreCheckError extends LifecycleError {
  override readonly name = 'RestoreCheckError';

  constructor(
    message: string,
    readonly expected: ContentChecksum,
    readonly found: ContentChecksum,
    options: { table: string },
  ) {
    super(message, options);
  }
}

/** A statement of schema.sql or post-data.sql failed; its transaction rolled back (nothing of that file stays). */
export class RestoreDdlError extends LifecycleError {
  override readonly name = 'RestoreDdlError';
}

/**
 * A restore stopped part way: the tables listed as restored are committed (each checked), the others hold
 * nothing of the backup. `cause` is what stopped it.
 */
export class RestoreIncompleteError extends LifecycleError {
  override readonly name = 'RestoreIncompleteError';

  constructor(
    message: string,
    readonly restored: readonly string[],
    readonly notRestored: readonly string[],
    options: { cause: unknown; table?: string },
  ) {
    super(message, options);
  }
}
