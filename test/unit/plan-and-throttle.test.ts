import { describe, expect, it } from 'vitest';
import {
  decideFullScan,
  FULL_SCAN_REFUSAL_MIN_BYTES,
  planHasSeqScan,
} from '../../functions/core/full-scan.ts';
import { LifecycleConfigSchema, resolveChunking } from '../../lib/contracts/config.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';

const facts = {
  qualifiedName: '"public"."events"',
  timeColumn: '"created_at"',
  seqScan: true,
  timeIndexed: false,
  tableBytes: FULL_SCAN_REFUSAL_MIN_BYTES * 4,
  allowSeqScan: false,
  force: false,
};

describe('planHasSeqScan', () => {
  it('finds a (parallel) Seq Scan on the table or one of its partitions, quoted or not', () => {
    // Prepare
    const plan = (line: string) => ['Limit  (cost=0.00..1.00 rows=1 width=16)', `  ->  ${line}`];

    // Assess
    expect(planHasSeqScan(plan('Seq Scan on events  (cost=0.00..1.00 rows=1 width=16)'), ['events'])).toBe(
      true,
    );
    expect(
      planHasSeqScan(plan('Parallel Seq Scan on events_2026_01 events_1'), ['events', 'events_2026_01']),
    ).toBe(true);
    expect(planHasSeqScan(plan('Seq Scan on "Order Lines"  (cost=0.00..1.00)'), ['Order Lines'])).toBe(true);
    expect(planHasSeqScan(plan('Seq Scan on public.events'), ['events'])).toBe(true);
    expect(planHasSeqScan(plan('Index Scan using events_created_at_idx on events'), ['events'])).toBe(false);
    expect(planHasSeqScan(plan('Seq Scan on other_table'), ['events'])).toBe(false);
  });
});

describe('decideFullScan', () => {
  it('refuses a large table scanned whole for want of a time index, naming the ways out', () => {
    // Act
    const decision = decideFullScan(facts);

    // Assess
    expect(decision.fullTableScan).toBe(true);
    expect(decision.refusal).toMatch(/no btree index leads with "created_at"/);
    expect(decision.refusal).toMatch(/CREATE INDEX CONCURRENTLY ON "public"."events" \("created_at"\)/);
    expect(decision.refusal).toMatch(/"allowSeqScan": true.*--force/);
    expect(decision.warning).toMatch(/a run refuses \(MissingIndexError\)/);
  });

  it('only warns when allowed, forced or small, and says nothing when an index exists or the plan uses one', () => {
    // Assess
    expect(decideFullScan({ ...facts, allowSeqScan: true })).toMatchObject({
      refusal: undefined,
      warning: expect.stringContaining('allowSeqScan is set'),
    });
    expect(decideFullScan({ ...facts, force: true })).toMatchObject({
      refusal: undefined,
      warning: expect.stringContaining('--force was given'),
    });
    expect(decideFullScan({ ...facts, tableBytes: FULL_SCAN_REFUSAL_MIN_BYTES - 1 })).toMatchObject({
      refusal: undefined,
      warning: expect.stringContaining('small enough'),
    });
    // A tiny table with an index may still be planned as a Seq Scan: not a problem.
    expect(decideFullScan({ ...facts, timeIndexed: true })).toEqual({
      fullTableScan: false,
      warning: undefined,
      refusal: undefined,
    });
    expect(decideFullScan({ ...facts, seqScan: false }).fullTableScan).toBe(false);
  });
});

describe('throttle config', () => {
  const config = (throttle: object | undefined, defaults: object | undefined) =>
    LifecycleConfigSchema.parse({
      sandbox: true,
      ...(defaults ? { defaults: { throttle: defaults } } : {}),
      policies: [
        {
          name: 'p',
          action: 'purge',
          table: 't',
          timeColumn: 'created_at',
          retention: 'P1D',
          ...(throttle ? { throttle } : {}),
        },
      ],
    });

  it('resolves into chunking only when a lag limit is set, policy over defaults, 30 s checks by default', () => {
    // Prepare
    const policyOf = (c: ReturnType<typeof config>) => c.policies[0] as (typeof c.policies)[number];

    // Assess
    const none = config(undefined, undefined);
    expect(resolveChunking(none, policyOf(none)).throttle).toBeUndefined();
    const fromDefaults = config(undefined, { maxReplicaLagSeconds: 5 });
    expect(resolveChunking(fromDefaults, policyOf(fromDefaults)).throttle).toEqual({
      maxReplicaLagSeconds: 5,
      checkEverySeconds: 30,
    });
    const merged = config({ checkEverySeconds: 10 }, { maxReplicaLagSeconds: 5, checkEverySeconds: 60 });
    expect(resolveChunking(merged, policyOf(merged)).throttle).toEqual({
      maxReplicaLagSeconds: 5,
      checkEverySeconds: 10,
    });
    const onlyInterval = config({ checkEverySeconds: 10 }, undefined);
    expect(resolveChunking(onlyInterval, policyOf(onlyInterval)).throttle).toBeUndefined();
  });

  it('refuses unknown throttle fields and a zero check interval', () => {
    // Assess
    expect(() => config({ maxReplicaLag: 5 }, undefined)).toThrow(/maxReplicaLag/);
    expect(() => config({ maxReplicaLagSeconds: 5, checkEverySeconds: 0 }, undefined)).toThrow();
  });

  it('carries the throttle in the execution input and sets force only when asked', () => {
    // Prepare
    const c = config({ maxReplicaLagSeconds: 2 }, undefined);

    // Act
    const scheduled = buildExecutionInput(c, 'p', 'schedule', false);
    const forced = buildExecutionInput(c, 'p', 'manual', false, { force: true });

    // Assess
    expect(scheduled.chunking.throttle).toEqual({ maxReplicaLagSeconds: 2, checkEverySeconds: 30 });
    expect(scheduled.force).toBeUndefined();
    expect(forced.force).toBe(true);
  });
});
