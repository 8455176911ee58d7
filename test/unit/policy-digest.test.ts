import { describe, expect, it } from 'vitest';
import { LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import { isTimeCutoffPolicy } from '../../lib/contracts/policy.ts';
import { canonicalJson, policyDigest } from '../../lib/contracts/policy-digest.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';

const config = LifecycleConfigSchema.parse({
  sandbox: true,
  policies: [
    {
      name: 'counting-results',
      table: 'public.counting_results',
      action: 'archive',
      timeColumn: 'created_at',
      retention: 'P2Y',
      filter: "count_type <> 'critical'",
    },
  ],
});

describe('deployed policy digest', () => {
  it('does not depend on key order (Step Functions may reorder JSON objects)', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[1,{"e":3,"f":2}]},"b":1}',
    );
    const input = buildExecutionInput(config, 'counting-results', 'schedule', false);
    const reordered = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(input.policy).reverse())));
    expect(policyDigest(reordered, input.chunking)).toBe(policyDigest(input.policy, input.chunking));
  });

  it('changes with anything that changes what a run touches', () => {
    const { policy, chunking } = buildExecutionInput(config, 'counting-results', 'schedule', false);
    if (!isTimeCutoffPolicy(policy)) throw new Error('counting-results is an archive policy');
    const digest = policyDigest(policy, chunking);
    expect(digest).toMatch(/^[0-9a-f]{16}$/);
    expect(policyDigest({ ...policy, filter: 'true' }, chunking)).not.toBe(digest);
    expect(policyDigest({ ...policy, table: 'public.users' }, chunking)).not.toBe(digest);
    expect(policyDigest({ ...policy, retention: 'PT1S' }, chunking)).not.toBe(digest);
    expect(policyDigest(policy, { ...chunking, maxRows: 1_000_000 })).not.toBe(digest);
  });
});
