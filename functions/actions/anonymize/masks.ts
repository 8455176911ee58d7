/**
 * A policy's masks resolved against the table: each configured column found in the catalog (quoted names
 * exact, unquoted folded as elsewhere), its type read (masked-columns.ts), the marker column checked; then
 * the two SQL pieces a run needs — the pending predicate (rows with a column not yet masked, or the marker
 * unset: parameter-free, no key) and the assignments of a chunk's UPDATE (the key's pads as bind parameters).
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { type ResolvedTable, resolveColumn } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError } from '../../core/errors.ts';
import { columnConstraintProblems } from './column-constraints.ts';
import type { AnonymizePolicy, MaskStrategy } from './contract.ts';
import type { HashKey } from './hash-key.ts';
import { checkMasks } from './mask-probes.ts';
import { type MaskedColumn, readMaskedColumns } from './masked-columns.ts';
import { ParamList } from './param-list.ts';
import { compileMask } from './strategies.ts';
import { type ColumnAssignment, columnValue, type TableName } from './update-statement.ts';

export type MarkerKind = 'timestamptz' | 'timestamp' | 'bool';

export interface ResolvedMasks {
  /** The masked columns in the policy's order, with their strategies (by catalog name). */
  readonly columns: ReadonlyArray<{ readonly column: MaskedColumn; readonly strategy: MaskStrategy }>;
  readonly marker?: { readonly name: string; readonly kind: MarkerKind } | undefined;
}

/** Whether any column's strategy needs the hash key (hash, email). */
export function needsHashKey(masks: ResolvedMasks): boolean {
  return masks.columns.some((c) => c.strategy.strategy === 'hash' || c.strategy.strategy === 'email');
}

/**
 * Resolves the policy's columns and marker on `table`.
 * @throws CatalogError for an unknown column, a column named twice, a key or time column, a bad marker
 */
export async function resolveMasks(
  db: Queryable,
  table: ResolvedTable,
  policy: Pick<AnonymizePolicy, 'name' | 'anonymize'> & { readonly timeColumn?: string },
): Promise<ResolvedMasks> {
  const qualified = quoteQualified(table.schema, table.table);
  const fail = (message: string) =>
    new CatalogError(`${qualified}: ${message}`, {
      policy: policy.name,
      table: `${table.schema}.${table.table}`,
    });
  // Subject erasure masks by key, not by time: it has no time column.
  const timeColumn =
    policy.timeColumn === undefined ? undefined : resolveColumn(table, policy.timeColumn, 'timeColumn').name;
  const keyColumns = new Set(table.primaryKey.map((k) => k.name));
  const entries = Object.entries(policy.anonymize.columns).map(([name, strategy]) => ({
    name: resolveColumn(table, name, 'anonymize.columns').name,
    strategy,
  }));
  const seen = new Set<string>();
  for (const { name } of entries) {
    if (seen.has(name)) throw fail(`column ${JSON.stringify(name)} is named twice in anonymize.columns`);
    seen.add(name);
    if (name === timeColumn)
      throw fail(
        `column ${JSON.stringify(name)} is the time column, which decides which rows are due: it cannot be masked`,
      );
    if (keyColumns.has(name))
      throw fail(
        `column ${JSON.stringify(name)} is part of the primary key, which chunks walk by: it cannot be masked`,
      );
  }
  let marker: ResolvedMasks['marker'];
  if (policy.anonymize.markerColumn !== undefined) {
    const column = resolveColumn(table, policy.anonymize.markerColumn, 'anonymize.markerColumn');
    const kind = column.isArray ? undefined : MARKER_KINDS[column.baseType];
    if (!kind)
      throw fail(
        `marker column ${JSON.stringify(column.name)} is ${column.typeName}; it must be timestamptz, timestamp or boolean`,
      );
    if (column.notNull)
      throw fail(`marker column ${JSON.stringify(column.name)} is NOT NULL; it must start NULL`);
    if (seen.has(column.name)) throw fail(`marker column ${JSON.stringify(column.name)} cannot be masked`);
    marker = { name: column.name, kind };
  }
  const read = await readMaskedColumns(
    db,
    Number(table.oid),
    entries.map((e) => e.name),
  );
  const byName = new Map(read.map((c) => [c.name, c]));
  return {
    columns: entries.map((e) => ({ column: byName.get(e.name) as MaskedColumn, strategy: e.strategy })),
    marker,
  };
}

const MARKER_KINDS: Readonly<Record<string, MarkerKind>> = {
  timestamptz: 'timestamptz',
  timestamp: 'timestamp',
  bool: 'bool',
};

/**
 * Rows still to anonymize: the marker unset, or else some masked column not yet in its masked form. The
 * strategies' `done` tests read no key; compiling them needs one only for the `set` side, which is dropped
 * here, so a throwaway key stands in.
 */
export function pendingPredicate(target: TableName, masks: ResolvedMasks, placeholderKey: HashKey): string {
  if (masks.marker)
    return `${columnValue(target, masks.marker.name)} ${masks.marker.kind === 'bool' ? 'IS NOT TRUE' : 'IS NULL'}`;
  const done = masks.columns.map(({ column, strategy }) => {
    const compiled = compileMask(
      column,
      strategy,
      columnValue(target, column.name),
      new ParamList(1),
      placeholderKey,
    );
    if (compiled.done === undefined)
      // The contract refuses noise without a marker; reaching here means a strategy lost its done test.
      throw new CatalogError(
        `${column.name}: ${strategy.strategy} has no done test; set anonymize.markerColumn`,
      );
    return `(${compiled.done})`;
  });
  return `NOT (${done.join(' AND ')})`;
}

/** The UPDATE's assignments: every masked column, and the marker. */
export function maskAssignments(
  target: TableName,
  masks: ResolvedMasks,
  params: ParamList,
  key: HashKey | undefined,
): ColumnAssignment[] {
  const assignments: ColumnAssignment[] = masks.columns.map(({ column, strategy }) => ({
    column: column.name,
    set: compileMask(column, strategy, columnValue(target, column.name), params, key).set,
  }));
  if (masks.marker) {
    const set = { timestamptz: 'now()', timestamp: "(now() AT TIME ZONE 'UTC')", bool: 'true' }[
      masks.marker.kind
    ];
    assignments.push({ column: masks.marker.name, set });
  }
  return assignments;
}

/**
 * Every reason the masks cannot run on this table, before anything changes: a strategy its column's type cannot
 * take or that fails on a synthetic value (checkMasks), and one that would break a unique index or a foreign
 * key (columnConstraintProblems).
 */
export async function maskProblems(
  db: Queryable,
  tableOid: string,
  masks: ResolvedMasks,
  key: HashKey,
): Promise<string[]> {
  const columns = masks.columns.map((c) => c.column);
  const strategies = Object.fromEntries(masks.columns.map((c) => [c.column.name, c.strategy]));
  return [
    ...(await checkMasks(db, columns, strategies, key)),
    ...(await columnConstraintProblems(db, tableOid, masks.columns)),
  ];
}
