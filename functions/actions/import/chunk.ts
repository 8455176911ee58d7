/**
 * One import chunk, inside the loop's transaction: the next `limit` source keys after the cursor, their rows
 * inserted into the target (row-validation.ts sets refused rows aside), the refused rows recorded in
 * `lifecycle.import_rejects` and the chunk's figures added to `lifecycle.import_runs` — all in the chunk's
 * transaction, so a chunk that rolls back leaves neither rows nor records, and a retried step redoes it.
 */

import type { Queryable } from '../../adapters/transactions.ts';
import {
  type ChunkAction,
  type ChunkInput,
  keysetValues,
  type PreparedChunk,
  type TakenChunk,
} from '../chunk-action.ts';
import type { ImportPolicy } from './contract.ts';
import { type BatchOutcome, insertBatch, type RejectedRow } from './row-validation.ts';
import { type ImportShape, insertRangeSql, nextKeysSql } from './statements.ts';

/** The next batch's source keys, as text, in walk order. */
export async function nextKeys(
  db: Queryable,
  shape: ImportShape,
  after: ReadonlyArray<string | null>,
  limit: number,
): Promise<string[][]> {
  const afterCursor = after.length > 0;
  const { rows } = await db.query({
    text: nextKeysSql(shape, afterCursor),
    values: [...after, limit],
    rowMode: 'array',
  });
  return rows as string[][];
}

/** Records the rejects of a chunk (replacing earlier ones of the same rows) and forgets rows now imported. */
export async function recordRejects(
  tx: Queryable,
  policy: string,
  runId: string,
  keys: ReadonlyArray<ReadonlyArray<string>>,
  rejected: readonly RejectedRow[],
): Promise<void> {
  // A row refused by an earlier run and imported now (the source or the target was fixed) is no reject any more.
  await tx.query(
    `DELETE FROM lifecycle.import_rejects
      WHERE policy = $1 AND source_key IN (SELECT value FROM jsonb_array_elements($2::jsonb))`,
    [policy, JSON.stringify(keys)],
  );
  if (rejected.length === 0) return;
  await tx.query(
    `INSERT INTO lifecycle.import_rejects AS r
            (policy, source_key, run_id, sqlstate, reason, column_name, constraint_name)
     SELECT $1, x.key, $2::uuid, x.sqlstate, x.reason, x.column_name, x.constraint_name
       FROM jsonb_to_recordset($3::jsonb)
            AS x(key jsonb, sqlstate text, reason text, column_name text, constraint_name text)`,
    [
      policy,
      runId,
      JSON.stringify(
        rejected.map((r) => ({
          key: r.key,
          sqlstate: r.sqlstate,
          reason: r.reason,
          column_name: r.column,
          constraint_name: r.constraint,
        })),
      ),
    ],
  );
}

async function addRunFigures(tx: Queryable, runId: string, outcome: BatchOutcome): Promise<void> {
  await tx.query(
    `INSERT INTO lifecycle.import_runs AS r (run_id, examined, inserted, skipped, rejected)
     VALUES ($1::uuid, $2, $3, $4, $5)
     ON CONFLICT (run_id) DO UPDATE
        SET examined = r.examined + excluded.examined, inserted = r.inserted + excluded.inserted,
            skipped = r.skipped + excluded.skipped, rejected = r.rejected + excluded.rejected`,
    [runId, outcome.examined, outcome.inserted, outcome.skipped, outcome.rejected.length],
  );
}

export class ImportChunkAction implements ChunkAction {
  // Nothing happens outside the database: the take is the whole chunk.
  readonly takeIsTransaction = true;
  private statements: { readonly shape: ImportShape; readonly insertSql: string } | undefined;

  /**
   * `resolveShape` reads the tables from the catalog on the chunk's connection at the first take of the
   * step (a chunk step has no other connection to read it on): a table dropped or renamed since Start
   * fails the step there.
   */
  /** Before the step's first chunk, outside any transaction: staging an object source (index.ts). */
  readonly prepare?: () => Promise<PreparedChunk<undefined>>;

  constructor(
    private readonly policy: ImportPolicy,
    private readonly resolveShape: (db: Queryable) => Promise<ImportShape>,
    beforeFirstChunk?: () => Promise<void>,
  ) {
    if (beforeFirstChunk) {
      let done = false;
      this.prepare = async () => {
        if (!done) await beforeFirstChunk();
        done = true;
        return { ready: undefined };
      };
    }
  }

  async take(tx: Queryable, input: ChunkInput): Promise<TakenChunk | undefined> {
    if (!this.statements) {
      const shape = await this.resolveShape(tx);
      this.statements = { shape, insertSql: insertRangeSql(shape) };
    }
    const { shape, insertSql } = this.statements;
    const keys = await nextKeys(tx, shape, keysetValues(input.cursor), input.limit);
    if (keys.length === 0) return undefined;
    const outcome = await insertBatch(tx, insertSql, keys);
    await recordRejects(tx, this.policy.name, input.runId, keys, outcome.rejected);
    await addRunFigures(tx, input.runId, outcome);
    const first = keys[0] as string[];
    const last = keys[keys.length - 1] as string[];
    return {
      rows: outcome.inserted,
      cursor: { kind: 'keyset', values: last },
      minTime: null,
      maxTime: null,
      minKey: first,
      maxKey: last,
    };
  }

  async complete() {
    return { bytes: 0, objects: [] };
  }
}
