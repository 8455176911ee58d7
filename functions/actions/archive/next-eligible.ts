/**
 * Where the next chunk starts: the time of the next eligible row after the cursor and, for a table
 * RANGE-partitioned on the time column, the leaf partition that holds it, so the chunk statement can work
 * inside that leaf by ctid instead of joining every partition on (tableoid, ctid).
 *
 * Only such a leaf is safe: its rows lie in one time interval no other leaf shares, so a chunk ordered by
 * time inside it cannot step the cursor over another leaf's rows. A DEFAULT partition (rows in every gap),
 * list/hash partitioning or a sub-partitioned leaf keep the parent-wide statement.
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { readPartitioning } from '../../adapters/partitions.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { buildNextEligibleTimeStatement, type ChunkTarget } from '../../core/chunk-sql.ts';

export interface NextEligible {
  readonly time: string;
  /** The target narrowed to the leaf partition when that is safe, else the target itself. */
  readonly target: ChunkTarget;
}

export class NextEligibleLocator {
  /** Per table: RANGE-partitioned on exactly the time column (read once per step). */
  private readonly rangeOnTime = new Map<string, boolean>();

  /** Undefined when no eligible row is left after the cursor. Params as for the chunk statement. */
  async find(
    tx: Queryable,
    target: ChunkTarget,
    params: ReadonlyArray<string | number | null>,
    withCursor: boolean,
  ): Promise<NextEligible | undefined> {
    const next = await tx.query<{ next_time: string; leaf_oid: string }>(
      buildNextEligibleTimeStatement(target, withCursor),
      [...params],
    );
    const row = next.rows[0];
    if (!row) return undefined;
    if (!target.partitioned || !(await this.isRangeOnTime(tx, target)))
      return { time: row.next_time, target };
    const parent = quoteQualified(target.schema, target.table);
    const leaf = await tx.query<{ schema: string; table: string; is_default: string; direct: string }>(
      `SELECT n.nspname AS schema, c.relname AS table,
              (pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT') AS is_default,
              (i.inhparent = $2::regclass) AS direct
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_inherits i ON i.inhrelid = c.oid
        WHERE c.oid = $1::oid`,
      [row.leaf_oid, parent],
    );
    const found = leaf.rows[0];
    // The connection returns every value as text: booleans are 't' / 'f'.
    if (!found || found.is_default === 't' || found.direct !== 't') return { time: row.next_time, target };
    return { time: row.next_time, target: { ...target, leaf: { schema: found.schema, table: found.table } } };
  }

  private async isRangeOnTime(tx: Queryable, target: ChunkTarget): Promise<boolean> {
    const parent = quoteQualified(target.schema, target.table);
    let known = this.rangeOnTime.get(parent);
    if (known === undefined) {
      const { rows } = await tx.query<{ oid: string }>('SELECT $1::regclass::oid::text AS oid', [parent]);
      const partitioning = rows[0] ? await readPartitioning(tx, rows[0].oid) : undefined;
      known =
        partitioning?.strategy === 'r' &&
        partitioning.keyColumnCount === 1 &&
        partitioning.keyColumn === target.timeColumn.name;
      this.rangeOnTime.set(parent, known);
    }
    return known;
  }
}
