/**
 * The archive chunk's two readings of the same deleted rows, for tests that hold the COPY binary reading
 * (the product's) to the row protocol's text converted by the column plan (the reference): each reading in
 * a transaction rolled back, its error kept.
 */
import type pg from 'pg';
import { ArchiveAction } from '../../functions/actions/archive/chunk.ts';
import {
  copySelection,
  fromDecoded,
  type TakenColumns,
} from '../../functions/actions/archive/taken-columns.ts';
import { type ResolvedTable, resolveTable, toChunkTarget } from '../../functions/adapters/catalog.ts';
import { copyOut } from '../../functions/adapters/copy-out.ts';
import {
  buildDeleteChunkStatement,
  type ChunkStatement,
  settingParams,
} from '../../functions/core/chunk-sql.ts';
import {
  type ParquetColumnPlan,
  type ParquetValue,
  planParquetColumns,
} from '../../functions/core/parquet/column-plan.ts';
import { decodeCopyBinary } from '../../functions/core/parquet/copy-binary.ts';
import { locateValueError } from '../../functions/core/parquet/errors.ts';
import { ChunkingSchema } from '../../lib/contracts/chunking.ts';
import type { ArchivePolicy } from '../../lib/contracts/config.ts';

/** Every eligible row of the test tables is older than this. */
export const CUTOFF = '2100-01-01T00:00:00Z';

/** Every value as the server's text, as the product's connections read them. */
export const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

export type Reading = { ok: true; taken: TakenColumns } | { ok: false; error: Error };

export interface BothReadings {
  readonly binary: Reading;
  readonly rows: Reading;
  readonly plan: ParquetColumnPlan[];
  readonly names: string[];
}

/** One chunk (up to 1000 rows, ordered by `time`) of `table`, read both ways. */
export async function readBoth(client: pg.Client, table: string, time: string): Promise<BothReadings> {
  const resolved = await resolveTable(client, table);
  const target = toChunkTarget(resolved, { name: time, kind: 'timestamptz' }, undefined);
  const plan = planParquetColumns(resolved.columns);
  const params = [CUTOFF, 1000];
  const binary = await rolledBack(client, async () => {
    const { prelude, param } = settingParams(params);
    const statement = buildDeleteChunkStatement(target, false, { param });
    const selection = copySelection(statement, resolved.columns, plan);
    await client.query(prelude);
    const { data } = await copyOut(client, selection.text);
    return fromDecoded(decodeCopyBinary(data, selection.readers), statement, selection);
  });
  const rows = await rolledBack(client, async () => {
    const statement = buildDeleteChunkStatement(target, false);
    const result = await client.query<Array<string | null>>({
      text: statement.text,
      values: params,
      rowMode: 'array',
    });
    return fromRows(result.rows, statement, plan);
  });
  return { binary, rows, plan, names: resolved.columns.map((c) => c.name) };
}

/** Every row's time text, as the Hive partitions, ledger ranges and cursor read it. */
export function timeTexts(taken: TakenColumns): Array<string | null> {
  return Array.from({ length: taken.rows }, (_, row) => taken.timeTextAt(row));
}

/** The reading's columns, or its error thrown. */
export function taken(reading: Reading): TakenColumns {
  if (!reading.ok) throw reading.error;
  return reading.taken;
}

/** A STRING column's value (its UTF-8 bytes) as text; any other value as it is. */
export function plainValue(value: ParquetValue | null | undefined): unknown {
  return value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value;
}

/** An ArchiveAction for `take` alone (no bucket: take never uploads). */
export function takingArchiveAction(): ArchiveAction {
  return new ArchiveAction({ bucket: 'unused' } as never, {
    announcePending: async () => undefined,
    isStillPending: async () => true,
  });
}

/** ArchiveAction.take's input for `table` (time column `at`). */
export function archiveTakeInput(
  table: ResolvedTable,
  cursor: unknown,
  limit: number,
  partitionBy: 'year' | 'month' = 'year',
): never {
  return {
    policy: { name: 'p', action: 'archive', archive: { partitionBy } } as unknown as ArchivePolicy,
    runId: 'r',
    cutoff: CUTOFF,
    limit,
    cursor,
    table,
    target: toChunkTarget(table, { name: 'at', kind: 'timestamptz' }, undefined),
    chunking: ChunkingSchema.parse({}),
  } as never;
}

async function rolledBack(client: pg.Client, run: () => Promise<TakenColumns>): Promise<Reading> {
  await client.query('BEGIN');
  try {
    return { ok: true, taken: await run() };
  } catch (error) {
    return { ok: false, error: error as Error };
  } finally {
    await client.query('ROLLBACK');
  }
}

/** The reference: rows from the row protocol (text, in `statement`'s result order), converted by the plan. */
function fromRows(
  rows: ReadonlyArray<ReadonlyArray<string | null>>,
  statement: ChunkStatement,
  plan: readonly ParquetColumnPlan[],
): TakenColumns {
  const leading = statement.firstColumnPosition;
  const [timeAt = 0] = statement.orderPositions;
  const values = plan.map((column, index) => {
    const vector: Array<ParquetValue | null> = new Array(rows.length);
    let r = 0;
    try {
      for (; r < rows.length; r++) {
        const text = (rows[r] as ReadonlyArray<string | null>)[leading + index];
        vector[r] = text === null || text === undefined ? null : column.fromText(text);
      }
    } catch (error) {
      throw locateValueError(error, column.name, r);
    }
    return vector;
  });
  return {
    rows: rows.length,
    values,
    timeTextAt: (row) => rows[row]?.[timeAt] ?? null,
    dayAt: () => undefined,
    orderTextAt: (row) => statement.orderPositions.map((p) => rows[row]?.[p] ?? null),
  };
}
