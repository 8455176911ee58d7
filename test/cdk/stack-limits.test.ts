/**
 * Each enabled policy has its own functions and state machine, so the stack grows with the policies:
 * the documented per-policy cost must be what the template really holds, and `validate` must refuse a
 * config past the stack's CloudFormation resource quota before a deploy finds out.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config-file.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import {
  FIXED_RESOURCES_MAX,
  MAX_POLICIES_PER_STACK,
  MAX_RESOURCES_PER_STACK,
  RESOURCES_PER_POLICY,
} from '../../lib/contracts/stack-limits.ts';
import { synthesize } from './synth.ts';

/** A sandbox config (the largest fixed part) with `count` scheduled archive policies. */
function withPolicies(count: number): LifecycleConfigInput {
  return {
    sandbox: true,
    policies: Array.from({ length: count }, (_, i) => ({
      name: `table-${i}-archive`,
      action: 'archive' as const,
      table: `t${i}`,
      timeColumn: 'created_at',
      retention: 'P1Y',
      schedule: 'cron(0 3 * * ? *)',
      // The throttle adds the sandbox's CloudWatch endpoint: the fixed part at its largest.
      throttle: { maxReplicaLagSeconds: 30, cloudWatch: { dbInstanceIdentifiers: ['reader-1'] } },
    })),
  };
}

const resourceCount = (config: LifecycleConfigInput) =>
  Object.keys(synthesize(parseConfig(config, 'inline')).json.Resources as object).length;

describe('stack size', () => {
  it('grows by RESOURCES_PER_POLICY per scheduled policy over a fixed part within FIXED_RESOURCES_MAX', () => {
    // Act
    const one = resourceCount(withPolicies(1));
    const two = resourceCount(withPolicies(2));

    // Assess
    expect(two - one).toBe(RESOURCES_PER_POLICY);
    expect(one - RESOURCES_PER_POLICY).toBeLessThanOrEqual(FIXED_RESOURCES_MAX);
  });

  it(`synthesizes ${MAX_POLICIES_PER_STACK} policies within CloudFormation's ${MAX_RESOURCES_PER_STACK}`, () => {
    // Act
    const count = resourceCount(withPolicies(MAX_POLICIES_PER_STACK));

    // Assess
    expect(count).toBeLessThanOrEqual(MAX_RESOURCES_PER_STACK);
  });

  it('is refused by validate one policy past the limit, naming the limit and the way out', () => {
    // Act / Assess
    expect(() => parseConfig(withPolicies(MAX_POLICIES_PER_STACK + 1), 'inline')).toThrow(
      `policies: ${MAX_POLICIES_PER_STACK + 1} enabled policies: one stack holds at most ${MAX_POLICIES_PER_STACK}`,
    );
    // Disabled policies cost nothing.
    const config = withPolicies(MAX_POLICIES_PER_STACK + 1);
    const [first, ...rest] = config.policies;
    expect(() =>
      parseConfig(
        { ...config, policies: [{ ...(first as object), enabled: false }, ...rest] } as never,
        'inline',
      ),
    ).not.toThrow();
  });
});
