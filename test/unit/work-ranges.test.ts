import { describe, expect, it } from 'vitest';
import { type ChunkTarget, eligibleWhere } from '../../functions/core/chunk-sql.ts';
import { InvalidPayloadError } from '../../functions/core/errors.ts';
import { microsToIso, rangesFromBounds } from '../../functions/run/work-ranges.ts';
import { LifecycleConfigSchema } from '../../lib/contracts/config.ts';

const CUTOFF = '2026-09-01T00:00:00.000000Z';

const target: ChunkTarget = {
  schema: 'public',
  table: 'events',
  partitioned: false,
  timeColumn: { name: 'Created At', kind: 'timestamptz' },
  keyColumns: [{ name: 'id', typeName: 'bigint' }],
  columnNames: ['id', 'Created At'],
};

/** Every issue of a config with one policy of `action` (and `extra`) as "path: message". */
function issuesOf(action: string, extra: Record<string, unknown>): string[] {
  const policy = {
    name: 'p',
    table: 'public.events',
    action,
    timeColumn: 'created_at',
    retention: 'P1Y',
    ...(action === 'anonymize' ? { anonymize: { columns: { email: { strategy: 'null' } } } } : {}),
    ...extra,
  };
  const result = LifecycleConfigSchema.safeParse({ sandbox: true, policies: [policy] });
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('work ranges', () => {
  it('cut [oldest, cutoff) at the sorted, distinct bounds before the cutoff', () => {
    // Act
    const ranges = rangesFromBounds(
      [
        '2026-05-01T00:00:00.000000Z',
        '2026-03-01T00:00:00.000000Z',
        '2026-05-01T00:00:00.000000Z',
        '2026-09-01T00:00:00.000000Z',
        '2027-01-01T00:00:00.000000Z',
      ],
      CUTOFF,
    );

    // Assess
    expect(ranges).toEqual([
      { index: 0, from: null, to: '2026-03-01T00:00:00.000000Z' },
      { index: 1, from: '2026-03-01T00:00:00.000000Z', to: '2026-05-01T00:00:00.000000Z' },
      { index: 2, from: '2026-05-01T00:00:00.000000Z', to: CUTOFF },
    ]);
  });

  it('are one range [oldest, cutoff) without bounds', () => {
    // Assess
    expect(rangesFromBounds([], CUTOFF)).toEqual([{ index: 0, from: null, to: CUTOFF }]);
  });

  it('write microseconds as the cutoff is written, before 1970 too', () => {
    // Assess
    expect(microsToIso(1_780_000_000_123_456n)).toBe('2026-05-28T20:26:40.123456Z');
    expect(microsToIso(-1n)).toBe('1969-12-31T23:59:59.999999Z');
    expect(microsToIso(0n)).toBe('1970-01-01T00:00:00.000000Z');
  });

  it('bound every statement from below, a literal cast to the time column’s kind as the cutoff is', () => {
    // Act
    const bound = '2026-03-01T00:00:00.000000Z';
    const timestamptz = eligibleWhere({ ...target, lowerBound: bound }, false);
    const date = eligibleWhere(
      { ...target, timeColumn: { name: 'day', kind: 'date' }, lowerBound: bound },
      false,
    );

    // Assess: a literal, so that the planner prunes partitions outside the range.
    expect(timestamptz).toContain(`"Created At" >= '${bound}'::timestamptz`);
    expect(date).toContain(`"day" >= ('${bound}'::timestamptz AT TIME ZONE 'UTC')::date`);
    expect(eligibleWhere(target, false)).not.toContain('>=');
  });

  it('refuse a lower bound that is not ISO-8601 UTC text (it is spliced in as a literal)', () => {
    // Assess
    for (const bound of ["2026-03-01T00:00:00.000000Z'; DROP TABLE events; --", '2026-03-01', 'now']) {
      expect(() => eligibleWhere({ ...target, lowerBound: bound }, false), bound).toThrow(
        InvalidPayloadError,
      );
    }
  });
});

describe('parallelism in the config', () => {
  it('takes 1 to 32 workers on archive and purge policies', () => {
    // Assess
    expect(issuesOf('archive', { parallelism: 32 })).toEqual([]);
    expect(issuesOf('purge', { parallelism: 1 })).toEqual([]);
    expect(issuesOf('archive', { parallelism: 0 })).toEqual([
      'policies.0.parallelism: Too small: expected number to be >=1',
    ]);
    expect(issuesOf('purge', { parallelism: 33 })).toEqual([
      'policies.0.parallelism: Too big: expected number to be <=32',
    ]);
    expect(issuesOf('archive', { parallelism: 2.5 })).toHaveLength(1);
  });

  it('is refused on actions without time ranges to split', () => {
    // Assess
    expect(issuesOf('anonymize', { parallelism: 4 }).join('\n')).toMatch(/parallelism/);
  });

  it('caps chunk steps for the whole database in defaults.throttle only', () => {
    // Assess
    expect(issuesOf('archive', { throttle: { maxConcurrentSteps: 4 } })).toEqual([
      'policies.0.throttle.maxConcurrentSteps: is one cap for the whole database: set it in defaults.throttle',
    ]);
  });
});
