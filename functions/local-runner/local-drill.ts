/**
 * Runs a backup policy's restore-drill state machine locally, as synthesized (aws-local-stepfunctions), with its
 * Task bound to the real drill handler and a Lambda-shaped context of 15 minutes: what the drill schedule starts
 * in AWS, end to end but for the Lambda.
 */
import './polyfills.ts';
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { type DrillOutput, DrillStateNames } from '../../lib/contracts/restore-drill-payloads.ts';
import type { DrillStepDependencies } from '../actions/backup/scheduled-drill.ts';
import { createHandler as createDrillHandler } from '../drill.ts';
import { type AslDefinition, synthesizeDrillDefinition } from './synthesize.ts';

export interface LocalDrillOptions {
  readonly config: LifecycleConfig;
  readonly policyName: string;
  /** The drill's dependencies (database, bucket, S3 client), built once per invocation. */
  readonly dependencies: (context: Context) => DrillStepDependencies;
  /** A definition synthesized earlier (skips the synth). */
  readonly definition?: AslDefinition;
  /** Overrides the Drill task's retry interval (ms). @default 0 */
  readonly retryIntervalMs?: number;
}

export interface LocalDrillResult {
  /** `succeeded`: the drill passed; `failed`: it did not pass or could not run (the alarm would fire). */
  readonly status: 'succeeded' | 'failed';
  /** What the drill function returned, when it returned. */
  readonly output: DrillOutput | undefined;
  /** The execution's error: `RestoreDrillFailed` for a drill that did not pass, else the function's error. */
  readonly error: string | undefined;
  readonly cause: string | undefined;
}

/** The Lambda's 15 minutes. */
const DRILL_BUDGET_MS = 15 * 60_000;

function lambdaContext(): Context {
  const deadline = Date.now() + DRILL_BUDGET_MS;
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'pg-lifecycle-local-drill',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:pg-lifecycle-local-drill',
    memoryLimitInMB: '1769',
    awsRequestId: requestId,
    logGroupName: '/local/pg-lifecycle',
    logStreamName: requestId,
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export async function runDrillLocally(options: LocalDrillOptions): Promise<LocalDrillResult> {
  const definition =
    options.definition ?? (await synthesizeDrillDefinition(options.config, options.policyName));
  const machine = new StateMachine(definition as never, {
    validationOptions: { checkArn: true, checkPaths: true },
  });
  const drill = createDrillHandler(options.dependencies);
  let output: DrillOutput | undefined;
  const execution = machine.run({ trigger: 'local' } as never, {
    overrides: {
      taskResourceLocalHandlers: {
        [DrillStateNames.drill]: async (event: unknown) => {
          output = await drill(event, lambdaContext());
          return output;
        },
      } as never,
      retryIntervalOverrides: { [DrillStateNames.drill]: options.retryIntervalMs ?? 0 },
    },
  });
  try {
    await execution.result;
    return { status: 'succeeded', output, error: undefined, cause: undefined };
  } catch (error) {
    const cause = (error as { cause?: Error }).cause ?? (error as Error);
    return { status: 'failed', output, error: cause.name, cause: cause.message };
  }
}
