import aslValidator from 'asl-validator';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { extractStateMachineDefinitions } from '../../lib/asl/resolve-definition.ts';
import { CONTINUE_AS_NEW_RETRYABLE_ERRORS } from '../../lib/constructs/chunk-loop-state-machine.ts';
import {
  MAX_ITERATIONS_PER_EXECUTION,
  RetryableErrorNames,
  StateNames,
} from '../../lib/contracts/payloads.ts';
import { fixtureConfig, logicalIdOf, synthesize } from './synth.ts';

const { template, json } = synthesize(fixtureConfig());
const [machine, ...others] = extractStateMachineDefinitions(json);
if (!machine || others.length > 0) throw new Error('expected exactly one state machine');
const { States: states, StartAt: startAt } = machine.definition;

type State = Record<string, unknown> & {
  Retry?: Array<{ ErrorEquals: string[] } & Record<string, unknown>>;
  Catch?: Array<Record<string, unknown>>;
};
const state = (name: string) => states[name] as State;
const functionArn = (prefix: string) =>
  `arn:aws:lambda:us-east-1:123456789012:function:${logicalIdOf(template, 'AWS::Lambda::Function', prefix)}`;

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

describe('chunk-loop state machine resource', () => {
  it('is a STANDARD machine with a fixed name, a 24 h timeout, X-Ray and full logging', () => {
    // Prepare
    const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup', 'ChunkLoopLogs');

    // Assess
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'PgLifecycle-chunk-loop',
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: true,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logGroupId, 'Arn'] } } }],
      },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/vendedlogs/states/PgLifecycle-chunk-loop',
      RetentionInDays: 30,
    });
    expect(machine.definition.TimeoutSeconds).toBe(24 * 3600);
  });

  it('may start only itself (ContinueAsNew) and invoke only the four functions', () => {
    // Assess
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^ChunkLoopStateMachineRole') }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
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
                  ':stateMachine:PgLifecycle-chunk-loop',
                ],
              ],
            },
          },
        ]),
      },
    });
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
      Resource: functionArn('StartFunction'),
      Parameters: {
        'input.$': '$',
        'executionId.$': '$$.Execution.Id',
        'stateMachineArn.$': '$$.StateMachine.Id',
      },
      Next: StateNames.chunk,
    });
    expect(state(StateNames.chunk)).toMatchObject({
      Resource: functionArn('ChunkFunction'),
      Next: StateNames.more,
    });
    expect(state(StateNames.finish)).toMatchObject({ Resource: functionArn('FinishFunction'), End: true });
    expect(JSON.stringify(machine.definition)).not.toMatch(/Payload|ResultSelector|OutputPath/);
  });

  it('retries Lambda tasks only on the retryable error names, then catches into RecordFailure', () => {
    // Assess
    for (const name of [StateNames.start, StateNames.chunk, StateNames.finish]) {
      expect(state(name).Retry, name).toEqual([lambdaRetry]);
      expect(state(name).Catch, name).toEqual(catchIntoRecordFailure);
    }
    expect(state(StateNames.recordFailure)).toMatchObject({
      Resource: functionArn('RecordFailureFunction'),
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
        StateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:PgLifecycle-chunk-loop',
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
