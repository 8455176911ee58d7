/**
 * The catalog facts and key boundaries a part plan needs (see part-plan.ts for the method and what was
 * measured). Run in the backup's snapshot, so the boundaries are of the rows the parts will read.
 */
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import {
  type PartPlanFacts,
  type PlannedPart,
  partStride,
  planBlockParts,
  planKeyParts,
  planMethod,
} from './part-plan.ts';

/** Reads the facts of `schema.table` (names as the catalog gives them). */
export async function readPartPlanFacts(
  client: Queryable,
  schema: string,
  table: string,
): Promise<PartPlanFacts> {
  // The key as JSON text: the project's connections return every value as text, arrays too.
  // A partitioned table's heap is its leaves' (pg_partition_tree lists no rows for a plain table): the block
  // plan runs over the largest leaf's block numbers, its size is all leaves'. pg_relation_size (not
  // relpages) counts blocks now, not at the last VACUUM.
  const { rows } = await client.query<{
    key_columns: string | null;
    blocks: string;
    table_bytes: string;
    estimated_rows: string;
    server_version: string;
  }>(
    `WITH target AS (
       SELECT c.oid, c.relkind, c.reltuples
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2),
     leaves AS (
       SELECT oid, reltuples FROM target WHERE relkind <> 'p'
       UNION ALL
       SELECT l.oid, l.reltuples FROM target, pg_catalog.pg_partition_tree(target.oid) t
         JOIN pg_catalog.pg_class l ON l.oid = t.relid
        WHERE target.relkind = 'p' AND l.relkind = 'r')
     SELECT (SELECT json_agg(a.attname ORDER BY k.ordinality)::text
               FROM target
               JOIN pg_catalog.pg_index i ON i.indrelid = target.oid AND i.indisprimary
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = target.oid AND a.attnum = k.attnum) AS key_columns,
            (SELECT coalesce(max(pg_catalog.pg_relation_size(oid)), 0)
                    / current_setting('block_size')::bigint FROM leaves)::text AS blocks,
            (SELECT coalesce(sum(pg_catalog.pg_table_size(oid)), 0) FROM leaves)::text AS table_bytes,
            (SELECT coalesce(sum(greatest(reltuples, 0)), 0) FROM leaves)::bigint::text AS estimated_rows,
            current_setting('server_version_num') AS server_version
       FROM target`,
    [schema, table],
  );
  const row = rows[0];
  if (!row) throw new Error(`table ${schema}.${table} not found`);
  return {
    keyColumns: row.key_columns === null ? [] : (JSON.parse(row.key_columns) as string[]),
    blocks: Number(row.blocks),
    tableBytes: Number(row.table_bytes),
    estimatedRows: Number(row.estimated_rows),
    serverVersion: Number(row.server_version),
  };
}

/**
 * The key of every `stride`-th row after the first, in key order: the lower bounds of parts 2, 3, …
 * (rows 1 + stride, 1 + 2 × stride, …; a stride of 1 makes every row a part). One pass over the primary
 * key's index; the values come back as the server's text. `only`: the table's own rows, not its
 * inheritance children's (which are backed up as tables of their own, or not at all).
 */
export async function readKeyBoundaries(
  client: Queryable,
  quotedName: string,
  keyColumns: readonly string[],
  stride: number,
  only = false,
): Promise<string[][]> {
  const columns = keyColumns.map(quoteIdent);
  const aliases = keyColumns.map((_, i) => `k${i}`);
  const { rows } = await client.query<Record<string, string>>({
    text: `SELECT ${aliases.map((alias) => `${alias}::text AS ${alias}`).join(', ')}
             FROM (SELECT ${columns.map((column, i) => `${column} AS ${aliases[i]}`).join(', ')},
                          row_number() OVER (ORDER BY ${columns.join(', ')}) AS n
                     FROM ${only ? 'ONLY ' : ''}${quotedName}) AS ordered
            WHERE (n - 1) % $1 = 0 AND n > 1
            ORDER BY n`,
    values: [stride],
  });
  return rows.map((row) => aliases.map((alias) => row[alias] as string));
}

/** The parts of `schema.table` of about `targetBytes` each (as COPY text), under the caller's snapshot. */
export async function planTableParts(
  client: Queryable,
  table: {
    readonly schema: string;
    readonly name: string;
    readonly quotedName: string;
    /** Read the table's own rows only (`FROM ONLY`): a plain table's, never a partitioned one's. */
    readonly only?: boolean;
  },
  targetBytes: number,
): Promise<PlannedPart[]> {
  const facts = await readPartPlanFacts(client, table.schema, table.name);
  const stride = partStride(facts, targetBytes);
  switch (planMethod(facts)) {
    case 'key':
      return planKeyParts(
        facts.keyColumns,
        await readKeyBoundaries(client, table.quotedName, facts.keyColumns, stride.rows, table.only),
      );
    case 'blocks':
      return planBlockParts(facts.blocks, stride.blocks);
    case 'whole':
      return [{ index: 1, range: { kind: 'whole' } }];
  }
}
