/**
 * The lease is short and kept alive by the run (lib/contracts/lease.ts): Start takes it for LEASE_TTL_SECONDS,
 * and a Chunk step that ends before a Pause renews it for the TTL plus that Pause, so a live run never loses
 * it while waiting, and a killed one blocks its policy for minutes, not for a fixed 20 minutes. The steps run
 * here directly (real handlers' step functions, real PostgreSQL and S3).
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import { runChunks } from '../../functions/run/run-chunks.ts';
import { startRun } from '../../functions/run/start-run.ts';
import { LEASE_TTL_SECONDS } from '../../lib/contracts/lease.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { testConfig } from '../support/archive.ts';
import { seedEvents } from '../support/archive-guarantees.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';
import { leaseSecondsLeft } from '../support/leases.ts';

const PAUSE_SECONDS = 900;

describe('lease heartbeat', () => {
  it('Start takes a short lease; a Chunk step renews it for the TTL plus the coming Pause', async ({
    database: db,
    s3,
    bucket,
  }) => {
    // Prepare: one chunk per Chunk step (no time budget left after the first chunk).
    await seedEvents(db.pool, 'events', 2000, NOW);
    const config = testConfig([
      {
        name: 'paused',
        table: 'public.events',
        action: 'archive',
        timeColumn: 'created_at',
        retention: 'P1Y',
        chunking: { initialRows: 100, minRows: 100, maxRows: 100, pauseSeconds: PAUSE_SECONDS },
      },
    ]);
    const deps = localDependencies({ databaseUrl: db.url, bucket, s3, now: () => NOW })({
      getRemainingTimeInMillis: () => 0,
    } as unknown as Context);

    // Act
    const started = await startRun(deps, {
      input: buildExecutionInput(config, 'paused', 'local', false),
      executionId: `arn:aws:states:us-east-1:123456789012:execution:pg-lifecycle-local:${randomUUID()}`,
    });
    const afterStart = await leaseSecondsLeft(db, 'paused');
    const stepped = await runChunks(deps, started);
    const afterStep = await leaseSecondsLeft(db, 'paused');

    // Assess
    expect(afterStart).toBeGreaterThan(LEASE_TTL_SECONDS - 30);
    expect(afterStart).toBeLessThanOrEqual(LEASE_TTL_SECONDS);
    expect(stepped).toMatchObject({ done: false, waitSeconds: PAUSE_SECONDS });
    expect(stepped.totals.chunks).toBe(1);
    expect(afterStep).toBeGreaterThan(LEASE_TTL_SECONDS + PAUSE_SECONDS - 30);
    expect(afterStep).toBeLessThanOrEqual(LEASE_TTL_SECONDS + PAUSE_SECONDS);
  });
});
