/**
 * archive.objectLock against real PostgreSQL and a real S3 API server: an object is locked only once the
 * ledger lists it, exactly once, until its listing time + days; an orphan of a rolled-back chunk is never
 * locked and is removed; objects a crash left unlocked are locked later; orphan removal touches only
 * objects the ledger never listed.
 *
 * fauxqs 1.9.2 has no Object Lock: it accepts CreateBucket with Object Lock but keeps no configuration, and
 * stores a PutObjectRetention body as the object itself. The two Object Lock requests are therefore answered
 * by the client instead of sent (objectLockClient: the bucket reports Object Lock enabled with no default
 * retention; PutObjectRetention is recorded); everything else (uploads, the checks against the ledger before
 * a lock, deletes, the ledger, the state machine) is real. The lock request itself is checked in
 * archive-store.test.ts.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { verifyArchiveRun } from '../../bin/local/verify-archive.ts';
import { ArchiveAction } from '../../functions/actions/archive/chunk.ts';
import { lockListedObjects } from '../../functions/actions/archive/object-lock.ts';
import type { ChunkInput, CompletedChunk } from '../../functions/actions/chunk-action.ts';
import {
  type BucketCheck,
  type ObjectStore,
  type Retention,
  S3ObjectStore,
  type StoredObject,
  type VerifyMode,
} from '../../functions/adapters/archive-store.ts';
import { Ledger } from '../../functions/adapters/ledger/index.ts';
import type { Queryable } from '../../functions/adapters/transactions.ts';
import { TransientDatabaseError, TransientStorageError } from '../../functions/core/errors.ts';
import { type ChunkFaultHooks, silentLogger } from '../../functions/run/dependencies.ts';
import type { ArchivePolicy, LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { type LedgerObject, ledgerObjects, readObject, testConfig } from '../support/archive.ts';
import { seedEvents } from '../support/archive-guarantees.ts';
import type { TestDatabase } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it, NOW } from '../support/fixture.ts';
import { listAllKeys, testS3Client } from '../support/s3.ts';

/** The file's client for LockRecordingStore (objectLockClient). */
let lockingS3: S3Client;

interface LockCall {
  readonly key: string;
  readonly mode: string;
  readonly until: string;
  /** The ledger listed the key (committed, seen from another connection) when the lock was asked for. */
  readonly listed: boolean;
}

/** A client of the local S3 server that answers the Object Lock requests itself (see the file comment). */
function objectLockClient(): S3Client {
  const client = testS3Client();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'GetObjectLockConfigurationCommand')
        return {
          response: {},
          output: { $metadata: {}, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } },
        } as never;
      if (context.commandName === 'PutObjectRetentionCommand')
        return { response: {}, output: { $metadata: {} } } as never;
      return next(args);
    },
    { step: 'initialize', name: 'answerObjectLock' },
  );
  return client;
}

/**
 * A real S3ObjectStore (over objectLockClient) whose lock calls are also recorded, with whether the ledger
 * listed the key at that moment (committed, seen from a connection of its own). A lock is recorded once
 * S3ObjectStore.retain has checked the object (HEAD: length, SHA-256) and made the call. `verifyFaults`
 * fails the n-th verification after the real upload: the chunk rolls back and leaves an orphan.
 */
class LockRecordingStore implements ObjectStore {
  readonly locks: LockCall[] = [];
  readonly uploaded: string[] = [];
  readonly faulted: string[] = [];
  private readonly inner: S3ObjectStore;
  private verifications = 0;

  constructor(
    client: S3Client,
    bucketName: string,
    private readonly ledger: pg.Pool,
    private readonly verifyFaults: readonly number[] = [],
  ) {
    this.inner = new S3ObjectStore(client, bucketName);
  }

  get bucket(): string {
    return this.inner.bucket;
  }

  checkBucket(check?: BucketCheck): Promise<void> {
    return this.inner.checkBucket(check);
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

  deleteEveryVersion(key: string): Promise<number> {
    return this.inner.deleteEveryVersion(key);
  }

  async retain(object: StoredObject, retention: Retention): Promise<void> {
    const { rowCount } = await this.ledger.query('SELECT 1 FROM lifecycle.archived_objects WHERE key = $1', [
      object.key,
    ]);
    await this.inner.retain(object, retention);
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
async function expectedLocks(
  db: TestDatabase,
  policyName: string,
  days: number,
): Promise<Map<string, string>> {
  const { rows } = await db.pool.query<{ key: string; listed_ms: string }>(
    `SELECT o.key, floor(extract(epoch FROM o.created_at) * 1000)::bigint::text AS listed_ms
       FROM lifecycle.archived_objects o JOIN lifecycle.runs r USING (run_id) WHERE r.policy = $1`,
    [policyName],
  );
  return new Map(
    rows.map((row) => [row.key, new Date(Number(row.listed_ms) + days * 86_400_000).toISOString()]),
  );
}

async function unlockedCount(db: TestDatabase, policyName: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM lifecycle.archived_objects o JOIN lifecycle.runs r USING (run_id)
      WHERE r.policy = $1 AND o.retained_until IS NULL`,
    [policyName],
  );
  return Number(rows[0]?.n);
}

beforeAll(() => {
  lockingS3 = objectLockClient();
});
afterAll(() => {
  lockingS3?.destroy();
});

describe('archive.objectLock', () => {
  it('locks each committed object once, after its COMMIT listed it, and never an orphan, which is removed', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: the 3rd verification fails after a real upload, so that chunk rolls back: an orphan.
    await seedEvents(db.pool, 'locked_events', 1500, NOW);
    const lock = { mode: 'COMPLIANCE' as const, days: 3650 };
    const config = testConfig([policy('locked', 'locked_events', lock)]);
    const store = new LockRecordingStore(lockingS3, bucket, db.pool, [3]);

    // Act
    const result = await runPolicy(config, 'locked', { deps: { store } });

    // Assess
    expect(result.status).toBe('succeeded');
    const expected = await expectedLocks(db, 'locked', lock.days);
    expect(expected.size).toBeGreaterThan(3);
    expect(
      store.locks.every((call) => call.listed),
      'locked before the ledger listed it',
    ).toBe(true);
    expect(store.locks.map((call) => call.key).sort()).toEqual([...expected.keys()].sort());
    for (const call of store.locks)
      expect(call).toMatchObject({ mode: 'COMPLIANCE', until: expected.get(call.key) });
    expect(await unlockedCount(db, 'locked')).toBe(0);
    // The orphan: uploaded, never listed, never locked, removed.
    const [orphan] = store.faulted;
    expect(orphan).toBeDefined();
    expect(store.uploaded).toContain(orphan);
    expect(expected.has(orphan as string)).toBe(false);
    expect(store.locks.map((call) => call.key)).not.toContain(orphan);
    expect(await listAllKeys(s3, bucket, 'archive/locked/')).toEqual([...expected.keys()].sort());
  });

  it('locks, in a later run, objects a crash between COMMIT and the lock left unlocked', async ({
    database: db,
    bucket,
    runPolicy,
  }) => {
    // Prepare: a crash right after the first chunk's COMMIT (before its lock); the step is retried.
    await seedEvents(db.pool, 'crash_events', 1500, NOW);
    const lock = { mode: 'GOVERNANCE' as const, days: 30 };
    const config = testConfig([policy('crashed', 'crash_events', lock)]);
    let commits = 0;
    let crashed: string[] = [];
    const hooks: ChunkFaultHooks = {
      afterCommit: async () => {
        commits++;
        if (commits !== 1) return;
        // What the crashed chunk committed: listed, and (its lock never ran) still unlocked.
        crashed = (await ledgerObjects(db.pool))
          .filter((o) => o.key.startsWith('archive/crashed/'))
          .map((o) => o.key);
        throw new TransientDatabaseError('injected: crash after COMMIT');
      },
    };
    const store = new LockRecordingStore(lockingS3, bucket, db.pool);

    // Act
    const result = await runPolicy(config, 'crashed', { deps: { store, hooks } });

    // Assess: the crash happened after a COMMIT that listed objects; they were locked later, none twice,
    // none missing.
    expect(result.status).toBe('succeeded');
    expect(commits).toBeGreaterThan(1);
    expect(crashed.length).toBeGreaterThan(0);
    const expected = await expectedLocks(db, 'crashed', lock.days);
    expect(expected.size).toBeGreaterThan(crashed.length);
    for (const key of crashed) expect(expected.has(key)).toBe(true);
    expect(store.locks.map((call) => call.key).sort()).toEqual([...expected.keys()].sort());
    for (const call of store.locks)
      expect(call).toMatchObject({ listed: true, until: expected.get(call.key) });
    expect(await unlockedCount(db, 'crashed')).toBe(0);
  });

  it("locks listed objects that were never locked (objectLock turned on later) in the next run's Finish", async ({
    database: db,
    bucket,
    runPolicy,
  }) => {
    // Prepare: a first run without objectLock lists objects and locks none.
    await seedEvents(db.pool, 'later_events', 1000, NOW);
    const unlocked = testConfig([policy('later', 'later_events')]);
    const first = await runPolicy(unlocked, 'later');
    const firstObjects = (await ledgerObjects(db.pool, first.summary?.runId)).map((o) => o.key);
    expect(await unlockedCount(db, 'later')).toBe(firstObjects.length);
    // One object listed long ago: its lock would already have ended, so none is asked for.
    const [old] = firstObjects;
    await db.pool.query(
      `UPDATE lifecycle.archived_objects SET created_at = now() - interval '400 days' WHERE key = $1`,
      [old],
    );
    const lock = { mode: 'GOVERNANCE' as const, days: 365 };
    const store = new LockRecordingStore(lockingS3, bucket, db.pool);

    // Act: nothing is left to archive; only Finish's sweep can lock the first run's objects.
    const second = await runPolicy(testConfig([policy('later', 'later_events', lock)]), 'later', {
      deps: { store },
    });

    // Assess
    expect(second.summary).toMatchObject({ status: 'succeeded', rows: 0 });
    const expected = await expectedLocks(db, 'later', lock.days);
    expect(store.locks.map((call) => call.key).sort()).toEqual(firstObjects.filter((k) => k !== old).sort());
    for (const call of store.locks) expect(call.until).toBe(expected.get(call.key));
    expect(await unlockedCount(db, 'later')).toBe(0);
  });
});

describe('archive.objectLock: what each step locks', () => {
  it("locks after a COMMIT only that chunk's own objects, and none once the step's time runs short", async ({
    database: db,
    bucket,
    runPolicy,
  }) => {
    // Prepare: listed objects of a run without objectLock, then the archive action of the policy with it.
    await seedEvents(db.pool, 'chunk_events', 800, NOW);
    const run = await runPolicy(testConfig([policy('chunked', 'chunk_events')]), 'chunked');
    const runId = run.summary?.runId as string;
    const [first, second, ...others] = await ledgerObjects(db.pool, runId);
    if (!first || !second) throw new Error('expected at least two objects');
    const locked = testConfig([
      policy('chunked', 'chunk_events', { mode: 'GOVERNANCE', days: 3650 }),
    ]).policies.find((p) => p.name === 'chunked') as ArchivePolicy;
    const store = new LockRecordingStore(lockingS3, bucket, db.pool);
    let remainingMs = 60_000;
    const action = new ArchiveAction(
      store,
      new Ledger(db.pool),
      {},
      {
        db: db.pool,
        now: () => NOW,
        remainingMs: () => remainingMs,
        log: silentLogger,
      },
    );
    const committed = (objects: LedgerObject[]) =>
      ({ bytes: 0, objects: objects.map((o) => ({ ...o, bucket })) }) as unknown as CompletedChunk;
    const input = { runId, policy: locked } as ChunkInput;

    // Act: a chunk that listed `first` committed; then one that listed `second`, with 5 s left in the step.
    await action.afterCommit(committed([first]), input);
    remainingMs = 5_000;
    await action.afterCommit(committed([second]), input);

    // Assess: the run's other unlocked objects are left to Finish, and so is `second`.
    expect(store.locks.map((call) => call.key)).toEqual([first.key]);
    expect(await unlockedCount(db, 'chunked')).toBe(others.length + 1);
  });

  it('records an object S3 holds other bytes for: the Finish that finds it fails, later ones skip it, verify reports it', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: objects listed without objectLock; then one of them replaced in S3.
    await seedEvents(db.pool, 'tampered_events', 800, NOW);
    const unlocked = testConfig([policy('tampered', 'tampered_events')]);
    const first = await runPolicy(unlocked, 'tampered');
    const keys = (await ledgerObjects(db.pool, first.summary?.runId)).map((o) => o.key);
    const [replaced, ...intact] = keys;
    if (!replaced || intact.length === 0) throw new Error('expected at least two objects');
    // Another object's Parquet (verify reads every object's footer).
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: replaced,
        Body: await readObject(s3, bucket, intact[0] as string),
      }),
    );
    const config = testConfig([policy('tampered', 'tampered_events', { mode: 'COMPLIANCE', days: 3650 })]);
    const finding = new LockRecordingStore(lockingS3, bucket, db.pool);
    const later = new LockRecordingStore(lockingS3, bucket, db.pool);

    // Act: the next run's Finish finds it; the run after that.
    const found = await runPolicy(config, 'tampered', { deps: { store: finding } });
    const next = await runPolicy(config, 'tampered', { deps: { store: later } });

    // Assess: reported once (the run that found it failed, the others were locked), recorded, then skipped.
    expect(found.status).toBe('failed');
    expect(found.failure).toMatchObject({
      error: 'ArchiveObjectMismatchError',
      cause: expect.stringContaining(replaced),
    });
    expect(finding.locks.map((call) => call.key).sort()).toEqual([...intact].sort());
    const { rows } = await db.pool.query<{ lock_error: string | null; retained_until: string | null }>(
      'SELECT lock_error, retained_until FROM lifecycle.archived_objects WHERE key = $1',
      [replaced],
    );
    expect(rows).toEqual([
      {
        lock_error: expect.stringMatching(/^not locked, S3 holds other bytes \(.+\)$/),
        retained_until: null,
      },
    ]);
    expect(next.status).toBe('succeeded');
    expect(later.locks).toEqual([]);
    const verification = await verifyArchiveRun(db.pool, s3, bucket, { policy: 'tampered' });
    expect(verification.problems).toContain(`${replaced}: Object Lock: ${rows[0]?.lock_error}`);
  });

  it("Finish's sweep reads only the objects it locks, however many other policies listed", async ({
    database: db,
    bucket,
    runPolicy,
  }) => {
    // Prepare: 20,000 listed objects of a policy without objectLock (ledger rows only), and a few real ones of
    // a policy that now has it. Planner statistics as autovacuum keeps them on a ledger of that size.
    await seedEvents(db.pool, 'swept_events', 800, NOW);
    const run = await runPolicy(testConfig([policy('swept', 'swept_events')]), 'swept');
    const swept = await ledgerObjects(db.pool, run.summary?.runId);
    await db.pool.query(`
      INSERT INTO lifecycle.runs (run_id, policy, action, table_name, time_column, cutoff, trigger, status)
      SELECT gen_random_uuid(), 'bystander', 'archive', 't', 'c', now(), 'schedule', 'succeeded'
        FROM generate_series(1, 200)`);
    await db.pool.query(
      `
      INSERT INTO lifecycle.archived_objects (run_id, chunk_seq, bucket, key, rows, bytes, sha256, partition, min_time, max_time)
      SELECT r.run_id, 1, $1, 'archive/bystander/' || r.run_id || '/' || g, 1, 1, repeat('a', 64), 'p', 't', 't'
        FROM lifecycle.runs r, generate_series(1, 100) g WHERE r.policy = 'bystander'`,
      [bucket],
    );
    await db.pool.query('ANALYZE lifecycle.runs, lifecycle.archived_objects');
    const locked = testConfig([
      policy('swept', 'swept_events', { mode: 'GOVERNANCE', days: 3650 }),
    ]).policies.find((p) => p.name === 'swept') as ArchivePolicy;
    const store = new LockRecordingStore(lockingS3, bucket, db.pool);
    // Objects other tests of this file left due (dated, unlocked): the sweep may read those too.
    const { rows: due } = await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM lifecycle.archived_objects
        WHERE lock_until IS NOT NULL AND retained_until IS NULL AND lock_error IS NULL`,
    );
    const client = await db.pool.connect();
    let rowsRead = 0;
    // Each ledger statement is first run under EXPLAIN ANALYZE (rolled back) to count the rows it reads.
    const counting = {
      query: (async (text: string, values?: unknown[]) => {
        await client.query('BEGIN');
        const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
        await client.query('ROLLBACK');
        rowsRead += objectRowsRead((rows[0] as { 'QUERY PLAN': unknown })['QUERY PLAN']);
        return client.query(text, values);
      }) as Queryable['query'],
    };

    // Act: the sweep; and the next one, when the run is dated and its objects locked.
    let rowsReadAgain: number;
    try {
      await lockListedObjects(counting, store, locked, { now: () => NOW, log: silentLogger });
      const read = rowsRead;
      await lockListedObjects(counting, store, locked, { now: () => NOW, log: silentLogger });
      rowsReadAgain = rowsRead - read;
      rowsRead = read;
    } finally {
      client.release();
    }

    // Assess: each object is read to date it, to see its run dated, to find it due and to record its lock;
    // no bystander's.
    expect(store.locks.map((call) => call.key).sort()).toEqual(swept.map((o) => o.key).sort());
    expect(rowsRead).toBeLessThanOrEqual(4 * swept.length + Number(due[0]?.n));
    expect(rowsReadAgain).toBeLessThanOrEqual(Number(due[0]?.n));
    expect(store.locks).toHaveLength(swept.length);
  });
});

/** Rows an EXPLAIN ANALYZE plan read from lifecycle.archived_objects (returned or filtered out). */
function objectRowsRead(plan: unknown): number {
  let rows = 0;
  const visit = (node: Record<string, unknown>) => {
    if (node['Relation Name'] === 'archived_objects') {
      const read =
        Number(node['Actual Rows'] ?? 0) +
        Number(node['Rows Removed by Filter'] ?? 0) +
        Number(node['Rows Removed by Index Recheck'] ?? 0);
      rows += read * Number(node['Actual Loops'] ?? 1);
    }
    for (const child of (node.Plans as Array<Record<string, unknown>> | undefined) ?? []) visit(child);
  };
  for (const entry of plan as Array<{ Plan: Record<string, unknown> }>) visit(entry.Plan);
  return rows;
}

describe('orphan removal', () => {
  it('only ever deletes objects the ledger never listed, whatever the pending table says', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: a finished run's listed objects, each given a stale pending mark as if its announcement
    // had outlived the commit; and one real orphan (announced, uploaded, never listed).
    await seedEvents(db.pool, 'orphan_events', 800, NOW);
    const config = testConfig([policy('orphans', 'orphan_events')]);
    const first = await runPolicy(config, 'orphans');
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
    const second = await runPolicy(config, 'orphans');

    // Assess
    expect(second.summary?.orphansRemoved).toBe(1);
    expect(await listAllKeys(s3, bucket, 'archive/orphans/')).toEqual([...listed].sort());
  });
});
