/**
 * A backup's dry run (`plan`, `run --dry-run`): the tables it would read, the statistics' estimates of their
 * rows and bytes, how each splits into parts, and what it would not hold. Read only; nothing is counted
 * (a count would read every table).
 */

import type pg from 'pg';
import type { RunPlan } from '../../../lib/contracts/payloads.ts';
import { describeNotIncluded } from './schema-definition.ts';
import { readSchemaDefinition } from './table-definition.ts';
import type { BackupTablePlan } from './table-plan.ts';

export async function backupPlan(
  db: pg.ClientBase,
  tables: readonly BackupTablePlan[],
  cutoff: string,
): Promise<RunPlan> {
  const definition = await readSchemaDefinition(
    db,
    tables.map((t) => t.oid),
  );
  const partsOf = (t: BackupTablePlan) =>
    t.method === 'whole' ? 1 : Math.max(1, Math.ceil(t.estimatedRows / t.strideRows));
  return {
    cutoff,
    eligibleRows: tables.reduce((sum, t) => sum + t.estimatedRows, 0),
    estimatedBytes: tables.reduce((sum, t) => sum + t.estimatedBytes, 0),
    oldest: null,
    foreignKeys: [],
    explain: [],
    fullTableScan: false,
    partitions: [],
    warnings: tables
      .filter((t) => t.method === 'whole')
      .map(
        (t) =>
          `${t.quotedName} has no primary key and this server has no TID range scan: one part, one transaction`,
      ),
    refusals: [],
    tables: tables.map((t) => ({
      table: t.quotedName,
      estimatedRows: t.estimatedRows,
      estimatedBytes: t.estimatedBytes,
      method: t.method,
      estimatedParts: partsOf(t),
    })),
    notIncluded: describeNotIncluded(definition.notIncluded),
  };
}
