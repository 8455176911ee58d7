/** The retrieval estimate printed before cold objects are requested: pure arithmetic over the price table. */
import { describe, expect, it } from 'vitest';
import {
  estimateRetrieval,
  RETRIEVAL_PRICES,
  RetrievalTierError,
} from '../../functions/actions/restore-archive/index.ts';

const states = [
  { key: 'a', bytes: 2e9, storageClass: 'GLACIER', state: 'cold' as const },
  { key: 'b', bytes: 1e9, storageClass: 'DEEP_ARCHIVE', state: 'restoring' as const },
  { key: 'c', bytes: 5e9, storageClass: 'GLACIER_IR', state: 'readable' as const },
];

describe('retrieval estimate', () => {
  it('prices the objects still out of reach by class and tier, readable ones not at all', () => {
    // Act
    const estimate = estimateRetrieval(states, 'Standard');

    // Assess
    const glacier = RETRIEVAL_PRICES.GLACIER.Standard as { perGb: number; per1000Requests: number };
    const deep = RETRIEVAL_PRICES.DEEP_ARCHIVE.Standard as { perGb: number; per1000Requests: number };
    const expected =
      2 * glacier.perGb + glacier.per1000Requests / 1000 + deep.perGb + deep.per1000Requests / 1000;
    expect(estimate).toMatchObject({ objects: 2, bytes: 3e9, keys: ['a', 'b'] });
    expect(estimate.estimatedCostUsd).toBeCloseTo(expected, 4);
    expect(estimate.estimatedTime).toBe('GLACIER: 3-5 hours; DEEP_ARCHIVE: within 12 hours');
  });

  it('refuses Expedited for Deep Archive before any request', () => {
    expect(() => estimateRetrieval(states, 'Expedited')).toThrow(RetrievalTierError);
  });
});
