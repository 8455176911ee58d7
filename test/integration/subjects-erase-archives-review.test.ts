/**
 * Regression tests from the second review of the archive erasure (commit 040d787). Each scenario drops what the one
 * before left, seeds the schema of test/support/subject-archives.ts again (subject 7: one row in five "Audit Logs"
 * objects, the only five rows of a sessions object) and archives it into a bucket of its own through the
 * versioned-bucket stub, then erases subject 7 through the gdpr policy's state machine:
 *   - objects the bucket's lifecycle rules expired entirely (no version left, the ledger still lists them), in a
 *     bucket where a plain DeleteObject always adds a delete marker, as S3 does in a versioned bucket;
 *   - a request that failed in its archive walk: a backup restored afterwards must not bring its live rows back;
 *   - json and point columns masked in the archived rows; an enum label renamed since archiving in an unmasked
 *     column;
 *   - a waiting list longer than one step can look at (the archive step alone, with a budget of objects);
 *   - a restored Glacier copy that expires between the HEAD and the GET;
 *   - `pg-lifecycle subject status` of a request waiting on Object Lock after rewriting other objects.
 * Stubs over the real client play what the local S3 server lacks (versions, storage classes, Object Lock); the
 * objects read, written and deleted are real.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  type DeleteObjectCommandOutput,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  type ListObjectVersionsCommandOutput,
  PutObjectCommand,
  RestoreObjectCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import pg from 'pg';
import { restoreBackup } from '../../functions/actions/backup/restore/index.ts';
import { decodeArchiveObject } from '../../functions/actions/restore-archive/parquet-decode.ts';
import {
  continueArchiveErasure,
  type ErasureProgress,
  RESTORE_DAYS,
} from '../../functions/actions/subjects/archive-erasure.ts';
import type { SubjectsPolicy } from '../../functions/actions/subjects/contract.ts';
import { loadErasureReplay } from '../../functions/actions/subjects/erasure-replay.ts';
import { resolveSubjectTables } from '../../functions/actions/subjects/mapping.ts';
import { createSubjectRequest, type SubjectRequest } from '../../functions/actions/subjects/requests.ts';
import { resolveClientConfig, withClient } from '../../functions/commons/database.ts';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { writeTestBackup } from '../support/backup-fixture.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW, type Services } from '../support/fixture.ts';
import { openRun, runCliInProcess } from '../support/leases.ts';
import { createTestBucket } from '../support/s3.ts';
import {
  AUDIT,
  AUDIT_QUOTED,
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
import { type VersionedS3, versionedS3 } from '../support/versioned-s3.ts';

type Ledger = Awaited<ReturnType<typeof ledgerObjects>>;

interface RewriteProof {
  table: string;
  oldKey: string;
  newKey: string | null;
  rowsRemoved: number;
  rowsMasked: number;
  rowsLeft: number;
  gone?: boolean;
}

/** An object's column names and rows as PostgreSQL text. */
interface Decoded {
  readonly names: string[];
  readonly rows: Array<Array<string | null>>;
}

interface Archived<V extends VersionedS3> {
  readonly bucket: string;
  readonly versioned: V;
  readonly before: Ledger;
  /** Every object's decoded rows before the erasure, by key. */
  readonly decodedBefore: Map<string, Decoded>;
  /** Objects holding rows of the subject, in object_id order (the order the erasure walks them). */
  readonly holding: Ledger;
  /** The gdpr policy run against this bucket through `s3` (default: the scenario's versioned stub). */
  erase(options?: { s3?: S3Client }): Promise<LocalRunResult>;
}

const config = subjectArchiveConfig();

async function decodedObject(s3: S3Client, bucket: string, key: string): Promise<Decoded> {
  const decoded = await decodeArchiveObject(await objectBytes(s3, bucket, key));
  return { names: decoded.columns.map((c) => c.name), rows: decoded.rows.map((r) => [...r]) };
}

/**
 * Drops what an earlier scenario left (tables, the enum of the enum scenario, the ledger), seeds again, runs
 * `beforeArchive`, and archives into a new bucket through the versioned stub (`wrap` lays another over it).
 */
async function archiveScenario<V extends VersionedS3 = VersionedS3>(
  services: Services,
  options: {
    config?: LifecycleConfig;
    beforeArchive?: (db: TestDatabase) => Promise<void>;
    wrap?: (versioned: VersionedS3, bucket: string) => V;
  } = {},
): Promise<Archived<V>> {
  const { db, s3, runPolicy, definition } = services;
  const gdprConfig = options.config ?? config;
  await db.pool.query(
    `DROP SCHEMA IF EXISTS lifecycle CASCADE;
     DROP TABLE IF EXISTS public.users, ${AUDIT}, public.sessions;
     DROP TYPE IF EXISTS public.acct_state`,
  );
  await seedSubjectArchives(db);
  await options.beforeArchive?.(db);
  const bucket = await createTestBucket('erase-review');
  const plain = versionedS3(s3, bucket);
  const versioned = options.wrap ? options.wrap(plain, bucket) : (plain as V);
  for (const policy of ['audit-archive', 'sessions-archive']) {
    const run = await runPolicy(gdprConfig, policy, { definition, deps: { s3: versioned.client, bucket } });
    expect(run.failure).toBeUndefined();
  }
  const before = await ledgerObjects(db);
  const decodedBefore = new Map<string, Decoded>();
  for (const o of before) decodedBefore.set(o.key, await decodedObject(s3, bucket, o.key));
  const holding = before.filter((o) => decodedBefore.get(o.key)?.rows.some((row) => row[1] === SUBJECT));
  expect(holding.map((o) => o.table)).toEqual([
    ...Array.from({ length: 5 }, () => AUDIT_QUOTED),
    SESSIONS_QUOTED,
  ]);
  return {
    bucket,
    versioned,
    before,
    decodedBefore,
    holding,
    erase: (o = {}) =>
      runPolicy(gdprConfig, 'gdpr', {
        definition,
        deps: { s3: o.s3 ?? versioned.client, bucket, hashKey: HASH_KEY },
      }),
  };
}

async function request(services: Services, kind: 'erase' | 'export', subjectKey: string): Promise<string> {
  const made = await createSubjectRequest(services.db.pool, {
    policy: 'gdpr',
    kind,
    subjectKey,
    hashKey: HASH_KEY,
    dueDays: 30,
    requestedAt: new Date(NOW.getTime() - 3_600_000),
  });
  expect(made.created).toBe(true);
  return made.request.requestId;
}

/** The keys an erasure in its archive phase waits for, in the order it will look at them. */
async function waitingKeys(services: Services, requestId: string): Promise<string[]> {
  return ((await requestOf(services, requestId)).progress as ErasureProgress).waiting.map((w) => w.key);
}

const rewritesOf = (r: SubjectRequest) =>
  (r.proof as { archives: { objects: RewriteProof[] } }).archives.objects;

/** A client over `inner` whose `send` asks `handle` first: a defined answer is returned, undefined passes on. */
function intercepted(inner: S3Client, handle: (command: unknown) => Promise<unknown> | undefined): S3Client {
  const send = async (command: unknown) => (await handle(command)) ?? inner.send(command as never);
  return new Proxy(inner, {
    get: (target, property, receiver) =>
      property === 'send' ? send : Reflect.get(target, property, receiver),
  });
}

/** The versioned stub, with real S3's answer to a DeleteObject without VersionId on a key with no version. */
interface MarkingS3 extends VersionedS3 {
  /** Keys a plain DeleteObject reached while they had no version: each got a delete marker. */
  readonly markersAdded: string[];
}

/**
 * In a versioned bucket S3 answers a DeleteObject without VersionId by adding a delete marker, even when the key has
 * no version at all (test/support/versioned-s3.ts passes that one on to the unversioned server, where it is a
 * no-op). The marker is a version of its own: ListObjectVersions lists it until it is deleted by its VersionId.
 */
function markersOnAbsentKeys(versioned: VersionedS3, bucket: string): MarkingS3 {
  const markers = new Map<string, string[]>();
  const markersAdded: string[] = [];
  let next = 0;
  const client = intercepted(versioned.client, (command) => {
    if (command instanceof DeleteObjectCommand && command.input.Bucket === bucket && command.input.Key) {
      const key = command.input.Key;
      const mine = markers.get(key) ?? [];
      const wanted = command.input.VersionId;
      if (wanted === undefined && versioned.versionsOf(key).length === 0) {
        const id = `marker-${++next}`;
        markers.set(key, [id, ...mine]);
        markersAdded.push(key);
        return Promise.resolve({
          DeleteMarker: true,
          VersionId: id,
        } satisfies Partial<DeleteObjectCommandOutput>);
      }
      if (wanted !== undefined && mine.includes(wanted)) {
        markers.set(
          key,
          mine.filter((m) => m !== wanted),
        );
        return Promise.resolve({ DeleteMarker: true, VersionId: wanted });
      }
      return undefined;
    }
    if (command instanceof ListObjectVersionsCommand && command.input.Bucket === bucket) {
      const prefix = command.input.Prefix ?? '';
      return (versioned.client.send(command) as Promise<ListObjectVersionsCommandOutput>).then((out) => ({
        ...out,
        DeleteMarkers: [
          ...(out.DeleteMarkers ?? []),
          ...[...markers].flatMap(([key, ids]) =>
            key.startsWith(prefix)
              ? ids.map((id, i) => ({ Key: key, VersionId: id, IsLatest: i === 0 }))
              : [],
          ),
        ],
      }));
    }
    return undefined;
  });
  return {
    client,
    puts: versioned.puts,
    markersAdded,
    versionsOf: (key) => [...(markers.get(key) ?? []), ...versioned.versionsOf(key)],
  };
}

const invalidObjectState = () =>
  new S3ServiceException({
    name: 'InvalidObjectState',
    $fault: 'client',
    $metadata: { httpStatusCode: 403 },
    message: 'The operation is not valid for the object storage class',
  });

describe('archive objects the bucket’s lifecycle rules expired entirely, still listed in the ledger', () => {
  // Was a bug: the erasure sent a plain DeleteObject for a key with no version left; in a versioned bucket that adds
  // a delete marker, the check after it found a version still listed and failed the Chunk step, on every erasure.
  it('erasures complete in one run with no delete marker added, and an export is answered in the same run', async ({
    services,
  }) => {
    // Prepare: three objects without the subject lose every version (expiry, noncurrent expiry, expired-marker
    // cleanup); the first object holding the subject is expired: a delete marker on top, its bytes noncurrent.
    const { s3 } = services;
    const scenario = await archiveScenario(services, { wrap: markersOnAbsentKeys });
    const { bucket, versioned, before, holding } = scenario;
    const gone = before.filter((o) => !holding.includes(o)).slice(0, 3);
    for (const o of gone)
      for (const versionId of versioned.versionsOf(o.key))
        await versioned.client.send(
          new DeleteObjectCommand({ Bucket: bucket, Key: o.key, VersionId: versionId }),
        );
    const expired = holding[0] as Ledger[number];
    await versioned.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: expired.key }));
    expect(gone.map((o) => versioned.versionsOf(o.key))).toEqual([[], [], []]);
    expect(versioned.versionsOf(expired.key)).toHaveLength(2);
    const erasureId = await request(services, 'erase', SUBJECT);
    const exportId = await request(services, 'export', '3');

    // Act: one run for both requests, then another erasure (subject 3) over the same listed-but-absent keys.
    const first = await scenario.erase();
    const erasure = await requestOf(services, erasureId);
    const exported = await requestOf(services, exportId);
    const markersAfterFirst = [...versioned.markersAdded];
    const secondId = await request(services, 'erase', '3');
    const second = await scenario.erase();
    const secondErasure = await requestOf(services, secondId);

    // Assess: no DeleteObject without VersionId reached a key with no version (the bug's delete markers).
    expect(markersAfterFirst).toEqual([]);
    expect(versioned.markersAdded).toEqual([]);
    // The first run succeeded and completed the erasure; the proof names every expired object as gone.
    expect(first.failure).toBeUndefined();
    expect(erasure.status, erasure.error ?? '').toBe('completed');
    const goneKeys = [expired, ...gone].map((o) => o.key).sort();
    const goneIn = (r: SubjectRequest) =>
      rewritesOf(r)
        .filter((w) => w.gone)
        .map((w) => w.oldKey)
        .sort();
    expect(goneIn(erasure)).toEqual(goneKeys);
    // The expired object's noncurrent version (subject 7's row in it) and its marker are deleted; nothing of the
    // gone keys is stored.
    for (const o of [expired, ...gone]) expect(versioned.versionsOf(o.key), o.key).toEqual([]);
    await expectSubjectNowhere(s3, bucket);
    // The export was answered in that run, not left pending behind a failing step, and completed: objects the
    // bucket's rule expired hold nothing to export, and its proof names them.
    expect(exported.status, exported.error ?? '').toBe('completed');
    const exportedTables = (exported.proof as { tables: Array<{ table: string; expired?: string[] }> })
      .tables;
    const expiredKeys = exportedTables.flatMap((t) => t.expired ?? []).sort();
    expect(expiredKeys.length).toBeGreaterThan(0);
    for (const key of expiredKeys) expect(goneKeys).toContain(key);
    // A later erasure walks the same listed-but-absent keys and completes as well.
    expect(second.failure).toBeUndefined();
    expect(secondErasure.status, secondErasure.error ?? '').toBe('completed');
    expect(goneIn(secondErasure)).toEqual(goneKeys);
  });
});

describe('a request that failed in its archive walk, its live rows already erased', () => {
  // Was a bug: loadErasureReplay took only completed and pending/waiting erasures; a failed one was not re-applied.
  it('is still re-applied when a backup from before it is restored', async ({ services }) => {
    // Prepare: back up, then make the last object holding the subject not the ledger's bytes.
    const { db, s3 } = services;
    const { bucket, versioned, holding, erase } = await archiveScenario(services);
    expect(await liveSubjectRows(services)).toBe(3);
    const manifest = await writeTestBackup({ db, s3, bucket, policy: 'nightly', tables: ['public.*'] });
    const corrupt = holding.at(-1) as Ledger[number];
    await versioned.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: corrupt.key, Body: 'not the archived parquet' }),
    );
    const requestId = await request(services, 'erase', SUBJECT);

    // Act
    const run = await erase();
    const failed = await requestOf(services, requestId);
    const liveAfterErasure = await liveSubjectRows(services);
    const clientConfig = await resolveClientConfig({ DATABASE_URL: db.url });
    const replay = await withClient(clientConfig, (client) =>
      loadErasureReplay(client, manifest.startedAt, HASH_KEY),
    );
    const restored = await withClient(clientConfig, (client) =>
      restoreBackup({
        db: client,
        s3,
        bucket,
        manifest,
        mode: 'data-only',
        ifExists: 'truncate',
        erasures: replay,
      }),
    );

    // Assess: the request failed alone in its archive walk (the run succeeded), its live rows gone.
    expect(run.failure).toBeUndefined();
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/^ArchivedObjectIntegrityError: /);
    expect(failed.error).toContain(corrupt.key);
    expect((failed.progress as { phase?: string }).phase).toBe('archives');
    expect(liveAfterErasure).toBe(0);
    // The replay holds it, and the restore brought everyone back but the subject.
    expect(replay?.requests).toBe(1);
    expect(await liveSubjectRows(services)).toBe(0);
    const erased = new Map(restored.tables.map((t) => [t.target, t.erased]));
    expect(erased.get(AUDIT_QUOTED)).toBe(2);
    expect(erased.get('"public"."users"')).toBe(1);
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.users');
    expect(rows[0]?.n).toBe(19);
  });
});

describe('masked columns of types without an equality operator, in the archived rows', () => {
  // Was a bug: the read-back check compared masked values with IS NOT DISTINCT FROM under the column's type, and
  // json and point have no equality operator: every object with such a masked column failed the request.
  it('a json column (jsonb strategy) and a point column (null) are masked and the request completes', async ({
    services,
  }) => {
    // Prepare
    const { s3 } = services;
    const masking = subjectArchiveConfig([
      {
        table: AUDIT,
        keyColumn: 'user_id',
        action: 'anonymize',
        anonymize: {
          columns: { profile: { strategy: 'jsonb', removeKeys: ['name'] }, location: { strategy: 'null' } },
        },
      },
      { table: 'public.sessions', keyColumn: 'user_id', action: 'delete' },
      { table: 'public.users', keyColumn: 'id', action: 'delete' },
    ]);
    const { bucket, decodedBefore, holding, erase } = await archiveScenario(services, {
      config: masking,
      beforeArchive: async (db) => {
        await db.pool.query(`ALTER TABLE ${AUDIT} ADD COLUMN profile json, ADD COLUMN location point`);
        await db.pool.query(
          `UPDATE ${AUDIT} SET profile = json_build_object('name', 'user ' || user_id, 'plan', 'x'),
                               location = point(user_id, id)`,
        );
      },
    });
    const requestId = await request(services, 'erase', SUBJECT);

    // Act
    const result = await erase();

    // Assess
    expect(result.failure).toBeUndefined();
    const done = await requestOf(services, requestId);
    expect(done.status, done.error ?? '').toBe('completed');
    const rewrites = rewritesOf(done);
    expect(rewrites.map((r) => [r.oldKey, r.rowsRemoved, r.rowsMasked])).toEqual(
      holding.map((o) => (o.table === AUDIT_QUOTED ? [o.key, 0, 1] : [o.key, 5, 0])),
    );
    for (const rewrite of rewrites.filter((r) => r.table === AUDIT_QUOTED)) {
      const old = decodedBefore.get(rewrite.oldKey) as Decoded;
      const now = await decodedObject(s3, bucket, rewrite.newKey as string);
      expect(now.names).toEqual(old.names);
      const [profile, location] = [now.names.indexOf('profile'), now.names.indexOf('location')];
      expect(now.rows).toHaveLength(old.rows.length);
      for (const [i, row] of now.rows.entries()) {
        const was = old.rows[i] as Array<string | null>;
        if (was[1] !== SUBJECT) {
          expect(row).toEqual(was);
          continue;
        }
        expect(JSON.parse(was[profile] as string)).toEqual({ name: 'user 7', plan: 'x' });
        expect(JSON.parse(row[profile] as string)).toEqual({ plan: 'x' });
        expect(was[location]).not.toBeNull();
        expect(row[location]).toBeNull();
        const others = (values: Array<string | null>) =>
          values.filter((_, c) => c !== profile && c !== location);
        expect(others(row)).toEqual(others(was));
      }
    }
  });
});

describe('an enum label renamed after archiving, in a column the mapping does not mask', () => {
  // Was a bug: the masking cast every archived column to today's type, so 'closed' (renamed since) failed the request.
  it('does not fail the request; the archived rows keep the label they were written with', async ({
    services,
  }) => {
    // Prepare
    const { db, s3 } = services;
    const anonymizing = subjectArchiveConfig([
      {
        table: AUDIT,
        keyColumn: 'user_id',
        action: 'anonymize',
        anonymize: { columns: { note: { strategy: 'fixed', value: 'ERASED' } } },
      },
      { table: 'public.sessions', keyColumn: 'user_id', action: 'delete' },
      { table: 'public.users', keyColumn: 'id', action: 'delete' },
    ]);
    const { bucket, decodedBefore, holding, erase } = await archiveScenario(services, {
      config: anonymizing,
      beforeArchive: async (d) => {
        await d.pool.query(
          `CREATE TYPE public.acct_state AS ENUM ('active', 'closed');
           ALTER TABLE ${AUDIT} ADD COLUMN state public.acct_state;
           UPDATE ${AUDIT} SET state = CASE WHEN user_id = 7 THEN 'closed' ELSE 'active' END::public.acct_state`,
        );
      },
    });
    await db.pool.query(`ALTER TYPE public.acct_state RENAME VALUE 'closed' TO 'deactivated'`);
    const requestId = await request(services, 'erase', SUBJECT);

    // Act
    const result = await erase();

    // Assess
    expect(result.failure).toBeUndefined();
    const done = await requestOf(services, requestId);
    expect(done.error).toBeNull();
    expect(done.status).toBe('completed');
    const rewrites = rewritesOf(done).filter((r) => r.table === AUDIT_QUOTED);
    expect(rewrites.map((r) => [r.oldKey, r.rowsMasked])).toEqual(
      holding.filter((o) => o.table === AUDIT_QUOTED).map((o) => [o.key, 1]),
    );
    for (const rewrite of rewrites) {
      const old = decodedBefore.get(rewrite.oldKey) as Decoded;
      const now = await decodedObject(s3, bucket, rewrite.newKey as string);
      const [note, state] = [now.names.indexOf('note'), now.names.indexOf('state')];
      for (const [i, row] of now.rows.entries()) {
        const was = old.rows[i] as Array<string | null>;
        if (was[1] !== SUBJECT) {
          expect(row).toEqual(was);
          continue;
        }
        expect(row[note]).toBe('ERASED');
        expect(was[state]).toBe('closed');
        expect(row[state]).toBe('closed');
      }
    }
  });
});

describe('a waiting list longer than one step can look at', () => {
  // Was a bug: the objects not reached in a step were put after the ones looked at, so every step looked at the same
  // head of the list again and objects restored at its tail were never reached.
  it('is walked in turn: each step starts where the last one stopped, and restored objects at the tail are reached', async ({
    services,
  }) => {
    // Prepare: every archive object is in GLACIER, its restore under way; the first run leaves all of them waiting.
    const { db } = services;
    const { versioned, before, holding, erase } = await archiveScenario(services);
    const restored = new Set<string>();
    const heads: string[] = [];
    const glacier = intercepted(versioned.client, (command) => {
      if (command instanceof HeadObjectCommand && command.input.Key?.startsWith('archive/')) {
        const key = command.input.Key;
        heads.push(key);
        return versioned.client.send(command).then((head) => ({
          ...head,
          StorageClass: 'GLACIER',
          Restore: restored.has(key)
            ? 'ongoing-request="false", expiry-date="Fri, 25 Dec 2026 00:00:00 GMT"'
            : 'ongoing-request="true"',
        }));
      }
      if (
        command instanceof GetObjectCommand &&
        command.input.Key?.startsWith('archive/') &&
        !restored.has(command.input.Key)
      )
        return Promise.reject(invalidObjectState());
      if (command instanceof RestoreObjectCommand) return Promise.resolve({});
      return undefined;
    });
    const requestId = await request(services, 'erase', SUBJECT);
    const run = await erase({ s3: glacier });
    expect(run.failure).toBeUndefined();
    expect((await requestOf(services, requestId)).status).toBe('waiting');
    const waiting = await waitingKeys(services, requestId);
    expect(waiting).toEqual(before.map((o) => o.key));
    // S3 now has a copy of the last two: the last audit object and the sessions object (all subject 7's rows).
    const tail = waiting.slice(-2);
    const sessions = holding.at(-1) as Ledger[number];
    expect(tail[1]).toBe(sessions.key);
    for (const key of tail) restored.add(key);

    // Act: steps of the archive phase with time for four objects each, in a run of the policy as Start opens one.
    const runId = await openRun(db, 'gdpr', {});
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const perStep: string[][] = [];
    try {
      const policy = config.policies.find((p) => p.name === 'gdpr') as SubjectsPolicy;
      const tables = await resolveSubjectTables(client, policy);
      const steps = Math.ceil(waiting.length / 4);
      for (let step = 0; step < steps; step++) {
        let budget = 4;
        heads.length = 0;
        await continueArchiveErasure(
          { s3: glacier, db: client, runId, key: undefined, now: () => NOW, hasTime: () => budget-- > 0 },
          requestId,
          SUBJECT,
          tables,
        );
        perStep.push([...new Set(heads)]);
      }
    } finally {
      await client.end();
    }

    // Assess: each step looked at four objects the step before did not; together they looked at every one.
    expect(perStep.every((keys) => keys.length === 4)).toBe(true);
    for (let step = 1; step < perStep.length; step++)
      expect(perStep[step]?.filter((key) => perStep[step - 1]?.includes(key))).toEqual([]);
    expect(new Set(perStep.flat())).toEqual(new Set(waiting));
    // The restored tail was reached: no longer waiting, the sessions object emptied and deleted.
    const after = await waitingKeys(services, requestId);
    expect(after).toHaveLength(waiting.length - 2);
    for (const key of tail) expect(after).not.toContain(key);
    const { rows } = await db.pool.query<{ old_key: string; outcome: string; deleted: boolean }>(
      'SELECT old_key, outcome, deleted FROM lifecycle.subject_rewrites WHERE request_id = $1',
      [requestId],
    );
    expect(rows).toEqual([{ old_key: sessions.key, outcome: 'emptied', deleted: true }]);
    expect(versioned.versionsOf(sessions.key)).toEqual([]);
  });
});

describe('a restored copy that expires between the HEAD and the GET', () => {
  // Was a bug: GetObject's InvalidObjectState there was taken for a fault of the object and failed the request.
  it('is restored again: the request waits, then completes once S3 has a copy', async ({ services }) => {
    // Prepare: the third object holding the subject is in GLACIER; HEAD shows a restored copy, which is gone by the
    // GET (S3 answers InvalidObjectState); the restore asked for then is done by the next run.
    const { versioned, holding, erase } = await archiveScenario(services);
    const cold = holding[2] as Ledger[number];
    const state = {
      restore: 'ongoing-request="false", expiry-date="Tue, 24 Nov 2026 00:00:00 GMT"' as string | undefined,
    };
    const restores: Array<{ key: string | undefined; days: number | undefined }> = [];
    let refusedGets = 0;
    const glacier = intercepted(versioned.client, (command) => {
      if (command instanceof HeadObjectCommand && command.input.Key === cold.key)
        return versioned.client
          .send(command)
          .then((head) => ({ ...head, StorageClass: 'GLACIER', Restore: state.restore }));
      if (command instanceof GetObjectCommand && command.input.Key === cold.key && refusedGets === 0) {
        refusedGets++;
        state.restore = undefined;
        return Promise.reject(invalidObjectState());
      }
      if (command instanceof RestoreObjectCommand) {
        restores.push({ key: command.input.Key, days: command.input.RestoreRequest?.Days });
        if (state.restore === 'ongoing-request="true"')
          return Promise.reject(
            new S3ServiceException({
              name: 'RestoreAlreadyInProgress',
              $fault: 'client',
              $metadata: { httpStatusCode: 409 },
              message: 'Object restore is already in progress',
            }),
          );
        state.restore = 'ongoing-request="true"';
        return Promise.resolve({});
      }
      return undefined;
    });
    const requestId = await request(services, 'erase', SUBJECT);

    // Act
    const first = await erase({ s3: glacier });
    const afterFirst = await requestOf(services, requestId);
    state.restore = 'ongoing-request="false", expiry-date="Fri, 04 Dec 2026 00:00:00 GMT"';
    const second = await erase({ s3: glacier });

    // Assess: the first run asked for the restore again and left the request waiting for that object alone.
    expect(first.failure).toBeUndefined();
    expect(refusedGets).toBe(1);
    expect(afterFirst.error).toBeNull();
    expect(afterFirst.status).toBe('waiting');
    expect((afterFirst.progress as ErasureProgress).waiting).toEqual([
      expect.objectContaining({ key: cold.key, reason: 'restore', storageClass: 'GLACIER' }),
    ]);
    expect(restores.length).toBeGreaterThan(0);
    for (const restore of restores) expect(restore).toEqual({ key: cold.key, days: RESTORE_DAYS });
    // The next run rewrote it and completed the request.
    expect(second.failure).toBeUndefined();
    const done = await requestOf(services, requestId);
    expect(done.status, done.error ?? '').toBe('completed');
    expect(rewritesOf(done).map((r) => r.oldKey)).toContain(cold.key);
    expect(versioned.versionsOf(cold.key)).toEqual([]);
  });
});

describe('pg-lifecycle subject status of an erasure waiting on Object Lock', () => {
  // Was a bug: status counted rewrites from a progress field no longer written (always 0), and called every wait a
  // Glacier restore ("(undefined)" for a locked object).
  it('shows the objects rewritten so far and names each Object Lock wait', async ({ services }) => {
    // Prepare: of the objects holding the subject, one is under a legal hold HEAD shows, one under the retention the
    // ledger records for it (HEAD shows it only with s3:GetObjectRetention).
    const { db } = services;
    const { versioned, before, holding, erase } = await archiveScenario(services);
    const [held, retained] = [holding[1], holding[3]] as Ledger;
    const retainUntil = '2031-01-01T00:00:00.000Z';
    await db.pool.query('UPDATE lifecycle.archived_objects SET lock_until = $2 WHERE object_id = $1', [
      retained?.objectId,
      retainUntil,
    ]);
    const locking = intercepted(versioned.client, (command) =>
      command instanceof HeadObjectCommand && command.input.Key === held?.key
        ? versioned.client.send(command).then((head) => ({ ...head, ObjectLockLegalHoldStatus: 'ON' }))
        : undefined,
    );
    const requestId = await request(services, 'erase', SUBJECT);
    const configPath = join(tmpdir(), `subjects-erase-archives-review-${process.pid}.json`);
    writeFileSync(configPath, JSON.stringify(config));

    // Act
    const run = await erase({ s3: locking });
    const waiting = await requestOf(services, requestId);
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM lifecycle.subject_rewrites WHERE request_id = $1',
      [requestId],
    );
    const rewritten = rows[0]?.n;
    const text = await runCliInProcess(db, ['subject', 'status', '--config', configPath]);
    const json = await runCliInProcess(db, ['subject', 'status', '--json', '--config', configPath]);
    rmSync(configPath, { force: true });

    // Assess: the other four objects are rewritten; the request waits for the two locked ones.
    expect(run.failure).toBeUndefined();
    expect(waiting.status).toBe('waiting');
    expect(rewritten).toBe(holding.length - 2);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      `archives: ${before.length} object(s) searched, ${rewritten} rewritten; waiting for 2 object(s): ` +
        `${held?.key} (Object Lock legal hold), ${retained?.key} (Object Lock until ${retainUntil})`,
    );
    expect(text.stdout).not.toContain('undefined');
    expect(text.stdout).not.toContain('Glacier');
    expect(json.code).toBe(0);
    const view = (JSON.parse(json.stdout) as Array<Record<string, unknown>>).find(
      (v) => v.requestId === requestId,
    );
    expect(view?.archives).toEqual({
      searched: before.length,
      rewritten,
      waitingFor: [
        { key: held?.key, reason: 'object-lock', until: null },
        { key: retained?.key, reason: 'object-lock', until: retainUntil },
      ],
    });
  });
});
