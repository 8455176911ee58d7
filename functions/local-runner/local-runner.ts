/**
 * Runs a policy locally through the synthesized state machine (aws-local-stepfunctions), with each
 * Lambda task bound to the real handler (`createHandler` of functions/*.ts, the same middy stack the
 * Lambda runs) and a Lambda-shaped context whose clock gives each Chunk step a time budget.
 * ContinueAsNew is bound to a new local execution, like StartExecution in AWS.
 */
import './polyfills.ts';
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import type pg from 'pg';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import {
  type ExecutionInput,
  type RunSummary,
  StateNames,
  WorkerStateNames,
} from '../../lib/contracts/payloads.ts';
import { contractOf } from '../../lib/contracts/policy.ts';
import {
  RDS_SNAPSHOT_TASK_STATES,
  RDS_SNAPSHOT_WAIT_STATES,
} from '../../lib/contracts/rds-snapshot-payloads.ts';
import { DEFAULT_STACK_NAME } from '../../lib/contracts/stack-limits.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { rdsSnapshotSettings } from '../actions/backup/rds-snapshot/contract.ts';
import { type RdsClientFactory, sdkRdsClients } from '../actions/backup/rds-snapshot/rds-api.ts';
import type { RdsSnapshotStepDependencies } from '../actions/backup/rds-snapshot/steps.ts';
import { Ledger, type RunRow, recordLeaseHolder } from '../adapters/ledger/index.ts';
import { createHandler as createChunkHandler } from '../chunk.ts';
import { createHandler as createFinishHandler } from '../finish.ts';
import { createHandler as createRdsSnapshotHandler } from '../rds-snapshot.ts';
import { createHandler as createRecordFailureHandler } from '../record-failure.ts';
import type { StepDependencies } from '../run/dependencies.ts';
import type { FailureRecord } from '../run/record-failure.ts';
import { createHandler as createStartHandler } from '../start.ts';
import { type LeaseHolderConnection, openLeaseHolder } from './lease-holder.ts';
import { type AslDefinition, synthesizeDefinition } from './synthesize.ts';

export interface LocalRunOptions {
  readonly config: LifecycleConfig;
  readonly policyName: string;
  readonly dryRun?: boolean;
  /** Run although the chunk query scans the whole table (`--force`; see MissingIndexError). @default false */
  readonly force?: boolean;
  /** Builds the step dependencies (database, bucket, clock, logger); called once per task invocation. */
  readonly dependencies: (context: Context) => StepDependencies;
  /** Time budget of one Chunk invocation (a Lambda's timeout minus its margin). @default 60_000 */
  readonly chunkBudgetMs?: number;
  /**
   * Overrides the Pause state's wait (ms), the pause and the replica-lag check interval alike.
   * @default the Chunk step's waitSeconds
   */
  readonly pauseMs?: number;
  /** Overrides every retry interval (ms), so tests and demos do not sleep. @default 100 */
  readonly retryIntervalMs?: number;
  /**
   * Overrides the chunk loop's backoff between local retries of a timed-out chunk (retry n waits n times
   * this, ms), so tests do not sleep. @default 250 (see run-chunks.ts)
   */
  readonly chunkRetryBackoffMs?: number;
  /**
   * Test-only: lowers the MoreWork choice's iteration bound so continuation is exercised on small tables.
   * @default the synthesized bound
   */
  readonly maxIterationsOverride?: number;
  /** A definition synthesized earlier (skips the synth). */
  readonly definition?: AslDefinition;
  /**
   * Aborts the run (Ctrl-C): the execution stops, the open chunk transaction rolls back, and the run is
   * recorded as failed (`Interrupted`) with its lease released, so the next run can start at once.
   */
  readonly signal?: AbortSignal;
  /**
   * A backup policy with rdsSnapshot: how its snapshot stage reaches RDS. The tests hand in a stub.
   * @default SDK clients from the standard AWS environment, the region from AWS_REGION, stack PgLifecycle
   */
  readonly rdsSnapshot?: LocalRdsSnapshotOptions;
}

/** How a local run's RDS snapshot stage reaches RDS. */
export interface LocalRdsSnapshotOptions {
  /** A client per region. @default SDK clients (credentials and endpoint from the environment) */
  readonly clients?: RdsClientFactory;
  /** Region of the database. @default AWS_REGION, else AWS_DEFAULT_REGION */
  readonly region?: string;
  /**
   * The stack name snapshots are tagged with: retention deletes only snapshots of the same stack and policy, so
   * name the deployed stack for a local run to share its snapshots' retention. @default 'PgLifecycle'
   */
  readonly stackName?: string;
}

export interface LocalRunResult {
  readonly status: 'succeeded' | 'failed' | 'dry_run';
  readonly summary: RunSummary | undefined;
  readonly failure: FailureRecord | undefined;
  /** Executions the run spanned (1 + continuations). */
  readonly executions: number;
  /** Chunk-step invocations across all executions. */
  readonly chunkInvocations: number;
  /** Most Chunk steps running at once (a parallel run's workers; 1 otherwise). */
  readonly maxConcurrentChunks: number;
  readonly input: ExecutionInput;
  /**
   * A failed or interrupted run's row in the ledger: what it committed before it stopped (rows, objects,
   * bytes, chunks). Undefined for other runs, for a run refused before it opened, or when the ledger could
   * not be read (then `ledgerError` says why).
   */
  readonly ledgerRun?: RunRow | undefined;
  readonly ledgerError?: string | undefined;
}

const FAKE_ACCOUNT = '123456789012';

/** An interrupted run's context reports no time left, so the chunk loop starts no further chunk. */
function lambdaContext(budgetMs: number, signal?: AbortSignal): Context {
  const deadline = Date.now() + budgetMs;
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'pg-lifecycle-local',
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:${FAKE_ACCOUNT}:function:pg-lifecycle-local`,
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: '/local/pg-lifecycle',
    logStreamName: requestId,
    getRemainingTimeInMillis: () => (signal?.aborted ? 0 : deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function withIterationBound(definition: AslDefinition, bound: number): AslDefinition {
  const copy = structuredClone(definition);
  type Choice = { Choices?: Array<Record<string, unknown>> } | undefined;
  const workers = copy.States[WorkerStateNames.workers] as
    | { ItemProcessor?: { States: Record<string, unknown> } }
    | undefined;
  // The run's own loop, and a parallel run's workers' loops.
  const choices = [
    copy.States[StateNames.more] as Choice,
    workers?.ItemProcessor?.States[WorkerStateNames.workerMore] as Choice,
  ];
  for (const rule of choices.flatMap((choice) => choice?.Choices ?? [])) {
    if (rule.Variable === '$.iterations' && 'NumericGreaterThanEquals' in rule)
      rule.NumericGreaterThanEquals = bound;
  }
  return copy;
}

/**
 * One interpreter per definition: StateMachine validates the whole definition (JSONPaths and ARNs, like the
 * service does) when it is built, which costs ~100 ms, more than a small run's database work.
 */
const machines = new WeakMap<AslDefinition, StateMachine>();

function stateMachineFor(definition: AslDefinition): StateMachine {
  let machine = machines.get(definition);
  if (!machine) {
    machine = new StateMachine(definition as never, {
      validationOptions: { checkArn: true, checkPaths: true },
    });
    machines.set(definition, machine);
  }
  return machine;
}

/**
 * Validates a definition and keeps its interpreter for the runs that follow (what the service does once, when the
 * machine is deployed: 100-260 ms here, more than a small run). Runs call it anyway; benchmarks call it before
 * they time a run.
 */
export function prepareDefinition(definition: AslDefinition): void {
  stateMachineFor(definition);
}

export async function runPolicyLocally(options: LocalRunOptions): Promise<LocalRunResult> {
  const input = buildExecutionInput(options.config, options.policyName, 'local', options.dryRun ?? false, {
    force: options.force ?? false,
  });
  let definition = options.definition ?? (await synthesizeDefinition(options.config, options.policyName));
  if (options.maxIterationsOverride !== undefined)
    definition = withIterationBound(definition, options.maxIterationsOverride);

  const budget = options.chunkBudgetMs ?? 60_000;
  const shortBudget = 60_000;
  // The run's stand-in in its lease: opened when Start takes the lease, kept until the run ends.
  let holding: Promise<LeaseHolderConnection> | undefined;
  let runEnded = false;
  const connect = () => options.dependencies(lambdaContext(shortBudget)).connect();
  const openHolder = () => {
    const opening = openLeaseHolder(connect, options.policyName);
    opening.then(
      // Ended by the server, a proxy or a failover while the run lives: the lease would point at a backend
      // that is gone, and `unlock` would release a live run. Reopen it and record the new backend.
      (opened) => opened.client.once('end', () => void replaceHolder()),
      () => undefined,
    );
    return opening;
  };
  const replaceHolder = async () => {
    if (runEnded) return;
    holding = openHolder();
    try {
      const { client, holder } = await holding;
      if (runId) await recordLeaseHolder(client, options.policyName, runId, holder);
    } catch {
      // No database now: the next step's heartbeat, or its fence, decides what happens to the run.
    }
  };
  const leaseHolder = async () => {
    if (!holding) {
      holding = openHolder();
      // A failed attempt (connection refused) is tried again by the retried Start, on a new connection.
      holding.catch(() => {
        holding = undefined;
      });
    }
    return (await holding).holder;
  };
  const dependencies = (context: Context): StepDependencies => ({
    ...options.dependencies(context),
    leaseHolder,
    ...(options.chunkRetryBackoffMs === undefined
      ? {}
      : { chunkRetryBackoffMs: options.chunkRetryBackoffMs }),
  });
  const start = createStartHandler(dependencies);
  const chunk = createChunkHandler(dependencies);
  const finish = createFinishHandler(dependencies);
  const recordFailure = createRecordFailureHandler(dependencies);
  const snapshotStates = RDS_SNAPSHOT_TASK_STATES.filter((name) => name in definition.States);
  const snapshot =
    snapshotStates.length > 0
      ? createRdsSnapshotHandler(() =>
          localRdsSnapshotDependencies(options, options.dependencies(lambdaContext(shortBudget))),
        )
      : undefined;

  let failure: FailureRecord | undefined;
  let workerFailure: FailureRecord | undefined;
  let runId: string | undefined;
  let executions = 0;
  let chunkInvocations = 0;
  const chunksInFlight = new Set<Promise<unknown>>();
  const stateMachineArn = `arn:aws:states:us-east-1:${FAKE_ACCOUNT}:stateMachine:pg-lifecycle-local`;
  const machine = stateMachineFor(definition);
  const retryMs = options.retryIntervalMs ?? 100;
  const retryableStates = [
    StateNames.start,
    StateNames.chunk,
    StateNames.finish,
    StateNames.recordFailure,
    WorkerStateNames.workerChunk,
    WorkerStateNames.workerRecordFailure,
    ...snapshotStates,
  ];
  const waitStates = [
    StateNames.pause,
    WorkerStateNames.workerPause,
    ...RDS_SNAPSHOT_WAIT_STATES.filter((name) => name in definition.States),
  ];

  let maxConcurrentChunks = 0;
  const invokeChunk = (event: unknown) => {
    chunkInvocations++;
    const invocation = chunk(event, lambdaContext(budget, options.signal));
    chunksInFlight.add(invocation);
    maxConcurrentChunks = Math.max(maxConcurrentChunks, chunksInFlight.size);
    void invocation.then(
      () => chunksInFlight.delete(invocation),
      () => chunksInFlight.delete(invocation),
    );
    return invocation;
  };

  const execute = async (executionInput: unknown): Promise<RunSummary | undefined> => {
    executions++;
    const executionId = `arn:aws:states:us-east-1:${FAKE_ACCOUNT}:execution:pg-lifecycle-local:${randomUUID()}`;
    let continued: Promise<RunSummary | undefined> | undefined;
    const execution = machine.run(executionInput as never, {
      overrides: {
        taskResourceLocalHandlers: {
          [StateNames.start]: async (event: unknown) => {
            const state = (await start(event, lambdaContext(shortBudget))) as { runId?: string };
            runId = state.runId;
            return state;
          },
          [StateNames.chunk]: invokeChunk,
          // A parallel run's workers: the Distributed Map's item processor runs inline here, the same states.
          [WorkerStateNames.workerChunk]: invokeChunk,
          [StateNames.finish]: (event: unknown) => finish(event, lambdaContext(shortBudget)),
          [StateNames.recordFailure]: async (event: unknown) => {
            const recorded = await recordFailure(event, lambdaContext(shortBudget));
            // After a worker's own record, the map's catch records the run again: the worker's error is the news.
            failure = workerFailure ?? recorded;
            return recorded;
          },
          [WorkerStateNames.workerRecordFailure]: async (event: unknown) => {
            const recorded = await recordFailure(event, lambdaContext(shortBudget));
            workerFailure ??= recorded;
            return recorded;
          },
          ...Object.fromEntries(
            snapshotStates.map((name) => [
              name,
              (event: unknown) => snapshot?.(event, lambdaContext(shortBudget)),
            ]),
          ),
          // StartExecution of this same machine: a new local execution, awaited after this one ends.
          [StateNames.continueAsNew]: (event: unknown) => {
            const request = event as { Input?: unknown };
            const next = typeof request.Input === 'string' ? JSON.parse(request.Input) : request.Input;
            continued = execute(next);
            return { ExecutionArn: `${executionId}-continued`, StartDate: new Date().toISOString() };
          },
        } as never,
        waitTimeOverrides: Object.fromEntries(
          options.pauseMs === undefined ? [] : waitStates.map((name) => [name, options.pauseMs as number]),
        ),
        retryIntervalOverrides: Object.fromEntries(retryableStates.map((name) => [name, retryMs])),
      },
      context: {
        Execution: {
          Id: executionId,
          Input: executionInput,
          StartTime: new Date().toISOString(),
          Name: executionId,
        },
        StateMachine: { Id: stateMachineArn, Name: 'pg-lifecycle-local' },
      } as never,
    });
    const onAbort = () => execution.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let output: unknown;
    try {
      output = await execution.result;
    } catch (error) {
      if (options.signal?.aborted) {
        // The aborted execution does not wait for its Chunk invocation, which stops at its next chunk
        // boundary (no time left). Let it end first: an upload it finishes after RecordFailure removed the
        // run's pending objects would be left behind until the next run.
        await Promise.allSettled([...chunksInFlight]);
        failure ??= await recordFailure(
          {
            ...(executionInput as object),
            runId,
            error: { Error: 'Interrupted', Cause: 'the local run was interrupted' },
          },
          lambdaContext(shortBudget),
        ).catch(() => undefined);
        failure ??= {
          runId,
          policy: options.policyName,
          error: 'Interrupted',
          cause: 'the local run was interrupted',
        };
        return undefined;
      }
      // The other workers of a failed parallel run were abandoned, not stopped (as Lambdas are): their chunks
      // roll back at the ledger's fence (the run is failed). Let them end before the caller looks at the ledger.
      await Promise.allSettled([...chunksInFlight]);
      // Normally RecordFailure has run; if even it failed (e.g. the database is gone), report the execution error.
      failure ??= {
        runId: undefined,
        policy: options.policyName,
        error: (error as { cause?: Error }).cause?.name ?? (error as Error).name,
        cause: (error as { cause?: Error }).cause?.message ?? (error as Error).message,
      };
      return undefined;
    }
    options.signal?.removeEventListener('abort', onAbort);
    if (continued) return continued;
    return output as RunSummary;
  };

  try {
    const summary = await execute(input);
    const status = failure ? 'failed' : summary?.status === 'dry_run' ? 'dry_run' : 'succeeded';
    // RecordFailure knows the run only when the failing step's state carried it; Start's output always did.
    if (failure && !failure.runId && runId) failure = { ...failure, runId };
    const failedRunId = input.dryRun ? undefined : failure?.runId;
    const ledger = failedRunId ? await readFailedRun(failedRunId, holding, connect) : {};
    return { status, summary, failure, executions, chunkInvocations, maxConcurrentChunks, input, ...ledger };
  } finally {
    runEnded = true;
    await (await holding?.catch(() => undefined))?.close();
  }
}

/** The snapshot stage's dependencies in a local run: the policy's settings, RDS as the options say. */
function localRdsSnapshotDependencies(
  options: LocalRunOptions,
  step: StepDependencies,
): RdsSnapshotStepDependencies {
  const policy = options.config.policies.find((p) => p.name === options.policyName);
  const rdsSnapshot = policy ? contractOf(policy).rdsSnapshot?.(policy) : undefined;
  if (!policy || !rdsSnapshot) throw new Error(`policy ${options.policyName} has no backup.rdsSnapshot`);
  const region = options.rdsSnapshot?.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) throw new Error('the RDS snapshot of a local run needs a region (AWS_REGION)');
  return {
    settings: rdsSnapshotSettings(
      policy.name,
      rdsSnapshot,
      options.rdsSnapshot?.stackName ?? DEFAULT_STACK_NAME,
    ),
    sourceRegion: region,
    rds: options.rdsSnapshot?.clients ?? defaultRdsClients(),
    now: () => step.now(),
    log: step.log,
  };
}

let sharedRdsClients: RdsClientFactory | undefined;

/** One set of SDK clients for every local run of the process, made on first use. */
function defaultRdsClients(): RdsClientFactory {
  sharedRdsClients ??= sdkRdsClients();
  return sharedRdsClients;
}

/**
 * What a failed run committed before it stopped, from the ledger (the steps' own totals die with the failed
 * execution). Read on the holder connection when it is still open, else on a new one.
 */
async function readFailedRun(
  runId: string,
  holding: Promise<LeaseHolderConnection> | undefined,
  connect: () => Promise<pg.Client>,
): Promise<{ ledgerRun?: RunRow; ledgerError?: string }> {
  const held = await holding?.catch(() => undefined);
  try {
    const read = (client: pg.Client) => new Ledger(client).getRun(runId);
    let run: RunRow | undefined;
    try {
      run = held ? await read(held.client) : undefined;
    } catch {
      run = undefined;
    }
    if (!run) {
      const client = await connect();
      try {
        run = await read(client);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    return run ? { ledgerRun: run } : { ledgerError: `run ${runId} is not in the ledger` };
  } catch (error) {
    return { ledgerError: (error as Error).message };
  }
}
