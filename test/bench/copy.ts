/**
 * The baseline: `COPY (SELECT …) TO STDOUT` read to the end by a pg client and discarded.
 *
 * pg-copy-streams is not installed, so this uses pg itself: a Query whose CopyData handler counts bytes. The
 * rows cross the wire and pg's protocol parser frames every CopyData message (as pg-copy-streams would), but
 * nothing parses fields: it is the cost of getting the rows out of PostgreSQL, not of using them.
 */
import pg from 'pg';
import { EVENTS_TABLE } from './dataset.ts';

export interface CopyResult {
  readonly rows: number;
  readonly bytes: number;
  readonly seconds: number;
}

/** A Query whose COPY OUT data is counted and dropped. */
class DiscardingCopy extends pg.Query {
  bytes = 0;

  /** Called by pg's Client for each CopyData message of the active query (pg's own Query ignores them). */
  handleCopyData(message: { chunk: Buffer }): void {
    this.bytes += message.chunk.length;
  }
}

export async function copyOut(db: pg.Client, select: string): Promise<CopyResult> {
  const started = performance.now();
  const { rows, bytes } = await new Promise<{ rows: number; bytes: number }>((resolve, reject) => {
    const query: DiscardingCopy = new DiscardingCopy(`COPY (${select}) TO STDOUT`, (error, result) => {
      if (error) reject(error);
      else resolve({ rows: result.rowCount ?? 0, bytes: query.bytes });
    });
    db.query(query);
  });
  return { rows, bytes, seconds: (performance.now() - started) / 1000 };
}

/** The rows an archive run takes, in the order it takes them. `cutoff`: ISO text. */
export function orderedSelect(cutoff: string): string {
  return `SELECT * FROM ${EVENTS_TABLE} WHERE created_at < '${cutoff}'::timestamptz ORDER BY created_at, id`;
}

export function unorderedSelect(cutoff: string): string {
  return `SELECT * FROM ${EVENTS_TABLE} WHERE created_at < '${cutoff}'::timestamptz`;
}
