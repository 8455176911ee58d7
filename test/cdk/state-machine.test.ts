import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { extractStateMachineDefinitions } from '../../lib/asl/resolve-definition.ts';
import { parseConfig } from '../../lib/config-file.ts';
import { CONTINUE_AS_NEW_RETRYABLE_ERRORS } from '../../lib/constructs/chunk-loop-state-machine.ts';
import {
  MAX_ITERATIONS_PER_EXECUTION,
  RetryableErrorNames,
  StateNames,
  WorkerStateNames,
} from '../../lib/contracts/payloads.ts';
import { fixtureConfig, logicalIdOf, parallelConfig, pascal, synthesize } from './synth.ts';

const config = fixtureConfig();
const { template, json } = synthesize(config);
const machines = extractStateMachineDefinitions(json);
const enabled = config.policies.filter((policy) => policy.enabled).map((policy) => policy.name);
const machineOf = (policy: string) => {
  const found = machines.filter((m) => m.logicalId.startsWith(`Policy${pascal(policy)}ChunkLoop`));
  if (found.length !== 1) throw new Error(`expected one state machine for ${policy}`);
  return found[0] as (typeof machines)[number];
};
const machine = machineOf('orders-archive');
const { States: states, StartAt: startAt } = machine.definition;

type State = Record<string, unknown> & {
  Retry?: Array<{ ErrorEquals: string[] } & Record<string, unknown>>;
  Catch?: Array<Record<string, unknown>>;
};
const state = (name: string) => states[name] as State;
const functionArn = (step: string) =>
  `arn:aws:lambda:us-east-1:123456789012:function:${logicalIdOf(
    template,
    'AWS::Lambda::Function',
    new RegExp(`^PolicyOrdersArchive${step}Function[0-9A-F]{8}$`),
  )}`;

const lambdaRetry = {
  ErrorEquals: [...RetryableErrorNames],
  IntervalSeconds: 2,
  BackoffRate: 2,
  MaxAttempts: 6,
  MaxDelaySeconds: 60,
  JitterStrategy: 'FULL',
};
const catchIntoRecordFailure = [
  { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: StateNames.recordFailure },
];

describe('chunk-loop state machine resources', () => {
  it('are one STANDARD machine per enabled policy, named <stack>-<policy>, with a 24 h timeout and X-Ray', () => {
    // Assess
    expect(machines).toHaveLength(enabled.length);
    for (const policy of enabled) {
      template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
        StateMachineName: `PgLifecycle-${policy}`,
        StateMachineType: 'STANDARD',
        TracingConfiguration: { Enabled: true },
      });
      expect(machineOf(policy).definition.TimeoutSeconds).toBe(24 * 3600);
    }
  });

  it('log every event, without execution data unless the config asks, to one retained log group', () => {
    // Prepare
    const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup', /^StateMachineLogs[0-9A-F]{8}$/);
    const withData = synthesize(
      parseConfig({ ...fixtureConfig(), observability: { logExecutionData: true } }, 'inline'),
    ).template;
    const logging = (tmpl: typeof template) =>
      Object.values(tmpl.findResources('AWS::StepFunctions::StateMachine')).map(
        (resource) => resource.Properties.LoggingConfiguration,
      );

    // Assess: level ALL (every state entered and left) but no inputs, outputs or error causes by default.
    expect(logging(template)).toEqual(
      enabled.map(() => ({
        Level: 'ALL',
        IncludeExecutionData: false,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logGroupId, 'Arn'] } } }],
      })),
    );
    expect(logging(withData)).toHaveLength(enabled.length);
    for (const configured of logging(withData))
      expect(configured).toMatchObject({ Level: 'ALL', IncludeExecutionData: true });
    expect(template.toJSON().Resources[logGroupId]).toMatchObject({
      DeletionPolicy: 'Retain',
      Properties: {
        RetentionInDays: 731,
        // The stack's GUID in the name: a retained group never blocks a stack created again under that name.
        LogGroupName: {
          'Fn::Join': [
            '',
            [
              '/aws/vendedlogs/states/PgLifecycle-',
              { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] },
            ],
          ],
        },
      },
    });
  });

  it('may each start only itself (ContinueAsNew) and invoke only the four functions of its policy', () => {
    // Prepare
    const roleId = logicalIdOf(template, 'AWS::IAM::Role', /^PolicyOrdersArchiveChunkLoopRole[0-9A-F]{8}$/);
    const statements = Object.values(
      template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }),
    ).flatMap(
      (policy) => policy.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>,
    );
    const invoked = statements
      .filter((st) => [st.Action].flat().includes('lambda:InvokeFunction'))
      .flatMap((st) => [st.Resource].flat())
      .map((resource) => JSON.stringify(resource));

    // Assess
    expect(statements).toContainEqual({
      Action: 'states:StartExecution',
      Effect: 'Allow',
      Resource: {
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':states:',
            { Ref: 'AWS::Region' },
            ':',
            { Ref: 'AWS::AccountId' },
            ':stateMachine:PgLifecycle-orders-archive',
          ],
        ],
      },
    });
    expect(invoked.length).toBeGreaterThan(0);
    for (const resource of invoked)
      expect(resource).toMatch(/"PolicyOrdersArchive(Start|Chunk|Finish|RecordFailure)Function/);
  });

  it('share one definition but for the function ARNs and their own name (the local runner binds states by name)', () => {
    // Prepare
    const normalized = (definition: object) =>
      JSON.stringify(definition)
        .replace(
          /function:Policy[A-Za-z]+?(Start|Chunk|Finish|RecordFailure)Function[0-9A-F]{8}/g,
          'function:$1',
        )
        .replace(/stateMachine:PgLifecycle-[a-z-]+/g, 'stateMachine:SELF');

    // Assess
    const distinct = new Set(machines.map((m) => normalized(m.definition)));
    expect(distinct.size).toBe(1);
  });
});

describe('chunk-loop definition', () => {
  it('has exactly the StateNames states and starts at Start', () => {
    // Assess
    expect(Object.keys(states).sort()).toEqual(Object.values(StateNames).sort());
    expect(startAt).toBe(StateNames.start);
  });

  it('passes the input, execution id and state machine ARN to Start, and no Payload wrapper anywhere', () => {
    // Assess
    expect(state(StateNames.start)).toMatchObject({
      Type: 'Task',
      Resource: functionArn('Start'),
      Parameters: {
        'input.$': '$',
        'executionId.$': '$$.Execution.Id',
        'stateMachineArn.$': '$$.StateMachine.Id',
      },
      Next: StateNames.chunk,
    });
    expect(state(StateNames.chunk)).toMatchObject({
      Resource: functionArn('Chunk'),
      Next: StateNames.more,
    });
    expect(state(StateNames.finish)).toMatchObject({ Resource: functionArn('Finish'), End: true });
    expect(JSON.stringify(machine.definition)).not.toMatch(/Payload|ResultSelector|OutputPath/);
  });

  it('retries Lambda tasks only on the retryable error names, then catches into RecordFailure', () => {
    // Assess
    for (const name of [StateNames.start, StateNames.chunk, StateNames.finish]) {
      expect(state(name).Retry, name).toEqual([lambdaRetry]);
      expect(state(name).Catch, name).toEqual(catchIntoRecordFailure);
    }
    expect(state(StateNames.recordFailure)).toMatchObject({
      Resource: functionArn('RecordFailure'),
      Retry: [lambdaRetry],
      Next: StateNames.failed,
    });
    expect(state(StateNames.recordFailure).Catch).toBeUndefined();
    const allRetried = Object.values(states)
      .flatMap((s) => (s as State).Retry ?? [])
      .flatMap((r) => r.ErrorEquals);
    expect(allRetried).not.toContain('States.ALL');
    expect(allRetried).not.toContain('States.TaskFailed');
  });

  it('loops Chunk → MoreWork → Pause → Chunk until done, continuing as new past the iteration bound or when the execution is old', () => {
    // Assess
    expect(state(StateNames.more)).toEqual({
      Type: 'Choice',
      Choices: [
        { Variable: '$.done', BooleanEquals: true, Next: StateNames.finish },
        {
          Variable: '$.iterations',
          NumericGreaterThanEquals: MAX_ITERATIONS_PER_EXECUTION,
          Next: StateNames.continueAsNew,
        },
        { Variable: '$.continueNow', BooleanEquals: true, Next: StateNames.continueAsNew },
      ],
      Default: StateNames.pause,
    });
    expect(state(StateNames.pause)).toMatchObject({
      Type: 'Wait',
      SecondsPath: '$.waitSeconds',
      Next: StateNames.chunk,
    });
  });

  it('continues a run as a new execution of itself with a deterministic name', () => {
    // Assess
    expect(state(StateNames.continueAsNew)).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::states:startExecution',
      Parameters: {
        StateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:PgLifecycle-orders-archive',
        'Name.$': "States.Format('{}-g{}', $.runId, States.MathAdd($.generation, 1))",
        Input: {
          'policy.$': '$.policy',
          'chunking.$': '$.chunking',
          'trigger.$': '$.trigger',
          'dryRun.$': '$.dryRun',
          continuation: {
            'runId.$': '$.runId',
            'cutoff.$': '$.cutoff',
            'cursor.$': '$.cursor',
            'batchRows.$': '$.batchRows',
            'generation.$': 'States.MathAdd($.generation, 1)',
          },
        },
      },
      Retry: [{ ...lambdaRetry, ErrorEquals: [...CONTINUE_AS_NEW_RETRYABLE_ERRORS] }],
      Catch: catchIntoRecordFailure,
      Next: StateNames.continued,
    });
    expect(state(StateNames.continued)).toEqual({ Type: 'Succeed' });
  });

  it('ends a failed run in RunFailed with a pointer to the run row', () => {
    // Assess
    expect(state(StateNames.failed)).toEqual({
      Type: 'Fail',
      Error: 'RunFailed',
      Cause: 'see the run row in lifecycle.runs and the execution history',
    });
  });

  it('is valid ASL once resolved', () => {
    // Act
    const result = aslValidator(structuredClone(machine.definition));

    // Assess
    expect(result.errorsText()).toBe('');
    expect(result.isValid).toBe(true);
  });
});

describe('extractStateMachineDefinitions', () => {
  it('resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub and pseudo parameters into fake ARNs', () => {
    // Prepare: a DefinitionString shaped like CDK's, literal JSON pieces around intrinsics.
    const template = {
      Resources: {
        Fn: { Type: 'AWS::Lambda::Function' },
        Queue: { Type: 'AWS::SQS::Queue' },
        Machine: {
          Type: 'AWS::StepFunctions::StateMachine',
          Properties: {
            DefinitionString: {
              'Fn::Join': [
                '',
                [
                  '{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"',
                  { 'Fn::GetAtt': ['Fn', 'Arn'] },
                  '","Next":"B"},"B":{"Type":"Task","Resource":"',
                  // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax
                  { 'Fn::Sub': 'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:activity:x' },
                  '","Parameters":{"Url":"',
                  { 'Fn::Join': ['.', ['https://s3', { Ref: 'AWS::URLSuffix' }]] },
                  '","Queue":"',
                  { Ref: 'Queue' },
                  '"},"End":true}}}',
                ],
              ],
            },
          },
        },
      },
    };

    // Act
    const [resolved] = extractStateMachineDefinitions(template, { region: 'eu-west-1' });

    // Assess
    expect(resolved?.logicalId).toBe('Machine');
    expect(resolved?.definition).toEqual({
      StartAt: 'A',
      States: {
        A: { Type: 'Task', Resource: 'arn:aws:lambda:eu-west-1:123456789012:function:Fn', Next: 'B' },
        B: {
          Type: 'Task',
          Resource: 'arn:aws:states:eu-west-1:123456789012:activity:x',
          Parameters: {
            Url: 'https://s3.amazonaws.com',
            Queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/Queue',
          },
          End: true,
        },
      },
    });
  });

  it('refuses references it cannot resolve', () => {
    // Prepare
    const template = {
      Resources: {
        Machine: {
          Type: 'AWS::StepFunctions::StateMachine',
          Properties: { DefinitionString: { 'Fn::Join': ['', ['{"StartAt":"', { Ref: 'Missing' }, '"}']] } },
        },
      },
    };

    // Act / Assess
    expect(() => extractStateMachineDefinitions(template)).toThrow(
      /Ref to unknown resource or parameter Missing/,
    );
  });
});

describe('chunk-loop definition of a parallel policy', () => {
  const parallel = parallelConfig();
  const synthesized = synthesize(parallel);
  const definitions = extractStateMachineDefinitions(synthesized.json);
  const definitionOf = (policy: string) => {
    const found = definitions.find((m) => m.logicalId.startsWith(`Policy${pascal(policy)}ChunkLoop`));
    if (!found) throw new Error(`no state machine for ${policy}`);
    return found.definition;
  };
  const archive = definitionOf('orders-archive');
  const archiveState = (name: string) => archive.States[name] as State;
  const workers = archiveState(WorkerStateNames.workers) as State & {
    ItemProcessor: { ProcessorConfig: unknown; StartAt: string; States: Record<string, State> };
  };
  const { workers: _map, ...insideTheMap } = WorkerStateNames;

  it('maps Start’s ranges onto child executions, at most `parallelism` at once, then gathers in Chunk', () => {
    // Assess
    expect(archiveState(StateNames.start).Next).toBe(WorkerStateNames.workers);
    expect(workers).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.ranges',
      ItemSelector: { 'run.$': '$', 'range.$': '$$.Map.Item.Value' },
      MaxConcurrency: 8,
      ResultPath: null,
      Catch: catchIntoRecordFailure,
      Next: StateNames.chunk,
    });
    // No tolerated failures (the service's default, which CDK leaves out): one failed worker fails the map.
    expect(workers).not.toHaveProperty('ToleratedFailurePercentage');
    expect(workers).not.toHaveProperty('ToleratedFailureCount');
    expect(workers.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(archiveState(StateNames.pause).Next).toBe(WorkerStateNames.workers);
    expect(Object.keys(archive.States).sort()).toEqual(
      [...Object.values(StateNames), WorkerStateNames.workers].sort(),
    );
    expect((definitionOf('sessions-purge').States[WorkerStateNames.workers] as State).MaxConcurrency).toBe(4);
  });

  it('runs each worker’s own loop, retried by error name, its terminal error recorded before the map fails', () => {
    // Assess
    const inner = workers.ItemProcessor.States;
    expect(workers.ItemProcessor.StartAt).toBe(WorkerStateNames.workerChunk);
    expect(Object.keys(inner).sort()).toEqual(Object.values(insideTheMap).sort());
    expect(inner[WorkerStateNames.workerChunk]).toMatchObject({
      Type: 'Task',
      Retry: [lambdaRetry],
      Catch: [
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: WorkerStateNames.workerRecordFailure },
      ],
      Next: WorkerStateNames.workerMore,
    });
    expect(inner[WorkerStateNames.workerMore]).toEqual({
      Type: 'Choice',
      Choices: [
        { Variable: '$.done', BooleanEquals: true, Next: WorkerStateNames.workerDone },
        {
          Variable: '$.iterations',
          NumericGreaterThanEquals: MAX_ITERATIONS_PER_EXECUTION,
          Next: WorkerStateNames.workerDone,
        },
        { Variable: '$.continueNow', BooleanEquals: true, Next: WorkerStateNames.workerDone },
      ],
      Default: WorkerStateNames.workerPause,
    });
    expect(inner[WorkerStateNames.workerPause]).toMatchObject({
      Type: 'Wait',
      SecondsPath: '$.waitSeconds',
      Next: WorkerStateNames.workerChunk,
    });
    expect(inner[WorkerStateNames.workerRecordFailure]).toMatchObject({
      Retry: [lambdaRetry],
      Next: WorkerStateNames.workerFailed,
    });
    expect(inner[WorkerStateNames.workerFailed]).toMatchObject({ Type: 'Fail' });
    // Each child's output is gathered by the map: a worker ends with an empty one.
    expect(inner[WorkerStateNames.workerDone]).toMatchObject({ Type: 'Pass', Result: {}, End: true });
  });

  it('is valid ASL once resolved', () => {
    // Act
    const result = aslValidator(structuredClone(archive));

    // Assess
    expect(result.errorsText()).toBe('');
    expect(result.isValid).toBe(true);
  });
});
