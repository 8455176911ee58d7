/** `partitions.count` of purge policies: estimate by default, exact on request, anything else refused. */
import { describe, expect, it } from 'vitest';
import { LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import type { PurgePolicy } from '../../lib/contracts/policy.ts';
import { purgeRowCounting } from '../../lib/contracts/policy-base.ts';

const purge = {
  name: 'old-events',
  table: 'public.events',
  action: 'purge',
  timeColumn: 'created_at',
  retention: 'P1Y',
};

function parse(policy: Record<string, unknown>) {
  return LifecycleConfigSchema.safeParse({ sandbox: true, policies: [policy] });
}

/** Every issue as "path: message", the way `validate` prints them. */
function issuesOf(policy: Record<string, unknown>): string[] {
  const result = parse(policy);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('config schema: purge partitions.count', () => {
  it('defaults to estimate', () => {
    const result = parse(purge);
    const partitions = result.success ? (result.data.policies[0] as PurgePolicy).partitions : undefined;
    expect(partitions).toMatchObject({ enabled: true });
    expect(purgeRowCounting(partitions ?? {})).toEqual({ count: 'estimate', countTimeoutMs: 10_000 });
  });

  it('keeps exact counts for a config written before count existed (countTimeoutMs alone)', () => {
    const result = parse({ ...purge, partitions: { countTimeoutMs: 5_000 } });
    const partitions = result.success ? (result.data.policies[0] as PurgePolicy).partitions : undefined;
    expect(purgeRowCounting(partitions ?? {})).toEqual({ count: 'exact', countTimeoutMs: 5_000 });
    const estimate = parse({ ...purge, partitions: { count: 'estimate', countTimeoutMs: 5_000 } });
    const chosen = estimate.success ? (estimate.data.policies[0] as PurgePolicy).partitions : undefined;
    expect(purgeRowCounting(chosen ?? {}).count).toBe('estimate');
  });

  it('accepts exact, with countTimeoutMs bounding it', () => {
    const result = parse({ ...purge, partitions: { count: 'exact', countTimeoutMs: 30_000 } });
    expect(result.success && result.data.policies[0]).toMatchObject({
      partitions: { count: 'exact', countTimeoutMs: 30_000 },
    });
  });

  it('refuses any other value, naming the field and the values it takes', () => {
    expect(issuesOf({ ...purge, partitions: { count: 'approximate' } })).toEqual([
      expect.stringMatching(/^policies\.0\.partitions\.count: .*"estimate".*"exact"/),
    ]);
    expect(issuesOf({ ...purge, partitions: { count: true } })).toEqual([
      expect.stringMatching(/^policies\.0\.partitions\.count: /),
    ]);
  });

  it('is purge-only: archive units count every row they archive', () => {
    expect(issuesOf({ ...purge, action: 'archive', partitions: { count: 'estimate' } })).toEqual([
      expect.stringMatching(/^policies\.0\.partitions: .*"count"/),
    ]);
  });
});
