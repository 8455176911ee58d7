/**
 * The next parts of a backup after its cursor: walked, not planned up front, so part boundaries are fixed
 * by the cursor the ledger holds and a step that resumes (a retry, the next invocation) continues exactly
 * where the last committed batch ended. Read under the step's snapshot: the boundaries are of the rows the
 * parts read.
 *
 * - key: the next part starts at `from` (a key that was the first of its part, inclusive); its end is the
 *   key `strideRows` rows further in key order — one Index Only Scan of the rows the parts cover;
 * - blocks: `strideBlocks` heap blocks from `from`; the part that reaches the table's current end is open
 *   above (pages added since are in it);
 * - whole: one part (no key, PostgreSQL before 14: no TID range scan).
 */
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import type { TablePartsCursor } from '../../../lib/contracts/work-cursor.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError } from '../../core/errors.ts';
import { type PartRange, rangePredicate } from './part-plan.ts';
import { readPartPlanFacts } from './part-plan-queries.ts';
import type { BackupTablePlan } from './table-plan.ts';

export interface PartJob {
  /** Index of the table in the run's plan. */
  readonly tableIndex: number;
  readonly table: BackupTablePlan;
  /** 1-based part number within the table. */
  readonly part: number;
  readonly range: PartRange;
}

export interface PartBatch {
  readonly jobs: readonly PartJob[];
  /** Where the run stands once these parts are listed; undefined: they are the last. */
  readonly next: TablePartsCursor | undefined;
}

/** Up to `count` parts after `cursor` (none: every table is done). */
export async function nextPartBatch(
  db: Queryable,
  tables: readonly BackupTablePlan[],
  cursor: TablePartsCursor | null,
  count: number,
): Promise<PartBatch> {
  const jobs: PartJob[] = [];
  let tableIndex = cursor?.table ?? 0;
  let part = cursor?.part ?? 1;
  let from = cursor?.from;
  while (jobs.length < count && tableIndex < tables.length) {
    const table = tables[tableIndex] as BackupTablePlan;
    const room = count - jobs.length;
    let tableDone = false;
    if (table.method === 'whole') {
      jobs.push({ tableIndex, table, part, range: { kind: 'whole' } });
      tableDone = true;
    } else if (table.method === 'key') {
      const lower = from && 'key' in from ? from.key : undefined;
      const ends = await readNextKeyBoundaries(db, table, lower, room);
      let start = lower;
      for (const end of ends) {
        jobs.push({ tableIndex, table, part: part++, range: keyRange(table, start, end) });
        start = end;
      }
      if (ends.length < room) {
        jobs.push({ tableIndex, table, part, range: keyRange(table, start, undefined) });
        tableDone = true;
      } else {
        from = start ? { key: [...start] } : undefined;
      }
    } else {
      const blocks = (await readPartPlanFacts(db, table.schema, table.table)).blocks;
      const heap = await heapIdentity(db, table);
      const walked = from && 'block' in from ? from : undefined;
      // Block numbers only mean the same rows in the same heap files: VACUUM FULL, CLUSTER or pg_repack between
      // steps (or a partition attached or detached) would make the walk skip or repeat rows nobody changed.
      if (walked?.heap !== undefined && walked.heap !== heap)
        throw new CatalogError(
          `${table.quotedName} was rewritten during the backup (VACUUM FULL, CLUSTER, pg_repack, or a partition attached or detached): its heap block ranges no longer hold the same rows; run the backup again`,
        );
      let start = walked?.block ?? 0;
      for (let i = 0; i < room; i++) {
        const end = start + table.strideBlocks;
        if (end >= blocks) {
          jobs.push({ tableIndex, table, part, range: blockRange(start, undefined) });
          tableDone = true;
          break;
        }
        jobs.push({ tableIndex, table, part: part++, range: blockRange(start, end) });
        start = end;
      }
      if (!tableDone) from = { block: start, heap };
    }
    if (tableDone) {
      tableIndex++;
      part = 1;
      from = undefined;
    }
  }
  const next: TablePartsCursor | undefined =
    tableIndex < tables.length
      ? { kind: 'table-parts', table: tableIndex, part, ...(from ? { from } : {}) }
      : undefined;
  return { jobs, next };
}

function keyRange(
  table: BackupTablePlan,
  from: readonly string[] | undefined,
  to: readonly string[] | undefined,
): PartRange {
  return { kind: 'key', columns: table.keyColumns, ...(from ? { from } : {}), ...(to ? { to } : {}) };
}

function blockRange(from: number, to: number | undefined): PartRange {
  return {
    kind: 'blocks',
    ...(from > 0 ? { fromBlock: from } : {}),
    ...(to === undefined ? {} : { toBlock: to }),
  };
}

/**
 * The first keys of the next `count` parts after the one starting at `from` (the keys `strideRows`,
 * 2 × `strideRows`, … rows on, in key order); fewer when the table ends first.
 */
async function readNextKeyBoundaries(
  db: Queryable,
  table: BackupTablePlan,
  from: readonly string[] | undefined,
  count: number,
): Promise<string[][]> {
  const columns = table.keyColumns.map(quoteIdent);
  const aliases = table.keyColumns.map((_, i) => `k${i}`);
  const lower = from ? rangePredicate({ kind: 'key', columns: table.keyColumns, from }) : undefined;
  const params = [...(lower?.params ?? [])];
  const limit = `$${params.length + 1}`;
  const stride = `$${params.length + 2}`;
  params.push(String(table.strideRows * count + 1), String(table.strideRows));
  const { rows } = await db.query<Record<string, string>>({
    text: `SELECT ${aliases.map((alias) => `${alias}::text AS ${alias}`).join(', ')}
             FROM (SELECT ${aliases.join(', ')}, row_number() OVER (ORDER BY ${aliases.join(', ')}) AS n
                     FROM (SELECT ${columns.map((column, i) => `${column} AS ${aliases[i]}`).join(', ')}
                             FROM ${table.only ? 'ONLY ' : ''}${table.quotedName}
                            ${lower ? `WHERE ${lower.sql}` : ''}
                            ORDER BY ${columns.join(', ')}
                            LIMIT ${limit}::bigint) AS page) AS ordered
            WHERE n > 1 AND (n - 1) % ${stride}::bigint = 0
            ORDER BY n`,
    values: params,
  });
  return rows.map((row) => aliases.map((alias) => row[alias] as string));
}

/** The heap files of the table (its leaves' for a partitioned one), as one text: changes when any is rewritten. */
async function heapIdentity(db: Queryable, table: BackupTablePlan): Promise<string> {
  const { rows } = await db.query<{ heap: string | null }>(
    `SELECT md5(string_agg(c.oid::text || ':' || pg_catalog.pg_relation_filenode(c.oid)::text, ',' ORDER BY c.oid)) AS heap
       FROM pg_catalog.pg_class c
      WHERE c.relkind = 'r'
        AND (c.oid = $1::oid
             OR c.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree($1::oid) WHERE isleaf))`,
    [table.oid],
  );
  return rows[0]?.heap ?? '';
}
