/**
 * A backup's chunk: a batch of up to `maxConcurrency` parts, written in parallel on worker connections
 * under the step's snapshot (snapshot-session.ts), each `COPY … TO STDOUT` → compression → SHA-256 → S3
 * multipart upload with its content checksum read in the same transaction. The work happens in `prepare`,
 * before the chunk loop's transaction opens (a part may take minutes; no ledger transaction waits on it);
 * the loop's transaction then lists the batch's parts and moves the cursor, atomically.
 *
 * Every part key is announced (pending) before its upload and carries a random tail: a retried batch never
 * overwrites an object a stale invocation may still be writing, and a part uploaded for a batch that never
 * committed is an orphan that Finish or RecordFailure removes.
 */
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Chunking } from '../../../lib/contracts/chunking.ts';
import type { TablePartsCursor, WorkCursor } from '../../../lib/contracts/work-cursor.ts';
import type { ObjectStore } from '../../adapters/archive-store.ts';
import type { ArchivedObject, Ledger, RunRow } from '../../adapters/ledger/index.ts';
import { InvalidPayloadError, LeaseLostError } from '../../core/errors.ts';
import type { StepDependencies } from '../../run/dependencies.ts';
import type { ChunkAction, ChunkInput, CompletedChunk, PreparedChunk, TakenChunk } from '../chunk-action.ts';
import { contentChecksumSql, formatContentChecksum } from './content-checksum.ts';
import type { BackupPolicy } from './contract.ts';
import { backupKeys } from './manifest.ts';
import { PART_EXTENSIONS } from './part-compression.ts';
import { nextPartBatch, type PartJob } from './part-cursor.ts';
import { rangePredicate } from './part-plan.ts';
import { writePart } from './part-writer.ts';
import { writeSchemaFiles } from './schema-files.ts';
import { SnapshotSession } from './snapshot-session.ts';
import { type BackupRunDetail, checkTablesUnchanged, readBackupDetail } from './table-plan.ts';

/** What a backup part's ledger row records beyond its length and hash (archived_objects.detail). */
export interface BackupPartDetail {
  readonly [field: string]: unknown;
  readonly table: string;
  readonly tableIndex: number;
  readonly part: number;
  readonly contentChecksum: string;
  /** The snapshot session the part was read under (snapshot-session.ts `tag`). */
  readonly snapshot: string;
  readonly uncompressedBytes: number;
}

interface WrittenBatch {
  readonly parts: ReadonlyArray<ArchivedObject & { readonly detail: BackupPartDetail }>;
  readonly next: WorkCursor;
}

interface TakenBatch extends TakenChunk {
  readonly batch: WrittenBatch;
}

/** Time kept back from a part's statement timeout: the upload's end, the checksum, COMMIT. */
const PART_MARGIN_MS = 15_000;

export interface BackupChunkContext {
  readonly deps: StepDependencies;
  readonly policy: BackupPolicy;
  readonly sideLedger: Ledger;
  readonly run: RunRow;
  readonly store: ObjectStore;
  readonly s3: S3Client;
  readonly chunking: Chunking;
}

export class BackupChunkAction implements ChunkAction<TakenBatch, WrittenBatch> {
  private session: SnapshotSession | undefined;
  private readonly detail: BackupRunDetail;

  constructor(private readonly ctx: BackupChunkContext) {
    this.detail = readBackupDetail(ctx.run.runId, ctx.run.detail);
  }

  async prepare(input: ChunkInput): Promise<PreparedChunk<WrittenBatch>> {
    const cursor = input.cursor;
    if (cursor !== null && cursor.kind !== 'table-parts')
      throw new InvalidPayloadError(`a backup cannot resume from a ${cursor.kind} cursor`);
    const session = await this.snapshot();
    const { deps, policy, store, s3 } = this.ctx;
    if (cursor === null) {
      // The first batch of the run: the DDL under the same snapshot as the first parts.
      await writeSchemaFiles({
        client: session.holder,
        s3,
        bucket: store.bucket,
        policy: policy.name,
        detail: this.detail,
      });
    }
    const batch = await nextPartBatch(
      session.holder,
      this.detail.tables,
      cursor,
      policy.backup.maxConcurrency,
    );
    const settled = await Promise.allSettled(batch.jobs.map((job) => this.writeJob(session, job)));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const parts = settled.map((s) => (s as PromiseFulfilledResult<WrittenBatch['parts'][number]>).value);
    deps.log.info('backup parts written', {
      runId: this.ctx.run.runId,
      policy: policy.name,
      parts: parts.length,
      rows: parts.reduce((sum, p) => sum + p.rows, 0),
      bytes: parts.reduce((sum, p) => sum + p.bytes, 0),
    });
    // Past the last table: a cursor the next batch reads as "nothing left".
    const next: TablePartsCursor = batch.next ?? {
      kind: 'table-parts',
      table: this.detail.tables.length,
      part: 1,
    };
    return { ready: { parts, next } };
  }

  async take(
    _tx: unknown,
    _input: ChunkInput,
    ready: WrittenBatch | undefined,
  ): Promise<TakenBatch | undefined> {
    if (!ready || ready.parts.length === 0) return undefined;
    return {
      rows: ready.parts.reduce((sum, p) => sum + p.rows, 0),
      cursor: ready.next,
      minTime: null,
      maxTime: null,
      minKey: null,
      maxKey: null,
      batch: ready,
    };
  }

  async complete(taken: TakenBatch): Promise<CompletedChunk> {
    const parts = taken.batch.parts;
    return {
      bytes: parts.reduce((sum, p) => sum + p.bytes, 0),
      objects: parts,
      objectKind: 'backup-part',
    };
  }

  async close(): Promise<void> {
    await this.session?.close();
    this.session = undefined;
  }

  /** The step's snapshot, opened on first use; the tables checked unchanged under it. */
  private async snapshot(): Promise<SnapshotSession> {
    if (this.session) return this.session;
    const { deps, chunking } = this.ctx;
    const session = await SnapshotSession.open({
      connect: () => deps.connect(chunking),
      tables: this.detail.tables.map((t) => t.quotedName),
      lockTimeoutMs: chunking.lockTimeoutMs,
      holdMs: deps.remainingMs() + 60_000,
    });
    try {
      await checkTablesUnchanged(session.holder, this.detail.tables);
    } catch (error) {
      await session.close();
      throw error;
    }
    this.session = session;
    return session;
  }

  private async writeJob(session: SnapshotSession, job: PartJob): Promise<WrittenBatch['parts'][number]> {
    const { deps, policy, sideLedger, store, s3, run } = this.ctx;
    const { compression, level } = policy.backup;
    const table = job.table;
    const tail = randomBytes(4).toString('hex');
    const key = backupKeys(policy.name, this.detail.backupId)
      .part(table.schema, table.table, job.part, PART_EXTENSIONS[compression])
      .replace(/(part-\d+)\.sql\./, `$1-${tail}.sql.`);
    await sideLedger.announcePending(store.bucket, key, run.runId);
    const range = rangePredicate(job.range);
    const timeoutMs = Math.max(deps.remainingMs() - PART_MARGIN_MS, 1000);
    const { written, checksum } = await session.inSnapshot(timeoutMs, async (client) => {
      const written = await writePart({
        client,
        table: { quotedName: table.quotedName, columns: table.columns, only: table.only },
        ...(range ? { range } : {}),
        s3,
        bucket: store.bucket,
        key,
        compression: { codec: compression, level },
      });
      // The same rows, in the same transaction and snapshot: the part's share of the table's checksum.
      const { rows } = await client.query<{ rows: string; sum: string }>(
        contentChecksumSql(table.quotedName, table.columns, {
          only: table.only,
          ...(range ? { where: range.sql } : {}),
        }),
        range ? [...range.params] : [],
      );
      const row = rows[0];
      if (!row) throw new Error('content checksum returned no row');
      return { written, checksum: { rows: row.rows, sum: row.sum } };
    });
    await deps.hooks?.afterUpload?.(key);
    if (String(written.rows) !== checksum.rows)
      throw new InvalidPayloadError(
        `${key}: COPY wrote ${written.rows} rows but the checksum read ${checksum.rows} under the same snapshot`,
      );
    if (!(await sideLedger.isStillPending(store.bucket, key))) {
      // The run ended (and removed its orphans) while this part uploaded: remove it, nothing else will.
      await store.delete(key);
      throw new LeaseLostError(`run ${run.runId} ended while ${key} was uploading; the object was removed`);
    }
    return {
      bucket: store.bucket,
      key,
      rows: written.rows,
      bytes: written.bytes,
      sha256: written.sha256,
      partition: null,
      minTime: null,
      maxTime: null,
      minKey: null,
      maxKey: null,
      detail: {
        table: table.quotedName,
        tableIndex: job.tableIndex,
        part: job.part,
        contentChecksum: formatContentChecksum(checksum),
        snapshot: session.tag,
        uncompressedBytes: written.uncompressedBytes,
      },
    };
  }
}
