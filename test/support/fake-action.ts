/**
 * A small action the engine has never seen, for the contract tests: it walks the time-cutoff source in
 * keyset order, locks each chunk's rows (FOR UPDATE SKIP LOCKED) and changes nothing; what it "did" is kept
 * in memory, committed rows apart from rolled-back ones. It has no partition strategy, no Start checks and
 * no Finish work, and its optional prepare phase can ask the state machine to wait before a chunk (as a
 * restore waits for Glacier). It is registered in place of a real action's module through
 * `StepDependencies.actions`, so the generic steps run it exactly as they run archive and purge.
 */
import type { ActionModule, TimeCutoffModule } from '../../functions/actions/action-module.ts';
import {
  type ChunkAction,
  type ChunkInput,
  type CompletedChunk,
  keysetValues,
  type PreparedChunk,
  summarizeTakenRows,
  type TakenChunk,
  targetOf,
} from '../../functions/actions/chunk-action.ts';
import type { Queryable } from '../../functions/adapters/transactions.ts';
import { buildSelectChunkStatement, orderTerms } from '../../functions/core/chunk-sql.ts';
import { timeCutoffStart } from '../../functions/sources/time-cutoff-start.ts';
import type { Policy } from '../../lib/contracts/policy.ts';

export interface FakeActionOptions {
  /** Chunks before which `prepare` asks to wait (1-based chunk attempts), e.g. [1, 2]. */
  readonly waitBefore?: readonly number[];
}

/** What the fake action did, as the test reads it. */
export interface FakeActionLog {
  /** Keys (the order values, JSON) of rows in chunks that committed, in commit order. */
  readonly committed: string[];
  /** Keys of rows in chunks whose `complete` ran (committed or not). */
  readonly completed: string[];
  /** How many times `prepare` asked to wait. */
  waits: number;
}

interface TakenFakeChunk extends TakenChunk {
  readonly keys: readonly string[];
}

class FakeChunkAction implements ChunkAction<TakenFakeChunk, number> {
  readonly takeIsTransaction = true;

  constructor(
    private readonly log: FakeActionLog,
    private readonly options: FakeActionOptions,
    private readonly prepareCalls: { count: number },
  ) {}

  async prepare(): Promise<PreparedChunk<number>> {
    this.prepareCalls.count++;
    if (this.options.waitBefore?.includes(this.prepareCalls.count)) {
      this.log.waits++;
      return { waitSeconds: 1 };
    }
    return { ready: this.prepareCalls.count };
  }

  async take(tx: Queryable, input: ChunkInput): Promise<TakenFakeChunk | undefined> {
    const withCursor = input.cursor !== null;
    const { rows } = await tx.query<Array<string | null>>({
      text: `${buildSelectChunkStatement(targetOf(input).target, withCursor)}\nFOR UPDATE SKIP LOCKED`,
      values: [input.cutoff, input.limit, ...keysetValues(input.cursor)],
      rowMode: 'array',
    });
    if (rows.length === 0) return undefined;
    const positions = orderTerms(targetOf(input).target).map((_, i) => i);
    return { ...summarizeTakenRows(rows, positions), keys: rows.map((row) => JSON.stringify(row)) };
  }

  async complete(taken: TakenFakeChunk): Promise<CompletedChunk> {
    this.log.completed.push(...taken.keys);
    const completed: CompletedChunk = { bytes: 0, objects: [] };
    this.keysOf.set(completed, taken.keys);
    return completed;
  }

  /** Called by the loop for a chunk that committed, never for one that rolled back. */
  async afterCommit(completed: CompletedChunk): Promise<void> {
    this.log.committed.push(...(this.keysOf.get(completed) ?? []));
  }

  private readonly keysOf = new WeakMap<CompletedChunk, readonly string[]>();
}

/** The fake action's module and the log it writes to. */
export function fakeAction(options: FakeActionOptions = {}): { module: ActionModule; log: FakeActionLog } {
  const log: FakeActionLog = { committed: [], completed: [], waits: 0 };
  const prepareCalls = { count: 0 };
  const module: TimeCutoffModule<Policy> = {
    action: 'purge',
    ...timeCutoffStart(),
    missingTablePrivileges: () => [],
    explainStatement: (target) => buildSelectChunkStatement(target, false),
    foreignKeys: { planRefusal: () => undefined, warnsOfReferencedRows: () => false },
    checkStart: async () => undefined,
    initialBatchRows: async ({ input }) => input.chunking.initialRows,
    chunkAction: () => new FakeChunkAction(log, options, prepareCalls),
  };
  return { module, log };
}
