/**
 * What maintain decides on, read from the catalog and the statistics (and from pgstattuple when it may): one
 * table's size, rows, dead tuples, statistics age and bloat; its indexes, each with its bloat. Read only;
 * names come back quoted the way PostgreSQL quotes them, for the ledger and messages.
 */
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { pgBool } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import {
  type BloatFigure,
  estimateBtreeBloat,
  estimateHeapBloat,
  exactBtreeBloat,
  exactHeapBloat,
  type RowShape,
} from './bloat-estimate.ts';
import type { BloatMethod } from './plan-schema.ts';

export interface Bloat extends BloatFigure {
  readonly method: BloatMethod;
  /** pgstattuple's dead_tuple_percent (of the table's bytes): a heap's exact reading only. */
  readonly deadTuplePercent?: number;
}

export interface TableFacts {
  readonly oid: string;
  /** Quoted "schema"."table". */
  readonly table: string;
  readonly kind: string;
  /** The role owns the table (or is superuser): it may VACUUM, ANALYZE and REINDEX it on PostgreSQL 15. */
  readonly canMaintain: boolean;
  readonly role: string;
  readonly sizeBytes: number;
  readonly blockSize: number;
  readonly liveRows: number;
  /** pg_class.reltuples: -1 before the first VACUUM or ANALYZE (PostgreSQL 14+). */
  readonly reltuples: number;
  readonly deadTuples: number;
  readonly modsSinceAnalyze: number;
  /** Last ANALYZE, manual or autovacuum's (ISO); null when never. */
  readonly lastAnalyzed: string | null;
  /** Days since then, by the server's clock; null when never. */
  readonly analyzedAgeDays: number | null;
  readonly fillfactor: number;
  readonly bloat: Bloat | undefined;
}

export interface IndexFacts {
  readonly oid: string;
  /** The index's name, quoted (it lives in its table's schema). */
  readonly index: string;
  /** The index's name as the catalog holds it. */
  readonly name: string;
  readonly schema: string;
  readonly method: string;
  readonly valid: boolean;
  readonly exclusion: boolean;
  readonly sizeBytes: number;
  readonly bloat: Bloat | undefined;
}

/** Calls into pgstattuple, when the extension is installed and the role may execute its functions. */
export interface ExactReader {
  /** Quoted schema of the extension. */
  readonly schema: string;
  readonly maxBytes: number;
}

/** The pgstattuple functions the role may call, or undefined (not installed, not granted, or turned off). */
export async function findExactReader(db: Queryable, maxBytes: number): Promise<ExactReader | undefined> {
  if (maxBytes <= 0) return undefined;
  const { rows } = await db.query<{ schema: string; usable: string | boolean }>(
    `SELECT n.nspname AS schema,
            has_function_privilege(format('%I.pgstattuple(regclass)', n.nspname), 'EXECUTE')
              AND has_function_privilege(format('%I.pgstatindex(regclass)', n.nspname), 'EXECUTE') AS usable
       FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname = 'pgstattuple'`,
  );
  const row = rows[0];
  if (!row || !pgBool(row.usable)) return undefined;
  return { schema: quoteIdent(row.schema), maxBytes };
}

const SHAPE_COLUMNS = `count(*)::int AS cols, count(st.avg_width)::int AS with_stats,
       sum((1 - coalesce(st.null_frac, 0)) * coalesce(st.avg_width, 0))::float8 AS width,
       coalesce(bool_or(coalesce(st.null_frac, 0) > 0), false) AS nulls`;

interface ShapeRow {
  cols: number;
  with_stats: number;
  width: number | string | null;
  nulls: boolean | string;
}

/** The row shape when every column has statistics; undefined otherwise (never analyzed, a new column). */
function shapeOf(row: ShapeRow): RowShape | undefined {
  if (Number(row.cols) === 0 || Number(row.with_stats) < Number(row.cols)) return undefined;
  return { dataWidth: Number(row.width ?? 0), columns: Number(row.cols), hasNulls: pgBool(row.nulls) };
}

/** One table's facts; undefined when no relation has the oid any more. */
export async function readTableFacts(
  db: Queryable,
  oid: string,
  exact?: ExactReader,
  savepoints = false,
): Promise<TableFacts | undefined> {
  const { rows } = await db.query<Record<string, string | number | boolean | null>>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
            current_user::text AS role,
            (pg_has_role(c.relowner, 'USAGE')
              OR coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)) AS can_maintain,
            pg_relation_size(c.oid)::float8 AS size, current_setting('block_size')::int AS bs,
            c.reltuples::float8 AS reltuples, s.n_live_tup::float8 AS live, s.n_dead_tup::float8 AS dead,
            coalesce(s.n_mod_since_analyze, 0)::float8 AS mods,
            to_char(greatest(s.last_analyze, s.last_autoanalyze) AT TIME ZONE 'UTC',
                    'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS analyzed,
            -- The server's clock on both sides: the age does not depend on the caller's.
            (extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)) / 86400)::float8 AS age_days,
            coalesce((SELECT option_value::int FROM pg_options_to_table(c.reloptions)
                       WHERE option_name = 'fillfactor'), 100) AS fillfactor,
            w.*
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
       LEFT JOIN LATERAL (
         SELECT ${SHAPE_COLUMNS}
           FROM pg_attribute a
           LEFT JOIN pg_stats st ON st.schemaname = n.nspname AND st.tablename = c.relname
                                AND st.attname = a.attname AND NOT st.inherited
          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       ) w ON true
      WHERE c.oid = $1::oid`,
    [oid],
  );
  const row = rows[0];
  if (!row) return undefined;
  const reltuples = Number(row.reltuples);
  const dead = Number(row.dead ?? 0);
  // n_live_tup follows every commit; it reads 0 after a statistics reset too, when reltuples still knows better.
  const statsLive = row.live === null ? undefined : Number(row.live);
  const liveRows =
    statsLive === undefined || (statsLive === 0 && dead === 0 && reltuples > 0)
      ? Math.max(0, reltuples)
      : statsLive;
  const sizeBytes = Number(row.size);
  const blockSize = Number(row.bs);
  const fillfactor = Number(row.fillfactor);
  const kind = String(row.kind);
  return {
    oid,
    table: quoteQualified(String(row.schema), String(row.name)),
    kind,
    canMaintain: pgBool(row.can_maintain),
    role: String(row.role),
    sizeBytes,
    blockSize,
    liveRows,
    reltuples,
    deadTuples: dead,
    modsSinceAnalyze: Number(row.mods),
    lastAnalyzed: row.analyzed === null ? null : String(row.analyzed),
    analyzedAgeDays: row.age_days === null ? null : Number(row.age_days),
    fillfactor,
    // A partitioned table has no storage of its own: nothing to measure.
    bloat:
      kind === 'p'
        ? undefined
        : await readHeapBloat(
            db,
            oid,
            { sizeBytes, blockSize, liveRows, fillfactor },
            row,
            exact,
            savepoints,
          ),
  };
}

/** pgstattuple's exact figures when allowed and small enough (and in time), else the statistics' estimate. */
async function readHeapBloat(
  db: Queryable,
  oid: string,
  heap: { sizeBytes: number; blockSize: number; liveRows: number; fillfactor: number },
  shapeRow: unknown,
  exact: ExactReader | undefined,
  savepoints: boolean,
): Promise<Bloat | undefined> {
  if (exact && heap.sizeBytes > 0 && heap.sizeBytes <= exact.maxBytes) {
    const stat = await tryExact(db, savepoints, () =>
      db.query<{ table_len: string; dead_tuple_len: string; free_space: string; dead_percent: string }>(
        `SELECT table_len::text, dead_tuple_len::text, free_space::text, dead_tuple_percent::text AS dead_percent
           FROM ${exact.schema}.pgstattuple($1::oid::regclass)`,
        [oid],
      ),
    );
    const s = stat?.rows[0];
    if (s) {
      const figure = exactHeapBloat(
        {
          tableLen: Number(s.table_len),
          deadTupleLen: Number(s.dead_tuple_len),
          freeSpace: Number(s.free_space),
        },
        heap.fillfactor,
      );
      return { method: 'pgstattuple', ...figure, deadTuplePercent: Number(s.dead_percent) };
    }
  }
  // An empty table needs no statistics: every page it still has is slack.
  const estimate = estimateHeapBloat({
    ...heap,
    shape:
      heap.liveRows === 0 ? { dataWidth: 0, columns: 0, hasNulls: false } : shapeOf(shapeRow as ShapeRow),
  });
  return estimate ? { method: 'statistics', ...estimate } : undefined;
}

/**
 * The table's indexes (partitioned-table indexes excluded: each leaf has its own), by name; only the one named
 * `onlyName` when given (an exact reading reads the whole index: one at a time).
 */
export async function readIndexFacts(
  db: Queryable,
  table: TableFacts,
  exact?: ExactReader,
  savepoints = false,
  onlyName?: string,
): Promise<IndexFacts[]> {
  const { rows } = await db.query<Record<string, string | number | boolean | null>>(
    `SELECT i.indexrelid::text AS oid, ic.relname AS name, n.nspname AS schema, am.amname AS method,
            (i.indisvalid AND i.indisready AND i.indislive) AS valid, i.indpred IS NOT NULL AS partial,
            EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype = 'x') AS exclusion,
            pg_relation_size(i.indexrelid)::float8 AS size, ic.reltuples::float8 AS reltuples,
            coalesce((SELECT option_value::int FROM pg_options_to_table(ic.reloptions)
                       WHERE option_name = 'fillfactor'), 90) AS fillfactor,
            w.*
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = ic.relnamespace
       JOIN pg_class t ON t.oid = i.indrelid
       JOIN pg_am am ON am.oid = ic.relam
       LEFT JOIN LATERAL (
         -- Every attribute stored in the index (INCLUDE columns too): a plain column's statistics are its
         -- table's, an expression's are the index's own (ANALYZE gathers them under the index's name).
         SELECT ${SHAPE_COLUMNS}
           FROM pg_attribute ia
           LEFT JOIN pg_attribute ta ON ta.attrelid = i.indrelid AND i.indkey[ia.attnum - 1] <> 0
                                    AND ta.attnum = i.indkey[ia.attnum - 1]
           LEFT JOIN pg_stats st ON st.schemaname = n.nspname AND NOT st.inherited
                                AND ((ta.attname IS NOT NULL AND st.tablename = t.relname AND st.attname = ta.attname)
                                  OR (ta.attname IS NULL AND st.tablename = ic.relname AND st.attname = ia.attname))
          WHERE ia.attrelid = i.indexrelid AND ia.attnum > 0
       ) w ON true
      WHERE i.indrelid = $1::oid AND ic.relkind = 'i' AND ($2::text IS NULL OR ic.relname = $2::text)
      ORDER BY ic.relname COLLATE "C"`,
    [table.oid, onlyName ?? null],
  );
  const facts: IndexFacts[] = [];
  for (const row of rows) {
    const oid = String(row.oid);
    const sizeBytes = Number(row.size);
    const fillfactor = Number(row.fillfactor);
    const method = String(row.method);
    const valid = pgBool(row.valid);
    let bloat: Bloat | undefined;
    if (method === 'btree' && valid) {
      if (exact && sizeBytes > 0 && sizeBytes <= exact.maxBytes) {
        const stat = await tryExact(db, savepoints, () =>
          db.query<Record<string, string>>(
            `SELECT index_size::text, leaf_pages::text, empty_pages::text, deleted_pages::text,
                    avg_leaf_density::text FROM ${exact.schema}.pgstatindex($1::oid::regclass)`,
            [oid],
          ),
        );
        const s = stat?.rows[0];
        if (s) {
          bloat = {
            method: 'pgstattuple',
            ...exactBtreeBloat(
              {
                indexSize: Number(s.index_size),
                leafPages: Number(s.leaf_pages),
                emptyPages: Number(s.empty_pages),
                deletedPages: Number(s.deleted_pages),
                avgLeafDensity: Number(s.avg_leaf_density),
              },
              fillfactor,
              table.blockSize,
            ),
          };
        }
      }
      if (!bloat) {
        const reltuples = Number(row.reltuples);
        // A partial index holds its share of the rows: its own count as of the last VACUUM, scaled to now.
        const entries = pgBool(row.partial)
          ? table.reltuples > 0 && reltuples >= 0
            ? (reltuples * table.liveRows) / table.reltuples
            : Math.max(0, reltuples)
          : table.liveRows;
        const estimate = estimateBtreeBloat({
          sizeBytes,
          blockSize: table.blockSize,
          entries,
          fillfactor,
          shape:
            entries === 0
              ? { dataWidth: 0, columns: 0, hasNulls: false }
              : shapeOf(row as unknown as ShapeRow),
        });
        if (estimate) bloat = { method: 'statistics', ...estimate };
      }
    }
    facts.push({
      oid,
      index: quoteIdent(String(row.name)),
      name: String(row.name),
      schema: String(row.schema),
      method,
      valid,
      exclusion: pgBool(row.exclusion),
      sizeBytes,
      bloat,
    });
  }
  return facts;
}

/**
 * An exact reading, or undefined when it could not be had in time (statement_timeout) or is not allowed:
 * the caller falls back to the estimate. In a transaction (the plan's) the attempt runs in a savepoint.
 */
async function tryExact<T>(
  db: Queryable,
  savepoints: boolean,
  read: () => Promise<T>,
): Promise<T | undefined> {
  if (savepoints) await db.query('SAVEPOINT pg_lifecycle_exact');
  try {
    const value = await read();
    if (savepoints) await db.query('RELEASE SAVEPOINT pg_lifecycle_exact');
    return value;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== '57014' && code !== '42501' && code !== '55P03') throw error;
    if (savepoints) await db.query('ROLLBACK TO SAVEPOINT pg_lifecycle_exact');
    return undefined;
  }
}
