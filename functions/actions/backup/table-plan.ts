/**
 * What a backup run fixes at Start (`runs.detail`, read back by every Chunk step and Finish): its id, the
 * tables in the order their parts are numbered, each table's part columns and how it splits (primary-key
 * ranges of `strideRows` rows, heap block ranges of `strideBlocks` blocks, or one part). Fixed once, so a
 * table created or a statistic refreshed mid-run changes no part boundary; a table dropped or altered
 * mid-run fails the run (`checkTablesUnchanged`) instead of writing parts of another shape.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError, InsufficientPrivilegeError, InvalidPayloadError } from '../../core/errors.ts';
import { partStride, planMethod } from './part-plan.ts';
import { readPartPlanFacts } from './part-plan-queries.ts';
import type { SelectedTable } from './table-selection.ts';

export const BackupTablePlanSchema = z
  .object({
    oid: z.string().regex(/^\d+$/),
    schema: z.string(),
    table: z.string(),
    /** `"schema"."table"`. */
    quotedName: z.string(),
    only: z.boolean(),
    /** Stored, non-generated columns in attnum order: what every part carries. */
    columns: z.array(z.string()).min(1),
    method: z.enum(['key', 'blocks', 'whole']),
    keyColumns: z.array(z.string()),
    strideRows: z.int().min(1),
    strideBlocks: z.int().min(1),
    /** Statistics at Start, for the plan and the progress: not counts. */
    estimatedRows: z.int().min(0),
    estimatedBytes: z.int().min(0),
  })
  .strict();

export const BackupRunDetailSchema = z
  .object({
    backupId: z.string(),
    startedAt: z.string(),
    tables: z.array(BackupTablePlanSchema).min(1),
  })
  .passthrough();

export type BackupTablePlan = z.output<typeof BackupTablePlanSchema>;
export type BackupRunDetail = z.output<typeof BackupRunDetailSchema>;

/** A run's detail as Start wrote it; a run row without one was not started by a backup. */
export function readBackupDetail(runId: string, detail: unknown): BackupRunDetail {
  const parsed = BackupRunDetailSchema.safeParse(detail);
  if (!parsed.success)
    throw new InvalidPayloadError(`run ${runId} has no backup detail: it was not started as a backup`);
  return parsed.data;
}

/**
 * `20261202T010000Z-1a2b3c4d`: sortable by time (so `latest` is the greatest), unique by its random tail,
 * and a valid S3 key segment.
 */
export function newBackupId(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

/** The columns a part carries: every stored column, not generated ones (the restore computes those). */
async function readPartColumns(db: Queryable, oid: string): Promise<string[]> {
  const { rows } = await db.query<{ attname: string }>(
    `SELECT attname FROM pg_catalog.pg_attribute
      WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
      ORDER BY attnum`,
    [oid],
  );
  return rows.map((r) => r.attname);
}

/**
 * Each selected table's plan. @throws InsufficientPrivilegeError when the role cannot read a table (every
 * one named), CatalogError for a table without a stored column (nothing to COPY, nothing to check).
 */
export async function planBackupTables(
  db: Queryable,
  tables: readonly SelectedTable[],
  partBytes: number,
): Promise<BackupTablePlan[]> {
  const { rows: unreadable } = await db.query<{ oid: string; role: string }>(
    `SELECT t.oid::text AS oid, current_user AS role FROM unnest($1::oid[]) AS t(oid)
      WHERE NOT has_table_privilege(t.oid, 'SELECT')`,
    [tables.map((t) => t.oid)],
  );
  if (unreadable.length > 0) {
    throw new InsufficientPrivilegeError(
      unreadable[0]?.role ?? 'current_user',
      unreadable.map((u) => {
        const table = tables.find((t) => t.oid === u.oid);
        return {
          privilege: 'SELECT',
          object: table ? quoteQualified(table.schema, table.table) : u.oid,
          reason: 'a backup reads every row',
        };
      }),
    );
  }
  const plans: BackupTablePlan[] = [];
  const empty: string[] = [];
  for (const table of tables) {
    const quotedName = quoteQualified(table.schema, table.table);
    const columns = await readPartColumns(db, table.oid);
    if (columns.length === 0) {
      empty.push(quotedName);
      continue;
    }
    const facts = await readPartPlanFacts(db, table.schema, table.table);
    const stride = partStride(facts, partBytes);
    plans.push({
      oid: table.oid,
      schema: table.schema,
      table: table.table,
      quotedName,
      only: table.only,
      columns,
      method: planMethod(facts),
      keyColumns: [...facts.keyColumns],
      strideRows: stride.rows,
      strideBlocks: stride.blocks,
      estimatedRows: Math.max(0, Math.round(facts.estimatedRows)),
      estimatedBytes: Math.max(0, Math.round(facts.tableBytes)),
    });
  }
  if (empty.length > 0)
    throw new CatalogError(
      `backup tables without a stored column cannot be backed up (exclude them): ${empty.join(', ')}`,
    );
  return plans;
}

/**
 * The tables are still those the run planned: same oid under the same name, same part columns, same key.
 * Run under the step's snapshot (after its locks), so what the parts read is what the plan describes.
 * @throws CatalogError naming every table that changed
 */
export async function checkTablesUnchanged(db: Queryable, plans: readonly BackupTablePlan[]): Promise<void> {
  const changed: string[] = [];
  for (const plan of plans) {
    const { rows } = await db.query<{ oid: string }>(
      `SELECT c.oid::text AS oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2`,
      [plan.schema, plan.table],
    );
    if (rows[0]?.oid !== plan.oid) {
      changed.push(`${plan.quotedName} was dropped or replaced`);
      continue;
    }
    const columns = await readPartColumns(db, plan.oid);
    if (columns.join('\u0000') !== plan.columns.join('\u0000'))
      changed.push(`${plan.quotedName} columns changed`);
    else if (plan.method === 'key') {
      const facts = await readPartPlanFacts(db, plan.schema, plan.table);
      if (facts.keyColumns.join('\u0000') !== plan.keyColumns.join('\u0000'))
        changed.push(`${plan.quotedName} primary key changed`);
    }
  }
  if (changed.length > 0)
    throw new CatalogError(`tables changed during the backup: ${changed.join('; ')}; run the backup again`);
}
