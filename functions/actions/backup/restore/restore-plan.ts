/**
 * What a restore request means for one manifest (pure): which tables, under which names, with which DDL. Every
 * refusal here happens before S3 or the database is read.
 *
 * A subset (`tables`) restores data only. The schema files recreate every table of the backup, with foreign
 * keys and sequences shared between them; cutting them down to some tables would take the definition they were
 * generated from, which the backup does not keep. So: restore the schema first (`schema-only`, which creates all
 * of the backup's tables, empty), then `data-only` with the tables wanted.
 */
import { parseQualifiedName, quoteQualified } from '../../../../lib/contracts/identifiers.ts';
import type { BackupManifest, BackupTableEntry } from '../manifest.ts';
import { relocateSql, targetSchemaProblem } from '../schema-relocation.ts';
import { matchesTablePattern, parseTablePattern } from '../table-pattern.ts';
import { RestoreSelectionError } from './errors.ts';

export const RESTORE_MODES = ['full', 'data-only', 'schema-only'] as const;
export type RestoreMode = (typeof RESTORE_MODES)[number];

/** What data-only does with a target table that holds rows. */
export const IF_EXISTS_CHOICES = ['fail', 'truncate', 'append'] as const;
export type IfExists = (typeof IF_EXISTS_CHOICES)[number];

export interface RestoreRequest {
  readonly mode: RestoreMode;
  /** Table patterns as the config writes them (`schema.table`, `"Sales"."Order Lines"`, `schema.*`). */
  readonly tables?: readonly string[] | undefined;
  /** Restore next to the original: every table (and what the DDL recreates) in this one schema. */
  readonly intoSchema?: string | undefined;
  readonly ifExists: IfExists;
}

export interface PlannedTable {
  readonly entry: BackupTableEntry;
  readonly source: { readonly schema: string; readonly name: string };
  /** Where its rows go: `"schema"."table"` quoted, and its parts. */
  readonly target: { readonly schema: string; readonly name: string; readonly quotedName: string };
}

/** Where the DDL a mode runs is, and how to read it. */
export interface PlannedDdl {
  readonly preDataKey: string;
  readonly postDataKey: string;
  /** Turns the stored text into what runs (the relocatable DDL with its placeholder replaced). */
  readonly prepare: (text: string) => string;
}

export interface RestorePlan {
  readonly mode: RestoreMode;
  readonly ifExists: IfExists;
  readonly intoSchema: string | undefined;
  /** In manifest order. */
  readonly tables: readonly PlannedTable[];
  /**
   * Pre-data and post-data of full and schema-only; for data-only the post-data whose sequence positions it
   * applies (undefined when into-schema has no relocatable DDL to take them from).
   */
  readonly ddl: PlannedDdl | undefined;
}

function sourceName(entry: BackupTableEntry): { schema: string; name: string } {
  const parts = parseQualifiedName(entry.table);
  const [schema, name] = parts;
  if (parts.length !== 2 || !schema || !name) {
    throw new RestoreSelectionError(`manifest table ${entry.table} is not a "schema"."table" name`);
  }
  return { schema: schema.name, name: name.name };
}

function selectTables(manifest: BackupManifest, patterns: readonly string[] | undefined) {
  const all = manifest.tables.map((entry) => ({ entry, source: sourceName(entry) }));
  if (patterns === undefined || patterns.length === 0) return all;
  const problems: string[] = [];
  const chosen = new Set<BackupTableEntry>();
  for (const text of patterns) {
    let pattern: ReturnType<typeof parseTablePattern>;
    try {
      pattern = parseTablePattern(text);
    } catch (error) {
      problems.push(`--table ${text}: ${(error as Error).message}`);
      continue;
    }
    const matched = all.filter(({ source }) =>
      matchesTablePattern(pattern, { schema: source.schema, table: source.name }),
    );
    if (matched.length === 0) problems.push(`--table ${text}: no such table in backup ${manifest.backupId}`);
    for (const { entry } of matched) chosen.add(entry);
  }
  if (problems.length > 0) {
    throw new RestoreSelectionError(
      `${problems.join('; ')} (it holds ${manifest.tables.map((t) => t.table).join(', ') || 'no tables'})`,
    );
  }
  return all.filter(({ entry }) => chosen.has(entry));
}

function planDdl(manifest: BackupManifest, request: RestoreRequest): PlannedDdl | undefined {
  const intoSchema = request.intoSchema;
  if (intoSchema === undefined) {
    return { preDataKey: manifest.schemaKey, postDataKey: manifest.postDataKey, prepare: (text) => text };
  }
  const relocatable = manifest.relocatable;
  if (!relocatable) {
    if (request.mode === 'data-only') return undefined;
    throw new RestoreSelectionError(
      `backup ${manifest.backupId} has no relocatable DDL (its tables cannot share one schema, or it predates it), ` +
        `so --into-schema cannot recreate its schema; create the tables yourself and restore with --mode data-only`,
    );
  }
  return {
    preDataKey: relocatable.schemaKey,
    postDataKey: relocatable.postDataKey,
    prepare: (text) => relocateSql(text, relocatable.placeholder, intoSchema),
  };
}

/**
 * What a request says on its own, before any backup is read or database reached: modes, their combinations,
 * the target schema's name.
 * @throws RestoreSelectionError
 */
export function checkRestoreRequest(request: RestoreRequest): void {
  if (!RESTORE_MODES.includes(request.mode))
    throw new RestoreSelectionError(`--mode ${request.mode}: must be one of ${RESTORE_MODES.join(', ')}`);
  if (!IF_EXISTS_CHOICES.includes(request.ifExists))
    throw new RestoreSelectionError(
      `--if-exists ${request.ifExists}: must be one of ${IF_EXISTS_CHOICES.join(', ')}`,
    );
  if (request.tables !== undefined && request.tables.length > 0 && request.mode !== 'data-only') {
    throw new RestoreSelectionError(
      `--table restores data only (--mode data-only): the schema files recreate every table of the backup; ` +
        `restore the schema first with --mode ${request.mode === 'full' ? 'schema-only' : request.mode}, then the tables with --mode data-only`,
    );
  }
  if (request.ifExists !== 'fail' && request.mode !== 'data-only') {
    throw new RestoreSelectionError(
      `--if-exists ${request.ifExists} applies to --mode data-only: a ${request.mode} restore creates its tables and refuses existing ones`,
    );
  }
  if (request.intoSchema !== undefined) {
    const problem = targetSchemaProblem(request.intoSchema);
    if (problem)
      throw new RestoreSelectionError(`--into-schema ${JSON.stringify(request.intoSchema)} ${problem}`);
  }
}

/** @throws RestoreSelectionError naming what cannot be restored as asked */
export function planRestore(manifest: BackupManifest, request: RestoreRequest): RestorePlan {
  checkRestoreRequest(request);
  const selected = selectTables(manifest, request.tables);
  const tables = selected.map(({ entry, source }) => {
    const schema = request.intoSchema ?? source.schema;
    return {
      entry,
      source,
      target: { schema, name: source.name, quotedName: quoteQualified(schema, source.name) },
    };
  });
  const seen = new Map<string, string>();
  for (const table of tables) {
    const other = seen.get(table.target.quotedName);
    if (other !== undefined)
      throw new RestoreSelectionError(
        `${other} and ${table.entry.table} would both be restored as ${table.target.quotedName}`,
      );
    seen.set(table.target.quotedName, table.entry.table);
  }
  return {
    mode: request.mode,
    ifExists: request.ifExists,
    intoSchema: request.intoSchema,
    tables,
    ddl: planDdl(manifest, request),
  };
}
