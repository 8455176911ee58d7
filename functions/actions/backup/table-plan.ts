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
import { type PartPlanFacts, partStride, planMethod } from './part-plan.ts';
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
  // Row level security that applies to this role would hide rows: the parts' reads refuse it (row_security
  // off, as pg_dump), and Start says so first. The owner is exempt unless FORCE; superusers and BYPASSRLS
  // roles always are.
  const { rows: filtered } = await db.query<{ oid: string; role: string }>(
    `SELECT c.oid::text AS oid, current_user AS role FROM pg_catalog.pg_class c
      WHERE c.oid = ANY ($1::oid[]) AND c.relrowsecurity
        AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user)
        AND (c.relforcerowsecurity OR NOT pg_catalog.pg_has_role(c.relowner, 'USAGE'))`,
    [tables.map((t) => t.oid)],
  );
  const nameOf = (oid: string) => {
    const table = tables.find((t) => t.oid === oid);
    return table ? quoteQualified(table.schema, table.table) : oid;
  };
  const missing = [
    ...unreadable.map((u) => ({
      privilege: 'SELECT',
      object: nameOf(u.oid),
      reason: 'a backup reads every row',
    })),
    ...filtered.map((f) => ({
      privilege: 'BYPASSRLS',
      object: nameOf(f.oid),
      reason:
        'its row level security would hide rows from the backup: back up as its owner (without FORCE) or a BYPASSRLS role',
    })),
  ];
  if (missing.length > 0) {
    const role = unreadable[0]?.role ?? filtered[0]?.role ?? 'current_user';
    throw new InsufficientPrivilegeError(role, missing);
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
    const stride = partStride(await withRowEstimate(db, quotedName, table.only, facts), partBytes);
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

/**
 * A table never analyzed (no reltuples) but holding pages: its rows counted by their text size in a sample
 * of the first rows, so that a part of wide rows is not sized by a guess (256 bytes a row would make a part of
 * 20 kB rows 80 times too big).
 */
async function withRowEstimate(
  db: Queryable,
  quotedName: string,
  only: boolean,
  facts: PartPlanFacts,
): Promise<PartPlanFacts> {
  if (facts.estimatedRows > 0 || facts.tableBytes <= 0) return facts;
  const { rows } = await db.query<{ avg: string | null }>(
    `SELECT avg(octet_length(pg_lifecycle_sample::text))::float8::text AS avg
       FROM (SELECT * FROM ${only ? 'ONLY ' : ''}${quotedName} LIMIT 1000) AS pg_lifecycle_sample`,
  );
  const rowBytes = Number(rows[0]?.avg ?? 0);
  if (!(rowBytes > 0)) return facts;
  return { ...facts, estimatedRows: Math.max(1, Math.round(facts.tableBytes / rowBytes)) };
}
