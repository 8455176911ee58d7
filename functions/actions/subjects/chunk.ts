/**
 * Subjects chunk: one pending request per chunk, in the chunk's transaction. Its work runs under a savepoint:
 * a request that cannot be done (a constraint, a type the key does not cast to) is rolled back alone and marked
 * failed with the reason (no row values), and the run goes on with the next one; a timeout or a lost connection
 * fails the chunk instead, so the loop retries it and the request stays pending. An export's document is
 * written to S3 in `complete`, before COMMIT: a failed upload rolls the request back to pending.
 */
import type { ObjectStore } from '../../adapters/archive-store.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import {
  classifyDatabaseError,
  HashKeyError,
  StorageConfigurationError,
  TransientDatabaseError,
  TransientStorageError,
} from '../../core/errors.ts';
import { describeError } from '../../core/redact-database-error.ts';
import type { StepDependencies } from '../../run/dependencies.ts';
import { type HashKey, hashKeyFrom } from '../anonymize/hash-key.ts';
import type { ChunkAction, ChunkInput, CompletedChunk, PreparedChunk, TakenChunk } from '../chunk-action.ts';
import { type SubjectsPolicy, subjectsPrefix } from './contract.ts';
import { type ResolvedSubjectTable, resolveSubjectTables } from './mapping.ts';
import { readArchiveExposure, readBackupExposure } from './proof.ts';
import { completeRequest, failRequest, type SubjectRequest, takeNextRequest } from './requests.ts';
import { canonicalKeyHashes } from './subject-hash.ts';
import { eraseSubject, exportSubject } from './subject-work.ts';

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

export class SubjectsChunkAction implements ChunkAction<SubjectChunk, HashKey | undefined> {
  private tables: ResolvedSubjectTable[] | undefined;
  private key: HashKey | undefined;

  constructor(
    private readonly deps: StepDependencies,
    private readonly policy: SubjectsPolicy,
  ) {}

  async prepare(): Promise<PreparedChunk<HashKey | undefined>> {
    if (this.key === undefined) {
      const secret = await this.deps.hashKey?.();
      if (secret) this.key = hashKeyFrom(secret);
    }
    return { ready: this.key };
  }

  async take(tx: Queryable, input: ChunkInput, key: HashKey | undefined): Promise<SubjectChunk | undefined> {
    this.tables ??= await resolveSubjectTables(tx, this.policy);
    const request = await takeNextRequest(tx, this.policy.name, input.cutoff);
    if (!request) return undefined;
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
      archives: {
        rewritten: false,
        note: 'archived copies are not rewritten yet: they keep the subject until they expire',
        policies: await readArchiveExposure(tx, names),
      },
      backups: await readBackupExposure(tx, names),
    };
    if (request.kind === 'erase') {
      // The keyed hashes a later restore finds the subject's rows by (subject-hash.ts): before the rows go.
      if (key === undefined) throw new HashKeyError('erasure needs the hash key: none is configured');
      const hashes = await canonicalKeyHashes(tx, tables, request.subjectKey, key);
      const erased = await eraseSubject(tx, tables, request.subjectKey, key);
      const outcomes = erased.map((o) => ({ ...o, keyHash: hashes.get(o.table) }));
      await completeRequest(
        tx,
        request.requestId,
        runId,
        { ...common, tables: outcomes },
        hashes.get(tables[0]?.qualified ?? ''),
      );
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

export function storeOf(store: ObjectStore | undefined): ObjectStore {
  if (!store)
    throw new StorageConfigurationError('subject exports need a bucket (--bucket, or the stack’s bucket)');
  return store;
}
