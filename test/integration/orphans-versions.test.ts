/**
 * Orphans in a versioned bucket (the bucket the stack creates is one). An orphan (an object a chunk uploaded
 * before it rolled back, never listed in the ledger) holds copies of rows that are still live; a subject's
 * erasure walks only ledger-listed objects. A plain DeleteObject would only add a delete marker and leave the
 * orphan's bytes in a noncurrent version for 30 days, out of the erasure's reach: RecordFailure, Finish and a
 * stale upload's self-delete must delete every version. The local S3 server has no versioning: the stub of
 * test/support/versioned-s3.ts plays S3's (each noncurrent version a real object under NONCURRENT_PREFIX), over
 * real runs through the synthesized state machine and a real PostgreSQL.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { parquetReadObjects } from 'hyparquet';
import { S3ObjectStore, sha256Hex } from '../../functions/adapters/archive-store.ts';
import { TransientDatabaseError } from '../../functions/core/errors.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import type { ChunkFaultHooks } from '../../functions/run/dependencies.ts';
import { finishRun } from '../../functions/run/finish-run.ts';
import { runChunks } from '../../functions/run/run-chunks.ts';
import { startRun } from '../../functions/run/start-run.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { ledgerObjects, readArchivedRows, readObject, testConfig } from '../support/archive.ts';
import {
  duplicatesOf,
  expectArchiveGuarantees,
  seedEvents,
  tableKeys,
} from '../support/archive-guarantees.ts';
import { describe, expect, it, NOW, type Services } from '../support/fixture.ts';
import { createTestBucket, listAllKeys } from '../support/s3.ts';
import { NONCURRENT_PREFIX, type VersionedS3, versionedS3 } from '../support/versioned-s3.ts';

const ROWS = 250;
/** Rows 1..240 are older than the retention (eligible), 241..250 recent. */
const ELIGIBLE = 240;
/** What a row holds that no other row does (delimited: row 1's is no prefix of row 10's). */
const secretOf = (id: number | string) => `<secret of row ${id}>`;
const context = { getRemainingTimeInMillis: () => 60_000 } as Context;

/** `public.<table>`: ids 1..ROWS, each with its own secret; archived uncompressed, so raw bytes show values. */
async function seedSecrets(services: Services, table: string): Promise<void> {
  const { pool } = services.db;
  await pool.query(`DROP TABLE IF EXISTS public.${table}`);
  await pool.query(
    `CREATE TABLE public.${table} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, secret text NOT NULL)`,
  );
  await pool.query(
    `INSERT INTO public.${table}
     SELECT g,
            CASE WHEN g <= $2 THEN $1::timestamptz - interval '40 days' - g * interval '1 hour'
                 ELSE $1::timestamptz - g * interval '1 minute' END,
            '<secret of row ' || g || '>'
       FROM generate_series(1, $3::int) AS g`,
    [NOW.toISOString(), ELIGIBLE, ROWS],
  );
}

/** The ledger's objects of one policy (the file's tests share a database, each its own bucket). */
async function objectsOf(services: Services, policy: string) {
  return (await ledgerObjects(services.db.pool)).filter((o) => o.key.startsWith(`archive/${policy}/`));
}

function policyConfig(policy: string, table: string) {
  return testConfig([
    {
      name: policy,
      table: `public.${table}`,
      action: 'archive',
      timeColumn: 'created_at',
      retention: 'P30D',
      archive: { compression: 'uncompressed' },
      chunking: { initialRows: 50, minRows: 50, maxRows: 50 },
    },
  ]);
}

/** The bodies of every PutObject sent through `client`, by key (what an orphan held before its removal). */
function recordingPuts(client: S3Client): { client: S3Client; bodies: Map<string, Uint8Array> } {
  const bodies = new Map<string, Uint8Array>();
  const send = async (command: unknown) => {
    if (command instanceof PutObjectCommand && command.input.Key && command.input.Body instanceof Uint8Array)
      bodies.set(command.input.Key, command.input.Body);
    return client.send(command as never);
  };
  const recording = new Proxy(client, {
    get: (target, property, receiver) =>
      property === 'send' ? send : Reflect.get(target, property, receiver),
  });
  return { client: recording, bodies };
}

async function idsIn(body: Uint8Array): Promise<string[]> {
  const buffer = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  const rows = (await parquetReadObjects({ file: buffer })) as Array<Record<string, unknown>>;
  return rows.map((row) => String(row.id));
}

const contains = (haystack: Uint8Array, needle: string) => Buffer.from(haystack).includes(needle);

/** Every key of the bucket (current objects, and the stub's noncurrent copies) whose bytes hold a secret of `ids`. */
async function objectsHolding(s3: S3Client, bucket: string, ids: readonly string[]): Promise<string[]> {
  const holding: string[] = [];
  for (const key of await listAllKeys(s3, bucket)) {
    const bytes = await readObject(s3, bucket, key);
    if (ids.some((id) => contains(bytes, secretOf(id)))) holding.push(key);
  }
  return holding;
}

interface FailedRun {
  readonly bucket: string;
  readonly versioned: VersionedS3 | undefined;
  /** The client the runs use: the versioned stub, or the plain local server. */
  readonly client: S3Client;
  /** Uploaded by the chunk that rolled back, never listed. */
  readonly orphans: string[];
  /** The rows those orphans held. */
  readonly rolledBackIds: string[];
}

/**
 * An archive run of `policy` whose second chunk fails terminally after its upload, just before COMMIT: the chunk
 * rolls back, the run fails, and RecordFailure removes the chunk's object (the orphan).
 */
async function failAfterUpload(
  services: Services,
  policy: string,
  table: string,
  { versioning }: { versioning: boolean },
): Promise<FailedRun> {
  const { s3, runPolicy, definition } = services;
  await seedSecrets(services, table);
  const bucket = await createTestBucket(policy);
  const versioned = versioning ? versionedS3(s3, bucket) : undefined;
  const puts = recordingPuts(versioned?.client ?? s3);
  const uploaded: string[] = [];
  let commits = 0;
  const hooks: ChunkFaultHooks = {
    afterUpload: (key) => {
      uploaded.push(key);
    },
    beforeCommit: () => {
      commits++;
      if (commits === 2)
        throw Object.assign(new Error('injected: the chunk failed after its upload'), { name: 'BoomError' });
    },
  };

  const result = await runPolicy(policyConfig(policy, table), policy, {
    definition,
    deps: { s3: puts.client, bucket, hooks },
  });

  expect(result.status).toBe('failed');
  expect(result.failure?.error).toBe('BoomError');
  const listed = new Set((await objectsOf(services, policy)).map((o) => o.key));
  const orphans = uploaded.filter((key) => !listed.has(key));
  expect(orphans.length, 'the failed chunk uploaded before it rolled back').toBeGreaterThanOrEqual(1);
  const rolledBackIds: string[] = [];
  for (const orphan of orphans) {
    const body = puts.bodies.get(orphan);
    expect(body, `${orphan} was PUT`).toBeDefined();
    const ids = await idsIn(body as Uint8Array);
    // The scan below can see values: the orphan's own bytes held its rows' secrets.
    expect(ids.every((id) => contains(body as Uint8Array, secretOf(id)))).toBe(true);
    rolledBackIds.push(...ids);
  }
  expect(rolledBackIds.length).toBeGreaterThan(0);
  return { bucket, versioned, client: versioned?.client ?? s3, orphans, rolledBackIds };
}

/** The failed run's orphans are gone with every version, their rows live; a re-run archives them exactly once. */
async function expectOrphansGoneAndRerun(
  services: Services,
  policy: string,
  table: string,
  failed: FailedRun,
): Promise<void> {
  const { db, s3, runPolicy, definition } = services;
  const { bucket, versioned, orphans, rolledBackIds } = failed;

  // RecordFailure removed them (no later run has started): nothing pending, nothing stored under the key.
  const pending = await db.pool.query('SELECT key FROM lifecycle.pending_objects WHERE bucket = $1', [
    bucket,
  ]);
  expect(pending.rows).toEqual([]);
  for (const orphan of orphans) {
    expect(await listAllKeys(s3, bucket, orphan), orphan).toEqual([]);
    if (versioned) expect(versioned.versionsOf(orphan), `versions of ${orphan}`).toEqual([]);
  }
  // No object of the bucket, current or noncurrent, holds a value of the rolled-back rows...
  expect(await listAllKeys(s3, bucket, NONCURRENT_PREFIX)).toEqual([]);
  expect(await objectsHolding(s3, bucket, rolledBackIds)).toEqual([]);
  // ...while the scan finds the values the ledger lists (the first chunk's committed object).
  const committed = await objectsOf(services, policy);
  expect(committed.length).toBeGreaterThan(0);
  const committedIds = (await readArchivedRows(s3, bucket, committed)).map((row) => String(row.id));
  expect(await objectsHolding(s3, bucket, committedIds.slice(0, 1))).toEqual([committed[0]?.key]);
  // The rolled-back rows are still live.
  const live = await tableKeys(db.pool, `SELECT id::text AS k FROM public.${table}`);
  expect(rolledBackIds.filter((id) => !live.includes(id))).toEqual([]);

  // Act: the next run archives what is left.
  const rerun = await runPolicy(policyConfig(policy, table), policy, {
    definition,
    deps: { s3: failed.client, bucket },
  });

  // Assess: every eligible row archived exactly once (the rolled-back ones included), the recent ones live.
  expect(rerun.failure).toBeUndefined();
  const objects = await objectsOf(services, policy);
  const archivedIds = (await readArchivedRows(s3, bucket, objects)).map((row) => String(row.id));
  expect(duplicatesOf(archivedIds)).toEqual([]);
  expect(archivedIds.map(Number).sort((a, b) => a - b)).toEqual(
    Array.from({ length: ELIGIBLE }, (_, i) => i + 1),
  );
  for (const id of rolledBackIds)
    expect(
      archivedIds.filter((a) => a === id),
      id,
    ).toHaveLength(1);
  expect(await tableKeys(db.pool, `SELECT id::text AS k FROM public.${table} ORDER BY id`)).toEqual(
    Array.from({ length: ROWS - ELIGIBLE }, (_, i) => String(ELIGIBLE + i + 1)),
  );
  // S3 holds exactly the ledger's objects, and no noncurrent copy of anything.
  expect((await listAllKeys(s3, bucket)).sort()).toEqual(objects.map((o) => o.key).sort());
  for (const orphan of orphans) if (versioned) expect(versioned.versionsOf(orphan)).toEqual([]);
}

describe('orphan removal deletes every version', () => {
  it('RecordFailure leaves no version of a failed chunk’s orphan in a versioned bucket, and a re-run archives its rows once', async ({
    services,
  }) => {
    const failed = await failAfterUpload(services, 'versioned-orphans', 'versioned_secrets', {
      versioning: true,
    });
    await expectOrphansGoneAndRerun(services, 'versioned-orphans', 'versioned_secrets', failed);
  });

  it('RecordFailure still removes the orphan in a bucket without versioning', async ({ services }) => {
    const failed = await failAfterUpload(services, 'plain-orphans', 'plain_secrets', { versioning: false });
    await expectOrphansGoneAndRerun(services, 'plain-orphans', 'plain_secrets', failed);
  });

  it('Finish leaves no version of the orphan of a chunk that was retried', async ({ services }) => {
    // Prepare: the second chunk's COMMIT fails once (transient): the chunk is retried into a new object.
    const { s3, runPolicy, definition } = services;
    await seedSecrets(services, 'retried_secrets');
    const bucket = await createTestBucket('retried-orphans');
    const versioned = versionedS3(s3, bucket);
    const uploaded: string[] = [];
    let commits = 0;
    const hooks: ChunkFaultHooks = {
      afterUpload: (key) => {
        uploaded.push(key);
      },
      beforeCommit: () => {
        commits++;
        if (commits === 2) throw new TransientDatabaseError('injected: connection lost before COMMIT');
      },
    };

    // Act
    const result = await runPolicy(policyConfig('retried-orphans', 'retried_secrets'), 'retried-orphans', {
      definition,
      deps: { s3: versioned.client, bucket, hooks },
    });

    // Assess
    expect(result.failure).toBeUndefined();
    const objects = await objectsOf(services, 'retried-orphans');
    const orphans = uploaded.filter((key) => !objects.some((o) => o.key === key));
    expect(orphans.length).toBeGreaterThanOrEqual(1);
    expect(result.summary?.orphansRemoved).toBe(orphans.length);
    for (const orphan of orphans) expect(versioned.versionsOf(orphan), orphan).toEqual([]);
    expect(await listAllKeys(s3, bucket, NONCURRENT_PREFIX)).toEqual([]);
    expect((await listAllKeys(s3, bucket)).sort()).toEqual(objects.map((o) => o.key).sort());
    const archivedIds = (await readArchivedRows(s3, bucket, objects)).map((row) => String(row.id));
    expect(duplicatesOf(archivedIds)).toEqual([]);
    expect(archivedIds).toHaveLength(ELIGIBLE);
  });

  it('a stale upload that finds its run ended deletes every version of its object', async ({
    database: db,
    s3,
  }) => {
    // Prepare: a run opened as Start opens it, over the versioned stub; its chunk is frozen between announcing
    // its key and its PUT until Finish has run (Finish removes the announced key, nothing in S3 yet).
    await seedEvents(db.pool, 'late_events', 300, NOW);
    const tableKeysSql = 'SELECT id::text AS k FROM public.late_events';
    const before = await tableKeys(db.pool, tableKeysSql);
    const bucket = await createTestBucket('late-versions');
    const versioned = versionedS3(s3, bucket);
    const config = testConfig([
      {
        name: 'late',
        table: 'public.late_events',
        action: 'archive',
        timeColumn: 'created_at',
        retention: 'P30D',
        chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
      },
    ]);
    const common = { databaseUrl: db.url, bucket, s3: versioned.client, now: () => NOW };
    const state = await startRun(localDependencies(common)(context), {
      input: buildExecutionInput(config, 'late', 'local', false),
    });
    const realStore = new S3ObjectStore(versioned.client, bucket);
    const putKeys: string[] = [];
    let announced!: () => void;
    const keyAnnounced = new Promise<void>((resolve) => {
      announced = resolve;
    });
    let thaw!: () => void;
    const frozen = new Promise<void>((resolve) => {
      thaw = resolve;
    });
    const frozenStore = Object.assign(Object.create(realStore) as S3ObjectStore, {
      put: async (...args: Parameters<S3ObjectStore['put']>) => {
        putKeys.push(args[0]);
        announced();
        await frozen;
        await realStore.put(...args);
      },
    });
    const chunk = runChunks(localDependencies({ ...common, store: frozenStore })(context), state).then(
      () => 'committed',
      (error: Error) => error.name,
    );
    await keyAnnounced;

    // Act: Finish removes the orphan, then the chunk thaws: its PUT lands, it finds its key removed.
    const summary = await finishRun(localDependencies(common)(context), state);
    thaw();

    // Assess: the late object was uploaded (one version) and then deleted with every version, no copy kept.
    expect(await chunk).toBe('LeaseLostError');
    expect(summary.orphansRemoved).toBe(1);
    const [late] = putKeys;
    expect(late).toBeDefined();
    expect(versioned.puts.get(late as string)).toBe(1);
    expect(versioned.versionsOf(late as string)).toEqual([]);
    expect(await listAllKeys(s3, bucket, NONCURRENT_PREFIX)).toEqual([]);
    await expectArchiveGuarantees(
      { pool: db.pool, s3, bucket, policy: 'late', tableKeysSql, keyOf: (row) => String(row.id) },
      before,
    );
  });
});

describe('S3ObjectStore.deleteEveryVersion', () => {
  const body = new TextEncoder().encode('<secret of row 0>');
  const put = (store: S3ObjectStore, key: string) => store.put(key, body, sha256Hex(body), {});

  it('deletes every version of a key, where a plain delete keeps the bytes as a noncurrent version', async ({
    s3,
  }) => {
    // Prepare: two versions of one key, one of another key beside it (a longer key the prefix listing matches).
    const bucket = await createTestBucket('store-versions');
    const versioned = versionedS3(s3, bucket);
    const store = new S3ObjectStore(versioned.client, bucket);
    const key = 'archive/p/t/x.parquet';
    await put(store, key);
    await put(store, key);
    await put(store, `${key}2`);
    await put(store, 'archive/p/t/plain.parquet');

    // Act
    const deleted = await store.deleteEveryVersion(key);
    await store.delete('archive/p/t/plain.parquet');

    // Assess
    expect(deleted).toBe(2);
    expect(versioned.versionsOf(key)).toEqual([]);
    expect(versioned.versionsOf(`${key}2`)).toHaveLength(1);
    // The plain delete (what orphan removal did before) left a delete marker and the bytes.
    expect(versioned.versionsOf('archive/p/t/plain.parquet')).toHaveLength(2);
    expect(await listAllKeys(s3, bucket)).toEqual([
      `${key}2`,
      `${NONCURRENT_PREFIX}archive/p/t/plain.parquet/${versioned.versionsOf('archive/p/t/plain.parquet')[1]}`,
    ]);
  });

  it('is the plain delete in a bucket without versioning', async ({ s3 }) => {
    // Prepare
    const bucket = await createTestBucket('store-plain');
    const store = new S3ObjectStore(s3, bucket);
    await put(store, 'archive/p/t/x.parquet');
    await put(store, 'archive/p/t/x.parquet2');

    // Act
    const deleted = await store.deleteEveryVersion('archive/p/t/x.parquet');

    // Assess
    expect(deleted).toBe(1);
    expect(await listAllKeys(s3, bucket)).toEqual(['archive/p/t/x.parquet2']);
  });
});
