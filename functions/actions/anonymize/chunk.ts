/**
 * Anonymize chunk: mask the next slice of pending rows in keyset order, in the chunk's transaction (one
 * statement: lock with SKIP LOCKED, UPDATE, summary; update-statement.ts). Nothing happens outside the
 * database, so `complete` has nothing to do. The masks are resolved once per step from the catalog and the
 * hash key read once (`prepare`, outside the transaction); no row value ever reaches Node.
 */

import type { Queryable } from '../../adapters/transactions.ts';
import { HashKeyError } from '../../core/errors.ts';
import type { StepDependencies } from '../../run/dependencies.ts';
import {
  type ChunkAction,
  type ChunkInput,
  type CompletedChunk,
  type PreparedChunk,
  type TakenChunk,
  targetOf,
} from '../chunk-action.ts';
import type { AnonymizePolicy } from './contract.ts';
import { type HashKey, hashKeyFrom } from './hash-key.ts';
import { maskAssignments, needsHashKey, type ResolvedMasks, resolveMasks } from './masks.ts';
import { takeUpdateChunk } from './update-statement.ts';

type Row = Array<string | null>;

export class AnonymizeAction implements ChunkAction<TakenChunk, HashKey | undefined> {
  readonly takeIsTransaction = true;
  /**
   * Measured (npm run bench -- anonymize, 1 M rows, 250 ms target): aiming at 0.8 × target gave a median of 201 ms,
   * p95 236 and a longest chunk of 284 ms — UPDATE chunks vary more than DELETE ones (index entries, WAL) — so
   * anonymize aims at 0.6 (median 152 ms, p95 169–240). Single chunks still reach ≈ 1.7 × the median now and then
   * (260 ms once in three runs; at 0.5 too: 258 ms), which sizing from the last chunk cannot foresee.
   */
  readonly targetHeadroom = 0.6;
  private masks: ResolvedMasks | undefined;
  private key: HashKey | undefined;

  constructor(private readonly deps: StepDependencies) {}

  /** Reads the hash key once per step, outside the transaction (Secrets Manager in AWS). */
  async prepare(): Promise<PreparedChunk<HashKey | undefined>> {
    if (this.key === undefined) {
      const secret = await this.deps.hashKey?.();
      if (secret) this.key = hashKeyFrom(secret);
    }
    return { ready: this.key };
  }

  async take(tx: Queryable, input: ChunkInput, key: HashKey | undefined): Promise<TakenChunk | undefined> {
    const { table, target } = targetOf(input);
    this.masks ??= await resolveMasks(tx, table, input.policy as AnonymizePolicy);
    if (needsHashKey(this.masks) && key === undefined)
      throw new HashKeyError(
        `policy ${input.policy.name} hashes values but no hash key is configured ` +
          '(PG_LIFECYCLE_HASH_KEY locally, hashKeySecretArn in AWS)',
        { policy: input.policy.name },
      );
    const masks = this.masks;
    return takeUpdateChunk(tx, input, (params) => maskAssignments(target, masks, params, key));
  }

  async complete(): Promise<CompletedChunk> {
    return { bytes: 0, objects: [] };
  }
}
