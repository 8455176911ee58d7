/**
 * Whether the chunk query scans the whole table, and whether a run may go ahead anyway. Pure: the EXPLAIN
 * text and the catalog facts come in, the decision goes out.
 *
 * Every chunk runs the query again, so without an index that leads with the time column each chunk reads
 * the whole table: a run of n rows in chunks of k reads the table n/k times. A small table costs nothing to
 * scan, so the refusal only applies from {@link FULL_SCAN_REFUSAL_MIN_BYTES}; plans warn at any size.
 */

/** Heap size from which a whole-table chunk query refuses a real run (8 MiB: a few ms per scan below it). */
export const FULL_SCAN_REFUSAL_MIN_BYTES = 8 * 1024 * 1024;

/**
 * True when an EXPLAIN (text format) line reads one of `relations` (unquoted names) without an order: a
 * Seq Scan (parallel or not), or a Bitmap Heap Scan (every matching row is fetched, then sorted; what a
 * BRIN index gives), which each chunk would repeat over all remaining eligible rows.
 */
export function planHasSeqScan(explain: readonly string[], relations: readonly string[]): boolean {
  const names = new Set(relations);
  return explain.some((line) => {
    const match = /(?:Seq Scan|Bitmap Heap Scan) on (?:"((?:[^"]|"")+)"|([^\s"]+))/.exec(line);
    if (!match) return false;
    const name = match[1]?.replace(/""/g, '"') ?? match[2] ?? '';
    // EXPLAIN may qualify the name ("public.t" with VERBOSE) or not.
    return names.has(name) || names.has(name.slice(name.lastIndexOf('.') + 1));
  });
}

export interface FullScanFacts {
  readonly qualifiedName: string;
  readonly timeColumn: string;
  /** The plan shows a Seq Scan on the table or one of its partitions. */
  readonly seqScan: boolean;
  /** Every leaf of the table has a valid btree index whose first column is the time column. */
  readonly timeIndexed: boolean;
  /** Heap bytes of the table (all leaf partitions). */
  readonly tableBytes: number;
  /** The policy's `allowSeqScan`. */
  readonly allowSeqScan: boolean;
  /** The run was started with `--force`. */
  readonly force: boolean;
}

export interface FullScanDecision {
  readonly fullTableScan: boolean;
  /** For the plan (and the log): what was found and what a run does about it. */
  readonly warning: string | undefined;
  /** Why a real run must refuse (MissingIndexError), or undefined. */
  readonly refusal: string | undefined;
}

export function decideFullScan(facts: FullScanFacts): FullScanDecision {
  const fullTableScan = facts.seqScan && !facts.timeIndexed;
  if (!fullTableScan) return { fullTableScan, warning: undefined, refusal: undefined };
  const mib = (facts.tableBytes / (1024 * 1024)).toFixed(1);
  const problem =
    `the chunk query scans all of ${facts.qualifiedName} (${mib} MiB) on every chunk: ` +
    `no btree index leads with ${facts.timeColumn}`;
  const fix = `create one (CREATE INDEX CONCURRENTLY ON ${facts.qualifiedName} (${facts.timeColumn}))`;
  const small = facts.tableBytes < FULL_SCAN_REFUSAL_MIN_BYTES;
  const overridden = facts.allowSeqScan
    ? 'allowSeqScan is set'
    : facts.force
      ? '--force was given'
      : undefined;
  if (small || overridden) {
    const why = small ? 'the table is small enough to scan' : overridden;
    return { fullTableScan, warning: `${problem}; a run goes ahead (${why}); ${fix}`, refusal: undefined };
  }
  return {
    fullTableScan,
    warning: `${problem}; a run refuses (MissingIndexError); ${fix}, or set "allowSeqScan": true, or pass --force`,
    refusal:
      `refusing to run: ${problem}. Then ${fix}, set "allowSeqScan": true on the policy, ` +
      'or start the run with --force. Nothing was changed.',
  };
}
