import { describe, expect, it } from 'vitest';
import {
  decideForeignKeys,
  describeBlockingReferences,
  type ForeignKeyReference,
} from '../../functions/core/foreign-keys.ts';
import { decideVacuum, vacuumTimeoutMs } from '../../functions/core/maintenance.ts';

const reference = (overrides: Partial<ForeignKeyReference>): ForeignKeyReference => ({
  constraint: 'readings_camera_fk',
  referencingTable: '"public"."camera_readings"',
  referencingOid: '200',
  onDelete: 'no action',
  ...overrides,
});

describe('foreign key decision', () => {
  it('blocks NO ACTION / RESTRICT references no child policy covers, and names them', () => {
    // Prepare
    const references = [
      reference({}),
      reference({
        constraint: 'alerts_fk',
        referencingTable: '"public"."alerts"',
        referencingOid: '300',
        onDelete: 'restrict',
      }),
      reference({
        constraint: 'notes_fk',
        referencingTable: '"public"."notes"',
        referencingOid: '400',
        onDelete: 'cascade',
      }),
    ];
    // Act
    const decision = decideForeignKeys('100', references, [{ name: 'readings-purge', tableOid: '200' }]);
    // Assess
    expect(decision.covered.map((r) => r.childPolicy)).toEqual(['readings-purge']);
    expect(decision.blocking.map((r) => r.constraint)).toEqual(['alerts_fk']);
    expect(decision.changedByDatabase.map((r) => r.constraint)).toEqual(['notes_fk']);
    expect(describeBlockingReferences('"public"."cameras"', '100', decision.blocking)).toMatch(
      /refusing to purge "public"."cameras": it is referenced by "public"."alerts" \(constraint alerts_fk, ON DELETE RESTRICT\).*children.*Nothing was deleted/,
    );
  });

  it('allows CASCADE / SET NULL / SET DEFAULT children and refuses a NO ACTION self-reference', () => {
    const decision = decideForeignKeys(
      '100',
      [
        reference({ onDelete: 'set null' }),
        reference({ onDelete: 'set default' }),
        reference({ constraint: 'parent_fk', referencingOid: '100' }),
      ],
      [{ name: 'self', tableOid: '100' }],
    );
    expect(decision.changedByDatabase).toHaveLength(2);
    expect(decision.blocking.map((r) => r.constraint)).toEqual(['parent_fk']);
    expect(describeBlockingReferences('t', '100', decision.blocking)).toContain('self-reference');
  });
});

describe('vacuum decision', () => {
  const options = { enabled: true, afterFraction: 0.2, timeoutMs: 600_000 };

  it.each([
    [200, 1000, { vacuum: true }],
    [199, 1000, { vacuum: false, reason: 'below-threshold' }],
    [0, 1000, { vacuum: false, reason: 'no-rows' }],
    // A stale estimate of 0 with rows deleted: vacuum (it analyzes too).
    [10, 0, { vacuum: true }],
  ])('%i rows deleted of %i: %o', (deleted, before, expected) => {
    expect(decideVacuum(options, deleted, before)).toEqual(expected);
  });

  it('does nothing when disabled, and never lets the timeout outlive the step', () => {
    expect(decideVacuum({ ...options, enabled: false }, 1000, 1000)).toEqual({
      vacuum: false,
      reason: 'disabled',
    });
    expect(vacuumTimeoutMs(options, 3_600_000)).toBe(600_000);
    expect(vacuumTimeoutMs(options, 70_000)).toBe(60_000);
    expect(vacuumTimeoutMs(options, 5_000)).toBe(0);
  });
});
