import { describe, expect, it } from 'vitest';
import {
  decidePartitions,
  eligibleBelow,
  type PartitionInfo,
  parsePartitionBound,
  timeToMicros,
} from '../../functions/core/partitions.ts';

const CUTOFF = '2026-08-25T12:00:00.000Z';

function monthly(from: string, to: string, overrides: Partial<PartitionInfo> = {}): PartitionInfo {
  return {
    oid: from,
    schema: 'public',
    name: `events_${from.slice(0, 7)}`,
    relkind: 'r',
    boundText: `FOR VALUES FROM ('${from} 00:00:00+00') TO ('${to} 00:00:00+00')`,
    detachPending: false,
    ...overrides,
  };
}

describe('partition bounds', () => {
  it('reads range bounds, MINVALUE / MAXVALUE, DEFAULT and quoted quotes', () => {
    expect(
      parsePartitionBound("FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')"),
    ).toEqual({
      kind: 'range',
      from: { kind: 'value', text: '2024-01-01 00:00:00+00' },
      to: { kind: 'value', text: '2024-02-01 00:00:00+00' },
    });
    expect(parsePartitionBound("FOR VALUES FROM (MINVALUE) TO ('2024-01-01')")).toMatchObject({
      from: { kind: 'minvalue' },
    });
    expect(parsePartitionBound("FOR VALUES FROM ('2024-01-01') TO (MAXVALUE)")).toMatchObject({
      to: { kind: 'maxvalue' },
    });
    expect(parsePartitionBound('DEFAULT')).toEqual({ kind: 'default' });
    expect(parsePartitionBound("FOR VALUES FROM ('a''b') TO ('c')")).toMatchObject({
      from: { kind: 'value', text: "a'b" },
    });
  });

  it('refuses list, hash and multi-column bounds', () => {
    expect(() => parsePartitionBound("FOR VALUES IN ('a')")).toThrow(/not a range bound/);
    expect(() => parsePartitionBound('FOR VALUES WITH (modulus 4, remainder 0)')).toThrow();
    expect(() => parsePartitionBound("FOR VALUES FROM ('a', 1) TO ('b', 2)")).toThrow(/single-column/);
  });

  it('places time values in microseconds: offsets, fractions, dates, BC and infinity', () => {
    expect(timeToMicros('1970-01-01 00:00:00+00')).toBe(0n);
    expect(timeToMicros('1970-01-01T00:00:00.000001Z')).toBe(1n);
    expect(timeToMicros('1970-01-01 02:00:00+02')).toBe(0n);
    expect(timeToMicros('1969-12-31 19:30:00-04:30')).toBe(0n);
    expect(timeToMicros('2024-03-01')).toBe(BigInt(Date.UTC(2024, 2, 1)) * 1000n);
    expect(timeToMicros('0001-01-01 00:00:00+00 BC')).toBeLessThan(
      timeToMicros('0001-01-01 00:00:00+00') as bigint,
    );
    expect(timeToMicros('infinity')).toBe(Number.POSITIVE_INFINITY);
    expect(() => timeToMicros('next tuesday')).toThrow(/cannot read/);
  });

  it('compares dates with the cutoff day (the cutoff day is kept whole)', () => {
    expect(eligibleBelow(CUTOFF, 'date')).toBe(timeToMicros('2026-08-25'));
    expect(eligibleBelow(CUTOFF, 'timestamptz')).toBe(timeToMicros(CUTOFF));
  });
});

describe('partition decisions', () => {
  it('retires partitions whose upper bound is at or before the cutoff, oldest first', () => {
    // Prepare
    const partitions = [
      monthly('2026-08-01', '2026-09-01'),
      monthly('2026-06-01', '2026-07-01'),
      monthly('2026-07-01', '2026-08-01'),
      monthly('2026-09-01', '2026-10-01'),
      { ...monthly('2026-01-01', '2026-01-01'), name: 'events_default', boundText: 'DEFAULT' },
    ];
    // Act
    const decisions = decidePartitions(partitions, CUTOFF, 'timestamptz');
    // Assess
    const summary = decisions.map((d) => [d.partition.name, d.action === 'keep' ? d.reason : 'retire']);
    expect(summary).toEqual([
      ['events_2026-06', 'retire'],
      ['events_2026-07', 'retire'],
      ['events_2026-08', 'straddles-cutoff'],
      ['events_2026-09', 'after-cutoff'],
      ['events_default', 'default-partition'],
    ]);
  });

  it('retires a partition ending exactly at the cutoff, never one ending after it', () => {
    const partitions = [
      monthly('2026-07-25', '2026-08-25'),
      {
        ...monthly('2026-08-25', '2026-09-25'),
        boundText: `FOR VALUES FROM ('2026-08-25 12:00:00+00') TO (MAXVALUE)`,
      },
    ];
    const cutoffAtBound = '2026-08-25T00:00:00Z';
    expect(decidePartitions(partitions, cutoffAtBound, 'timestamptz').map((d) => d.action)).toEqual([
      'retire',
      'keep',
    ]);
    expect(decidePartitions(partitions, '2026-08-24T23:59:59.999999Z', 'timestamptz')[0]).toMatchObject({
      action: 'keep',
      reason: 'straddles-cutoff',
    });
  });

  it('keeps the last range partition when all of them lie before the cutoff', () => {
    const decisions = decidePartitions(
      [monthly('2026-02-01', '2026-03-01'), monthly('2026-01-01', '2026-02-01')],
      CUTOFF,
      'timestamptz',
    );
    expect(decisions.map((d) => [d.partition.name, d.action === 'keep' ? d.reason : 'retire'])).toEqual([
      ['events_2026-01', 'retire'],
      ['events_2026-02', 'last-partition'],
    ]);
    expect(decidePartitions([monthly('2026-01-01', '2026-02-01')], CUTOFF, 'timestamptz')[0]).toMatchObject({
      action: 'keep',
      reason: 'last-partition',
    });
  });

  it('never retires a sub-partitioned child, a partition mid-detach or an unreadable bound', () => {
    const decisions = decidePartitions(
      [
        monthly('2026-01-01', '2026-02-01', { relkind: 'p' }),
        monthly('2026-02-01', '2026-03-01', { detachPending: true }),
        monthly('2026-03-01', '2026-04-01', { boundText: "FOR VALUES IN ('x')" }),
        monthly('2026-04-01', '2026-05-01'),
        monthly('2026-09-01', '2026-10-01'),
      ],
      CUTOFF,
      'timestamptz',
    );
    expect(decisions.map((d) => [d.partition.name, d.action === 'keep' ? d.reason : 'retire'])).toEqual([
      ['events_2026-04', 'retire'],
      ['events_2026-01', 'not-a-leaf'],
      ['events_2026-02', 'detach-pending'],
      ['events_2026-03', 'unreadable-bound'],
      ['events_2026-09', 'after-cutoff'],
    ]);
  });

  it('uses date bounds against the cutoff day for date columns', () => {
    const partition = {
      ...monthly('2026-07-25', '2026-08-25'),
      boundText: "FOR VALUES FROM ('2026-07-25') TO ('2026-08-25')",
    };
    const later = {
      ...monthly('2026-08-25', '2026-09-25'),
      boundText: "FOR VALUES FROM ('2026-08-25') TO ('2026-09-25')",
    };
    expect(decidePartitions([partition, later], CUTOFF, 'date')[0]?.action).toBe('retire');
    expect(decidePartitions([partition, later], '2026-08-24T23:00:00Z', 'date')[0]?.action).toBe('keep');
  });
});
