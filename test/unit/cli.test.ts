/**
 * CLI behaviour without AWS: config errors exit 2 naming the field; `start` sends the schedule's input
 * to Step Functions, `status` lists each enabled policy's machine (only the SFN HTTP endpoint is faked: the
 * SDK serializes for real).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SFNClient } from '@aws-sdk/client-sfn';
import { describe, expect, it, vi } from 'vitest';
import {
  listExecutions,
  manualExecutionName,
  startCommand,
  stateMachineArnFor,
} from '../../bin/cli/aws-commands.ts';
import { LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { fakeSfn } from '../support/fake-sfn.ts';

const config = LifecycleConfigSchema.parse({
  sandbox: true,
  policies: [
    {
      name: 'counting-results',
      table: 'public.counting_results',
      action: 'archive',
      timeColumn: 'created_at',
      retention: 'P2Y',
    },
  ],
});

/** An SFN client whose HTTP layer answers from `respond` and records each request's target and body. */
function recordingSfn(respond: (target: string, body: Record<string, unknown>) => unknown) {
  const requests: Array<{ target: string; body: Record<string, unknown> }> = [];
  const client = new SFNClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestHandler: {
      handle: async (request: { headers: Record<string, string>; body: string }) => {
        const target = (request.headers['x-amz-target'] ?? '').replace('AWSStepFunctions.', '');
        const body = JSON.parse(request.body) as Record<string, unknown>;
        requests.push({ target, body });
        const { Readable } = await import('node:stream');
        const payload = JSON.stringify(respond(target, body));
        return {
          response: {
            statusCode: 200,
            headers: { 'content-type': 'application/x-amz-json-1.0' },
            body: Readable.from([Buffer.from(payload)]),
          },
        };
      },
    } as never,
  });
  return { client, requests };
}

describe('pg-lifecycle start', () => {
  it('starts an execution with exactly the input the schedule sends (trigger manual)', async () => {
    // Prepare
    const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pg-lifecycle';
    const { client, requests } = recordingSfn(() => ({ executionArn: `${arn}:x`, startDate: 1_700_000_000 }));
    // Act
    const started = await startCommand(client, {
      config,
      policy: 'counting-results',
      stateMachineArn: arn,
      dryRun: false,
      now: new Date('2026-11-23T10:11:12.345Z'),
    });
    // Assess
    expect(requests).toHaveLength(1);
    expect(requests[0]?.target).toBe('StartExecution');
    expect(requests[0]?.body.stateMachineArn).toBe(arn);
    expect(JSON.parse(requests[0]?.body.input as string)).toEqual({
      ...buildExecutionInput(config, 'counting-results', 'schedule', false),
      trigger: 'manual',
    });
    expect(started.name).toBe(manualExecutionName('counting-results', new Date('2026-11-23T10:11:12.345Z')));
    expect(started.name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
  });

  it("lists a machine's recent executions as its policy's, in one call and without describing any", async () => {
    // Prepare
    const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:PgLifecycle-counting-results';
    const { client, requests } = recordingSfn(() => ({
      executions: ['a', 'b'].map((name, i) => ({
        executionArn: `${arn}:${name}`,
        name,
        status: 'SUCCEEDED',
        startDate: 2 - i,
        stateMachineArn: arn,
      })),
    }));

    // Act
    const executions = await listExecutions(client, {
      stateMachineArn: arn,
      policy: 'counting-results',
      limit: 5,
    });

    // Assess
    expect(executions).toEqual([
      expect.objectContaining({ name: 'a', status: 'SUCCEEDED', policy: 'counting-results' }),
      expect.objectContaining({ name: 'b', status: 'SUCCEEDED', policy: 'counting-results' }),
    ]);
    expect(requests.map((r) => r.target)).toEqual(['ListExecutions']);
    expect(requests[0]?.body).toEqual({ stateMachineArn: arn, maxResults: 5 });
  });
});

describe('pg-lifecycle status: executions', () => {
  const prefix = 'arn:aws:states:eu-west-1:123456789012:stateMachine:PgLifecycle-';
  const policy = (name: string, enabled: boolean) => ({
    name,
    table: `public.${name.replaceAll('-', '_')}`,
    action: 'purge',
    timeColumn: 'created_at',
    retention: 'P2Y',
    enabled,
  });
  const dir = mkdtempSync(join(tmpdir(), 'pgl-status-'));
  const file = join(dir, 'status.json');
  writeFileSync(
    file,
    JSON.stringify({
      sandbox: true,
      policies: [policy('live-a', true), policy('off', false), policy('live-b', true)],
    }),
  );
  /** Step Functions with the machines of the enabled policies only (a disabled policy has none). */
  const deployed = () =>
    fakeSfn((target, body) => {
      const machine = String(body.stateMachineArn);
      if (target !== 'ListExecutions' || !['live-a', 'live-b'].some((p) => machine === `${prefix}${p}`))
        return { error: 'StateMachineDoesNotExist', message: `State Machine Does Not Exist: '${machine}'` };
      const name = machine.slice(prefix.length);
      return {
        executions: [
          {
            executionArn: `${machine}:${name}-run`,
            name: `${name}-run`,
            status: 'SUCCEEDED',
            startDate: name === 'live-a' ? 1 : 2,
            stateMachineArn: machine,
          },
        ],
      };
    });

  it('lists every enabled policy of the config, the policy taken from its machine, describing nothing', async () => {
    // Prepare
    vi.stubEnv('PG_LIFECYCLE_STATE_MACHINE_PREFIX', prefix);
    const sfn = deployed();
    try {
      // Act
      const { recentExecutions } = await import('../../bin/cli/main.ts');
      const executions = await recentExecutions(sfn.client, { config: file }, 10);

      // Assess: newest first
      expect(executions.map((e) => [e.policy, e.name])).toEqual([
        ['live-b', 'live-b-run'],
        ['live-a', 'live-a-run'],
      ]);
      expect(sfn.requests.map((r) => [r.target, r.body.stateMachineArn])).toEqual([
        ['ListExecutions', `${prefix}live-a`],
        ['ListExecutions', `${prefix}live-b`],
      ]);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('names the policy of an explicit --state-machine-arn from the prefix', async () => {
    // Prepare
    vi.stubEnv('PG_LIFECYCLE_STATE_MACHINE_PREFIX', prefix);
    const sfn = deployed();
    try {
      // Act
      const { recentExecutions } = await import('../../bin/cli/main.ts');
      const executions = await recentExecutions(
        sfn.client,
        { config: file, 'state-machine-arn': `${prefix}live-b` },
        10,
      );

      // Assess
      expect(executions).toEqual([expect.objectContaining({ policy: 'live-b', name: 'live-b-run' })]);
      expect(sfn.requests.map((r) => r.target)).toEqual(['ListExecutions']);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('state machine of a policy', () => {
  const prefix = 'arn:aws:states:eu-west-1:123456789012:stateMachine:PgLifecycle-';

  it('appends the policy to PG_LIFECYCLE_STATE_MACHINE_PREFIX', () => {
    vi.stubEnv('PG_LIFECYCLE_STATE_MACHINE_PREFIX', prefix);
    try {
      expect(stateMachineArnFor('counting-results', undefined)).toBe(`${prefix}counting-results`);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("refuses another policy's state machine (its Start would refuse the input anyway, after a call)", () => {
    expect(() => stateMachineArnFor('counting-results', `${prefix}other-policy`)).toThrow(
      /not the state machine of policy counting-results/,
    );
    expect(stateMachineArnFor('counting-results', `${prefix}counting-results`)).toBe(
      `${prefix}counting-results`,
    );
  });

  it("with the prefix known, takes only the prefix's machine of the policy: not one merely ending in -<policy>", () => {
    vi.stubEnv('PG_LIFECYCLE_STATE_MACHINE_PREFIX', prefix);
    try {
      // PgLifecycle-orders-archive is the machine of policy orders-archive, not of policy archive.
      expect(() => stateMachineArnFor('archive', `${prefix}orders-archive`)).toThrow(
        `not the state machine of policy archive (each policy has its own, named ${prefix}archive)`,
      );
      expect(() =>
        stateMachineArnFor('archive', 'arn:aws:states:eu-west-1:123456789012:stateMachine:Other-archive'),
      ).toThrow(/not the state machine of policy archive/);
      expect(stateMachineArnFor('archive', `${prefix}archive`)).toBe(`${prefix}archive`);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('says which output to use when neither an ARN nor the prefix is set, and refuses a malformed prefix', () => {
    vi.stubEnv('PG_LIFECYCLE_STATE_MACHINE_PREFIX', '');
    try {
      expect(() => stateMachineArnFor('counting-results', undefined)).toThrow(/StateMachineArnPrefix/);
      vi.stubEnv('PG_LIFECYCLE_STATE_MACHINE_PREFIX', 'arn:aws:states:eu-west-1:123456789012:stateMachine:X');
      expect(() => stateMachineArnFor('counting-results', undefined)).toThrow(
        /not a state machine ARN prefix/,
      );
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('pg-lifecycle validate', () => {
  it('exits 2 and names the field and problem for an invalid config', async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'pgl-cli-'));
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        sandbox: true,
        policies: [{ name: 'x', table: 't', action: 'archive', timeColumn: 'c', retention: '2 years' }],
      }),
    );
    const errors: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      errors.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    // Act
    const { main } = await import('../../bin/cli/main.ts');
    let code: number;
    try {
      code = await main(['validate', '--config', file]);
    } finally {
      process.stderr.write = write;
    }
    // Assess
    expect(code).toBe(2);
    expect(errors.join('')).toContain(
      `${file}: policies[0].retention: "2 years" is not an ISO-8601 duration`,
    );
  });
});

describe('pg-lifecycle option checks', () => {
  /** Runs the CLI, returning its exit code and what it wrote to stderr. */
  async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
    const errors: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      errors.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      const { main } = await import('../../bin/cli/main.ts');
      return { code: await main(args), stderr: errors.join('') };
    } finally {
      process.stderr.write = write;
    }
  }

  const dir = mkdtempSync(join(tmpdir(), 'pgl-cli-'));
  const file = join(dir, 'ok.json');
  writeFileSync(
    file,
    JSON.stringify({
      sandbox: true,
      policies: [{ name: 'p', table: 't', action: 'archive', timeColumn: 'c', retention: 'P1Y' }],
    }),
  );

  it.each([
    [
      ['run', '--config', file, '--policy', 'p', '--bucket', 'My Bucket'],
      /bucket "My Bucket" is not a valid S3 bucket name/,
    ],
    [
      ['verify', '--config', file, '--policy', 'p', '--bucket', 'ok-bucket', '--run', "1' OR '1"],
      /--run 1' OR '1 is not a run id/,
    ],
    [['run', '--config', file, '--policy', 'nope', '--bucket', 'ok-bucket'], /no policy named "nope"/],
    [['status', '--limit', '1000'], /--limit must be a whole number from 1 to 100/],
  ])('exits 2 before touching anything: %j', async (args, message) => {
    // Act
    const { code, stderr } = await cli(args);
    // Assess
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});
