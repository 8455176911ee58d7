/**
 * Where archive time goes, measured from outside the product: the step dependencies are wrapped so that
 * every query (by kind) and every S3 call (put / verify) is timed. Nothing in functions/ is changed.
 */
import type { Context } from 'aws-lambda';
import type pg from 'pg';
import type {
  BucketCheck,
  ObjectStore,
  StoredObject,
  VerifyMode,
} from '../../functions/adapters/archive-store.ts';
import type { StepDependencies } from '../../functions/run/dependencies.ts';

export type TimingKind =
  | 'db.connect'
  | 'db.delete_returning'
  | 'db.announce_pending'
  | 'db.ledger'
  | 'db.begin_commit'
  | 'db.other'
  | 's3.put'
  | 's3.verify'
  | 's3.other';

/** Seconds and calls per kind of work; `K` names the kinds (the archive's by default). */
export class Timings<K extends string = TimingKind> {
  private readonly totals = new Map<K, { ms: number; count: number }>();

  add(kind: K, ms: number): void {
    const entry = this.totals.get(kind) ?? { ms: 0, count: 0 };
    entry.ms += ms;
    entry.count += 1;
    this.totals.set(kind, entry);
  }

  async time<T>(kind: K, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.add(kind, performance.now() - started);
    }
  }

  /** Seconds and call counts per kind, in a stable order. */
  snapshot(): Record<string, { seconds: number; calls: number }> {
    const out: Record<string, { seconds: number; calls: number }> = {};
    for (const [kind, { ms, count }] of [...this.totals].sort(([a], [b]) => a.localeCompare(b))) {
      out[kind] = { seconds: ms / 1000, calls: count };
    }
    return out;
  }

  totalSeconds(): number {
    let ms = 0;
    for (const { ms: kindMs } of this.totals.values()) ms += kindMs;
    return ms / 1000;
  }
}

export function classifyQuery(text: string): TimingKind {
  const sql = text.trimStart();
  if (/^(COPY \()?(WITH deleted AS|DELETE FROM (?!lifecycle\.))/.test(sql)) return 'db.delete_returning';
  if (/^(BEGIN|COMMIT|ROLLBACK)\b/i.test(sql) || sql.startsWith(`SELECT set_config('lock_timeout'`))
    return 'db.begin_commit';
  if (sql.startsWith('INSERT INTO lifecycle.pending_objects')) return 'db.announce_pending';
  if (/\blifecycle\.(runs|chunks|archived_objects|pending_objects|leases)\b/.test(sql)) return 'db.ledger';
  return 'db.other';
}

/** Wraps `client.query` in place; queries on one client run one at a time, so call-to-settle is their time. */
export function instrumentClient(client: pg.Client, timings: Timings): pg.Client {
  const target = client as unknown as { query: (...args: unknown[]) => unknown };
  const original = target.query.bind(client);
  target.query = (...args: unknown[]) => {
    const first = args[0];
    const text = typeof first === 'string' ? first : ((first as { text?: unknown } | undefined)?.text ?? '');
    const started = performance.now();
    const result = original(...args);
    if (result instanceof Promise) {
      return result.finally(() => timings.add(classifyQuery(String(text)), performance.now() - started));
    }
    // A COPY stream (pg-copy-streams): timed from submission to its end.
    const stream = result as { once?: (event: string, listener: () => void) => unknown } | undefined;
    if (typeof stream?.once === 'function') {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        timings.add(classifyQuery(String(text)), performance.now() - started);
      };
      stream.once('end', finish);
      stream.once('error', finish);
    }
    return result;
  };
  return client;
}

/** An ObjectStore that times the one it wraps. */
export class TimingStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly timings: Timings,
  ) {}

  get bucket(): string {
    return this.inner.bucket;
  }

  checkBucket(check?: BucketCheck): Promise<void> {
    return this.timings.time('s3.other', () => this.inner.checkBucket(check));
  }

  put(key: string, body: Uint8Array, sha256: string, metadata: Record<string, string>): Promise<void> {
    return this.timings.time('s3.put', () => this.inner.put(key, body, sha256, metadata));
  }

  verify(object: StoredObject, mode: VerifyMode): Promise<void> {
    return this.timings.time('s3.verify', () => this.inner.verify(object, mode));
  }

  delete(key: string): Promise<void> {
    return this.timings.time('s3.other', () => this.inner.delete(key));
  }

  deleteEveryVersion(key: string): Promise<number> {
    return this.timings.time('s3.other', () => this.inner.deleteEveryVersion(key));
  }
}

/** Step dependencies whose database clients are instrumented (the store is expected to be a TimingStore). */
export function instrumentDependencies(
  base: (context: Context) => StepDependencies,
  timings: Timings,
): (context: Context) => StepDependencies {
  return (context) => {
    const deps = base(context);
    return {
      ...deps,
      connect: async (timeouts) =>
        instrumentClient(await timings.time('db.connect', () => deps.connect(timeouts)), timings),
    };
  };
}
