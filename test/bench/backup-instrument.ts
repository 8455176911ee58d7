/**
 * Where backup time goes, measured from outside the product (nothing in functions/ changes): the step
 * dependencies' connections are wrapped so that every query is timed by kind, each part's `COPY … TO STDOUT`
 * from its submission to the end of its stream, and each part's transaction (the worker's BEGIN … COMMIT under
 * the exported snapshot) from BEGIN to the end of COMMIT; the S3 client gets a middleware that times every
 * command. Parts run in parallel and a part's uploads overlap its COPY: the seconds per kind are time in
 * flight, summed, not shares of the wall time. `parts_busy_s` (the union of the part transactions) is.
 *
 * Bench-only toggle (`skipChecksum`): each part's content-checksum query (an extra scan of the part's rows,
 * content-checksum.ts) is replaced by one that returns the row count the part's COPY reported and a zero sum,
 * so a run with and a run without it show its cost on the wall clock. The manifest of such a run holds
 * meaningless checksums: it is timed, never restored.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import type pg from 'pg';
import type { StepDependencies } from '../../functions/run/dependencies.ts';
import { Timings } from './instrument.ts';

export type BackupTimingKind =
  | 'db.connect'
  | 'db.copy_out'
  | 'db.checksum'
  | 'db.part_boundaries'
  | 'db.snapshot'
  | 'db.ledger'
  | 'db.catalog'
  | 'db.other'
  | `s3.${string}`;

/** A COPY TO stream as pg-copy-streams makes it (the part writer's). */
interface CopyStream {
  readonly text: string;
  readonly rowCount: number;
  once(event: string, listener: () => void): unknown;
  submit(connection: unknown): void;
}

function isCopyStream(value: unknown): value is CopyStream {
  const candidate = value as Partial<CopyStream> | undefined;
  return (
    typeof candidate?.submit === 'function' &&
    typeof candidate.text === 'string' &&
    candidate.text.startsWith('COPY ') &&
    candidate.text.endsWith(' TO STDOUT')
  );
}

export function classifyBackupQuery(text: string): BackupTimingKind {
  const sql = text.trimStart();
  if (sql.startsWith('SELECT count(*)::text AS rows') && sql.includes('md5(')) return 'db.checksum';
  if (sql.includes('row_number() OVER')) return 'db.part_boundaries';
  if (
    /^(BEGIN|COMMIT|ROLLBACK|SET TRANSACTION SNAPSHOT|SET LOCAL|SET idle_in_transaction|LOCK TABLE)\b/i.test(
      sql,
    ) ||
    sql.includes('pg_export_snapshot')
  )
    return 'db.snapshot';
  if (/\blifecycle\./.test(sql)) return 'db.ledger';
  if (/\bpg_catalog\.|\binformation_schema\./.test(sql)) return 'db.catalog';
  return 'db.other';
}

/** The timings of one backup run. */
export class BackupTimings extends Timings<BackupTimingKind> {
  /** [start, end] of every part transaction (performance.now() ms). */
  readonly partIntervals: Array<readonly [number, number]> = [];

  /** Seconds during which at least one part transaction was open. */
  partsBusySeconds(): number {
    const sorted = [...this.partIntervals].sort((a, b) => a[0] - b[0]);
    let busy = 0;
    let start = Number.NaN;
    let end = Number.NEGATIVE_INFINITY;
    for (const [from, to] of sorted) {
      if (from > end) {
        if (end > start) busy += end - start;
        start = from;
        end = to;
      } else {
        end = Math.max(end, to);
      }
    }
    if (end > start) busy += end - start;
    return busy / 1000;
  }
}

export interface InstrumentOptions {
  /** Replace each part's checksum query by the part's COPY row count (see the module comment). */
  readonly skipChecksum: boolean;
}

const SKIPPED_CHECKSUM = `SELECT $1::text AS rows, '0'::text AS sum`;

/** Wraps `client.query` in place: timings by kind, the part's COPY and transaction, the checksum toggle. */
function instrumentBackupClient(
  client: pg.Client,
  timings: BackupTimings,
  options: InstrumentOptions,
): pg.Client {
  const target = client as unknown as { query: (...args: unknown[]) => unknown };
  const original = target.query.bind(client);
  // The part's COPY: its row count is read when the checksum query comes (after its ReadyForQuery).
  let lastCopy: CopyStream | undefined;
  let begunAt: number | undefined;
  let partTransaction = false;
  target.query = (...args: unknown[]) => {
    const first = args[0];
    const started = performance.now();
    if (isCopyStream(first)) {
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        timings.add('db.copy_out', performance.now() - started);
      };
      lastCopy = first;
      first.once('end', end);
      first.once('error', end);
      first.once('close', end);
      return original(...args);
    }
    const text = typeof first === 'string' ? first : ((first as { text?: unknown } | undefined)?.text ?? '');
    const sql = String(text);
    const kind = classifyBackupQuery(sql);
    let call = args;
    if (kind === 'db.checksum' && options.skipChecksum && lastCopy !== undefined) {
      call = [SKIPPED_CHECKSUM, [String(lastCopy.rowCount)]];
      lastCopy = undefined;
    }
    if (/^BEGIN\b/i.test(sql)) begunAt = started;
    if (sql.startsWith('SET TRANSACTION SNAPSHOT')) partTransaction = true;
    const result = original(...call);
    if (!(result instanceof Promise)) return result;
    return result.finally(() => {
      const now = performance.now();
      timings.add(kind, now - started);
      if (/^(COMMIT|ROLLBACK)\b/i.test(sql)) {
        if (partTransaction && begunAt !== undefined) timings.partIntervals.push([begunAt, now]);
        partTransaction = false;
        begunAt = undefined;
      }
    });
  };
  return client;
}

/** `UploadPartCommand` → `s3.upload_part`. */
function s3Kind(commandName: string): BackupTimingKind {
  const bare = commandName.replace(/Command$/, '');
  return `s3.${bare.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()}`;
}

/**
 * Times every command `s3` sends into whatever `current()` returns (the run being measured; undefined: not
 * timed). Added once per client.
 */
export function timeS3Commands(s3: S3Client, current: () => BackupTimings | undefined): void {
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const timings = current();
      const started = performance.now();
      try {
        return await next(args);
      } finally {
        timings?.add(s3Kind(String(context.commandName ?? 'Unknown')), performance.now() - started);
      }
    },
    { step: 'initialize', name: 'benchTiming', override: true },
  );
}

/** Step dependencies whose connections are instrumented (the store's S3 client is timed by timeS3Commands). */
export function instrumentBackupDependencies(
  base: (context: Context) => StepDependencies,
  timings: BackupTimings,
  options: InstrumentOptions,
): (context: Context) => StepDependencies {
  return (context) => {
    const deps = base(context);
    return {
      ...deps,
      connect: async (timeouts) =>
        instrumentBackupClient(
          await timings.time('db.connect', () => deps.connect(timeouts)),
          timings,
          options,
        ),
    };
  };
}
