/**
 * archive.objectLock against real PostgreSQL and a real S3 API server: an object is locked only once the
 * ledger lists it, exactly once, until its listing time + days; an orphan of a rolled-back chunk is never
 * locked and is removed; objects a crash left unlocked are locked later; orphan removal touches only
 * objects the ledger never listed.
 *
 * fauxqs 1.9.2 has no Object Lock: it accepts CreateBucket with Object Lock but keeps no configuration, and
 * stores a PutObjectRetention body as the object itself. The lock call is therefore the one thing recorded
 * here instead of sent (LockRecordingStore); everything else (uploads, checks, deletes, the ledger, the
 * state machine) is real. The lock request itself is checked in archive-store.test.ts.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BucketCheck,
  type ObjectStore,
  type Retention,
  S3ObjectStore,
  type StoredObject,
  type VerifyMode,
} from '../../functions/adapters/archive-store.ts';
import { TransientDatabaseError, TransientStorageError } from '../../functions/core/errors.ts';
import type { ChunkFaultHooks } from '../../functions/run/dependencies.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { ledgerObjects, runLocally, testConfig } from '../support/archive.ts';
import { seedEvents } from '../support/archive-guarantees.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { createTestBucket, listAllKeys, testS3Client } from '../support/s3.ts';

let db: TestDatabase;
let s3: S3Client;
let bucket: string;
const NOW = new Date('2026-11-23T12:00:00.000Z');

interface LockCall {
  readonly key: string;
  readonly mode: string;
  readonly until: string;
  /** The ledger listed the key (committed, seen from another connection) when the lock was asked for. */
  readonly listed: boolean;
}

/**
 * A real S3ObjectStore whose Object Lock calls are recorded instead of sent (see the file comment). Before
 * recording, it checks the object as S3ObjectStore.retain does (HEAD: length, SHA-256) and whether the
 * ledger lists the key, on a connection of its own. `verifyFaults` fails the n-th verification after the
 * real upload: the chunk rolls back and leaves an orphan.
 */
class LockRecordingStore implements ObjectStore {
  readonly locks: LockCall[] = [];
  readonly uploaded: string[] = [];
  readonly faulted: string[] = [];
  private verifications = 0;

  constructor(
    private readonly inner: S3ObjectStore,
    private readonly ledger: pg.Pool,
    private readonly verifyFaults: readonly number[] = [],
  ) {}

  get bucket(): string {
    return this.inner.bucket;
  }

  checkBucket(check?: BucketCheck): Promise<void> {
    // The bucket check is real but for the Object Lock setting, which fauxqs does not keep.
    return this.inner.checkBucket({ ...check, objectLock: false });
  }

  async put(key: string, body: Uint8Array, sha256: string, metadata: Record<string, string>): Promise<void> {
    await this.inner.put(key, body, sha256, metadata);
    this.uploaded.push(key);
  }

  async verify(object: StoredObject, mode: VerifyMode): Promise<void> {
    this.verifications++;
    if (this.verifyFaults.includes(this.verifications)) {
      this.faulted.push(object.key);
      throw new TransientStorageError('injected: verification failed');
    }
    await this.inner.verify(object, mode);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  async retain(object: StoredObject, retention: Retention): Promise<void> {
    await this.inner.verify(object, 'head');
    const { rowCount } = await this.ledger.query('SELECT 1 FROM lifecycle.archived_objects WHERE key = $1', [
      object.key,
    ]);
    this.locks.push({
      key: object.key,
      mode: retention.mode,
      until: retention.until.toISOString(),
      listed: rowCount === 1,
    });
  }
}

function policy(
  name: string,
  table: string,
  objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number },
) {
  return {
    name,
    table: `public.${table}`,
    action: 'archive' as const,
    timeColumn: 'created_at',
    retention: 'P90D',
    // Small chunks: several commits, hence several locks after COMMIT.
    chunking: { initialRows: 200, minRows: 100, maxRows: 200 },
    archive: { partitionBy: 'year' as const, ...(objectLock ? { objectLock } : {}) },
  } satisfies LifecycleConfigInput['policies'][number];
}

/** What the ledger says each listed object of the policy must be locked until: listing time + days (ISO). */
async function expectedLocks(policyName: string, days: number): Promise<Map<string, string>> {
  const { rows } = await db.pool.query<{ key: string; listed_ms: string }>(
    `SELECT o.key, floor(extract(epoch FROM o.created_at) * 1000)::bigint::text AS listed_ms
       FROM lifecycle.archived_objects o JOIN lifecycle.runs r USING (run_id) WHERE r.policy = $1`,
    [policyName],
  );
  return new Map(
    rows.map((row) => [row.key, new Date(Number(row.listed_ms) + days * 86_400_000).toISOString()]),
  );
}

async function unlockedCount(policyName: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM lifecycle.archived_objects o JOIN lifecycle.runs r USING (run_id)
      WHERE r.policy = $1 AND o.retained_until IS NULL`,
    [policyName],
  );
  return Number(rows[0]?.n);
}

beforeAll(async () => {
  db = await createTestDatabase('archive_object_lock');
  s3 = testS3Client();
  bucket = await createTestBucket('object-lock');
});
afterAll(async () => {
  s3?.destroy();
  await db?.drop();
});

describe('archive.objectLock', () => {
  it('locks each committed object once, after its COMMIT listed it, and never an orphan, which is removed', async () => {
    // Prepare: the 3rd verification fails after a real upload, so that chunk rolls back: an orphan.
    await seedEvents(db.pool, 'locked_events', 1500, NOW);
    const lock = { mode: 'COMPLIANCE' as const, days: 3650 };
    const config = testConfig([policy('locked', 'locked_events', lock)]);
    const store = new LockRecordingStore(new S3ObjectStore(s3, bucket), db.pool, [3]);

    // Act
    const result = await runLocally({
      config,
      policyName: 'locked',
      deps: { databaseUrl: db.url, bucket, store, now: () => NOW },
    });

    // Assess
    expect(result.status).toBe('succeeded');
    const expected = await expectedLocks('locked', lock.days);
    expect(expected.size).toBeGreaterThan(3);
    expect(
      store.locks.every((call) => call.listed),
      'locked before the ledger listed it',
    ).toBe(true);
    expect(store.locks.map((call) => call.key).sort()).toEqual([...expected.keys()].sort());
    for (const call of store.locks)
      expect(call).toMatchObject({ mode: 'COMPLIANCE', until: expected.get(call.key) });
    expect(await unlockedCount('locked')).toBe(0);
    // The orphan: uploaded, never listed, never locked, removed.
    const [orphan] = store.faulted;
    expect(orphan).toBeDefined();
    expect(store.uploaded).toContain(orphan);
    expect(expected.has(orphan as string)).toBe(false);
    expect(store.locks.map((call) => call.key)).not.toContain(orphan);
    expect(await listAllKeys(s3, bucket, 'archive/locked/')).toEqual([...expected.keys()].sort());
  });

  it('locks, in a later run, objects a crash between COMMIT and the lock left unlocked', async () => {
    // Prepare: a crash right after the first chunk's COMMIT (before its lock); the step is retried.
    await seedEvents(db.pool, 'crash_events', 1500, NOW);
    const lock = { mode: 'GOVERNANCE' as const, days: 30 };
    const config = testConfig([policy('crashed', 'crash_events', lock)]);
    let commits = 0;
    const hooks: ChunkFaultHooks = {
      afterCommit: () => {
        commits++;
        if (commits === 1) throw new TransientDatabaseError('injected: crash after COMMIT');
      },
    };
    const store = new LockRecordingStore(new S3ObjectStore(s3, bucket), db.pool);

    // Act
    const result = await runLocally({
      config,
      policyName: 'crashed',
      deps: { databaseUrl: db.url, bucket, store, hooks, now: () => NOW },
    });

    // Assess: the crashed chunk's objects were locked later, none twice, none missing.
    expect(result.status).toBe('succeeded');
    const expected = await expectedLocks('crashed', lock.days);
    expect(store.locks.map((call) => call.key).sort()).toEqual([...expected.keys()].sort());
    for (const call of store.locks)
      expect(call).toMatchObject({ listed: true, until: expected.get(call.key) });
    expect(await unlockedCount('crashed')).toBe(0);
  });

  it("locks listed objects that were never locked (objectLock turned on later) in the next run's Finish", async () => {
    // Prepare: a first run without objectLock lists objects and locks none.
    await seedEvents(db.pool, 'later_events', 1000, NOW);
    const unlocked = testConfig([policy('later', 'later_events')]);
    const first = await runLocally({
      config: unlocked,
      policyName: 'later',
      deps: { databaseUrl: db.url, bucket, s3, now: () => NOW },
    });
    const firstObjects = (await ledgerObjects(db.pool, first.summary?.runId)).map((o) => o.key);
    expect(await unlockedCount('later')).toBe(firstObjects.length);
    // One object listed long ago: its lock would already have ended, so none is asked for.
    const [old] = firstObjects;
    await db.pool.query(
      `UPDATE lifecycle.archived_objects SET created_at = now() - interval '400 days' WHERE key = $1`,
      [old],
    );
    const lock = { mode: 'GOVERNANCE' as const, days: 365 };
    const store = new LockRecordingStore(new S3ObjectStore(s3, bucket), db.pool);

    // Act: nothing is left to archive; only Finish's sweep can lock the first run's objects.
    const second = await runLocally({
      config: testConfig([policy('later', 'later_events', lock)]),
      policyName: 'later',
      deps: { databaseUrl: db.url, bucket, store, now: () => NOW },
    });

    // Assess
    expect(second.summary).toMatchObject({ status: 'succeeded', rows: 0 });
    const expected = await expectedLocks('later', lock.days);
    expect(store.locks.map((call) => call.key).sort()).toEqual(firstObjects.filter((k) => k !== old).sort());
    for (const call of store.locks) expect(call.until).toBe(expected.get(call.key));
    expect(await unlockedCount('later')).toBe(0);
  });
});

describe('orphan removal', () => {
  it('only ever deletes objects the ledger never listed, whatever the pending table says', async () => {
    // Prepare: a finished run's listed objects, each given a stale pending mark as if its announcement
    // had outlived the commit; and one real orphan (announced, uploaded, never listed).
    await seedEvents(db.pool, 'orphan_events', 800, NOW);
    const config = testConfig([policy('orphans', 'orphan_events')]);
    const first = await runLocally({
      config,
      policyName: 'orphans',
      deps: { databaseUrl: db.url, bucket, s3, now: () => NOW },
    });
    const runId = first.summary?.runId as string;
    const listed = (await ledgerObjects(db.pool, runId)).map((o) => o.key);
    expect(listed.length).toBeGreaterThan(1);
    const orphan = 'archive/orphans/public.orphan_events/year=2025/never-listed.parquet';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: orphan, Body: 'rolled back' }));
    for (const key of [...listed, orphan]) {
      await db.pool.query('INSERT INTO lifecycle.pending_objects (bucket, key, run_id) VALUES ($1, $2, $3)', [
        bucket,
        key,
        runId,
      ]);
    }

    // Act: the next run's Finish removes the orphans of ended runs.
    const second = await runLocally({
      config,
      policyName: 'orphans',
      deps: { databaseUrl: db.url, bucket, s3, now: () => NOW },
    });

    // Assess
    expect(second.summary?.orphansRemoved).toBe(1);
    expect(await listAllKeys(s3, bucket, 'archive/orphans/')).toEqual([...listed].sort());
  });
});
