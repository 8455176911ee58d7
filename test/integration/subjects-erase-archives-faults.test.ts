/**
 * Subject erasure in the archives under faults, through the gdpr policy's state machine. Each scenario drops what
 * the one before left, seeds the schema of test/support/subject-archives.ts again (subject 7: one row in five
 * "Audit Logs" objects, the only five rows of a sessions object) and archives it into a bucket of its own through
 * the versioned-bucket stub, then erases subject 7 with a fault injected at one point of an object's rewrite: a
 * crash after the ledger swap or before it, a concurrent writer of the old key, an object in Glacier, a storage
 * class and KMS encryption to keep, a table the mapping anonymizes, no bucket or no S3 client at all. Stubs over
 * the real client play what the local S3 server lacks (storage classes, encryption, RestoreObject) and record
 * every PutObject; the objects read, written and deleted are real.
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  RestoreObjectCommand,
  type RestoreObjectCommandInput,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { RESTORE_DAYS } from '../../functions/actions/subjects/archive-erasure.ts';
import { createSubjectRequest, type SubjectRequest } from '../../functions/actions/subjects/requests.ts';
import { S3ObjectStore } from '../../functions/adapters/archive-store.ts';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import type { ChunkFaultHooks } from '../../functions/run/dependencies.ts';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { describe, expect, it, NOW, type Services } from '../support/fixture.ts';
import { createTestBucket, listAllKeys } from '../support/s3.ts';
import {
  AUDIT,
  AUDIT_QUOTED,
  decodedRows,
  expectSubjectNowhere,
  HASH_KEY,
  ledgerObjects,
  liveSubjectRows,
  objectBytes,
  requestOf,
  SESSIONS_QUOTED,
  SUBJECT,
  seedSubjectArchives,
  subjectArchiveConfig,
} from '../support/subject-archives.ts';
import { NONCURRENT_PREFIX, type VersionedS3, versionedS3 } from '../support/versioned-s3.ts';

type Ledger = Awaited<ReturnType<typeof ledgerObjects>>;

interface RewriteProof {
  table: string;
  oldKey: string;
  newKey: string | null;
  rowsRemoved: number;
  rowsMasked: number;
  rowsLeft: number;
  storageClass: string;
}

/** What a waiting request's progress says of the objects it waits for. */
interface Progress {
  waiting: Array<{ objectId: string; key: string; storageClass?: string }>;
}

/** The schema archived into a fresh bucket: the ledger and every object's decoded rows before the erasure. */
interface Archived {
  readonly bucket: string;
  readonly versioned: VersionedS3;
  readonly before: Ledger;
  readonly rowsBefore: Map<string, string[]>;
  /** Objects holding rows of the subject, in object_id order (the order the erasure walks them). */
  readonly holding: Ledger;
  subjectRowsOf(key: string): number;
  /** The gdpr policy run against this bucket through `s3` (default: the versioned stub). */
  erase(options?: { s3?: S3Client; hooks?: ChunkFaultHooks }): Promise<LocalRunResult>;
}

const config = subjectArchiveConfig();
const total = (list: Ledger) => list.reduce((sum, o) => sum + o.rows, 0);

/** Drops what an earlier scenario left (tables, ledger), seeds again and archives into a new versioned bucket. */
async function archiveScenario(services: Services, gdprConfig: LifecycleConfig = config): Promise<Archived> {
  const { db, s3, runPolicy, definition } = services;
  await db.pool.query(
    `DROP SCHEMA IF EXISTS lifecycle CASCADE; DROP TABLE IF EXISTS public.users, ${AUDIT}, public.sessions`,
  );
  await seedSubjectArchives(db);
  const bucket = await createTestBucket('erase-faults');
  const versioned = versionedS3(s3, bucket);
  for (const policy of ['audit-archive', 'sessions-archive']) {
    const run = await runPolicy(gdprConfig, policy, { definition, deps: { s3: versioned.client, bucket } });
    expect(run.failure).toBeUndefined();
  }
  const before = await ledgerObjects(db);
  const rowsBefore = new Map<string, string[]>();
  for (const o of before) rowsBefore.set(o.key, await decodedRows(s3, bucket, o.key));
  const subjectRowsOf = (key: string) =>
    (rowsBefore.get(key) ?? []).filter((row) => JSON.parse(row)[1] === SUBJECT).length;
  const holding = before.filter((o) => subjectRowsOf(o.key) > 0);
  expect(holding.map((o) => [o.table, subjectRowsOf(o.key)])).toEqual([
    ...Array.from({ length: 5 }, () => [AUDIT_QUOTED, 1]),
    [SESSIONS_QUOTED, 5],
  ]);
  expect(before.length).toBeGreaterThan(holding.length);
  return {
    bucket,
    versioned,
    before,
    rowsBefore,
    holding,
    subjectRowsOf,
    erase: (options = {}) =>
      runPolicy(gdprConfig, 'gdpr', {
        definition,
        deps: { s3: options.s3 ?? versioned.client, bucket, hashKey: HASH_KEY, hooks: options.hooks },
      }),
  };
}

async function requestErasure(services: Services): Promise<string> {
  const made = await createSubjectRequest(services.db.pool, {
    policy: 'gdpr',
    kind: 'erase',
    subjectKey: SUBJECT,
    hashKey: HASH_KEY,
    dueDays: 30,
    requestedAt: new Date(NOW.getTime() - 3_600_000),
  });
  expect(made.created).toBe(true);
  return made.request.requestId;
}

const rewritesOf = (request: SubjectRequest) =>
  (request.proof as { archives: { objects: RewriteProof[] } }).archives.objects;
const progressOf = (request: SubjectRequest) => request.progress as Progress;

/** Current keys in the bucket (not the stub's shadows of noncurrent versions), sorted. */
async function currentKeys(s3: S3Client, bucket: string): Promise<string[]> {
  return (await listAllKeys(s3, bucket)).filter((k) => !k.startsWith(NONCURRENT_PREFIX)).sort();
}

const keysOf = (ledger: Ledger) => ledger.map((o) => o.key).sort();

/**
 * A client over `inner` whose `send` asks `handle` first: a defined answer is returned (or its rejection thrown),
 * undefined passes the command on. Every PutObject's input is kept.
 */
function stubbed(
  inner: S3Client,
  handle: (command: unknown) => Promise<unknown> | undefined = () => undefined,
): { client: S3Client; puts: PutObjectCommandInput[]; rewritePuts: () => PutObjectCommandInput[] } {
  const puts: PutObjectCommandInput[] = [];
  const send = async (command: unknown) => {
    if (command instanceof PutObjectCommand) puts.push(command.input);
    return (await handle(command)) ?? inner.send(command as never);
  };
  const client = new Proxy(inner, {
    get: (target, property, receiver) =>
      property === 'send' ? send : Reflect.get(target, property, receiver),
  });
  // A rewrite's PutObject names the request it erases for in its metadata.
  const rewritePuts = () => puts.filter((p) => p.Metadata?.['erasure-request'] !== undefined);
  return { client, puts, rewritePuts };
}

/** A hook that runs `act` on its first call only. */
function once(act: (oldKey: string) => Promise<void> | void): (oldKey: string) => Promise<void> {
  let done = false;
  return async (oldKey) => {
    if (done) return;
    done = true;
    await act(oldKey);
  };
}

describe('an erasure whose run crashed after an object’s ledger swap', () => {
  it('finishes on the next run: every version of each old key gone, each rewrite listed once, no row lost', async ({
    services,
  }) => {
    // Prepare
    const { db, s3 } = services;
    const { bucket, versioned, before, holding, subjectRowsOf, erase } = await archiveScenario(services);
    const requestId = await requestErasure(services);
    const crashed: string[] = [];
    const hooks: ChunkFaultHooks = {
      afterRewriteSwap: once((oldKey) => {
        crashed.push(oldKey);
        throw new Error('injected: crash after the ledger swap');
      }),
    };

    // Act
    const failed = await erase({ hooks });
    const afterCrash = await requestOf(services, requestId);
    const liveAfterCrash = await liveSubjectRows(services);
    const ledgerAfterCrash = await ledgerObjects(db);
    const versionsAfterCrash = holding[0] ? versioned.versionsOf(holding[0].key) : [];
    const rerun = await erase();

    // Assess: the crash failed the run after the swap: the ledger lists the new object, the old key is an orphan.
    expect(failed.status).toBe('failed');
    expect(failed.failure?.cause).toContain('injected: crash after the ledger swap');
    const first = holding[0]?.key as string;
    expect(crashed).toEqual([first]);
    expect(liveAfterCrash).toBe(0);
    expect(afterCrash.status).toBe('pending');
    expect(afterCrash.proof).toBeNull();
    expect(ledgerAfterCrash.map((o) => o.key)).not.toContain(first);
    expect(ledgerAfterCrash.filter((o) => o.objectId === holding[0]?.objectId)).toHaveLength(1);
    // RecordFailure removed that orphan with every version: no noncurrent copy of the subject's rows waits for
    // the next run (a plain delete would have left one behind a delete marker).
    expect(versionsAfterCrash).toEqual([]);

    // The next run completed the request; its proof lists each rewrite once, in the order they were made.
    expect(rerun.failure).toBeUndefined();
    const request = await requestOf(services, requestId);
    expect(request.status).toBe('completed');
    const rewrites = rewritesOf(request);
    expect(rewrites.map((r) => [r.oldKey, r.rowsRemoved])).toEqual(
      holding.map((o) => [o.key, subjectRowsOf(o.key)]),
    );
    expect((request.proof as { archives: { objectsSearched: number } }).archives.objectsSearched).toBe(
      before.length,
    );
    // No version of any old key is left (the one the crash left behind included), nor the subject's values.
    for (const o of holding) expect(versioned.versionsOf(o.key), o.key).toEqual([]);
    await expectSubjectNowhere(s3, bucket);
    // The ledger lists the rewritten objects (rows conserved), and the bucket holds exactly the ledger's keys.
    const after = await ledgerObjects(db);
    expect(total(after)).toBe(total(before) - holding.reduce((sum, o) => sum + subjectRowsOf(o.key), 0));
    expect(keysOf(after)).toEqual(
      keysOf(before.filter((o) => !holding.includes(o)))
        .concat(rewrites.flatMap((r) => (r.newKey ? [r.newKey] : [])))
        .sort(),
    );
    expect(await currentKeys(s3, bucket)).toEqual(keysOf(after));
    expect(await liveSubjectRows(services)).toBe(0);
  });
});

describe('an erasure whose run crashed after a new object was written, before the swap', () => {
  it('removes the new object the failed attempt left and rewrites that object once on the next run', async ({
    services,
  }) => {
    // Prepare
    const { db, s3 } = services;
    const { bucket, versioned, before, holding, subjectRowsOf, erase } = await archiveScenario(services);
    const requestId = await requestErasure(services);
    const stub = stubbed(versioned.client);
    const hooks: ChunkFaultHooks = {
      beforeRewriteSwap: once(() => {
        throw new Error('injected: crash before the ledger swap');
      }),
    };

    // Act
    const failed = await erase({ s3: stub.client, hooks });
    const orphans = stub.rewritePuts().map((p) => p.Key as string);
    const afterCrash = await requestOf(services, requestId);
    const ledgerAfterCrash = await ledgerObjects(db);
    const keysAfterCrash = await currentKeys(s3, bucket);
    const { rows: pending } = await db.pool.query('SELECT key FROM lifecycle.pending_objects');
    const rerun = await erase({ s3: stub.client });

    // Assess: the run failed before anything of the ledger changed; its new object is gone from the bucket.
    expect(failed.status).toBe('failed');
    expect(failed.failure?.cause).toContain('injected: crash before the ledger swap');
    expect(orphans).toHaveLength(1);
    const orphan = orphans[0] as string;
    expect(afterCrash.status).toBe('pending');
    expect(afterCrash.proof).toBeNull();
    expect(ledgerAfterCrash).toEqual(before);
    expect(keysAfterCrash).toEqual(keysOf(before));
    expect(keysAfterCrash).not.toContain(orphan);
    expect(pending).toEqual([]);

    // The next run rewrote every object once; nothing is duplicated.
    expect(rerun.failure).toBeUndefined();
    const request = await requestOf(services, requestId);
    expect(request.status).toBe('completed');
    const rewrites = rewritesOf(request);
    expect(rewrites.map((r) => r.oldKey)).toEqual(holding.map((o) => o.key));
    expect(rewrites.map((r) => r.newKey)).not.toContain(orphan);
    expect(stub.rewritePuts()).toHaveLength(1 + rewrites.filter((r) => r.newKey !== null).length);
    const after = await ledgerObjects(db);
    expect(total(after)).toBe(total(before) - holding.reduce((sum, o) => sum + subjectRowsOf(o.key), 0));
    expect(await currentKeys(s3, bucket)).toEqual(keysOf(after));
    for (const o of holding) expect(versioned.versionsOf(o.key), o.key).toEqual([]);
    await expectSubjectNowhere(s3, bucket);
  });
});

describe('a version of the old key written by someone else between the read and the swap', () => {
  it('the same bytes again: the rewrite starts over, and both versions of the old key are deleted', async ({
    services,
  }) => {
    // Prepare
    const { db, s3 } = services;
    const { bucket, versioned, before, holding, erase } = await archiveScenario(services);
    const requestId = await requestErasure(services);
    const stub = stubbed(versioned.client);
    const first = holding[0]?.key as string;
    let versionsWhileWriting: string[] = [];
    const hooks: ChunkFaultHooks = {
      beforeRewriteSwap: once(async (oldKey) => {
        const bytes = await objectBytes(versioned.client, bucket, oldKey);
        await versioned.client.send(new PutObjectCommand({ Bucket: bucket, Key: oldKey, Body: bytes }));
        versionsWhileWriting = versioned.versionsOf(oldKey);
      }),
    };

    // Act
    const result = await erase({ s3: stub.client, hooks });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(versionsWhileWriting).toHaveLength(2);
    const request = await requestOf(services, requestId);
    expect(request.status).toBe('completed');
    const rewrites = rewritesOf(request);
    expect(rewrites.map((r) => r.oldKey)).toEqual(holding.map((o) => o.key));
    // Two new objects were written for the first object: the one made from the stale read is gone.
    const firstPuts = stub
      .rewritePuts()
      .filter((p) => p.Metadata?.['rewritten-from'] === first.slice(first.lastIndexOf('/') + 1))
      .map((p) => p.Key as string);
    expect(firstPuts).toHaveLength(2);
    expect(rewrites[0]?.newKey).toBe(firstPuts[1]);
    expect(versioned.versionsOf(firstPuts[0] as string)).toEqual([]);
    expect(versioned.versionsOf(first)).toEqual([]);
    for (const o of holding) expect(versioned.versionsOf(o.key), o.key).toEqual([]);
    const after = await ledgerObjects(db);
    expect(await currentKeys(s3, bucket)).toEqual(keysOf(after));
    expect(total(after)).toBe(total(before) - 10);
    await expectSubjectNowhere(s3, bucket);
  });

  it('other bytes: the request fails naming the key, the live erasure stays, that object and its ledger row are unchanged', async ({
    services,
  }) => {
    // Prepare
    const { db, s3 } = services;
    const { bucket, versioned, before, holding, erase } = await archiveScenario(services);
    const requestId = await requestErasure(services);
    const stub = stubbed(versioned.client);
    const first = holding[0]?.key as string;
    const other = await objectBytes(s3, bucket, holding[1]?.key as string);
    const hooks: ChunkFaultHooks = {
      beforeRewriteSwap: once(async (oldKey) => {
        await versioned.client.send(new PutObjectCommand({ Bucket: bucket, Key: oldKey, Body: other }));
      }),
    };

    // Act
    const result = await erase({ s3: stub.client, hooks });
    const request = await requestOf(services, requestId);
    const again = await erase({ s3: stub.client });

    // Assess: the request failed alone on an integrity error naming the key (the run itself succeeded).
    expect(result.failure).toBeUndefined();
    expect(request.status).toBe('failed');
    expect(request.error).toMatch(/^ArchivedObjectIntegrityError: /);
    expect(request.error).toContain(first);
    expect(request.proof).toBeNull();
    // The live erasure stays (its key kept for a retry); nothing was swapped in the ledger.
    expect(await liveSubjectRows(services)).toBe(0);
    expect(request.subjectKey).toBe(SUBJECT);
    expect(await ledgerObjects(db)).toEqual(before);
    // The new object made from the first read is gone; the old key keeps both versions (the writer's is current).
    const made = stub.rewritePuts().map((p) => p.Key as string);
    expect(made).toHaveLength(1);
    expect(versioned.versionsOf(made[0] as string)).toEqual([]);
    expect(await currentKeys(s3, bucket)).toEqual(keysOf(before));
    expect(versioned.versionsOf(first)).toHaveLength(2);
    expect(await objectBytes(s3, bucket, first)).toEqual(other);
    // A later run leaves the failed request as it is: nothing rewritten, nothing completed.
    expect(again.failure).toBeUndefined();
    expect(stub.rewritePuts()).toHaveLength(1);
    expect((await requestOf(services, requestId)).status).toBe('failed');
    expect(await ledgerObjects(db)).toEqual(before);
  });
});

describe('an object in Glacier', () => {
  it('is restored (Bulk) while the request waits, and rewritten into GLACIER once S3 has a copy', async ({
    services,
  }) => {
    // Prepare: the third object holding the subject "is in GLACIER" (the local S3 has no storage classes).
    const { db, s3 } = services;
    const { bucket, versioned, holding, erase } = await archiveScenario(services);
    const requestId = await requestErasure(services);
    const cold = holding[2] as Ledger[number];
    const state = { restore: undefined as string | undefined, underWay: false };
    const restores: Array<{ input: RestoreObjectCommandInput; answer: string }> = [];
    const stub = stubbed(versioned.client, (command) => {
      if (command instanceof HeadObjectCommand && command.input.Key === cold.key)
        return versioned.client
          .send(command)
          .then((head) => ({ ...head, StorageClass: 'GLACIER', Restore: state.restore }));
      if (
        command instanceof GetObjectCommand &&
        command.input.Key === cold.key &&
        !state.restore?.includes('"false"')
      )
        return Promise.reject(
          new S3ServiceException({
            name: 'InvalidObjectState',
            $fault: 'client',
            $metadata: { httpStatusCode: 403 },
            message: 'The operation is not valid for the object storage class',
          }),
        );
      if (command instanceof RestoreObjectCommand) {
        restores.push({ input: command.input, answer: state.underWay ? '409' : '202' });
        if (state.underWay)
          return Promise.reject(
            new S3ServiceException({
              name: 'RestoreAlreadyInProgress',
              $fault: 'client',
              $metadata: { httpStatusCode: 409 },
              message: 'Object restore is already in progress',
            }),
          );
        state.underWay = true;
        state.restore = 'ongoing-request="true"';
        return Promise.resolve({});
      }
      return undefined;
    });

    // Act
    const firstRun = await erase({ s3: stub.client });
    const waiting = await requestOf(services, requestId);
    const ledgerWhileWaiting = await ledgerObjects(db);
    const coldVersionsWhileWaiting = versioned.versionsOf(cold.key);
    const secondRun = await erase({ s3: stub.client });
    const stillWaiting = await requestOf(services, requestId);
    const restoresWhileRestoring = restores.length;
    state.restore = 'ongoing-request="false", expiry-date="Fri, 25 Dec 2026 00:00:00 GMT"';
    const thirdRun = await erase({ s3: stub.client });

    // Assess: the first run rewrote every other object, asked for the restore and left the request waiting.
    expect(firstRun.failure).toBeUndefined();
    expect(waiting.status).toBe('waiting');
    expect(waiting.proof).toBeNull();
    expect(progressOf(waiting).waiting).toEqual([
      expect.objectContaining({ objectId: cold.objectId, key: cold.key, storageClass: 'GLACIER' }),
    ]);
    // Every other object holding the subject is rewritten already: the ledger no longer lists it, no version is left.
    for (const o of holding.filter((h) => h !== cold)) {
      expect(ledgerWhileWaiting.map((l) => l.key)).not.toContain(o.key);
      expect(versioned.versionsOf(o.key), o.key).toEqual([]);
    }
    expect(restores[0]).toEqual({
      input: {
        Bucket: bucket,
        Key: cold.key,
        RestoreRequest: { Days: RESTORE_DAYS, GlacierJobParameters: { Tier: 'Bulk' } },
      },
      answer: '202',
    });
    expect(ledgerWhileWaiting.find((o) => o.objectId === cold.objectId)).toEqual(cold);
    expect(coldVersionsWhileWaiting).toHaveLength(1);
    // While S3 still restores: waiting again; asking again was answered 409 and that is no failure.
    expect(secondRun.failure).toBeUndefined();
    expect(stillWaiting.status).toBe('waiting');
    expect(stillWaiting.proof).toBeNull();
    expect(restoresWhileRestoring).toBeGreaterThan(1);
    expect(new Set(restores.slice(1).map((r) => r.answer))).toEqual(new Set(['409']));
    // Restored: the third run rewrote it into the same storage class and completed the request.
    expect(thirdRun.failure).toBeUndefined();
    const request = await requestOf(services, requestId);
    expect(request.status).toBe('completed');
    const rewrites = rewritesOf(request);
    expect(rewrites.map((r) => r.oldKey).sort()).toEqual(holding.map((o) => o.key).sort());
    const coldRewrite = rewrites.find((r) => r.oldKey === cold.key) as RewriteProof;
    expect(coldRewrite.storageClass).toBe('GLACIER');
    const coldPut = stub.rewritePuts().find((p) => p.Key === coldRewrite.newKey);
    expect(coldPut?.StorageClass).toBe('GLACIER');
    expect(
      stub
        .rewritePuts()
        .filter((p) => p !== coldPut)
        .map((p) => p.StorageClass),
    ).toEqual([undefined, undefined, undefined, undefined]);
    // Once S3 reports the copy, no restore is asked for again.
    expect(restores).toHaveLength(restoresWhileRestoring);
    expect(versioned.versionsOf(cold.key)).toEqual([]);
    expect(await currentKeys(s3, bucket)).toEqual(keysOf(await ledgerObjects(db)));
    await expectSubjectNowhere(s3, bucket);
  });
});

describe('objects in another storage class, encrypted with a KMS key', () => {
  it('are rewritten with the same storage class and encryption', async ({ services }) => {
    // Prepare: every archive object reports STANDARD_IA and SSE-KMS (the local S3 keeps neither).
    const { s3 } = services;
    const { bucket, versioned, holding, erase } = await archiveScenario(services);
    const requestId = await requestErasure(services);
    const kmsKeyId = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const stub = stubbed(versioned.client, (command) =>
      command instanceof HeadObjectCommand && command.input.Key?.startsWith('archive/')
        ? versioned.client.send(command).then((head) => ({
            ...head,
            StorageClass: 'STANDARD_IA',
            ServerSideEncryption: 'aws:kms',
            SSEKMSKeyId: kmsKeyId,
            BucketKeyEnabled: true,
          }))
        : undefined,
    );

    // Act
    const result = await erase({ s3: stub.client });

    // Assess
    expect(result.failure).toBeUndefined();
    const request = await requestOf(services, requestId);
    expect(request.status).toBe('completed');
    const rewrites = rewritesOf(request);
    expect(rewrites.map((r) => [r.oldKey, r.storageClass])).toEqual(
      holding.map((o) => [o.key, 'STANDARD_IA']),
    );
    const puts = stub.rewritePuts();
    // One new object per audit object (the sessions object held only the subject's rows: deleted, none written).
    expect(puts.map((p) => p.Key)).toEqual(rewrites.flatMap((r) => (r.newKey ? [r.newKey] : [])));
    expect(puts).toHaveLength(5);
    for (const put of puts)
      expect(put, put.Key).toMatchObject({
        StorageClass: 'STANDARD_IA',
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: kmsKeyId,
        BucketKeyEnabled: true,
      });
    await expectSubjectNowhere(s3, bucket);
  });
});

describe('a table the mapping anonymizes', () => {
  const anonymizing = subjectArchiveConfig([
    {
      table: AUDIT,
      keyColumn: 'user_id',
      action: 'anonymize',
      anonymize: {
        columns: {
          email: { strategy: 'email', keepDomain: false },
          note: { strategy: 'fixed', value: 'ERASED' },
        },
      },
    },
    { table: 'public.sessions', keyColumn: 'user_id', action: 'delete' },
    { table: 'public.users', keyColumn: 'id', action: 'delete' },
  ]);
  /** A live row of the subject with the email their archived rows hold: the live mask to compare with. */
  const addLiveRow = (services: Services) =>
    services.db.pool.query(
      `INSERT INTO ${AUDIT} (id, user_id, created_at, note, email)
       VALUES (1000, 7, '2026-10-01', 'note of user 7 #1000', 'user7@mail.example')`,
    );

  /** The subject's rows of each rewritten audit object: masked as the live row is, every other value as it was. */
  async function expectMaskedAsLive(
    services: Services,
    archived: Archived,
    rewrites: RewriteProof[],
  ): Promise<void> {
    const { rows: live } = await services.db.pool.query<{ note: string; email: string }>(
      `SELECT note, email FROM ${AUDIT} WHERE id = 1000`,
    );
    const maskedEmail = live[0]?.email as string;
    expect(live[0]?.note).toBe('ERASED');
    expect(maskedEmail).toMatch(/^anon_[0-9a-f]+@example\.invalid$/);
    const [note, email] = [3, 4];
    for (const rewrite of rewrites.filter((r) => r.table === AUDIT_QUOTED)) {
      const old = archived.rowsBefore.get(rewrite.oldKey) ?? [];
      const now = await decodedRows(services.s3, archived.bucket, rewrite.newKey as string);
      expect(now).toHaveLength(old.length);
      expect(rewrite.rowsLeft).toBe(old.length);
      for (const [i, row] of now.entries()) {
        const was = JSON.parse(old[i] as string) as Array<string | null>;
        if (was[1] !== SUBJECT) {
          expect(row).toBe(old[i]);
          continue;
        }
        const masked = JSON.parse(row) as Array<string | null>;
        expect(was[email]).toBe('user7@mail.example');
        expect(masked[note]).toBe('ERASED');
        expect(masked[email]).toBe(maskedEmail);
        const others = (values: Array<string | null>) => values.filter((_, c) => c !== note && c !== email);
        expect(others(masked)).toEqual(others(was));
      }
    }
  }

  it('keeps the subject’s archived rows masked as the live ones are, and a second request rewrites nothing', async ({
    services,
  }) => {
    // Prepare
    const { db, s3 } = services;
    const archived = await archiveScenario(services, anonymizing);
    const { bucket, versioned, before, holding, erase } = archived;
    await addLiveRow(services);
    const requestId = await requestErasure(services);
    const stub = stubbed(versioned.client);

    // Act
    const result = await erase({ s3: stub.client });
    const afterFirst = await ledgerObjects(db);
    const keysAfterFirst = await currentKeys(s3, bucket);
    const putsOfFirst = stub.rewritePuts().length;
    const secondId = await requestErasure(services);
    const second = await erase({ s3: stub.client });

    // Assess: each audit object kept every row, the subject's masked; the sessions object is gone.
    expect(result.failure).toBeUndefined();
    const request = await requestOf(services, requestId);
    expect(request.status).toBe('completed');
    const rewrites = rewritesOf(request);
    expect(rewrites.map((r) => [r.oldKey, r.rowsRemoved, r.rowsMasked])).toEqual(
      holding.map((o) => (o.table === AUDIT_QUOTED ? [o.key, 0, 1] : [o.key, 5, 0])),
    );
    await expectMaskedAsLive(services, archived, rewrites);
    const auditRows = (ledger: Ledger) => total(ledger.filter((o) => o.table === AUDIT_QUOTED));
    expect(auditRows(afterFirst)).toBe(auditRows(before));
    expect(afterFirst.filter((o) => o.table === SESSIONS_QUOTED)).toEqual([]);
    for (const o of holding) expect(versioned.versionsOf(o.key), o.key).toEqual([]);
    await expectSubjectNowhere(s3, bucket);
    // A second request for the subject: every archived row of theirs already masked, no object rewritten.
    expect(second.failure).toBeUndefined();
    const again = await requestOf(services, secondId);
    expect(again.status).toBe('completed');
    expect(rewritesOf(again)).toEqual([]);
    expect(stub.rewritePuts()).toHaveLength(putsOfFirst);
    expect(await ledgerObjects(db)).toEqual(afterFirst);
    expect(await currentKeys(s3, bucket)).toEqual(keysAfterFirst);
  });

  // Was a bug: a text[] masked value printed `{erased}` by PostgreSQL decodes as `{"erased"}` from the object, and
  // the read-back check compared them as strings (every object with a masked array column failed the request).
  it('masks an array column of the subject’s archived rows as the live row’s', async ({ services }) => {
    // Prepare
    const { db, s3 } = services;
    const withTags = subjectArchiveConfig([
      {
        table: AUDIT,
        keyColumn: 'user_id',
        action: 'anonymize',
        anonymize: { columns: { tags: { strategy: 'fixed', value: '{erased}' } } },
      },
      { table: 'public.sessions', keyColumn: 'user_id', action: 'delete' },
      { table: 'public.users', keyColumn: 'id', action: 'delete' },
    ]);
    const archived = await archiveScenario(services, withTags);
    await db.pool.query(`UPDATE ${AUDIT} SET tags = ARRAY['x', 'y'] WHERE user_id = 7`);
    const requestId = await requestErasure(services);

    // Act
    const result = await archived.erase();

    // Assess
    expect(result.failure).toBeUndefined();
    const request = await requestOf(services, requestId);
    expect(request.status, request.error ?? '').toBe('completed');
    const rewrites = rewritesOf(request).filter((r) => r.table === AUDIT_QUOTED);
    expect(rewrites.map((r) => r.rowsMasked)).toEqual([1, 1, 1, 1, 1]);
    for (const rewrite of rewrites) {
      const rows = (await decodedRows(s3, archived.bucket, rewrite.newKey as string)).map(
        (row) => JSON.parse(row) as Array<string | null>,
      );
      const subjectRow = rows.find((row) => row[1] === SUBJECT) as Array<string | null>;
      const { rows: same } = await db.pool.query<{ same: boolean }>(
        `SELECT bool_and(tags = $1::text[]) AS same FROM ${AUDIT} WHERE user_id = 7`,
        [subjectRow[6]],
      );
      expect(same[0]?.same).toBe(true);
    }
  });
});

describe('an erasure with archive objects and no bucket or no S3 client', () => {
  it('is refused with a StorageConfigurationError before anything changes', async ({ services }) => {
    // Prepare
    const { db, s3, runPolicy, definition } = services;
    const { bucket, before } = await archiveScenario(services);
    const requestId = await requestErasure(services);
    const liveBefore = await liveSubjectRows(services);

    // Act
    const result = await runPolicy(config, 'gdpr', {
      definition,
      deps: { bucket: undefined, hashKey: HASH_KEY },
    });

    // Assess
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('StorageConfigurationError');
    expect(result.failure?.cause).toMatch(/bucket/);
    const request = await requestOf(services, requestId);
    expect(request.status).toBe('pending');
    expect(request.progress ?? null).toBeNull();
    expect(liveBefore).toBe(3);
    expect(await liveSubjectRows(services)).toBe(liveBefore);
    expect(await ledgerObjects(db)).toEqual(before);
    expect(await currentKeys(s3, bucket)).toEqual(keysOf(before));
  });

  // Was a bug: Start checked that there was a store, not that it had the S3 client the archive phase needs.
  it('is refused before anything changes when the store has no S3 client to rewrite objects with', async ({
    services,
  }) => {
    // Prepare: a store that is not S3 (ObjectStore.s3Client absent), over the bucket the objects are in.
    const { db, s3, runPolicy, definition } = services;
    const { bucket, versioned, before } = await archiveScenario(services);
    const requestId = await requestErasure(services);
    const store = new Proxy(new S3ObjectStore(versioned.client, bucket), {
      get: (target, property, receiver) =>
        property === 's3Client' ? undefined : Reflect.get(target, property, receiver),
    });

    // Act
    const result = await runPolicy(config, 'gdpr', {
      definition,
      deps: { store, bucket, hashKey: HASH_KEY },
    });

    // Assess
    expect(result.failure?.error).toBe('StorageConfigurationError');
    expect(await liveSubjectRows(services)).toBe(3);
    expect((await requestOf(services, requestId)).progress ?? null).toBeNull();
    expect(await ledgerObjects(db)).toEqual(before);
    expect(await currentKeys(s3, bucket)).toEqual(keysOf(before));
  });
});
