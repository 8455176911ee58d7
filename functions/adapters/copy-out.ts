/**
 * `COPY … TO STDOUT` on a pg connection: read whole into one buffer (for output the caller bounds, a chunk),
 * and the wait for the statement's end that its row count needs.
 */
import pg from 'pg';
import type { Queryable } from './transactions.ts';

/** A COPY's output, the row count its command tag gave, and how to hand its buffer back for the next one. */
export interface CopiedOut {
  readonly data: Buffer;
  readonly rows: number;
  /**
   * Gives the buffer back to the {@link CopyBuffers} it came from: call it once nothing reads `data` any more
   * (the next COPY writes over it). Without buffers, or never called: nothing happens, the buffer is collected.
   */
  readonly release: () => void;
}

/**
 * Runs `sql` (a `COPY … TO STDOUT`) and resolves once pg has handed the query its ReadyForQuery, i.e. after the
 * command tag was read. The statement is sent before the first await (when the connection is idle).
 *
 * The rows come through pg's own protocol parser (a Query whose CopyData handler copies each message into
 * place), as the benchmark's baseline reads them: pg-copy-streams, which joined every socket read's rows into
 * a new buffer and pushed it through a stream, cost this step 0.1–0.6 CPU-s more per million rows.
 */
export function copyOut(
  db: Queryable,
  sql: string,
  options: {
    readonly expectedBytes?: number;
    readonly buffers?: CopyBuffers;
    /**
     * Called after each piece arrives with the buffer holding the output so far and its length (the buffer may
     * change as it grows; the bytes keep their offsets): to decode rows while the server sends the rest.
     */
    readonly onData?: (data: Buffer, length: number) => void;
  } = {},
): Promise<CopiedOut> {
  const out = new GrowingBuffer(options.expectedBytes ?? 0, options.buffers);
  const done = new Promise<CopiedOut>((resolve, reject) => {
    const query = new CopyOutQuery(sql, out, options.onData, (error) => {
      // Nothing will read what arrived before the error.
      out.release();
      reject(error);
    });
    // Errors settle through CopyOutQuery.handleError, whether pg then emits 'error' (no callback: the
    // connection's timeout notes listen for it, commons/database.ts) or calls a callback (query_timeout adds one).
    query.on('error', () => undefined);
    query.once('end', (result: pg.QueryResult) => {
      if (query.failure) {
        out.release();
        reject(query.failure.error);
        return;
      }
      resolve({ data: out.bytes(), rows: result.rowCount ?? 0, release: () => out.release() });
    });
    (db as unknown as { query: (query: pg.Query) => unknown }).query(query);
  });
  return done;
}

/** A Query whose COPY OUT data goes into a buffer (pg's own Query drops CopyData messages). */
class CopyOutQuery extends pg.Query {
  /** What failed while the output was kept (e.g. a buffer that could not be allocated): the COPY's result. */
  failure: { readonly error: unknown } | undefined;

  constructor(
    text: string,
    private readonly out: GrowingBuffer,
    private readonly onData: ((data: Buffer, length: number) => void) | undefined,
    private readonly onError: (error: unknown) => void,
  ) {
    super(text);
  }

  /**
   * Called by pg's Client for each CopyData message of the active query: one row of a COPY. Inside pg's socket
   * handler, where a throw would escape as an uncaught exception and leave the query unsettled: a failure is
   * kept, the rest of the output skipped, and the COPY rejected with it when it ends.
   */
  handleCopyData(message: { chunk: Buffer }): void {
    if (this.failure) return;
    try {
      this.out.append(message.chunk);
      this.onData?.(this.out.current, this.out.length);
    } catch (error) {
      this.failure = { error };
    }
  }

  /** Called by pg's Client for an ErrorResponse or a lost connection: settles first, then pg's own handling. */
  handleError(error: Error, connection: unknown): void {
    this.onError(error);
    (pg.Query.prototype as unknown as { handleError: (e: Error, c: unknown) => void }).handleError.call(
      this,
      error,
      connection,
    );
  }
}

/**
 * Buffers for COPY output kept from one chunk to the next: a buffer written for the first time faults its pages
 * in one by one (≈ 5–10 ms per 6 MB here, against under 1 ms when written again). Two are kept, as the chunk
 * loop has two chunks in flight.
 */
export class CopyBuffers {
  private static readonly KEEP = 2;
  /** Room left when a buffer is allocated, so a slightly larger next chunk still fits. */
  private static readonly HEADROOM = 1.1;
  private readonly free: Buffer[] = [];

  /** A buffer of at least `bytes`: the smallest kept one that fits, else a new one with some headroom. */
  take(bytes: number): Buffer {
    let best = -1;
    this.free.forEach((buffer, index) => {
      if (buffer.length >= bytes && (best < 0 || buffer.length < (this.free[best] as Buffer).length))
        best = index;
    });
    if (best >= 0) return this.free.splice(best, 1)[0] as Buffer;
    return Buffer.allocUnsafe(Math.ceil(bytes * CopyBuffers.HEADROOM));
  }

  /** Keeps `buffer` for a later COPY (the largest {@link CopyBuffers.KEEP} are kept). */
  give(buffer: Buffer): void {
    if (this.free.includes(buffer)) return;
    this.free.push(buffer);
    this.free.sort((a, b) => b.length - a.length);
    this.free.length = Math.min(this.free.length, CopyBuffers.KEEP);
  }
}

/**
 * The output copied into one buffer as it arrives, sized from the caller's expectation (grown by doubling past
 * it): the copying happens while the server still streams, where joining the pieces at the end (Buffer.concat)
 * held the event loop for ≈ 16 ms per 5 MB chunk after the last byte.
 */
class GrowingBuffer {
  private buffer: Buffer;
  private released = false;
  length = 0;

  constructor(
    expectedBytes: number,
    private readonly buffers: CopyBuffers | undefined,
  ) {
    // A hint: an expectation that cannot be allocated (or is not a size) starts small and grows instead.
    const size = Number.isFinite(expectedBytes) ? Math.max(0, Math.ceil(expectedBytes)) : 0;
    try {
      this.buffer = buffers ? buffers.take(size) : Buffer.allocUnsafe(size);
    } catch {
      this.buffer = Buffer.allocUnsafe(0);
    }
  }

  append(chunk: Buffer): void {
    if (this.length + chunk.length > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + chunk.length, 65_536));
      this.buffer.copy(grown, 0, 0, this.length);
      // Not given back to the buffers: a reader fed as rows arrive may hold views of it (collected with them).
      this.buffer = grown;
    }
    chunk.copy(this.buffer, this.length);
    this.length += chunk.length;
  }

  /** The buffer written now (its first `length` bytes are the output so far). */
  get current(): Buffer {
    return this.buffer;
  }

  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  /** Gives the buffer back, once: a second call (after a later COPY took it) would hand it out twice. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.buffers?.give(this.buffer);
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
