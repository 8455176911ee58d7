/**
 * `COPY … TO STDOUT` on a pg connection: read whole into one buffer (for output the caller bounds, a chunk),
 * and the wait for the statement's end that its row count needs.
 */
import { to as copyTo } from 'pg-copy-streams';
import type { Queryable } from './transactions.ts';

/**
 * The COPY's output and the row count its command tag gave. The stream ends at CopyDone, before the tag is
 * read: the count is taken once pg has handed the query its ReadyForQuery.
 */
export async function copyOut(db: Queryable, sql: string): Promise<{ data: Buffer; rows: number }> {
  const copy = copyTo(sql);
  const ready = readyForQuery(copy);
  const stream = db.query(copy) as unknown as AsyncIterable<Buffer>;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  await ready;
  return { data: Buffer.concat(chunks), rows: copy.rowCount };
}

/** Resolves when pg has handed the query its ReadyForQuery, i.e. after the command tag was read. */
export function readyForQuery(query: object): Promise<void> {
  const patched = query as { handleReadyForQuery: (...args: unknown[]) => void };
  const original = patched.handleReadyForQuery;
  return new Promise((resolve) => {
    patched.handleReadyForQuery = (...args: unknown[]) => {
      original.apply(query, args);
      resolve();
    };
  });
}
