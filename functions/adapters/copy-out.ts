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
export async function copyOut(
  db: Queryable,
  sql: string,
  expectedBytes = 0,
): Promise<{ data: Buffer; rows: number }> {
  const copy = copyTo(sql);
  const ready = readyForQuery(copy);
  const stream = db.query(copy) as unknown as AsyncIterable<Buffer>;
  const out = new GrowingBuffer(expectedBytes);
  for await (const chunk of stream) out.append(chunk);
  await ready;
  return { data: out.bytes(), rows: copy.rowCount };
}

/**
 * The output copied into one buffer as it arrives, sized from the caller's expectation (grown by doubling past
 * it): the copying happens while the server still streams, where joining the pieces at the end (Buffer.concat)
 * held the event loop for ≈ 16 ms per 5 MB chunk after the last byte (fresh pages fault on first touch).
 */
class GrowingBuffer {
  private buffer: Buffer;
  private length = 0;

  constructor(expectedBytes: number) {
    // A hint: an expectation that cannot be allocated (or is not a size) starts small and grows instead.
    const size = Number.isFinite(expectedBytes) ? Math.max(0, Math.ceil(expectedBytes)) : 0;
    try {
      this.buffer = Buffer.allocUnsafe(size);
    } catch {
      this.buffer = Buffer.allocUnsafe(0);
    }
  }

  append(chunk: Buffer): void {
    if (this.length + chunk.length > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + chunk.length, 65_536));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    chunk.copy(this.buffer, this.length);
    this.length += chunk.length;
  }

  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
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
