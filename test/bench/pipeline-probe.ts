/**
 * A probe, not the product: the archive chunk (DELETE … RETURNING → Parquet → PutObject → verify → COMMIT)
 * rebuilt from the product's own pieces (chunk SQL, column plan, encoder, object keys, S3 store) without the
 * state machine, the lease or the ledger, and run two ways on the same kind of data:
 *
 * - `sequential`: one connection, each chunk's stages one after the other (what run-chunks does today);
 * - `pipelined`: two connections in alternation. As soon as chunk N's rows are back, chunk N+1's DELETE is
 *   sent on the other connection (already inside its transaction, so nothing waits for a BEGIN round trip),
 *   then chunk N is encoded, uploaded and verified. Commits stay in chunk order, so the committed chunks are
 *   always a prefix of the keyset: if chunk N fails, N+1 has not committed and both roll back.
 *
 * Chunks are a fixed size (no adaptive sizing) and one small INSERT per chunk stands in for the ledger.
 * The difference between the two modes is the gain from overlapping PostgreSQL's work with Node's.
 */
import { randomUUID } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type pg from 'pg';
import { type ObjectStore, sha256Hex } from '../../functions/adapters/archive-store.ts';
import { connect, resolveClientConfig } from '../../functions/commons/database.ts';
import { buildDeleteChunkStatement, type ChunkStatement } from '../../functions/core/chunk-sql.ts';
import { computeCutoff } from '../../functions/core/cutoff.ts';
import { objectKey, partitionOf } from '../../functions/core/object-keys.ts';
import { type ParquetColumnPlan, planParquetColumns } from '../../functions/core/parquet/column-plan.ts';
import { encodeParquet } from '../../functions/core/parquet/encode.ts';
import { type PreparedTarget, prepareTarget } from '../../functions/run/prepare-target.ts';
import type { ArchivePolicy } from '../../lib/contracts/config.ts';

export type ProbeMode = 'sequential' | 'pipelined';

export interface ProbeResult {
  readonly mode: ProbeMode;
  readonly rows: number;
  readonly chunks: number;
  readonly objects: number;
  readonly seconds: number;
  /** Share of the wall time the event loop was busy (performance.eventLoopUtilization). */
  readonly main_thread_busy_share: number;
}

type Row = Array<string | null>;

interface ProbeContext {
  readonly policy: ArchivePolicy;
  readonly prepared: PreparedTarget;
  readonly plan: ParquetColumnPlan[];
  readonly store: ObjectStore;
  readonly cutoff: string;
  readonly runId: string;
  readonly limit: number;
}

interface Fetched {
  readonly rows: Row[];
  readonly statement: ChunkStatement;
}

const LEDGER_STAND_IN = 'bench.probe_chunks';

export async function runArchiveProbe(options: {
  databaseUrl: string;
  store: ObjectStore;
  policy: ArchivePolicy;
  chunkRows: number;
  mode: ProbeMode;
}): Promise<ProbeResult> {
  const config = await resolveClientConfig(
    { DATABASE_URL: options.databaseUrl },
    { lockTimeoutMs: 10_000, statementTimeoutMs: 0 },
  );
  const clients = [await connect(config), await connect(config)] as const;
  try {
    const [first] = clients;
    await first.query(
      `CREATE TABLE IF NOT EXISTS ${LEDGER_STAND_IN} (run_id uuid, seq int, rows int, keys text[], cursor text[])`,
    );
    const prepared = await prepareTarget(first, options.policy);
    const context: ProbeContext = {
      policy: options.policy,
      prepared,
      plan: planParquetColumns(prepared.table.columns),
      store: options.store,
      cutoff: computeCutoff(new Date(), options.policy.retention),
      runId: randomUUID(),
      limit: options.chunkRows,
    };
    const elu = performance.eventLoopUtilization();
    const started = performance.now();
    const totals =
      options.mode === 'sequential' ? await sequential(context, first) : await pipelined(context, clients);
    const seconds = (performance.now() - started) / 1000;
    return {
      mode: options.mode,
      ...totals,
      seconds,
      main_thread_busy_share: performance.eventLoopUtilization(elu).utilization,
    };
  } finally {
    for (const client of clients) {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end().catch(() => undefined);
    }
  }
}

interface Totals {
  rows: number;
  chunks: number;
  objects: number;
}

async function sequential(context: ProbeContext, db: pg.Client): Promise<Totals> {
  const totals: Totals = { rows: 0, chunks: 0, objects: 0 };
  let cursor: Row | null = null;
  for (;;) {
    await db.query('BEGIN');
    const fetched = await fetchChunk(context, db, cursor);
    if (fetched.rows.length === 0) {
      await db.query('COMMIT');
      return totals;
    }
    cursor = cursorOf(fetched);
    const keys = await archiveRows(context, fetched);
    await recordAndCommit(context, db, totals.chunks + 1, fetched, keys);
    add(totals, fetched, keys);
    if (fetched.rows.length < context.limit) return totals;
  }
}

async function pipelined(context: ProbeContext, clients: readonly [pg.Client, pg.Client]): Promise<Totals> {
  const totals: Totals = { rows: 0, chunks: 0, objects: 0 };
  await Promise.all(clients.map((client) => client.query('BEGIN')));
  let turn = 0;
  let pending = quiet(fetchChunk(context, clients[0], null));
  // Upload + commit of the chunk before the current one (the other connection).
  let finishing: Promise<void> = Promise.resolve();
  for (;;) {
    const db = clients[turn % 2] as pg.Client;
    const other = clients[(turn + 1) % 2] as pg.Client;
    const fetched = await pending;
    const last = fetched.rows.length < context.limit;
    // The other connection is free (and inside a fresh transaction) once its chunk has committed.
    await finishing;
    if (fetched.rows.length === 0) {
      await db.query('COMMIT');
      return totals;
    }
    if (!last) {
      pending = quiet(fetchChunk(context, other, cursorOf(fetched)));
      // Let the DELETE reach the socket before the encoder takes the thread.
      await yieldToLoop();
    }
    const seq = turn + 1;
    finishing = quiet(
      (async () => {
        const keys = await archiveRows(context, fetched);
        await recordAndCommit(context, db, seq, fetched, keys);
        add(totals, fetched, keys);
        if (!last) await db.query('BEGIN');
      })(),
    );
    if (last) {
      await finishing;
      return totals;
    }
    turn++;
  }
}

/** Marks a promise as handled now (it is awaited later), so a rejection does not count as unhandled. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

function add(totals: Totals, fetched: Fetched, keys: string[]): void {
  totals.rows += fetched.rows.length;
  totals.chunks += 1;
  totals.objects += keys.length;
}

async function fetchChunk(context: ProbeContext, db: pg.Client, cursor: Row | null): Promise<Fetched> {
  const statement = buildDeleteChunkStatement(context.prepared.target, cursor !== null);
  const result = await db.query<Row>({
    text: statement.text,
    values: [context.cutoff, context.limit, ...(cursor ?? [])],
    rowMode: 'array',
  });
  return { rows: result.rows, statement };
}

function cursorOf(fetched: Fetched): Row {
  const last = fetched.rows[fetched.rows.length - 1] as Row;
  return fetched.statement.orderPositions.map((i) => last[i] ?? null);
}

/** Same work per Hive partition as ArchiveAction (minus the pending announcement). */
async function archiveRows(context: ProbeContext, fetched: Fetched): Promise<string[]> {
  const { policy, prepared, plan, store } = context;
  const keys: string[] = [];
  let start = 0;
  const rows = fetched.rows;
  while (start < rows.length) {
    const partition = partitionOf((rows[start] as Row)[0] ?? '', policy.archive.partitionBy);
    let end = start + 1;
    while (
      end < rows.length &&
      partitionOf((rows[end] as Row)[0] ?? '', policy.archive.partitionBy) === partition
    )
      end++;
    const columnsOnly = rows.slice(start, end).map((row) => row.slice(fetched.statement.firstColumnPosition));
    const body = encodeParquet(plan, columnsOnly, { compression: policy.archive.compression });
    const sha256 = sha256Hex(body);
    const key = objectKey({
      policyName: policy.name,
      schema: prepared.table.schema,
      table: prepared.table.table,
      partition,
      runId: context.runId,
      unique: randomUUID(),
    });
    await store.put(key, body, sha256, { rows: String(end - start), run: context.runId });
    await store.verify({ key, bytes: body.byteLength, sha256 }, policy.archive.verify);
    keys.push(key);
    start = end;
  }
  return keys;
}

async function recordAndCommit(
  context: ProbeContext,
  db: pg.Client,
  seq: number,
  fetched: Fetched,
  keys: string[],
): Promise<void> {
  await db.query(
    `INSERT INTO ${LEDGER_STAND_IN} (run_id, seq, rows, keys, cursor) VALUES ($1, $2, $3, $4, $5)`,
    [context.runId, seq, fetched.rows.length, keys, cursorOf(fetched)],
  );
  await db.query('COMMIT');
}
