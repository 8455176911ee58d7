/**
 * Read-only queries behind a plan (dry run) and the start step's whole-table-scan check. Each function
 * that reads table rows runs in its own `BEGIN READ ONLY` transaction with a statement_timeout, so a plan
 * cannot change anything even by mistake; every lock wait is bounded by the connection's lock_timeout (the
 * policy's chunking.lockTimeoutMs).
 */
import { quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';
import { isTimeout } from '../commons/lock-wait.ts';
import { buildCountEligibleStatement, type ChunkTarget, eligibleWhere } from '../core/chunk-sql.ts';
import type { ForeignKeyReference } from '../core/foreign-keys.ts';
import { type Queryable, readOnly } from './transactions.ts';

/**
 * Like {@link readOnly}, but a statement or lock timeout resolves `undefined` instead of failing the plan: a
 * count another session's lock holds up is reported as unknown, like one too slow to finish.
 */
async function readOnlyOrTimeout<T>(
  db: Queryable,
  timeoutMs: number,
  work: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await readOnly(db, timeoutMs, work);
  } catch (error) {
    if (isTimeout(error)) return undefined;
    throw error;
  }
}

export interface ScanFacts {
  /** Unquoted names of the table and every partition in its tree (to find them in EXPLAIN text). */
  readonly relations: string[];
  /** Every leaf (the table itself when not partitioned) has a valid btree index whose first column is the time column. */
  readonly timeIndexed: boolean;
  /** Heap bytes over the leaves. */
  readonly tableBytes: number;
}

/** Catalog facts for the whole-table-scan decision (`core/full-scan.ts`). */
export async function readScanFacts(db: Queryable, tableOid: string, timeColumn: string): Promise<ScanFacts> {
  const { rows } = await db.query<{ relname: string; leaf: string; indexed: string; bytes: string }>(
    `SELECT c.relname, (c.relkind = 'r') AS leaf,
            -- A btree: only an ordered index finds a chunk's first rows in time order without reading
            -- every eligible row (a BRIN or hash index on the column cannot).
            EXISTS (SELECT 1 FROM pg_index i
                      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                      JOIN pg_class ic ON ic.oid = i.indexrelid
                      JOIN pg_am am ON am.oid = ic.relam
                     WHERE i.indrelid = c.oid AND i.indisvalid AND i.indisready AND a.attname = $2
                       AND am.amname = 'btree') AS indexed,
            CASE WHEN c.relkind = 'r' THEN pg_relation_size(c.oid) ELSE 0 END::text AS bytes
       FROM (SELECT relid FROM pg_partition_tree($1::oid::regclass) UNION SELECT $1::oid) t
       JOIN pg_class c ON c.oid = t.relid`,
    [tableOid, timeColumn],
  );
  const leaves = rows.filter((r) => r.leaf === 't');
  return {
    relations: rows.map((r) => r.relname),
    timeIndexed: leaves.length === 0 || leaves.every((r) => r.indexed === 't'),
    tableBytes: leaves.reduce((sum, r) => sum + Number(r.bytes), 0),
  };
}

export interface EligibleSummary {
  readonly rows: number;
  readonly oldest: string | null;
  /** Average stored size of up to `sampleRows` eligible rows (pg_column_size), 0 when none. */
  readonly averageRowBytes: number;
}

/** Eligible rows now, the oldest one's time and an average row size from a sample. Param: cutoff. */
export async function summarizeEligible(
  db: Queryable,
  target: ChunkTarget,
  cutoff: string,
  timeoutMs: number,
  sampleRows = 1000,
): Promise<EligibleSummary> {
  return readOnly(db, timeoutMs, async () => {
    const counted = await db.query<{ rows: string; oldest: string | null }>(
      buildCountEligibleStatement(target),
      [cutoff],
    );
    const table = quoteQualified(target.schema, target.table);
    // No alias on the table: a filter may qualify its columns with the table's name.
    const sampled = await db.query<{ average: string | null }>(
      `SELECT avg(size)::float8::text AS average FROM (
         SELECT pg_column_size(${table}.*) AS size FROM ${table}
          WHERE ${eligibleWhere(target, false)}
          LIMIT $2) AS pg_lifecycle_sample`,
      [cutoff, sampleRows],
    );
    return {
      rows: Number(counted.rows[0]?.rows ?? 0),
      oldest: counted.rows[0]?.oldest ?? null,
      averageRowBytes: Number(sampled.rows[0]?.average ?? 0),
    };
  });
}

/**
 * Rows of the referencing table whose referenced row is eligible now (what CASCADE deletes, SET NULL
 * changes, NO ACTION refuses). Undefined when the count exceeds `timeoutMs`.
 */
export async function countReferencingRows(
  db: Queryable,
  target: ChunkTarget,
  reference: ForeignKeyReference,
  referencedOid: string,
  cutoff: string,
  timeoutMs: number,
): Promise<number | undefined> {
  const { rows: pairs } = await db.query<{ nspname: string; relname: string; child: string; parent: string }>(
    `SELECT n.nspname, c.relname, ca.attname AS child, pa.attname AS parent
       FROM pg_constraint con
       JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(child_attnum, parent_attnum, ord)
       JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.child_attnum
       JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.parent_attnum
      WHERE con.contype = 'f' AND con.conrelid = $1::oid AND con.confrelid = $2::oid AND con.conname = $3
      ORDER BY k.ord`,
    [reference.referencingOid, referencedOid, reference.constraint],
  );
  const first = pairs[0];
  if (!first) return undefined;
  const child = quoteQualified(first.nspname, first.relname);
  const parent = quoteQualified(target.schema, target.table);
  const childColumns = pairs.map((p) => `lifecycle_child.${quoteIdent(p.child)}`).join(', ');
  const parentColumns = pairs.map((p) => `lifecycle_parent.${quoteIdent(p.parent)}`).join(', ');
  // Unqualified names in the eligibility predicate resolve to the innermost FROM: the referenced table.
  const text = `SELECT count(*)::text AS n FROM ${child} AS lifecycle_child
    WHERE EXISTS (SELECT 1 FROM ${parent} AS lifecycle_parent
                   WHERE (${parentColumns}) = (${childColumns})
                     AND ${eligibleWhere(target, false)})`;
  return readOnlyOrTimeout(db, timeoutMs, async () => {
    const { rows } = await db.query<{ n: string }>(text, [cutoff]);
    return Number(rows[0]?.n ?? 0);
  });
}
