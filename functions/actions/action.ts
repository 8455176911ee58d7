/**
 * What differs between archive, purge, backup and anonymize: the work of one chunk inside its
 * transaction. The chunk loop (functions/run/run-chunks.ts) owns everything else: the transaction and
 * its timeouts, the lease, the ledger's chunk row and run totals, batch sizing and the time budget.
 */
import type { Policy } from '../../lib/contracts/config.ts';
import type { Queryable, ResolvedTable } from '../adapters/catalog.ts';
import type { ArchivedObject } from '../adapters/ledger.ts';
import type { ChunkTarget } from '../core/chunk-sql.ts';

export interface ChunkInput {
  readonly runId: string;
  readonly policy: Policy;
  readonly table: ResolvedTable;
  readonly target: ChunkTarget;
  readonly cutoff: string;
  readonly cursor: ReadonlyArray<string | null> | null;
  readonly limit: number;
}

export interface ChunkOutcome {
  /** Rows the chunk took (deleted, archived, exported...). 0 means the run has nothing left. */
  readonly rows: number;
  readonly bytes: number;
  /** Objects to list in the ledger in the same transaction. */
  readonly objects: readonly ArchivedObject[];
  /** Keyset position after the chunk (order values of its last row), null when rows = 0. */
  readonly cursor: ReadonlyArray<string | null> | null;
  readonly minTime: string | null;
  readonly maxTime: string | null;
  readonly minKey: ReadonlyArray<string | null> | null;
  readonly maxKey: ReadonlyArray<string | null> | null;
}

export interface ChunkAction {
  /** Runs inside an open transaction on `tx`; throwing rolls the whole chunk back. */
  runChunk(tx: Queryable, input: ChunkInput): Promise<ChunkOutcome>;
}

export const EMPTY_OUTCOME: ChunkOutcome = {
  rows: 0,
  bytes: 0,
  objects: [],
  cursor: null,
  minTime: null,
  maxTime: null,
  minKey: null,
  maxKey: null,
};
