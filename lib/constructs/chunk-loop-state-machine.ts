import { Arn, ArnFormat, Duration, Stack, Token } from 'aws-cdk-lib';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Fail,
  JitterType,
  JsonPath,
  LogLevel,
  Pass,
  Result,
  type RetryProps,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke, StepFunctionsStartExecution } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import {
  MAX_ITERATIONS_PER_EXECUTION,
  RetryableErrorNames,
  StateNames,
  WORKER_FAILED_ERROR,
  WorkerStateNames,
} from '../contracts/payloads.ts';
import { acknowledgeWildcardResource } from '../nag.ts';
import { RdsSnapshotStage } from './rds-snapshot-stage.ts';
import {
  type StarOnlyGrant,
  type StarOnlyManagedPolicy,
  WildcardConfinedRole,
} from './wildcard-confined-role.ts';

/** Retry of every Lambda task: transient errors only, by name, with capped exponential backoff and jitter. */
export const LAMBDA_RETRY: RetryProps = {
  errors: [...RetryableErrorNames],
  interval: Duration.seconds(2),
  backoffRate: 2,
  maxAttempts: 6,
  maxDelay: Duration.seconds(60),
  jitterStrategy: JitterType.FULL,
};

/**
 * Errors of the StartExecution integration worth retrying (throttling, service and client-side faults).
 * Retrying is safe: the continuation's execution name is deterministic, so a repeated call with the same
 * name and input returns the execution already started instead of starting a second one.
 */
export const CONTINUE_AS_NEW_RETRYABLE_ERRORS = [
  'StepFunctions.ExecutionLimitExceededException',
  'StepFunctions.AWSStepFunctionsException',
  'StepFunctions.SdkClientException',
] as const;

/** What Step Functions needs to deliver execution logs to CloudWatch Logs; authorized only on `*`. */
const LOG_DELIVERY_ACTIONS = [
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
] as const;

/** The `*`-only actions of a chunk-loop state machine's role: log delivery and X-Ray. */
export const STATE_MACHINE_STAR_ONLY_GRANTS: readonly StarOnlyGrant[] = [
  {
    actions: LOG_DELIVERY_ACTIONS,
    reason: 'CloudWatch Logs vended-log delivery of the execution log, added by the logging configuration',
  },
  {
    actions: [
      'xray:PutTraceSegments',
      'xray:PutTelemetryRecords',
      'xray:GetSamplingRules',
      'xray:GetSamplingTargets',
    ],
    reason: 'X-Ray tracing of executions, added by tracingEnabled',
  },
];

/** Cause of the terminal `RunFailed` state. */
export const RUN_FAILED_CAUSE = 'see the run row in lifecycle.runs and the execution history';

/** The four step handlers of a run. */
export interface ChunkLoopFunctions {
  /** Takes the lease, resolves the table, fixes the cutoff; returns the first RunState. */
  readonly start: IFunction;
  /** Works chunks until done or out of time budget; returns the next RunState. */
  readonly chunk: IFunction;
  /** Removes orphans, writes totals, releases the lease; returns the RunSummary. */
  readonly finish: IFunction;
  /** Marks the run failed and releases the lease. */
  readonly recordFailure: IFunction;
}

/** Properties of a {@link ChunkLoopStateMachine}. */
export interface ChunkLoopStateMachineProps {
  /** The step handlers. */
  readonly functions: ChunkLoopFunctions;

  /**
   * Physical name of the state machine. It is fixed (not generated) because `ContinueAsNew` starts this
   * same machine: its ARN must be known without referencing the machine itself (a circular dependency
   * through the machine's own role policy).
   * @default `${stackName}-chunk-loop`
   */
  readonly stateMachineName?: string;

  /**
   * Timeout of one execution (a run spans several executions past `MAX_ITERATIONS_PER_EXECUTION` chunks).
   * Keep it above `MAX_ITERATIONS_PER_EXECUTION × (chunk duration × (1 + sleepCoefficient) + pauseSeconds)`.
   * @default Duration.hours(24)
   */
  readonly executionTimeout?: Duration;

  /** Log group the executions log to (level ALL); one group may serve several machines. */
  readonly logGroup: ILogGroup;

  /**
   * Log execution data (state input/output, error causes) too. Run states carry cursors (time and
   * primary-key values of rows) and causes may quote database messages, so it is off unless asked for.
   * @default false
   */
  readonly includeExecutionData?: boolean;

  /**
   * A managed policy holding {@link STATE_MACHINE_STAR_ONLY_GRANTS}, shared by several machines' roles.
   * @default - the role gets those grants in a policy of its own
   */
  readonly sharedStarOnly?: StarOnlyManagedPolicy;

  /**
   * A backup policy's RDS snapshot, taken after a successful Finish ({@link RdsSnapshotStage}).
   * @default - the machine ends at Finish
   */
  readonly rdsSnapshot?: { readonly function: IFunction; readonly copies: boolean };

  /**
   * Workers of a parallel run (the policy's `parallelism`): above 1, Start's ranges go to a Distributed Map
   * (`Workers`, at most this many child executions at once), each a chunk loop of its own; the machine's own
   * Chunk state then only gathers whether every range is done.
   * @default 1 - one chunk loop in the execution itself
   */
  readonly parallelism?: number;
}

/**
 * The one generic chunk loop every action runs (STANDARD workflow):
 *
 * `Start` → `Chunk` → `MoreWork` → (`Pause` → `Chunk` …) | `Finish` | `ContinueAsNew` → `Continued`;
 * any terminal error of a task → `RecordFailure` → `RunFailed`.
 *
 * State names come from `StateNames` (the local runner binds handlers by name). Lambda tasks use
 * `payloadResponseOnly`, so RunState flows from task to task without a `Payload` wrapper; they retry only
 * `RetryableErrorNames`, then catch everything into `RecordFailure` with the error under `$.error`.
 * Executions log every event (level ALL: each state entered and left, each retry and failure), with
 * execution data only when `includeExecutionData` is set, and are traced with X-Ray.
 */
export class ChunkLoopStateMachine extends Construct {
  /** The state machine. */
  public readonly stateMachine: StateMachine;

  /** Its execution log group. */
  public readonly logGroup: ILogGroup;

  public constructor(scope: Construct, id: string, props: ChunkLoopStateMachineProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const stateMachineName = props.stateMachineName ?? `${stack.stackName}-chunk-loop`;
    if (Token.isUnresolved(stateMachineName)) {
      throw new Error('ChunkLoopStateMachine needs a concrete stateMachineName (the stack name is a token)');
    }
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(stateMachineName)) {
      throw new Error(
        `state machine name "${stateMachineName}" must be 1-80 letters, digits, - or _ (set stateMachineName)`,
      );
    }
    const { functions } = props;

    const recordFailure = new LambdaInvoke(this, StateNames.recordFailure, {
      lambdaFunction: functions.recordFailure,
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
      comment: 'Marks the run failed in the ledger and releases the policy lease.',
    });
    recordFailure.addRetry(LAMBDA_RETRY);
    recordFailure.next(new Fail(this, StateNames.failed, { error: 'RunFailed', cause: RUN_FAILED_CAUSE }));

    const lambdaStep = (
      stateName: string,
      lambdaFunction: IFunction,
      comment: string,
      payload?: TaskInput,
    ) => {
      const task = new LambdaInvoke(this, stateName, {
        lambdaFunction,
        payload,
        payloadResponseOnly: true,
        // The built-in retry matches more than our names; LAMBDA_RETRY covers the Lambda service errors.
        retryOnServiceExceptions: false,
        comment,
      });
      task.addRetry(LAMBDA_RETRY);
      task.addCatch(recordFailure, { errors: ['States.ALL'], resultPath: '$.error' });
      return task;
    };

    const start = lambdaStep(
      StateNames.start,
      functions.start,
      'ExecutionInput → RunState: lease, catalog, cutoff, run row.',
      TaskInput.fromObject({
        input: JsonPath.entirePayload,
        executionId: JsonPath.executionId,
        stateMachineArn: JsonPath.stateMachineId,
      }),
    );
    const chunk = lambdaStep(
      StateNames.chunk,
      functions.chunk,
      'RunState → RunState: chunks until done or time budget.',
    );
    const finish = lambdaStep(
      StateNames.finish,
      functions.finish,
      'RunState → RunSummary: orphans, totals, lease.',
    );

    // Same machine, same run: the fixed name makes the ARN known without a self-reference.
    const self = StateMachine.fromStateMachineName(this, 'Self', stateMachineName);
    const nextGeneration = JsonPath.mathAdd(JsonPath.numberAt('$.generation'), 1);
    const continueAsNew = new StepFunctionsStartExecution(this, StateNames.continueAsNew, {
      stateMachine: self,
      comment: 'Bounds execution history: the run goes on in a new execution (same runId, lease kept).',
      name: JsonPath.format('{}-g{}', JsonPath.stringAt('$.runId'), nextGeneration),
      input: TaskInput.fromObject({
        policy: JsonPath.objectAt('$.policy'),
        chunking: JsonPath.objectAt('$.chunking'),
        trigger: JsonPath.stringAt('$.trigger'),
        dryRun: JsonPath.stringAt('$.dryRun'),
        continuation: {
          runId: JsonPath.stringAt('$.runId'),
          cutoff: JsonPath.stringAt('$.cutoff'),
          cursor: JsonPath.objectAt('$.cursor'),
          batchRows: JsonPath.numberAt('$.batchRows'),
          generation: nextGeneration,
        },
      }),
    });
    continueAsNew.addRetry({ ...LAMBDA_RETRY, errors: [...CONTINUE_AS_NEW_RETRYABLE_ERRORS] });
    continueAsNew.addCatch(recordFailure, { errors: ['States.ALL'], resultPath: '$.error' });
    continueAsNew.next(new Succeed(this, StateNames.continued));

    // Every Chunk step sets waitSeconds: pauseSeconds (or a longer pacing rest left to this state), the throttle's
    // check interval while a replica lags, or what the action's prepare phase asked to wait for (a restore).
    const pause = new Wait(this, StateNames.pause, {
      time: WaitTime.secondsPath('$.waitSeconds'),
      comment:
        'pauseSeconds, or the replica-lag check interval. No transaction or connection is held while waiting.',
    });
    const moreWork = new Choice(this, StateNames.more)
      .when(Condition.booleanEquals('$.done', true), finish)
      .when(Condition.numberGreaterThanEquals('$.iterations', MAX_ITERATIONS_PER_EXECUTION), continueAsNew)
      // Set by the chunk step once the execution is old (MAX_EXECUTION_AGE_MS), before its timeout.
      .when(Condition.booleanEquals('$.continueNow', true), continueAsNew)
      .otherwise(pause);

    const parallelism = props.parallelism ?? 1;
    const work = parallelism > 1 ? this.workers(functions, recordFailure, parallelism) : chunk;
    if (work !== chunk) work.next(chunk);
    start.next(work);
    chunk.next(moreWork);
    pause.next(work);
    if (props.rdsSnapshot) {
      const stage = new RdsSnapshotStage(this, 'RdsSnapshot', {
        snapshotFunction: props.rdsSnapshot.function,
        copies: props.rdsSnapshot.copies,
        recordFailure,
        retry: LAMBDA_RETRY,
      });
      finish.next(stage.startState);
    }

    this.logGroup = props.logGroup;
    // Log delivery and X-Ray grants (added by StateMachine itself) are the only "*" grants this role may get.
    const role = new WildcardConfinedRole(this, 'Role', {
      assumedBy: new ServicePrincipal('states.amazonaws.com'),
      description: `Execution role of the state machine ${stateMachineName}`,
      shared: props.sharedStarOnly,
      starOnly: props.sharedStarOnly ? [] : STATE_MACHINE_STAR_ONLY_GRANTS,
    });

    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineName,
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromChainable(start),
      timeout: props.executionTimeout ?? Duration.hours(24),
      tracingEnabled: true,
      role,
      logs: {
        destination: this.logGroup,
        level: LogLevel.ALL,
        includeExecutionData: props.includeExecutionData ?? false,
      },
      comment: 'pg-lifecycle chunk loop: Start → Chunk → MoreWork → Pause/Finish/ContinueAsNew',
    });

    const invoked = {
      ...functions,
      ...(props.rdsSnapshot ? { rdsSnapshot: props.rdsSnapshot.function } : {}),
    };
    for (const [name, fn] of Object.entries(invoked) as [string, IFunction][]) {
      acknowledgeWildcardResource(
        role,
        `${fn.functionArn}:*`,
        `lambda:InvokeFunction on the ${name} function's qualified ARNs (versions/aliases), added by LambdaInvoke.`,
      );
    }
    if (parallelism > 1) {
      // The ARNs exactly as DistributedMap's policy builds them (from the machine's ARN token).
      const name = Arn.split(this.stateMachine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName;
      const executionArn = (resourceName: string) =>
        Stack.of(this).formatArn({
          service: 'states',
          resource: 'execution',
          resourceName,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        });
      acknowledgeWildcardResource(
        this.stateMachine,
        `${executionArn(`${name}`)}:*`,
        'states:DescribeExecution/StopExecution on this machine’s own executions (the Workers map’s child ' +
          'executions), added by DistributedMap.',
      );
      acknowledgeWildcardResource(
        this.stateMachine,
        executionArn(`${name}/*:*`),
        'states:RedriveExecution on this machine’s own Map Run executions, added by DistributedMap.',
      );
    }
  }

  /**
   * The Workers map of a parallel run: one child execution per range (`$.ranges`, ItemSelector `{run, range}`),
   * each `WorkerChunk` → `WorkerMoreWork` → (`WorkerPause` → `WorkerChunk` …) | `WorkerDone`. A worker stops
   * at its iteration bound or when the run's execution is old (`continueNow`) with its range open: the machine's
   * Chunk state sees that and maps again, or continues as new. A worker's terminal error is recorded by
   * `WorkerRecordFailure` (the run fails with that error), then fails the map, whose catch records it again
   * (the run stays failed with the worker's error) and ends the run failed; both keep the lease one more TTL,
   * since the other workers' Lambdas may still be in a chunk.
   */
  private workers(
    functions: ChunkLoopFunctions,
    recordFailure: LambdaInvoke,
    parallelism: number,
  ): DistributedMap {
    const map = new DistributedMap(this, WorkerStateNames.workers, {
      comment: 'One chunk loop per work range of the run, as child executions.',
      itemsPath: '$.ranges',
      itemSelector: { run: JsonPath.entirePayload, range: JsonPath.objectAt('$$.Map.Item.Value') },
      maxConcurrency: parallelism,
      mapExecutionType: StateMachineType.STANDARD,
      resultPath: JsonPath.DISCARD,
    });
    map.addCatch(recordFailure, { errors: ['States.ALL'], resultPath: '$.error' });
    const workerFailure = new LambdaInvoke(this, WorkerStateNames.workerRecordFailure, {
      lambdaFunction: functions.recordFailure,
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
      comment: 'Marks the run failed with this worker’s error; keeps the lease while other workers stop.',
    });
    workerFailure.addRetry(LAMBDA_RETRY);
    workerFailure.next(
      new Fail(this, WorkerStateNames.workerFailed, { error: WORKER_FAILED_ERROR, cause: RUN_FAILED_CAUSE }),
    );
    const workerChunk = new LambdaInvoke(this, WorkerStateNames.workerChunk, {
      lambdaFunction: functions.chunk,
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
      comment: 'RunState with its range → RunState: chunks of the range until done or time budget.',
    });
    workerChunk.addRetry(LAMBDA_RETRY);
    workerChunk.addCatch(workerFailure, { errors: ['States.ALL'], resultPath: '$.error' });
    // A child's output is gathered by the map (even with ResultPath null, against the 256 KiB payload limit):
    // a worker ends with nothing, not with its RunState (the ledger holds what it did).
    const workerDone = new Pass(this, WorkerStateNames.workerDone, {
      result: Result.fromObject({}),
      comment: 'Ends the worker with an empty output.',
    });
    const workerPause = new Wait(this, WorkerStateNames.workerPause, {
      time: WaitTime.secondsPath('$.waitSeconds'),
      comment: 'pauseSeconds, or the replica-lag check interval, between this worker’s steps.',
    });
    const workerMore = new Choice(this, WorkerStateNames.workerMore)
      .when(Condition.booleanEquals('$.done', true), workerDone)
      .when(Condition.numberGreaterThanEquals('$.iterations', MAX_ITERATIONS_PER_EXECUTION), workerDone)
      .when(Condition.booleanEquals('$.continueNow', true), workerDone)
      .otherwise(workerPause);
    workerChunk.next(workerMore);
    workerPause.next(workerChunk);
    map.itemProcessor(workerChunk);
    return map;
  }
}
