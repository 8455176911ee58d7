/**
 * What an anonymize dry run adds to the time-cutoff plan: per masked column the strategy and a preview on
 * synthetic values (mask-probes.ts previewMasks: never a row of the table), which masked columns are indexed
 * (an UPDATE of an indexed column is never HOT: every index of the table gets a new entry for each row), and
 * a rough upper bound of the WAL the run writes.
 */
import type { RunPlan } from '../../../lib/contracts/payloads.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import type { PreparedTarget } from '../../run/prepare-target.ts';
import type { HashKey } from './hash-key.ts';
import { previewMasks } from './mask-probes.ts';
import type { ResolvedMasks } from './masks.ts';

/** Per WAL record of an updated row, beyond the row itself (record and tuple headers). */
const ROW_RECORD_OVERHEAD = 50;
/** Per index entry of a non-HOT update (record header, index tuple of a typical key). */
const INDEX_ENTRY_BYTES = 64;

interface TableFacts {
  /** Masked columns some index reads (as a key, in an expression or a predicate). */
  readonly indexed: ReadonlySet<string>;
  readonly indexes: number;
  readonly bytesPerRow: number;
}

async function readTableFacts(
  db: Queryable,
  prepared: PreparedTarget,
  columns: readonly string[],
): Promise<TableFacts> {
  // pg_depend records every column an index reads, keys and expressions alike (partitions' indexes included
  // through their parent's).
  const { rows: indexed } = await db.query<{ attname: string }>(
    `SELECT DISTINCT a.attname
       FROM pg_index i
       JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                       AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid > 0
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = d.refobjsubid
      WHERE i.indrelid = $1::oid AND a.attname = ANY ($2::text[])`,
    [prepared.table.oid, columns],
  );
  const { rows } = await db.query<{ indexes: string; bytes_per_row: string | null }>(
    `SELECT (SELECT count(*) FROM pg_index WHERE indrelid = $1::oid)::text AS indexes,
            (CASE WHEN c.reltuples > 0 THEN c.relpages * 8192.0 / c.reltuples END)::float8::text AS bytes_per_row
       FROM pg_class c WHERE c.oid = $1::oid`,
    [prepared.table.oid],
  );
  return {
    indexed: new Set(indexed.map((r) => r.attname)),
    indexes: Number(rows[0]?.indexes ?? 0),
    bytesPerRow: Number(rows[0]?.bytes_per_row ?? 0) || 100,
  };
}

/** The plan with the anonymize parts; `keyMissing` adds the refusal a real run would stop with. */
export async function anonymizePlan(
  db: Queryable,
  base: RunPlan,
  prepared: PreparedTarget,
  masks: ResolvedMasks,
  key: HashKey,
  keyMissing: string | undefined,
): Promise<RunPlan> {
  const names = masks.columns.map((c) => c.column.name);
  const facts = await readTableFacts(db, prepared, names);
  const previews = await previewMasks(
    db,
    masks.columns.map((c) => c.column),
    Object.fromEntries(masks.columns.map((c) => [c.column.name, c.strategy])),
    key,
  );
  const byColumn = new Map(previews.map((p) => [p.column, p]));
  const hot = facts.indexed.size === 0;
  const rows = base.eligibleRows;
  const pages = Math.ceil((rows * facts.bytesPerRow) / 8192);
  // Upper bound: one full-page image per heap page touched (the first change after a checkpoint), each row's
  // new version, and without HOT one new entry in every index of the table.
  const estimatedWalBytes = Math.round(
    pages * 8192 +
      rows * (facts.bytesPerRow + ROW_RECORD_OVERHEAD) +
      (hot ? 0 : rows * facts.indexes * INDEX_ENTRY_BYTES),
  );
  const warnings = [...base.warnings];
  for (const name of names.filter((n) => facts.indexed.has(n)))
    warnings.push(
      `masked column ${JSON.stringify(name)} is indexed: its updates cannot be HOT, so each row also writes a new ` +
        `entry in each of the table's ${facts.indexes} indexes (more WAL, index bloat: REINDEX or VACUUM after the run)`,
    );
  return {
    ...base,
    masks: masks.columns.map(({ column, strategy }) => ({
      column: column.name,
      type: column.typeName,
      strategy: strategy.strategy,
      indexed: facts.indexed.has(column.name),
      examples: byColumn.get(column.name)?.examples ?? [],
    })),
    estimatedWalBytes,
    warnings,
    refusals: keyMissing ? [...base.refusals, { error: 'HashKeyError', message: keyMissing }] : base.refusals,
  };
}
