/**
 * A stale Chunk invocation (a Lambda container frozen mid-chunk and thawed later) may still be uploading
 * when Finish removes the run's orphans. Finish closes the run first, so that chunk can no longer commit:
 * the object Finish deletes is never the only copy of rows deleted from the table.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { S3ObjectStore } from '../../functions/adapters/archive-store.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import { finishRun } from '../../functions/run/finish-run.ts';
import { runChunks } from '../../functions/run/run-chunks.ts';
import { startRun } from '../../functions/run/start-run.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { testConfig } from '../support/archive.ts';
import { expectArchiveGuarantees, seedEvents, tableKeys } from '../support/archive-guarantees.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

const context = { getRemainingTimeInMillis: () => 60_000 } as Context;

/** `public.<table>` with `rows` events and an archive run of `policy` opened on it, as Start opens one. */
async function openRun(
  { db, s3, bucket }: { db: TestDatabase; s3: S3Client; bucket: string },
  table: string,
  policy: string,
  rows: number,
) {
  await seedEvents(db.pool, table, rows, NOW);
  const tableKeysSql = `SELECT id::text AS k FROM public.${table}`;
  const before = await tableKeys(db.pool, tableKeysSql);
  const config = testConfig([
    {
      name: policy,
      table: `public.${table}`,
      action: 'archive',
      timeColumn: 'created_at',
      retention: 'P30D',
      chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
    },
  ]);
  const common = { databaseUrl: db.url, bucket, s3, now: () => NOW };
  const state = await startRun(localDependencies(common)(context), {
    input: buildExecutionInput(config, policy, 'local', false),
  });
  return { tableKeysSql, before, common, state };
}

describe('Finish racing a stale chunk', () => {
  it('never deletes an object whose chunk can still commit', async ({ database: db, s3, bucket }) => {
    // Prepare
    const { tableKeysSql, before, common, state } = await openRun({ db, s3, bucket }, 'events', 'race', 600);

    // The stale chunk stops after uploading and verifying its first object, until Finish has deleted it.
    let uploaded!: () => void;
    const chunkUploaded = new Promise<void>((resolve) => {
      uploaded = resolve;
    });
    let mayCommit!: () => void;
    const commitGate = new Promise<void>((resolve) => {
      mayCommit = resolve;
    });
    let held = false;
    const chunk = runChunks(
      localDependencies({
        ...common,
        hooks: {
          beforeLedger: async () => {
            if (held) return;
            held = true;
            uploaded();
            await commitGate;
          },
        },
      })(context),
      state,
    );
    const chunkSettled = chunk.then(
      () => 'committed',
      (error: Error) => error.name,
    );
    await chunkUploaded;

    // Finish deletes orphans; right after the deletion the stale chunk tries to commit, and Finish goes on
    // only once that attempt is over.
    const realStore = new S3ObjectStore(s3, bucket);
    const racingStore = Object.assign(Object.create(realStore) as S3ObjectStore, {
      deleteEveryVersion: async (key: string) => {
        const deleted = await realStore.deleteEveryVersion(key);
        mayCommit();
        await chunkSettled;
        return deleted;
      },
    });

    // Act
    const summary = await finishRun(localDependencies({ ...common, store: racingStore })(context), state);

    // Assess: the stale chunk was locked out, its object removed, its rows back in the table.
    expect(await chunkSettled).toBe('LeaseLostError');
    expect(summary.orphansRemoved).toBe(1);
    await expectArchiveGuarantees(
      { pool: db.pool, s3, bucket, policy: 'race', tableKeysSql, keyOf: (row) => String(row.id) },
      before,
    );
  });

  it('leaves no object behind when a stale chunk uploads after Finish removed its orphans', async ({
    database: db,
    s3,
    bucket,
  }) => {
    // Prepare
    const { tableKeysSql, before, common, state } = await openRun(
      { db, s3, bucket },
      'late_events',
      'late',
      300,
    );
    // The stale chunk is frozen between announcing its key and its PUT, until Finish has run.
    const realStore = new S3ObjectStore(s3, bucket);
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

    // Act: Finish removes the orphan (nothing in S3 yet), then the chunk thaws and its PUT lands.
    const summary = await finishRun(localDependencies(common)(context), state);
    thaw();

    // Assess: the chunk saw its key removed and deleted its own object; nothing unlisted is left in S3.
    expect(await chunk).toBe('LeaseLostError');
    expect(summary.orphansRemoved).toBe(1);
    await expectArchiveGuarantees(
      { pool: db.pool, s3, bucket, policy: 'late', tableKeysSql, keyOf: (row) => String(row.id) },
      before,
    );
  });
});
