/**
 * What differs between archive, purge, backup and anonymize: the work of one chunk inside its
 * transaction, in two phases. The chunk loop (functions/run/run-chunks.ts) owns everything else: the
 * transaction and its timeouts, the lease, the ledger's chunk row and run totals, batch sizing, the time
 * budget, and pipelining (the next chunk's `take` runs in PostgreSQL while this chunk's `complete` runs
 * in Node; an action module with `overlapsChunks: false` runs its chunks one after another instead).
 */
import type { Chunking, Policy } from '../../lib/contracts/config.ts';
import type { WorkCursor } from '../../lib/contracts/work-cursor.ts';
import type { ResolvedTable } from '../adapters/catalog.ts';
import type { ArchivedObject, ObjectKind } from '../adapters/ledger/index.ts';
import type { Queryable } from '../adapters/transactions.ts';
import type { ChunkTarget } from '../core/chunk-sql.ts';
import { InvalidPayloadError } from '../core/errors.ts';

export interface ChunkInput {
  readonly runId: string;
  readonly policy: Policy;
  /** The one table a row-walking source (time-cutoff) prepared; absent for a source over many tables. */
  readonly table?: ResolvedTable | undefined;
  readonly target?: ChunkTarget | undefined;
  readonly cutoff: string;
  /** Where the run stands: null before the first chunk. */
  readonly cursor: WorkCursor | null;
  readonly limit: number;
  /** The policy's resolved chunking (the transaction's lock and statement timeouts come from it). */
  readonly chunking: Chunking;
  /**
   * `take` calls this once its main statement is on its way to the server. The loop waits for it (briefly)
   * before the previous chunk's `complete` holds this thread with CPU work (an archive encodes Parquet): the
   * statements before it need the event loop, and the server would otherwise start only once that work ends.
   */
  readonly sent?: (() => void) | undefined;
}

/** What `take` locked and changed, still uncommitted. */
export interface TakenChunk {
  /**
   * Rows taken (deleted, updated, read...). 0 only when the chunk found work that changed no row (anonymize:
   * every row it locked was left unchanged; a subject request with no rows): the end of the work is
   * `undefined` from `take`, never a count.
   */
  readonly rows: number;
  /**
   * Rows the chunk's time was spent on, when not `rows` (an import examines rows it skips or refuses): what the
   * next chunk is sized from.
   */
  readonly sizingRows?: number;
  /** Size of the rows' data held in memory (the archive: the COPY binary bytes read), when the action holds rows. */
  readonly rowBytes?: number;
  /** Where the run stands once this chunk commits. */
  readonly cursor: WorkCursor;
  readonly minTime: string | null;
  readonly maxTime: string | null;
  readonly minKey: ReadonlyArray<string | null> | null;
  readonly maxKey: ReadonlyArray<string | null> | null;
  /**
   * How the chunk's statement chose its rows, where the action has more than one way (archive, purge; logged with
   * the chunk): 'window' (a time range), 'predicted-window' (a purge's time range whose end was predicted from
   * the last window's rows per second, without the probe that counts its rows), 'keyset' (an ordered slice,
   * e.g. through a run of equal times) or
   * 'skip-locked' (rows other sessions hold passed over, after one got in the way).
   */
  readonly selection?: ChunkSelection;
}

export type ChunkSelection = 'window' | 'predicted-window' | 'keyset' | 'skip-locked';

/** The non-database work's result, recorded in the ledger in the chunk's transaction. */
export interface CompletedChunk {
  readonly bytes: number;
  /** Objects to list in the ledger in the same transaction. */
  readonly objects: readonly ArchivedObject[];
  /** What the objects are (required with objects): only an archive copy is the only copy of its rows. */
  readonly objectKind?: ObjectKind;
}

/**
 * What `prepare` found: the work `take` gets, or a wait. A wait ends the Chunk step without a chunk; the
 * state machine's Pause waits `waitSeconds` (no Lambda sleeps, no transaction or connection held: a Glacier
 * restore may take hours) and the next step asks again.
 */
export type PreparedChunk<R> = { readonly ready: R } | { readonly waitSeconds: number };

export interface ChunkAction<T extends TakenChunk = TakenChunk, R = unknown> {
  /**
   * True when `take` is nearly all of the chunk's transaction (nothing slow happens in `complete`): the
   * loop may then size the next chunk from this one's `take` time, before this one commits.
   */
  readonly takeIsTransaction?: boolean;
  /**
   * Share of `targetTransactionMs` the sizing aims at (core/batch-size.ts; default TARGET_HEADROOM): an action
   * whose chunk times vary more around their median asks for less, so that its longest chunk stays under target.
   */
  readonly targetHeadroom?: number;
  /**
   * `take` calls `ChunkInput.sent` (see there): the overlapping loop then waits for it before completing the
   * previous chunk. Without it the loop does not wait.
   */
  readonly signalsSent?: boolean;
  /**
   * Optional phase before BEGIN, outside any transaction (download and decode what a restore inserts): its
   * result is handed to `take`, so no transaction stays open during a download. Without it `take` gets
   * undefined.
   */
  prepare?(input: ChunkInput): Promise<PreparedChunk<R>>;
  /** Database phase, inside the open transaction on `tx`: lock and change the chunk's rows. */
  take(tx: Queryable, input: ChunkInput, prepared: R | undefined): Promise<T | undefined>;
  /** Outside the database (encode, upload, verify), before COMMIT; throwing rolls the chunk back. */
  complete(taken: T, input: ChunkInput): Promise<CompletedChunk>;
  /**
   * After the chunk committed (its objects are listed): work that must not happen before, such as locking
   * the objects (S3 Object Lock). Must not throw: the chunk is done; what fails here is repaired later.
   */
  afterCommit?(completed: CompletedChunk, input: ChunkInput): Promise<void>;
  /** At the end of the Chunk step, whatever happened: release what the action opened (connections). */
  close?(): Promise<void>;
}

/**
 * The table and chunk target of an action over one table's rows.
 * @throws InvalidPayloadError when the step's source prepared none (a module wired to the wrong source)
 */
export function targetOf(input: ChunkInput): { table: ResolvedTable; target: ChunkTarget } {
  if (!input.table || !input.target)
    throw new InvalidPayloadError(
      `${input.policy.action} walks one table's rows, but its source prepared none`,
    );
  return { table: input.table, target: input.target };
}

/**
 * The keyset summary of rows a chunk statement returned, ordered by the keyset: `orderPositions` gives
 * each order term's index in a row (time first, then the key or ctid).
 */
export function summarizeTakenRows(
  rows: ReadonlyArray<ReadonlyArray<string | null>>,
  orderPositions: readonly number[],
): TakenChunk {
  const [timeAt = 0, ...keyAt] = orderPositions;
  const keyOf = (row: ReadonlyArray<string | null>) => keyAt.map((i) => row[i] ?? null);
  const first = rows[0] ?? [];
  const last = rows[rows.length - 1] ?? [];
  return {
    rows: rows.length,
    cursor: { kind: 'keyset', values: orderPositions.map((i) => last[i] ?? null) },
    minTime: first[timeAt] ?? null,
    maxTime: last[timeAt] ?? null,
    minKey: keyOf(first),
    maxKey: keyOf(last),
  };
}

/**
 * The keyset values of a cursor, for an action that walks the time-cutoff source in keyset order; none
 * before the first chunk.
 * @throws InvalidPayloadError for a cursor of another kind (a run resumed by an action that did not write it)
 */
export function keysetValues(cursor: WorkCursor | null): ReadonlyArray<string | null> {
  if (cursor === null) return [];
  if (cursor.kind !== 'keyset')
    throw new InvalidPayloadError(`a keyset chunk cannot resume from a ${cursor.kind} cursor`);
  return cursor.values;
}

/**
 * Chunks that delete plainly (purge windows, archive slices) wait at most this long for a row another session
 * holds, inside a savepoint, before taking the chunk again with SKIP LOCKED …
 */
export const OPTIMISTIC_LOCK_WAIT_MS = 20;
/** … and then take this many chunks with SKIP LOCKED before trying plainly again. */
export const SKIP_LOCKED_CHUNKS_AFTER_CONFLICT = 8;
