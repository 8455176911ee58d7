/**
 * Bloat of a heap or a btree index, from what PostgreSQL already knows: no page is read. Pure arithmetic over
 * figures `figures.ts` reads from pg_class, pg_stat_user_tables and pg_stats.
 *
 * The method is the well-known pgstattuple-free estimate (ioguix's pgsql-bloat-estimation queries): the
 * size the live rows would take, packed at the relation's fillfactor, from the average stored width of each
 * column (pg_stats.avg_width, weighted by 1 - null_frac) plus tuple header, null bitmap, alignment and line
 * pointer; bloat is the part of the relation beyond it. Two changes to the original:
 * - the live row count is `n_live_tup` (kept current by every transaction) rather than `reltuples` (set by the
 *   last VACUUM or ANALYZE), so that rows deleted since the last ANALYZE count as bloat before it runs;
 * - the size is the relation's file size now (pg_relation_size), not `relpages` as of the last VACUUM.
 *
 * Limits (why a figure is an estimate, and when `pgstattuple` should be preferred):
 * - it needs column statistics: a table never analyzed has none (the estimate is then undefined, and the
 *   run ANALYZEs it first); `avg_width` of a value stored out of line is its TOAST pointer, and TOAST tables
 *   themselves are not measured;
 * - columns of type `name` and arrays or values whose width varies a lot make the average misleading;
 * - an index's estimate assumes one entry per live row (a partial index's share comes from its own
 *   `reltuples`); btree deduplication (PostgreSQL 13+) stores repeated keys once, so an index over few
 *   distinct values is smaller than estimated and reads as not bloated (an underestimate, never a false
 *   alarm); internal pages are not counted (a few percent of a large index);
 * - only btree indexes are estimated; other index kinds are left alone;
 * - small relations are noise: a few pages of slack read as a large percentage (`minRelationBytes`).
 */

/** MAXALIGN on every 64-bit platform PostgreSQL runs on (RDS, Aurora, x86-64, arm64). */
const MAXALIGN = 8;
/** PageHeaderData. */
const PAGE_HEADER_BYTES = 24;
/** BTPageOpaqueData, at the end of every btree page. */
const BTREE_SPECIAL_BYTES = 16;
/** ItemIdData: the line pointer of every tuple on a page. */
const LINE_POINTER_BYTES = 4;
/** HeapTupleHeaderData without its null bitmap. */
const HEAP_TUPLE_HEADER_BYTES = 23;
/** IndexTupleData (t_tid + t_info). */
const INDEX_TUPLE_HEADER_BYTES = 8;
/** IndexAttributeBitMapData, present when some key column is null. */
const INDEX_NULL_BITMAP_BYTES = 4;

export interface BloatFigure {
  /** Share of the relation's size beyond what its live rows need at its fillfactor, 0–100. */
  readonly percent: number;
  readonly bytes: number;
}

/** The stored shape of the relation's rows, from pg_stats (sum over its columns or key columns). */
export interface RowShape {
  /** Σ (1 - null_frac) × avg_width over the columns. */
  readonly dataWidth: number;
  /** Columns (or key columns) in all: the null bitmap has one bit each. */
  readonly columns: number;
  /** Whether any of them holds nulls (null_frac > 0): the tuple then carries a null bitmap. */
  readonly hasNulls: boolean;
}

export interface HeapFigures {
  readonly sizeBytes: number;
  readonly blockSize: number;
  /** Live rows: n_live_tup, or reltuples when the statistics have nothing yet. */
  readonly liveRows: number;
  readonly fillfactor: number;
  readonly shape: RowShape | undefined;
}

export interface BtreeFigures {
  readonly sizeBytes: number;
  readonly blockSize: number;
  /** Entries the index should hold: the table's live rows, or the partial index's share of them. */
  readonly entries: number;
  readonly fillfactor: number;
  readonly shape: RowShape | undefined;
}

const align = (bytes: number) => Math.ceil(bytes / MAXALIGN) * MAXALIGN;

function figure(sizeBytes: number, blockSize: number, expectedPages: number): BloatFigure {
  const pages = Math.floor(sizeBytes / blockSize);
  if (pages <= 0) return { percent: 0, bytes: 0 };
  const extra = Math.max(0, pages - expectedPages);
  return { percent: round2((100 * extra) / pages), bytes: extra * blockSize };
}

/** Estimated heap bloat; undefined without column statistics. */
export function estimateHeapBloat(heap: HeapFigures): BloatFigure | undefined {
  if (!heap.shape) return undefined;
  const { dataWidth, columns, hasNulls } = heap.shape;
  const header = align(HEAP_TUPLE_HEADER_BYTES + (hasNulls ? Math.ceil(columns / 8) : 0));
  const tuple = LINE_POINTER_BYTES + header + align(dataWidth);
  const usable = ((heap.blockSize - PAGE_HEADER_BYTES) * heap.fillfactor) / 100;
  const perPage = Math.max(1, Math.floor(usable / tuple));
  return figure(heap.sizeBytes, heap.blockSize, Math.ceil(Math.max(0, heap.liveRows) / perPage));
}

/** Estimated btree bloat (the metapage counted); undefined without statistics of its key columns. */
export function estimateBtreeBloat(index: BtreeFigures): BloatFigure | undefined {
  if (!index.shape) return undefined;
  const { dataWidth, hasNulls } = index.shape;
  const header = align(INDEX_TUPLE_HEADER_BYTES + (hasNulls ? INDEX_NULL_BITMAP_BYTES : 0));
  const tuple = LINE_POINTER_BYTES + header + align(dataWidth);
  const usable = ((index.blockSize - PAGE_HEADER_BYTES - BTREE_SPECIAL_BYTES) * index.fillfactor) / 100;
  const perPage = Math.max(1, Math.floor(usable / tuple));
  return figure(index.sizeBytes, index.blockSize, 1 + Math.ceil(Math.max(0, index.entries) / perPage));
}

/** pgstattuple's exact heap figures: dead tuples and free space beyond the fillfactor's reserve. */
export function exactHeapBloat(
  stat: { tableLen: number; deadTupleLen: number; freeSpace: number },
  fillfactor: number,
): BloatFigure {
  if (stat.tableLen <= 0) return { percent: 0, bytes: 0 };
  const reserve = (stat.tableLen * (100 - fillfactor)) / 100;
  const bytes = Math.max(0, Math.round(stat.deadTupleLen + stat.freeSpace - reserve));
  return { percent: round2(Math.min(100, (100 * bytes) / stat.tableLen)), bytes };
}

/**
 * pgstatindex's exact btree figures: the unused share of leaf pages beyond the fillfactor's reserve, plus
 * empty and deleted pages. `avgLeafDensity` is NaN for an index without leaf pages.
 */
export function exactBtreeBloat(
  stat: {
    indexSize: number;
    leafPages: number;
    emptyPages: number;
    deletedPages: number;
    avgLeafDensity: number;
  },
  fillfactor: number,
  blockSize: number,
): BloatFigure {
  if (stat.indexSize <= 0) return { percent: 0, bytes: 0 };
  const density = Number.isFinite(stat.avgLeafDensity) ? stat.avgLeafDensity : 0;
  const unusedLeaf = stat.leafPages * Math.max(0, 1 - density / fillfactor);
  const pages = unusedLeaf + stat.emptyPages + stat.deletedPages;
  const bytes = Math.min(stat.indexSize, Math.round(pages * blockSize));
  return { percent: round2((100 * bytes) / stat.indexSize), bytes };
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
