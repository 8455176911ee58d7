/**
 * Purge chunk: DELETE a bounded, ordered, SKIP LOCKED slice of eligible rows, returning only the order
 * terms (for the cursor and the ledger's key/time ranges). Nothing happens outside the database, so
 * `complete` has nothing to do: the chunk loop records the chunk and commits.
 */
import type { Queryable } from '../adapters/catalog.ts';
import { buildPurgeChunkStatement } from '../core/chunk-sql.ts';
import { ForeignKeyError } from '../core/errors.ts';
import {
  type ChunkAction,
  type ChunkInput,
  type CompletedChunk,
  summarizeTakenRows,
  type TakenChunk,
} from './action.ts';
import { NextEligibleLocator } from './next-eligible.ts';

/** SQLSTATE foreign_key_violation: a row still referenced by a NO ACTION / RESTRICT foreign key. */
const FOREIGN_KEY_VIOLATION = '23503';

export class PurgeAction implements ChunkAction {
  private readonly locator = new NextEligibleLocator();

  async take(tx: Queryable, input: ChunkInput): Promise<TakenChunk | undefined> {
    const withCursor = input.cursor !== null;
    const params = [input.cutoff, input.limit, ...(input.cursor ?? [])];
    // A partitioned table is purged leaf by leaf (by ctid inside the leaf of the next eligible row).
    let target = input.target;
    if (target.partitioned) {
      const next = await this.locator.find(tx, target, params, withCursor);
      if (next === undefined) return undefined;
      target = next.target;
    }
    let statement = buildPurgeChunkStatement(target, withCursor);
    let rows: Array<Array<string | null>>;
    try {
      const result = await tx.query<Array<string | null>>({
        text: statement.text,
        values: params,
        rowMode: 'array',
      });
      rows = result.rows;
      if (target !== input.target && Number(rows[0]?.[0] ?? 0) === 0) {
        // Every eligible row of that leaf is locked by other sessions: go on across all partitions.
        statement = buildPurgeChunkStatement(input.target, withCursor);
        rows = (
          await tx.query<Array<string | null>>({ text: statement.text, values: params, rowMode: 'array' })
        ).rows;
      }
    } catch (error) {
      if ((error as { code?: string }).code === FOREIGN_KEY_VIOLATION) {
        // The start step checked that child policies exist; their rows still reference this chunk's rows.
        throw new ForeignKeyError(
          `purge of ${input.policy.table} stopped: ${(error as Error).message}; ` +
            'run the child policies first (their retention must cover the referencing rows)',
          { cause: error },
        );
      }
      throw error;
    }
    const summary = rows[0];
    if (!summary || Number(summary[0]) === 0) return undefined;
    const first = summary.slice(1, 1 + statement.terms);
    const last = summary.slice(1 + statement.terms);
    // The summary rows hold only order values: time first, then the key (or ctid).
    const positions = first.map((_, i) => i);
    const ends = summarizeTakenRows([first, last], positions);
    return { ...ends, rows: Number(summary[0]) };
  }

  async complete(): Promise<CompletedChunk> {
    return { bytes: 0, objects: [] };
  }
}
