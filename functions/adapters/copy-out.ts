/**
 * `COPY … TO STDOUT` read whole into one buffer, for output that is bounded by the caller (a chunk).
 */
import { to as copyTo } from 'pg-copy-streams';
import type { Queryable } from './transactions.ts';

export async function copyOut(db: Queryable, sql: string): Promise<Buffer> {
  const stream = db.query(copyTo(sql)) as unknown as AsyncIterable<Buffer>;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}
