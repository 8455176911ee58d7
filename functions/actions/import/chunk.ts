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
import { alreadyImportedSql, type ImportShape, insertRangeSql, nextKeysSql } from './statements.ts';

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
  // A row refused by an earlier run and imported (or found already there) now is no reject any more.
  const refused = new Set(rejected.map((r) => JSON.stringify(r.key)));
  const settled = keys.filter((key) => !refused.has(JSON.stringify(key)));
  await tx.query(
    `DELETE FROM lifecycle.import_rejects
      WHERE policy = $1 AND source_key IN (SELECT value FROM jsonb_array_elements($2::jsonb))`,
    [policy, JSON.stringify(settled)],
  );
  if (rejected.length === 0) return;
  // Refused again: the latest reason and run, the first refusal's time kept.
  await tx.query(
    `INSERT INTO lifecycle.import_rejects AS r
            (policy, source_key, run_id, sqlstate, reason, column_name, constraint_name)
     SELECT $1, x.key, $2::uuid, x.sqlstate, x.reason, x.column_name, x.constraint_name
       FROM jsonb_to_recordset($3::jsonb)
            AS x(key jsonb, sqlstate text, reason text, column_name text, constraint_name text)
     ON CONFLICT (policy, source_key) DO UPDATE
        SET run_id = excluded.run_id, sqlstate = excluded.sqlstate, reason = excluded.reason,
            column_name = excluded.column_name, constraint_name = excluded.constraint_name,
            rejected_at = now()`,
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

/**
 * Before a chunk reads anything: deferred constraints checked at once (a DEFERRABLE foreign key would otherwise
 * fail the whole chunk at COMMIT, outside the savepoints that set a bad row aside), and the run's figures row
 * locked, so that a pipelined chunk waits here until the previous one committed: its INSERTs then see the rows
 * that one imported (a child row whose parent came in the chunk before is not refused by its foreign key).
 */
export async function prepareImportTransaction(tx: Queryable, runId: string | undefined): Promise<void> {
  await tx.query('SET CONSTRAINTS ALL IMMEDIATE');
  if (runId === undefined) return;
  await tx.query(
    `INSERT INTO lifecycle.import_runs AS r (run_id) VALUES ($1::uuid)
     ON CONFLICT (run_id) DO UPDATE SET examined = r.examined`,
    [runId],
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
  private statements:
    | { readonly shape: ImportShape; readonly insertSql: string; readonly alreadyImportedSql: string }
    | undefined;

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
      this.statements = {
        shape,
        insertSql: insertRangeSql(shape),
        alreadyImportedSql: alreadyImportedSql(shape),
      };
    }
    const { shape } = this.statements;
    await prepareImportTransaction(tx, input.runId);
    const keys = await nextKeys(tx, shape, keysetValues(input.cursor), input.limit);
    if (keys.length === 0) return undefined;
    const outcome = await insertBatch(tx, this.statements, keys);
    await recordRejects(tx, this.policy.name, input.runId, keys, outcome.rejected);
    await addRunFigures(tx, input.runId, outcome);
    const first = keys[0] as string[];
    const last = keys[keys.length - 1] as string[];
    return {
      rows: outcome.inserted,
      sizingRows: outcome.examined,
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
