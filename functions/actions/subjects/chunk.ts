/**
 * Subjects chunk: one pending request per chunk, in the chunk's transaction. Its work runs under a savepoint:
 * a request that cannot be done (a constraint, a type the key does not cast to) is rolled back alone and marked
 * failed with the reason (no row values), and the run goes on with the next one; a timeout or a lost connection
 * fails the chunk instead, so the loop retries it and the request stays pending. An export's document is
 * written to S3 in `complete`, before COMMIT: a failed upload rolls the request back to pending.
 */
import type pg from 'pg';
import type { ObjectStore } from '../../adapters/archive-store.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import {
  classifyDatabaseError,
  HashKeyError,
  LeaseLostError,
  LifecycleError,
  StorageConfigurationError,
  TransientDatabaseError,
  TransientStorageError,
} from '../../core/errors.ts';
import { describeError } from '../../core/redact-database-error.ts';
import type { StepDependencies } from '../../run/dependencies.ts';
import { type HashKey, hashKeyFrom } from '../anonymize/hash-key.ts';
import type { ChunkAction, ChunkInput, CompletedChunk, PreparedChunk, TakenChunk } from '../chunk-action.ts';
import {
  type ArchiveStepResult,
  continueArchiveErasure,
  type ErasureProgress,
  initialProgress,
  readRewrites,
} from './archive-erasure.ts';
import { type SubjectsPolicy, subjectsPrefix } from './contract.ts';
import { type ResolvedSubjectTable, resolveSubjectTables } from './mapping.ts';
import type { RewriteHooks } from './object-rewrite.ts';
import { readArchiveExposure, readBackupExposure } from './proof.ts';
import { completeRequest, failRequest, type SubjectRequest, takeNextRequest } from './requests.ts';
import { canonicalKeyHashes } from './subject-hash.ts';
import { eraseSubject, exportSubject } from './subject-work.ts';

/** What `prepare` did for a request in its archive phase (./archive-erasure.ts), for `take` to record. */
interface ArchiveStep {
  readonly requestId: string;
  readonly state: ArchiveStepResult['state'];
  readonly rowsRemoved: number;
}

interface Prepared {
  readonly key: HashKey | undefined;
  readonly archive?: ArchiveStep | undefined;
}

interface SubjectChunk extends TakenChunk {
  readonly upload?: {
    readonly requestId: string;
    readonly key: string;
    readonly document: Buffer;
    readonly sha256: string;
    readonly rows: number;
  };
}

const SAVEPOINT = 'pg_lifecycle_subject_request';

export class SubjectsChunkAction implements ChunkAction<SubjectChunk, Prepared> {
  private tables: ResolvedSubjectTable[] | undefined;
  private key: HashKey | undefined;
  /** The archive phase's own connection: its swaps are transactions, apart from the chunk's and the heartbeat's. */
  private archiveDb: pg.Client | undefined;
  /**
   * Requests this step moved into their archive phase, not yet done or waiting: while one is, an empty `take`
   * is not the end of the run (the chunk that moved it may not have committed when the next one looked).
   */
  private readonly archivePhase = new Set<string>();

  constructor(
    private readonly deps: StepDependencies,
    private readonly policy: SubjectsPolicy,
    private readonly hooks?: RewriteHooks,
  ) {}

  async prepare(input: ChunkInput): Promise<PreparedChunk<Prepared>> {
    if (this.key === undefined) {
      const secret = await this.deps.hashKey?.();
      if (secret) this.key = hashKeyFrom(secret);
    }
    return { ready: { key: this.key, archive: await this.archiveStep(input) } };
  }

  /** The oldest request in its archive phase, walked as far as this step's time allows. */
  private async archiveStep(input: ChunkInput): Promise<ArchiveStep | undefined> {
    if (!(await this.hasArchivePhase())) return undefined;
    this.archiveDb ??= await this.deps.connect(input.chunking);
    const db = this.archiveDb;
    const { rows } = await db.query<{ request_id: string; subject_key: string | null }>(
      `SELECT request_id::text, subject_key FROM lifecycle.subject_requests
        WHERE policy = $1 AND kind = 'erase' AND progress->>'phase' = 'archives' AND requested_at <= $2::timestamptz
          AND (status = 'pending' OR (status = 'waiting' AND coalesce(progress->>'checkedRun', '') <> $3))
        ORDER BY requested_at, request_id LIMIT 1`,
      [this.policy.name, input.cutoff, input.runId],
    );
    const request = rows[0];
    if (!request?.subject_key) return undefined;
    this.tables ??= await resolveSubjectTables(db, this.policy);
    const s3 = storeOf(this.deps.store).s3Client;
    if (!s3)
      throw new StorageConfigurationError('subject erasure rewrites archive objects: it needs an S3 client');
    // Half of what is left for this step: the rest commits the chunk and leaves room for the next.
    const until = this.deps.remainingMs() / 2;
    try {
      const result = await continueArchiveErasure(
        {
          s3,
          db,
          runId: input.runId,
          key: this.key,
          hooks: this.hooks,
          now: () => this.deps.now(),
          hasTime: () => this.deps.remainingMs() > until,
        },
        request.request_id,
        request.subject_key,
        this.tables,
      );
      return { requestId: request.request_id, state: result.state, rowsRemoved: result.rowsRemoved };
    } catch (thrown) {
      const error = classifyDatabaseError(thrown);
      // Worth retrying as it is, or a problem of the whole policy (its bucket, its run): the step fails.
      // Anything not one of ours is treated as a crash too: the request stays in its walk and resumes.
      if (
        !(error instanceof LifecycleError) ||
        error instanceof TransientDatabaseError ||
        error instanceof TransientStorageError ||
        error instanceof LeaseLostError ||
        error instanceof StorageConfigurationError
      )
        throw error;
      // This request's own problem (an object not the ledger's, a key column the object lacks, a value its masks
      // cannot take): it fails alone, with the reason (no values), and the others go on. `subject retry` resumes
      // its walk where it stopped once the cause is fixed.
      const reason = `${(error as Error).name ?? 'Error'}: ${describeError(error)}`;
      await failRequest(db, request.request_id, input.runId, reason);
      this.archivePhase.delete(request.request_id);
      this.deps.log.warn('subject erasure failed in the archives', {
        policy: this.policy.name,
        requestId: request.request_id,
        error: reason,
      });
      return undefined;
    }
  }

  private async hasArchivePhase(): Promise<boolean> {
    if (this.archivePhase.size > 0) return true;
    this.archiveDb ??= await this.deps.connect();
    const db = this.archiveDb;
    const { rows } = await db.query(
      `SELECT 1 FROM lifecycle.subject_requests
        WHERE policy = $1 AND kind = 'erase' AND status IN ('pending', 'waiting') AND progress->>'phase' = 'archives'
        LIMIT 1`,
      [this.policy.name],
    );
    return rows.length > 0;
  }

  async take(
    tx: Queryable,
    input: ChunkInput,
    prepared: Prepared | undefined,
  ): Promise<SubjectChunk | undefined> {
    this.tables ??= await resolveSubjectTables(tx, this.policy);
    const key = prepared?.key;
    if (prepared?.archive) return await this.recordArchiveStep(tx, input, prepared.archive);
    const request = await takeNextRequest(tx, this.policy.name, input.cutoff);
    if (!request) {
      // A request moved into its archive phase by a chunk that had not committed when this one looked.
      const moved = [...this.archivePhase][0];
      return moved ? emptyChunk(moved) : undefined;
    }
    await tx.query(`SAVEPOINT ${SAVEPOINT}`);
    try {
      const done = await this.process(tx, input.runId, request, this.tables, key);
      await tx.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      return {
        ...done,
        cursor: { kind: 'subject-requests', request: request.requestId },
        minTime: null,
        maxTime: null,
        minKey: null,
        maxKey: null,
      };
    } catch (thrown) {
      const error = classifyDatabaseError(thrown);
      // Worth retrying as it is: the chunk fails, the loop retries it, the request stays pending.
      if (error instanceof TransientDatabaseError || error instanceof TransientStorageError) throw error;
      await tx.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      const reason = `${(error as Error).name ?? 'Error'}: ${describeError(error)}`;
      await failRequest(tx, request.requestId, input.runId, reason);
      this.deps.log.warn('subject request failed', {
        policy: this.policy.name,
        requestId: request.requestId,
        error: reason,
      });
      return {
        rows: 0,
        cursor: { kind: 'subject-requests', request: request.requestId },
        minTime: null,
        maxTime: null,
        minKey: null,
        maxKey: null,
      };
    }
  }

  /** The archive step's end in the chunk's transaction: the request completed, waiting, or left for the next step. */
  private async recordArchiveStep(
    tx: Queryable,
    input: ChunkInput,
    step: ArchiveStep,
  ): Promise<SubjectChunk> {
    const { rows } = await tx.query<{ progress: string }>(
      `SELECT progress::text AS progress FROM lifecycle.subject_requests
        WHERE request_id = $1 AND status IN ('pending', 'waiting') FOR UPDATE`,
      [step.requestId],
    );
    const row = rows[0];
    // Completed by the chunk before this one (it committed while this step walked nothing new).
    if (!row) {
      this.archivePhase.delete(step.requestId);
      return emptyChunk(step.requestId);
    }
    const progress = JSON.parse(row.progress) as ErasureProgress;
    if (step.state === 'done') {
      const proof = await this.erasureProof(tx, step.requestId, progress);
      await completeRequest(tx, step.requestId, input.runId, proof, progress.subjectHash);
      this.archivePhase.delete(step.requestId);
    } else if (step.state === 'waiting') {
      await tx.query(
        `UPDATE lifecycle.subject_requests SET status = 'waiting', progress = progress || jsonb_build_object('checkedRun', $2::text)
          WHERE request_id = $1`,
        [step.requestId, input.runId],
      );
      this.archivePhase.delete(step.requestId);
      this.deps.log.info('subject erasure waits for archive restores', {
        policy: this.policy.name,
        requestId: step.requestId,
        objects: progress.waiting.length,
      });
    } else if (step.state === 'more') {
      await tx.query(`UPDATE lifecycle.subject_requests SET status = 'pending' WHERE request_id = $1`, [
        step.requestId,
      ]);
    }
    return { ...emptyChunk(step.requestId), rows: step.rowsRemoved };
  }

  /** The completed erasure's proof: live tables, archive objects rewritten (keys, counts), backups. */
  private async erasureProof(tx: Queryable, requestId: string, progress: ErasureProgress): Promise<unknown> {
    const names = (this.tables ?? []).map((t) => t.qualified);
    const objects = await readRewrites(tx, requestId);
    return {
      kind: 'erase',
      keyName: this.policy.subjects.keyName,
      tables: progress.live,
      archives: {
        rewritten: true,
        objectsSearched: progress.searched,
        objects,
        rowsRemoved: objects.reduce((sum, r) => sum + r.rowsRemoved, 0),
        rowsMasked: objects.reduce((sum, r) => sum + r.rowsMasked, 0),
        note: 'every version of each old object was deleted after its rewrite was verified and listed',
        policies: await readArchiveExposure(tx, names),
      },
      backups: await readBackupExposure(tx, names),
    };
  }

  private async process(
    tx: Queryable,
    runId: string,
    request: SubjectRequest,
    tables: readonly ResolvedSubjectTable[],
    key: HashKey | undefined,
  ): Promise<Pick<SubjectChunk, 'rows' | 'upload'>> {
    if (request.subjectKey === null)
      throw new HashKeyError('the request has no subject key (made without one, or already completed)');
    const names = tables.map((t) => t.qualified);
    const common = {
      kind: request.kind,
      keyName: this.policy.subjects.keyName,
      archives: { rewritten: false, objects: [], policies: await readArchiveExposure(tx, names) },
      backups: await readBackupExposure(tx, names),
    };
    if (request.kind === 'erase') {
      // The keyed hashes a later restore finds the subject's rows by (subject-hash.ts): before the rows go.
      if (key === undefined) throw new HashKeyError('erasure needs the hash key: none is configured');
      const hashes = await canonicalKeyHashes(tx, tables, request.subjectKey, key);
      const erased = await eraseSubject(tx, tables, request.subjectKey, key);
      const outcomes = erased.map((o) => ({ ...o, keyHash: hashes.get(o.table) }));
      const subjectHash = hashes.get(tables[0]?.qualified ?? '');
      if ((await readArchiveExposure(tx, names)).some((p) => p.objects > 0)) {
        // The archives next, once these deletions committed (archive-erasure.ts): the request stays open.
        await tx.query(
          'UPDATE lifecycle.subject_requests SET progress = $2::jsonb, run_id = $3 WHERE request_id = $1',
          [request.requestId, JSON.stringify(initialProgress(outcomes, subjectHash)), runId],
        );
        this.archivePhase.add(request.requestId);
        return { rows: outcomes.reduce((sum, o) => sum + o.rows, 0) };
      }
      await completeRequest(tx, request.requestId, runId, { ...common, tables: outcomes }, subjectHash);
      return { rows: outcomes.reduce((sum, o) => sum + o.rows, 0) };
    }
    const exported = await exportSubject(
      tx,
      tables,
      request.subjectKey,
      {
        requestId: request.requestId,
        keyName: this.policy.subjects.keyName,
        subjectHash: request.subjectHash,
        generatedAt: new Date().toISOString(),
      },
      // Archived rows too: the archive objects the ledger lists for the mapped tables (archived-rows.ts).
      this.deps.store?.s3Client,
    );
    const objectKey = `${subjectsPrefix(this.policy.name)}${request.requestId}/export.json`;
    const rows = exported.tables.reduce((sum, t) => sum + t.rows + (t.archivedRows ?? 0), 0);
    await completeRequest(tx, request.requestId, runId, {
      ...common,
      tables: exported.tables,
      export: { key: objectKey, bytes: exported.document.length, sha256: exported.sha256 },
    });
    return {
      rows,
      upload: {
        requestId: request.requestId,
        key: objectKey,
        document: exported.document,
        sha256: exported.sha256,
        rows,
      },
    };
  }

  async close(): Promise<void> {
    await this.archiveDb?.end().catch(() => undefined);
    this.archiveDb = undefined;
  }

  async complete(taken: SubjectChunk): Promise<CompletedChunk> {
    const upload = taken.upload;
    if (!upload) return { bytes: 0, objects: [] };
    const store = storeOf(this.deps.store);
    await store.put(upload.key, upload.document, upload.sha256, { 'pg-lifecycle-request': upload.requestId });
    const object = {
      bucket: store.bucket,
      key: upload.key,
      rows: upload.rows,
      bytes: upload.document.length,
      sha256: upload.sha256,
      partition: null,
      minTime: null,
      maxTime: null,
      minKey: null,
      maxKey: null,
      detail: { requestId: upload.requestId },
    };
    await store.verify(object, 'head');
    return { bytes: upload.document.length, objects: [object], objectKind: 'export' };
  }
}

function emptyChunk(requestId: string): SubjectChunk {
  return {
    rows: 0,
    cursor: { kind: 'subject-requests', request: requestId },
    minTime: null,
    maxTime: null,
    minKey: null,
    maxKey: null,
  };
}

export function storeOf(store: ObjectStore | undefined): ObjectStore {
  if (!store)
    throw new StorageConfigurationError('subject exports need a bucket (--bucket, or the stack’s bucket)');
  return store;
}
