/**
 * Stand-alone rates of the chunk's client-side stages on one chunk-sized sample of the table, for the
 * breakdown: fetch with pg (array rows, text values, as the DELETE … RETURNING arrives), Parquet encode and
 * SHA-256 exactly as the archive action calls them. Best of a few repetitions (the machine may be shared);
 * nothing is modified.
 */
import type pg from 'pg';
import { sha256Hex } from '../../functions/adapters/archive-store.ts';
import { resolveTable } from '../../functions/adapters/catalog.ts';
import { planParquetColumns } from '../../functions/core/parquet/column-plan.ts';
import { encodeParquet, type ParquetCompression } from '../../functions/core/parquet/encode.ts';
import { quoteIdent } from '../../lib/contracts/identifiers.ts';
import { EVENTS_TABLE } from './dataset.ts';

export interface StageRates {
  readonly sample_rows: number;
  /** SELECT of the sample through pg (server + protocol + row arrays). */
  readonly fetch_rows_per_s: number;
  readonly encode_rows_per_s: number;
  readonly sha256_rows_per_s: number;
  readonly object_bytes: number;
}

const REPETITIONS = 5;

export async function measureStages(
  db: pg.Client,
  sampleRows: number,
  compression: ParquetCompression,
): Promise<StageRates> {
  const table = await resolveTable(db, EVENTS_TABLE);
  const plan = planParquetColumns(table.columns);
  const columns = table.columns.map((column) => quoteIdent(column.name)).join(', ');
  const select = `SELECT ${columns} FROM ${EVENTS_TABLE} ORDER BY created_at, id LIMIT $1`;

  const fetchTimes: number[] = [];
  let rows: Array<Array<string | null>> = [];
  for (let i = 0; i < REPETITIONS; i++) {
    const started = performance.now();
    const result = await db.query<Array<string | null>>({
      text: select,
      values: [sampleRows],
      rowMode: 'array',
    });
    fetchTimes.push(performance.now() - started);
    rows = result.rows;
  }
  if (rows.length === 0) throw new Error('stage sample: the table is empty');

  const encodeTimes: number[] = [];
  const shaTimes: number[] = [];
  let body: Uint8Array = new Uint8Array();
  for (let i = 0; i < REPETITIONS; i++) {
    let started = performance.now();
    body = encodeParquet(plan, rows, { compression });
    encodeTimes.push(performance.now() - started);
    started = performance.now();
    sha256Hex(body);
    shaTimes.push(performance.now() - started);
  }
  const rate = (ms: number[]) => rows.length / (Math.min(...ms) / 1000);
  return {
    sample_rows: rows.length,
    fetch_rows_per_s: rate(fetchTimes),
    encode_rows_per_s: rate(encodeTimes),
    sha256_rows_per_s: rate(shaTimes),
    object_bytes: body.byteLength,
  };
}
