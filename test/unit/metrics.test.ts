/**
 * The step handlers publish their metrics (EMF, namespace PgLifecycle) with the run's policy and action as
 * dimensions, per invocation: the chunks the step records, and the run-level figures the handler reads from the
 * step's result. The steps are stubbed (no database): what is under test is the handlers' wiring and the
 * Powertools output the dashboard and alarms read.
 */
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createHandler as createChunkHandler } from '../../functions/chunk.ts';
import { chunkMetrics, createStepMetrics } from '../../functions/commons/observability.ts';
import { type ComplianceMetricSink, publishLastSuccessAges } from '../../functions/compliance.ts';
import { createHandler as createFinishHandler } from '../../functions/finish.ts';
import { createHandler as createRecordFailureHandler } from '../../functions/record-failure.ts';
import {
  type ChunkMetrics,
  type ChunkSample,
  type StepDependencies,
  silentLogger,
} from '../../functions/run/dependencies.ts';
import type { RunState, RunSummary } from '../../lib/contracts/payloads.ts';
import { RunMetricNames } from '../../lib/contracts/run-metrics.ts';

const steps = vi.hoisted(() => ({ runChunks: vi.fn(), finishRun: vi.fn(), recordFailure: vi.fn() }));
vi.mock('../../functions/run/run-chunks.ts', () => ({ runChunks: steps.runChunks }));
vi.mock('../../functions/run/finish-run.ts', () => ({ finishRun: steps.finishRun }));
vi.mock('../../functions/run/record-failure.ts', () => ({ recordFailure: steps.recordFailure }));

const RUN_ID = '0b6f1c9e-3f7a-4d2b-9c55-7e1d2a3b4c5d';

const context = {
  functionName: 'pg-lifecycle-test',
  awsRequestId: 'request-1',
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

function dependencies(metrics: StepDependencies['metrics']): () => StepDependencies {
  return () => ({
    connect: () => Promise.reject(new Error('no database in unit tests')),
    now: () => new Date('2026-12-01T03:00:00Z'),
    remainingMs: () => 60_000,
    log: silentLogger,
    metrics,
  });
}

/** A RunState-shaped input (the stubbed steps never parse it; the handlers read policy and dryRun). */
function runState(policy: { name: string; action: string }, extra: Record<string, unknown> = {}) {
  return { runId: RUN_ID, policy: { ...policy, table: 'public.t' }, dryRun: false, ...extra };
}

const chunk = (rows: number): ChunkSample => ({ rows, bytes: rows * 10, objects: 1, durationMs: 120 });

interface EmfDocument {
  readonly _aws: {
    readonly CloudWatchMetrics: Array<{
      readonly Namespace: string;
      readonly Dimensions: string[][];
      readonly Metrics: Array<{ Name: string; Unit: string }>;
    }>;
  };
  readonly [field: string]: unknown;
}

let written: string[] = [];

/** Every EMF document written to stdout since the test began. */
function documents(): EmfDocument[] {
  return written
    .flatMap((text) => text.split('\n'))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as EmfDocument);
}

/** The values of `name` over every document, with the document's policy and action. */
function valuesOf(name: string) {
  return documents().flatMap((d) =>
    name in d ? [{ policy: d.policy, action: d.action, value: d[name] }] : [],
  );
}

beforeEach(() => {
  // Metrics are off in tests (vitest.config.ts); these write, to a captured stdout.
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  written = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((text: string | Uint8Array) => {
    written.push(String(text));
    return true;
  });
});

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  steps.runChunks.mockReset();
  steps.finishRun.mockReset();
  steps.recordFailure.mockReset();
});

describe('the Chunk handler', () => {
  it("publishes the step's chunks and its replica-lag wait with the policy and action as dimensions", async () => {
    // Prepare: the step records two chunks on the metrics it is given, then waits for a lagging replica.
    steps.runChunks.mockImplementation(async (deps: StepDependencies, input: unknown) => {
      deps.metrics?.recordChunk(chunk(500));
      deps.metrics?.recordChunk(chunk(300));
      return { ...(input as RunState), replicaLagSeconds: 42, waitSeconds: 30 };
    });
    const handler = createChunkHandler(dependencies(chunkMetrics));

    // Act
    await handler(runState({ name: 'orders-archive', action: 'archive' }), context);

    // Assess
    const [document, ...others] = documents();
    expect(others).toEqual([]);
    expect(document?._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: 'PgLifecycle',
        Dimensions: [['service', 'policy', 'action']],
        Metrics: [
          { Name: RunMetricNames.rowsProcessed, Unit: 'Count' },
          { Name: RunMetricNames.bytesWritten, Unit: 'Bytes' },
          { Name: RunMetricNames.objectsWritten, Unit: 'Count' },
          { Name: RunMetricNames.chunkDuration, Unit: 'Milliseconds' },
          { Name: RunMetricNames.replicaLagWaits, Unit: 'Count' },
        ],
      },
    ]);
    expect(document).toMatchObject({
      service: 'pg-lifecycle',
      policy: 'orders-archive',
      action: 'archive',
      RowsProcessed: [500, 300],
      BytesWritten: [5000, 3000],
      ReplicaLagWaits: 1,
    });
  });

  it('records 0 replica-lag waits for a step that did not wait', async () => {
    steps.runChunks.mockImplementation(async (_deps: StepDependencies, input: unknown) => ({
      ...(input as RunState),
      waitSeconds: 1,
    }));
    await createChunkHandler(dependencies(chunkMetrics))(
      runState({ name: 'sessions-purge', action: 'purge' }),
      context,
    );
    expect(valuesOf(RunMetricNames.replicaLagWaits)).toEqual([
      { policy: 'sessions-purge', action: 'purge', value: 0 },
    ]);
  });

  it('keeps the dimensions past the flush Powertools makes at 100 values of one metric', async () => {
    // Prepare: a long step commits 150 chunks (Powertools flushes by itself at the 100th value).
    steps.runChunks.mockImplementation(async (deps: StepDependencies, input: unknown) => {
      for (let i = 0; i < 150; i += 1) deps.metrics?.recordChunk(chunk(i));
      return input;
    });

    // Act
    await createChunkHandler(dependencies(chunkMetrics))(
      runState({ name: 'events-archive', action: 'archive' }),
      context,
    );

    // Assess
    const rows = valuesOf(RunMetricNames.rowsProcessed);
    expect(rows.length).toBeGreaterThan(1);
    expect(rows.flatMap((r) => r.value as number[])).toHaveLength(150);
    for (const document of documents()) {
      expect(document).toMatchObject({ policy: 'events-archive', action: 'archive' });
      expect(document._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['service', 'policy', 'action']]);
    }
  });

  it("binds each invocation to its own policy: one run's dimensions never reach the next", async () => {
    steps.runChunks.mockImplementation(async (deps: StepDependencies, input: unknown) => {
      deps.metrics?.recordChunk(chunk(10));
      return input;
    });
    const handler = createChunkHandler(dependencies(chunkMetrics));

    await handler(runState({ name: 'orders-archive', action: 'archive' }), context);
    await handler(runState({ name: 'nightly', action: 'backup' }), context);
    await handler(runState({ name: 'tidy', action: 'maintain' }), context);

    expect(valuesOf(RunMetricNames.rowsProcessed)).toEqual([
      { policy: 'orders-archive', action: 'archive', value: 10 },
      { policy: 'nightly', action: 'backup', value: 10 },
      { policy: 'tidy', action: 'maintain', value: 10 },
    ]);
  });

  it('publishes the chunks a failing step committed before it failed', async () => {
    steps.runChunks.mockImplementation(async (deps: StepDependencies) => {
      deps.metrics?.recordChunk(chunk(7));
      throw new Error('boom');
    });
    const handler = createChunkHandler(dependencies(chunkMetrics));

    await expect(handler(runState({ name: 'orders-archive', action: 'archive' }), context)).rejects.toThrow();

    expect(valuesOf(RunMetricNames.rowsProcessed)).toEqual([
      { policy: 'orders-archive', action: 'archive', value: 7 },
    ]);
    expect(valuesOf(RunMetricNames.replicaLagWaits)).toEqual([]);
  });

  it('hands a plain ChunkMetrics (the CLI progress line) every chunk, and publishes nothing', async () => {
    const seen: ChunkSample[] = [];
    const progress: ChunkMetrics = { recordChunk: (sample) => seen.push(sample) };
    steps.runChunks.mockImplementation(async (deps: StepDependencies, input: unknown) => {
      deps.metrics?.recordChunk(chunk(3));
      return { ...(input as RunState), replicaLagSeconds: 5 };
    });

    await createChunkHandler(dependencies(progress))(runState({ name: 'p', action: 'purge' }), context);

    expect(seen).toEqual([chunk(3)]);
    expect(documents()).toEqual([]);
  });

  it('publishes nothing without metrics (local runs, tests)', async () => {
    steps.runChunks.mockImplementation(async (_deps: StepDependencies, input: unknown) => input);
    await createChunkHandler(dependencies(undefined))(runState({ name: 'p', action: 'purge' }), context);
    expect(documents()).toEqual([]);
  });
});

describe('unbound step metrics', () => {
  it('publish each record at once, without a policy dimension (no invocation would publish them)', () => {
    // Prepare: a fresh instance (the module's was made while metrics were off).
    const unbound = createStepMetrics();

    // Act
    unbound.recordChunk(chunk(4));

    // Assess

    const [document, ...others] = documents();
    expect(others).toEqual([]);
    expect(document?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['service']]);
    expect(document).toMatchObject({ RowsProcessed: 4 });
    expect(document).not.toHaveProperty('policy');
  });
});

describe('the Finish handler', () => {
  const summary = (status: RunSummary['status']): RunSummary => ({
    runId: RUN_ID,
    policy: 'orders-archive',
    action: 'archive',
    status,
    cutoff: '2024-12-01T00:00:00.000000Z',
    rows: 12_345,
    objects: 4,
    bytes: 987_654,
    chunks: 9,
    orphansRemoved: 0,
    durationMs: 65_000,
  });

  it('publishes a succeeded run: RunSucceeded, RunDuration, RunRows, RunChunks, RunBytes', async () => {
    steps.finishRun.mockResolvedValue(summary('succeeded'));

    await createFinishHandler(dependencies(chunkMetrics))(
      runState({ name: 'orders-archive', action: 'archive' }),
      context,
    );

    const [document, ...others] = documents();
    expect(others).toEqual([]);
    expect(document?._aws.CloudWatchMetrics[0]).toEqual({
      Namespace: 'PgLifecycle',
      Dimensions: [['service', 'policy', 'action']],
      Metrics: [
        { Name: RunMetricNames.runSucceeded, Unit: 'Count' },
        { Name: RunMetricNames.runDuration, Unit: 'Milliseconds' },
        { Name: RunMetricNames.runRows, Unit: 'Count' },
        { Name: RunMetricNames.runChunks, Unit: 'Count' },
        { Name: RunMetricNames.runBytes, Unit: 'Bytes' },
      ],
    });
    expect(document).toMatchObject({
      policy: 'orders-archive',
      action: 'archive',
      RunSucceeded: 1,
      RunDuration: 65_000,
      RunRows: 12_345,
      RunChunks: 9,
      RunBytes: 987_654,
    });
  });

  it('publishes nothing for a dry run', async () => {
    steps.finishRun.mockResolvedValue(summary('dry_run'));
    await createFinishHandler(dependencies(chunkMetrics))(
      runState({ name: 'orders-archive', action: 'archive' }, { dryRun: true }),
      context,
    );
    expect(documents()).toEqual([]);
  });
});

describe('the RecordFailure handler', () => {
  const failure = (extra: Record<string, unknown> = {}) => ({
    ...runState({ name: 'sessions-purge', action: 'purge' }, extra),
    error: { Error: 'MissingIndexError', Cause: '{}' },
  });

  it('publishes RunFailed with the policy and action once the failure is recorded', async () => {
    steps.recordFailure.mockResolvedValue({ runId: RUN_ID, policy: 'sessions-purge', error: 'X', cause: '' });

    await createRecordFailureHandler(dependencies(chunkMetrics))(failure(), context);

    expect(valuesOf(RunMetricNames.runFailed)).toEqual([
      { policy: 'sessions-purge', action: 'purge', value: 1 },
    ]);
  });

  it('counts a Start refusal (no run opened), not a dry run, nor a failure it could not record', async () => {
    steps.recordFailure.mockResolvedValueOnce({
      runId: undefined,
      policy: 'sessions-purge',
      error: 'X',
      cause: '',
    });
    const handler = createRecordFailureHandler(dependencies(chunkMetrics));
    await handler({ ...failure(), runId: undefined }, context);
    expect(valuesOf(RunMetricNames.runFailed)).toHaveLength(1);

    steps.recordFailure.mockResolvedValueOnce({
      runId: RUN_ID,
      policy: 'sessions-purge',
      error: 'X',
      cause: '',
    });
    await handler(failure({ dryRun: true }), context);
    steps.recordFailure.mockRejectedValueOnce(new Error('database unreachable'));
    await expect(handler(failure(), context)).rejects.toThrow();
    expect(valuesOf(RunMetricNames.runFailed)).toHaveLength(1);
  });
});

describe("the compliance check's last-success ages", () => {
  it('publish SecondsSinceLastSuccess per policy that has a success, with stack, policy and action', () => {
    // Prepare
    const emitted: Array<{ name: string; unit: string; value: number; dimensions: Record<string, string> }> =
      [];
    const sink: ComplianceMetricSink = {
      singleMetric() {
        const dimensions: Record<string, string> = {};
        return {
          addDimension: (name, value) => {
            dimensions[name] = value;
          },
          addMetric: (name, unit, value) => {
            emitted.push({ name, unit, value, dimensions: { ...dimensions } });
          },
        };
      },
    };

    // Act
    publishLastSuccessAges(
      sink,
      'PgLifecycle',
      [
        { policy: 'orders-archive', action: 'archive', lastSuccess: '2026-12-01T01:30:00.000000Z' },
        { policy: 'new-purge', action: 'purge', lastSuccess: null },
      ],
      new Date('2026-12-01T03:00:00Z'),
    );

    // Assess
    expect(emitted).toEqual([
      {
        name: 'SecondsSinceLastSuccess',
        unit: 'Seconds',
        value: 5400,
        dimensions: { stack: 'PgLifecycle', policy: 'orders-archive', action: 'archive' },
      },
    ]);
  });
});
