/**
 * Powertools Logger, Metrics (EMF) and Tracer, one instance each per Lambda container, and the steps' metrics,
 * bound to a policy per invocation. Logs carry counts, timings and key ranges; never row contents.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { z } from 'zod';
import { SERVICE_NAME } from '../../lib/contracts/compliance-check.ts';
import { RunMetricDimensions, RunMetricNames } from '../../lib/contracts/run-metrics.ts';
import {
  type BoundStepMetrics,
  type ChunkSample,
  isStepMetrics,
  type MetricsPolicy,
  type RunMetrics,
  type RunOutcome,
  type StepDependencies,
  type StepLogger,
  type StepMetrics,
} from '../run/dependencies.ts';

const NAMESPACE = 'PgLifecycle';

export const logger = new Logger({ serviceName: SERVICE_NAME });
// Metrics' own warnings go through the Logger, so they respect its level (SILENT in local runs).
export const metrics = new Metrics({ namespace: NAMESPACE, serviceName: SERVICE_NAME, logger });
export const tracer = new Tracer({ serviceName: SERVICE_NAME });

export const stepLogger: StepLogger = {
  info: (message, fields) => logger.info(message, fields ?? {}),
  warn: (message, fields) => logger.warn(message, fields ?? {}),
  error: (message, fields) => logger.error(message, fields ?? {}),
};

/**
 * The steps' metrics on a Powertools Metrics instance of their own. Bound to a policy, its dimensions are that
 * instance's default dimensions: Powertools flushes a buffer by itself once a metric holds 100 values (a Chunk
 * step may commit thousands of chunks) and clears plain dimensions (`addDimensions`) on every flush, default
 * ones never. An instance per invocation, not the container's with dimensions set and cleared around each
 * call: nothing can leak into the next invocation, or into another policy's run in the same process.
 */
class PowertoolsStepMetrics implements BoundStepMetrics {
  readonly #metrics: Metrics;
  /** Unbound (no invocation publishes them): every record goes out at once, without a policy dimension. */
  readonly #publishEach: boolean;

  public constructor(dimensions?: Readonly<Record<string, string>>) {
    this.#metrics = new Metrics({
      namespace: NAMESPACE,
      serviceName: SERVICE_NAME,
      logger,
      defaultDimensions: { ...dimensions },
    });
    this.#publishEach = dimensions === undefined;
  }

  public forPolicy(policy: MetricsPolicy): BoundStepMetrics {
    return new PowertoolsStepMetrics({
      [RunMetricDimensions.policy]: policy.name,
      [RunMetricDimensions.action]: policy.action,
    });
  }

  public recordChunk(sample: ChunkSample): void {
    this.#metrics.addMetric(RunMetricNames.rowsProcessed, MetricUnit.Count, sample.rows);
    this.#metrics.addMetric(RunMetricNames.bytesWritten, MetricUnit.Bytes, sample.bytes);
    this.#metrics.addMetric(RunMetricNames.objectsWritten, MetricUnit.Count, sample.objects);
    this.#metrics.addMetric(RunMetricNames.chunkDuration, MetricUnit.Milliseconds, sample.durationMs);
    if (this.#publishEach) this.publish();
  }

  public recordChunkStep(step: { readonly waitedForReplicaLag: boolean }): void {
    // 0 too: a Sum of waits next to a SampleCount of steps, and no gap that could be mistaken for no run.
    this.#metrics.addMetric(
      RunMetricNames.replicaLagWaits,
      MetricUnit.Count,
      step.waitedForReplicaLag ? 1 : 0,
    );
    if (this.#publishEach) this.publish();
  }

  public recordRunSucceeded(run: RunOutcome): void {
    this.#metrics.addMetric(RunMetricNames.runSucceeded, MetricUnit.Count, 1);
    this.#metrics.addMetric(RunMetricNames.runDuration, MetricUnit.Milliseconds, run.durationMs);
    this.#metrics.addMetric(RunMetricNames.runRows, MetricUnit.Count, run.rows);
    this.#metrics.addMetric(RunMetricNames.runChunks, MetricUnit.Count, run.chunks);
    this.#metrics.addMetric(RunMetricNames.runBytes, MetricUnit.Bytes, run.bytes);
    if (this.#publishEach) this.publish();
  }

  public recordRunFailed(): void {
    this.#metrics.addMetric(RunMetricNames.runFailed, MetricUnit.Count, 1);
    if (this.#publishEach) this.publish();
  }

  public publish(): void {
    // Powertools warns about an empty flush; a step that recorded nothing (a dry run) has nothing to say.
    if (this.#metrics.hasStoredMetrics()) this.#metrics.publishStoredMetrics();
  }
}

/** Step metrics on Powertools (EMF to stdout), unbound: the handlers bind them to a policy per invocation. */
export function createStepMetrics(): StepMetrics {
  return new PowertoolsStepMetrics();
}

/** The steps' metrics in a Lambda (lambda-dependencies.ts). */
export const chunkMetrics: StepMetrics = createStepMetrics();

/** What the handlers read of any step's input to bind its metrics: a RunState's or a failure's policy. */
const MetricsInputSchema = z.looseObject({
  policy: z.looseObject({ name: z.string().min(1), action: z.string().min(1) }),
  dryRun: z.boolean().optional(),
});

/** What a step sees besides its dependencies: metrics bound to its policy, and whether the run is a dry run. */
export interface InvocationMetrics {
  /**
   * Undefined when the dependencies' metrics cannot be bound (none: local runs, tests; a plain ChunkMetrics: the
   * CLI's progress line, which still gets every chunk) or the input names no policy.
   */
  readonly metrics: RunMetrics | undefined;
  readonly dryRun: boolean;
}

/**
 * Runs one invocation's step with the dependencies' metrics bound to the policy of its input (dimensions
 * `policy` and `action`) and publishes them when the step ends, error or not; the step gets the bound metrics
 * in its dependencies too (the chunk loop records there). An input without a policy (which the step refuses
 * anyway) runs unbound.
 */
export async function withPolicyMetrics<TResult>(
  deps: StepDependencies,
  event: unknown,
  step: (deps: StepDependencies, invocation: InvocationMetrics) => Promise<TResult>,
): Promise<TResult> {
  const input = MetricsInputSchema.safeParse(event);
  const dryRun = input.success && input.data.dryRun === true;
  if (!isStepMetrics(deps.metrics) || !input.success) return step(deps, { metrics: undefined, dryRun });
  const bound = deps.metrics.forPolicy(input.data.policy);
  try {
    return await step({ ...deps, metrics: bound }, { metrics: bound, dryRun });
  } finally {
    bound.publish();
  }
}
