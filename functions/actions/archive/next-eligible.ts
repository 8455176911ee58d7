/**
 * Where the next chunk starts: the time of the next eligible row after the cursor and, for a table
 * RANGE-partitioned on the time column, the leaf partition that holds it, so the chunk statement can work
 * inside that leaf by ctid instead of joining every partition on (tableoid, ctid).
 *
 * Only such a leaf is safe: its rows lie in one time interval no other leaf shares, so a chunk ordered by
 * time inside it cannot step the cursor over another leaf's rows. A DEFAULT partition (rows in every gap),
 * list/hash partitioning or a sub-partitioned leaf keep the parent-wide statement.
 */
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { readPartitioning } from '../../adapters/partitions.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { buildNextEligibleTimeStatement, type ChunkTarget } from '../../core/chunk-sql.ts';

export interface NextEligible {
  readonly time: string;
  /** The target narrowed to the leaf partition when that is safe, else the target itself. */
  readonly target: ChunkTarget;
  /** The relation the chunk reads (leaf or table) has a valid btree index led by the time column. */
  readonly timeIndexed: boolean;
}

export class NextEligibleLocator {
  /** Per table: RANGE-partitioned on exactly the time column (read once per step). */
  private readonly rangeOnTime = new Map<string, boolean>();
  /** Per leaf: whether the policy's filter plans with the leaf under the parent's bare name (once per step). */
  private readonly filterPlans = new Map<string, boolean>();
  /** Per relation read (table or leaf): whether an index is led by the time column (read once per step). */
  private readonly timeIndexed = new Map<string, boolean>();

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
    const found = await this.narrowed(tx, target, row.leaf_oid);
    return { time: row.next_time, target: found, timeIndexed: await this.isTimeIndexed(tx, found) };
  }

  private async narrowed(tx: Queryable, target: ChunkTarget, leafOid: string): Promise<ChunkTarget> {
    if (!target.partitioned || !(await this.isRangeOnTime(tx, target))) return target;
    const parent = quoteQualified(target.schema, target.table);
    const leaf = await tx.query<{ schema: string; table: string; is_default: string; direct: string }>(
      `SELECT n.nspname AS schema, c.relname AS table,
              (pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT') AS is_default,
              (i.inhparent = $2::regclass) AS direct
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_inherits i ON i.inhrelid = c.oid
        WHERE c.oid = $1::oid`,
      [leafOid, parent],
    );
    const found = leaf.rows[0];
    // The connection returns every value as text: booleans are 't' / 'f'.
    if (!found || found.is_default === 't' || found.direct !== 't') return target;
    const narrowed = { ...target, leaf: { schema: found.schema, table: found.table } };
    return (await this.filterPlansInLeaf(tx, narrowed)) ? narrowed : target;
  }

  /**
   * The leaf is read under the parent's bare name, which a filter that qualifies columns with the schema as well
   * (`public.orders.status`) cannot reach: such a filter stays with the parent-wide statement (Start planned it
   * there). Planned once per leaf and step, in a savepoint: a failed EXPLAIN must not abort the chunk.
   */
  private async filterPlansInLeaf(tx: Queryable, narrowed: ChunkTarget): Promise<boolean> {
    const { filter, leaf } = narrowed;
    if (filter === undefined || leaf === undefined) return true;
    const name = quoteQualified(leaf.schema, leaf.table);
    let known = this.filterPlans.get(name);
    if (known === undefined) {
      await tx.query('SAVEPOINT archive_leaf_filter');
      try {
        await tx.query(`EXPLAIN SELECT 1 FROM ${name} AS ${quoteIdent(narrowed.table)} WHERE (${filter})`);
        await tx.query('RELEASE SAVEPOINT archive_leaf_filter');
        known = true;
      } catch {
        await tx.query('ROLLBACK TO SAVEPOINT archive_leaf_filter; RELEASE SAVEPOINT archive_leaf_filter');
        known = false;
      }
      this.filterPlans.set(name, known);
    }
    return known;
  }

  /**
   * A valid, ready, whole-table btree index whose first column is the time column in an order that serves
   * `ORDER BY time`, on the relation the chunk reads (a partitioned parent's index is valid only once every
   * partition has it).
   */
  private async isTimeIndexed(tx: Queryable, target: ChunkTarget): Promise<boolean> {
    const relation = target.leaf
      ? quoteQualified(target.leaf.schema, target.leaf.table)
      : quoteQualified(target.schema, target.table);
    let known = this.timeIndexed.get(relation);
    if (known === undefined) {
      const { rows } = await tx.query<{ indexed: string }>(
        `SELECT EXISTS (
           SELECT 1 FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
             JOIN pg_catalog.pg_am am ON am.oid = c.relam
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = $1::regclass AND a.attname = $2
              AND i.indisvalid AND i.indisready AND i.indpred IS NULL AND am.amname = 'btree'
              -- ASC NULLS LAST or DESC NULLS FIRST: either serves ORDER BY time (NULLS LAST) without a sort.
              AND (i.indoption[0] & 3) IN (0, 3)) AS indexed`,
        [relation, target.timeColumn.name],
      );
      known = rows[0]?.indexed === 't' || (rows[0]?.indexed as unknown) === true;
      this.timeIndexed.set(relation, known);
    }
    return known;
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
