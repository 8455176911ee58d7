/**
 * Each enabled policy has its own functions and state machine, so the stack grows with the policies: the
 * per-policy cost deploymentIssues reckons must be what the template really holds, and `cdk synth` /
 * `validate` must name what does not fit in one stack (resources, construct ids, state machine names)
 * before a deploy finds out, while local runs, which deploy nothing, take any such config.
 */
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app.ts';
import { ConfigError, deploymentIssues, parseConfig } from '../../lib/config-file.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import {
  BASE_RESOURCES_PER_POLICY,
  FIXED_RESOURCES_MAX,
  MAX_POLICIES_PER_STACK,
  MAX_RESOURCES_PER_STACK,
  policyResourceCount,
  RESOURCES_PER_POLICY,
  SCHEDULE_RESOURCES,
} from '../../lib/contracts/stack-limits.ts';
import { synthesize } from './synth.ts';

const CLOUDWATCH_THROTTLE = { maxReplicaLagSeconds: 30, cloudWatch: { dbInstanceIdentifiers: ['reader-1'] } };

type PolicyInput = LifecycleConfigInput['policies'][number];

/** `count` purge policies of their own tables, each with `extra`. */
function policies(count: number, extra: Partial<PolicyInput> = {}, prefix = 'table'): PolicyInput[] {
  return Array.from(
    { length: count },
    (_, i) =>
      ({
        name: `${prefix}-${i}-purge`,
        action: 'purge',
        table: `${prefix}_${i}`,
        timeColumn: 'created_at',
        retention: 'P1Y',
        ...extra,
      }) as PolicyInput,
  );
}

/**
 * A sandbox config (the largest fixed part) with `count` scheduled policies whose throttles read CloudWatch
 * (the largest policies; the sandbox then adds its CloudWatch endpoint).
 */
function withLargestPolicies(count: number): LifecycleConfigInput {
  return {
    sandbox: true,
    policies: policies(count, { schedule: 'cron(0 3 * * ? *)', throttle: CLOUDWATCH_THROTTLE }),
  };
}

const resourcesOf = (config: LifecycleConfigInput) =>
  Object.keys(synthesize(parseConfig(config, 'inline')).json.Resources as object).length;

describe('stack size', () => {
  it.each([
    ['a plain purge policy', {}, BASE_RESOURCES_PER_POLICY],
    [
      'a scheduled archive policy',
      { action: 'archive', schedule: 'rate(1 hour)' },
      BASE_RESOURCES_PER_POLICY + SCHEDULE_RESOURCES,
    ],
    [
      'a policy whose throttle reads CloudWatch',
      { throttle: CLOUDWATCH_THROTTLE },
      BASE_RESOURCES_PER_POLICY + 1,
    ],
    [
      'a scheduled policy whose throttle reads CloudWatch',
      { schedule: 'rate(1 hour)', throttle: CLOUDWATCH_THROTTLE },
      RESOURCES_PER_POLICY,
    ],
  ] as const)('grows by what %s costs (policyResourceCount)', (_what, extra, cost) => {
    // Prepare: the shared parts a schedule or a CloudWatch throttle brings are already there.
    const base = policies(1, { schedule: 'rate(1 hour)', throttle: CLOUDWATCH_THROTTLE }, 'base');
    const added = policies(1, extra as Partial<PolicyInput>, 'added');
    const config = parseConfig({ sandbox: true, policies: [...base, ...added] }, 'inline');

    // Act
    const growth =
      resourcesOf({ sandbox: true, policies: [...base, ...added] }) -
      resourcesOf({ sandbox: true, policies: base });

    // Assess
    expect(growth).toBe(cost);
    expect(policyResourceCount(config, config.policies[1] as never)).toBe(cost);
  });

  it('keeps the rest of the stack within FIXED_RESOURCES_MAX', () => {
    expect(resourcesOf(withLargestPolicies(1)) - RESOURCES_PER_POLICY).toBeLessThanOrEqual(
      FIXED_RESOURCES_MAX,
    );
  });

  it(`synthesizes ${MAX_POLICIES_PER_STACK} of the largest policies within CloudFormation's ${MAX_RESOURCES_PER_STACK}`, () => {
    expect(resourcesOf(withLargestPolicies(MAX_POLICIES_PER_STACK))).toBeLessThanOrEqual(
      MAX_RESOURCES_PER_STACK,
    );
  });

  it('is a deployment issue one of the largest policies past the limit, naming the count and the way out', () => {
    // Prepare
    const config = parseConfig(withLargestPolicies(MAX_POLICIES_PER_STACK + 1), 'inline');

    // Act / Assess
    expect(deploymentIssues(config)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^policies: ${MAX_POLICIES_PER_STACK + 1} enabled policies need ${(MAX_POLICIES_PER_STACK + 1) * RESOURCES_PER_POLICY} CloudFormation resources .*more than the ${MAX_RESOURCES_PER_STACK} one stack may hold; split them over two config files`,
        ),
      ),
    ]);
    expect(() => buildApp(config, { bundling: false, nag: false, validation: false })).toThrow(ConfigError);
    // Disabled policies cost nothing.
    const [first, ...rest] = config.policies;
    expect(
      deploymentIssues({ ...config, policies: [{ ...(first as object), enabled: false } as never, ...rest] }),
    ).toEqual([]);
  });

  it('counts what each policy costs: more small policies than the largest fit', () => {
    // 26 × 17 + 57 = 499: unscheduled policies without a CloudWatch throttle.
    const small = Math.floor((MAX_RESOURCES_PER_STACK - FIXED_RESOURCES_MAX) / BASE_RESOURCES_PER_POLICY);
    expect(small).toBeGreaterThan(MAX_POLICIES_PER_STACK);
    const config = parseConfig({ sandbox: true, policies: policies(small) }, 'inline');
    expect(deploymentIssues(config)).toEqual([]);
    expect(resourcesOf({ sandbox: true, policies: policies(small) })).toBeLessThanOrEqual(
      MAX_RESOURCES_PER_STACK,
    );
  });

  it('binds only deployments: the schema (run, plan) takes a local config with more policies', () => {
    const local = { policies: policies(MAX_POLICIES_PER_STACK + 10, { schedule: 'rate(1 hour)' }) };
    expect(() => parseConfig(local, 'inline')).not.toThrow();
  });
});

describe('names the stack derives from policy names', () => {
  const config = (names: string[]) =>
    parseConfig(
      {
        sandbox: true,
        policies: names.map((name, i) => ({ ...policies(1, {}, `t${i}`)[0], name }) as PolicyInput),
      },
      'inline',
    );

  it('refuses two policies whose construct ids collide (orders-2024 and orders2024), instead of a raw synth error', () => {
    // Act
    const issues = deploymentIssues(config(['orders-2024', 'other', 'orders2024']));

    // Assess
    expect(issues).toEqual([
      'policies[2].name: "orders2024" and "orders-2024" (policies[0]) both become Orders2024 in the stack\'s construct ids and outputs (StateMachineArnOrders2024); rename one',
    ]);
    expect(() => buildApp(config(['orders-2024', 'orders2024']), { bundling: false, nag: false })).toThrow(
      ConfigError,
    );
    // A disabled one gets no constructs.
    const oneDisabled = config(['orders-2024', 'orders2024']);
    expect(
      deploymentIssues({
        ...oneDisabled,
        policies: [
          oneDisabled.policies[0] as never,
          { ...(oneDisabled.policies[1] as object), enabled: false } as never,
        ],
      }),
    ).toEqual([]);
  });

  it('refuses a state machine name past 80 characters with the stack name given (-c stackName=)', () => {
    // Prepare: 55 characters, the longest policy name; PgLifecycle-<it> is 67.
    const long = config([`a${'b'.repeat(54)}`]);

    // Act / Assess
    expect(deploymentIssues(long)).toEqual([]);
    const issues = deploymentIssues(long, { stackName: 'PgLifecycle-production-eu' });
    expect(issues).toEqual([
      expect.stringMatching(
        /^policies\[0\]\.name: its state machine "PgLifecycle-production-eu-ab+" would have 81 characters, Step Functions takes at most 80: shorten the policy name or the stack name/,
      ),
    ]);
    expect(() =>
      buildApp(long, {
        bundling: false,
        nag: false,
        stackName: 'PgLifecycle-production-eu',
        configSource: 'x.json',
      }),
    ).toThrow(/^x\.json: policies\[0\]\.name: its state machine/);
  });
});
