/**
 * The target database as a restore finds it, read before anything is downloaded or written: which of the
 * planned tables exist, whether they hold rows, which columns they have, and the order data-only loads them in
 * (referenced tables first, so that foreign keys in force accept each table's rows). The refusals a mode
 * makes of what it finds are here too.
 */
import { quoteIdent } from '../../../../lib/contracts/identifiers.ts';
import type { Queryable } from '../../../adapters/transactions.ts';
import { RestoreTargetError } from './errors.ts';
import type { PlannedTable, RestorePlan } from './restore-plan.ts';

export interface TargetTable {
  readonly oid: string;
  /** A partitioned table holds no rows of its own: read it without ONLY (its partitions' rows). */
  readonly partitioned: boolean;
  /** Stored columns (not generated ones), by name. */
  readonly columns: ReadonlySet<string>;
  readonly generated: ReadonlySet<string>;
}

/** The table named `quotedName`, or undefined. */
export async function readTargetTable(db: Queryable, quotedName: string): Promise<TargetTable | undefined> {
  const { rows } = await db.query<{ oid: string | null; kind: string | null; columns: string | null }>(
    `SELECT c.oid::text AS oid, c.relkind::text AS kind,
            (SELECT json_agg(json_build_array(a.attname, a.attgenerated <> ''))::text
               FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
       FROM pg_class c WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`,
    [quotedName],
  );
  const row = rows[0];
  if (!row?.oid) return undefined;
  const columns = JSON.parse(row.columns ?? '[]') as Array<[string, boolean]>;
  return {
    oid: row.oid,
    partitioned: row.kind === 'p',
    columns: new Set(columns.filter(([, generated]) => !generated).map(([name]) => name)),
    generated: new Set(columns.filter(([, generated]) => generated).map(([name]) => name)),
  };
}

/** `ONLY "s"."t"` for a plain table (its inheritance children are tables of their own), the name for a partitioned one. */
export function ownRows(quotedName: string, table: Pick<TargetTable, 'partitioned'>): string {
  return table.partitioned ? quotedName : `ONLY ${quotedName}`;
}

export async function hasRows(db: Queryable, quotedName: string, table: TargetTable): Promise<boolean> {
  const { rows } = await db.query<{ found: string | boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${ownRows(quotedName, table)})::text AS found`,
  );
  return rows[0]?.found === 'true' || rows[0]?.found === true;
}

/** What data-only found for each planned table (in plan order). */
export interface DataTarget {
  readonly planned: PlannedTable;
  readonly table: TargetTable;
  readonly nonEmpty: boolean;
}

/**
 * Full and schema-only create the tables: none may exist yet.
 * @throws RestoreTargetError naming every table that exists
 */
export async function checkTablesAbsent(db: Queryable, plan: RestorePlan): Promise<void> {
  const existing: string[] = [];
  for (const planned of plan.tables) {
    if (await readTargetTable(db, planned.target.quotedName)) existing.push(planned.target.quotedName);
  }
  if (existing.length > 0) {
    throw new RestoreTargetError(
      `a ${plan.mode} restore creates its tables, and ${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}: ` +
        `drop ${existing.length === 1 ? 'it' : 'them'}, restore --into-schema another schema, or load into ${existing.length === 1 ? 'it' : 'them'} with --mode data-only`,
    );
  }
}

/**
 * Data-only loads into tables that exist, with every column the parts carry (stored, not generated), and
 * holding no rows unless `ifExists` says what to do with them.
 * @throws RestoreTargetError naming every table at fault
 */
export async function checkDataTargets(db: Queryable, plan: RestorePlan): Promise<DataTarget[]> {
  const problems: string[] = [];
  const targets: DataTarget[] = [];
  for (const planned of plan.tables) {
    const name = planned.target.quotedName;
    const table = await readTargetTable(db, name);
    if (!table) {
      problems.push(`${name} does not exist (restore the schema first: --mode schema-only)`);
      continue;
    }
    const missing = planned.entry.columns.filter((column) => !table.columns.has(column));
    if (missing.length > 0) {
      const generated = missing.filter((column) => table.generated.has(column));
      problems.push(
        `${name} lacks column${missing.length === 1 ? '' : 's'} ${missing.map(quoteIdent).join(', ')}` +
          (generated.length > 0 ? ` (${generated.map(quoteIdent).join(', ')} generated there)` : ''),
      );
      continue;
    }
    const nonEmpty = await hasRows(db, name, table);
    if (nonEmpty && plan.ifExists === 'fail') {
      problems.push(`${name} is not empty (--if-exists truncate or append)`);
      continue;
    }
    targets.push({ planned, table, nonEmpty });
  }
  if (plan.ifExists === 'truncate') problems.push(...(await truncateBlockers(db, targets)));
  if (problems.length > 0) throw new RestoreTargetError(`cannot load the data: ${problems.join('; ')}`);
  return loadOrder(db, targets);
}

/**
 * Foreign keys of tables the restore does not empty that reference one it would: TRUNCATE refuses those (and
 * CASCADE would empty the referencing table), so say it before anything is downloaded.
 */
async function truncateBlockers(db: Queryable, targets: readonly DataTarget[]): Promise<string[]> {
  const emptied = targets.filter((t) => t.nonEmpty).map((t) => t.table.oid);
  if (emptied.length === 0) return [];
  const { rows } = await db.query<{ constraint: string; child: string; parent: string }>(
    `SELECT conname AS constraint, conrelid::regclass::text AS child, confrelid::regclass::text AS parent
       FROM pg_constraint
      WHERE contype = 'f' AND conparentid = 0 AND confrelid = ANY($1::oid[]) AND NOT conrelid = ANY($1::oid[])
      ORDER BY 2, 1`,
    [emptied],
  );
  return rows.map(
    (r) =>
      `--if-exists truncate would empty ${r.parent}, which ${r.child} references (${quoteIdent(r.constraint)}): ` +
      `restore ${r.child} too, or empty it yourself`,
  );
}

/**
 * Referenced tables before the tables referencing them (foreign keys among the targets, from the catalog);
 * otherwise plan order. A cycle keeps plan order for its members: their foreign keys must be deferrable, or
 * dropped for the load.
 */
async function loadOrder(db: Queryable, targets: DataTarget[]): Promise<DataTarget[]> {
  if (targets.length < 2) return targets;
  const { rows } = await db.query<{ child: string; parent: string }>(
    `SELECT DISTINCT conrelid::text AS child, confrelid::text AS parent FROM pg_constraint
      WHERE contype = 'f' AND conrelid = ANY($1::oid[]) AND confrelid = ANY($1::oid[]) AND conrelid <> confrelid`,
    [targets.map((t) => t.table.oid)],
  );
  const parents = new Map<string, Set<string>>();
  for (const row of rows) {
    const set = parents.get(row.child) ?? new Set<string>();
    set.add(row.parent);
    parents.set(row.child, set);
  }
  const ordered: DataTarget[] = [];
  const placed = new Set<string>();
  let remaining = [...targets];
  while (remaining.length > 0) {
    const ready = remaining.filter((t) => [...(parents.get(t.table.oid) ?? [])].every((p) => placed.has(p)));
    // A cycle: take the first left in plan order and go on.
    const next = ready.length > 0 ? ready : remaining.slice(0, 1);
    for (const target of next) {
      ordered.push(target);
      placed.add(target.table.oid);
    }
    remaining = remaining.filter((t) => !placed.has(t.table.oid));
  }
  return ordered;
}
