/**
 * Cursors as the ledger and step inputs hold them: typed ones, and the bare arrays the release before kinds
 * wrote (a run it started resumes on this code, reading its cursor as what it was).
 */
import { describe, expect, it } from 'vitest';
import { RunStateSchema } from '../../lib/contracts/payloads.ts';
import { StoredWorkCursorSchema, WorkCursorSchema } from '../../lib/contracts/work-cursor.ts';

describe('stored work cursors', () => {
  it.each([
    // A purge window's end: every eligible row before it is done.
    [['2026-01-01 00:00:00+00'], { kind: 'window', end: '2026-01-01 00:00:00+00' }],
    // A purge or archive keyset: time, then the key columns.
    [['2026-01-01 00:00:00+00', '42'], { kind: 'keyset', values: ['2026-01-01 00:00:00+00', '42'] }],
    // An archive keyset on a table without a key: time, tableoid, ctid.
    [
      ['2026-01-01 00:00:00+00', '16384', '(0,7)'],
      { kind: 'keyset', values: ['2026-01-01 00:00:00+00', '16384', '(0,7)'] },
    ],
    // A NULL key value stays NULL.
    [['2026-01-01 00:00:00+00', null], { kind: 'keyset', values: ['2026-01-01 00:00:00+00', null] }],
  ])('reads the earlier release’s %j as %j', (stored, expected) => {
    expect(StoredWorkCursorSchema.parse(stored)).toEqual(expected);
  });

  it('reads typed cursors unchanged', () => {
    const cursors = [
      { kind: 'window', end: '2026-01-01' },
      { kind: 'keyset', values: ['2026-01-01', '1'] },
    ];
    for (const cursor of cursors) expect(StoredWorkCursorSchema.parse(cursor)).toEqual(cursor);
  });

  it.each([
    [[]],
    [[null]],
    [{ kind: 'keyset', values: [] }],
    [{ kind: 'window' }],
    [{ kind: 'subject', key: 'x' }],
    ['2026-01-01'],
  ])('refuses %j, which no release wrote', (stored) => {
    expect(StoredWorkCursorSchema.safeParse(stored).success).toBe(false);
  });

  it('writes only typed cursors', () => {
    expect(WorkCursorSchema.safeParse(['2026-01-01']).success).toBe(false);
  });

  it('takes a run state from a step of the earlier release, its cursor a bare array', () => {
    const state = RunStateSchema.parse({
      runId: '00000000-0000-4000-8000-000000000001',
      policy: {
        name: 'p',
        action: 'purge',
        table: 't',
        timeColumn: 'created_at',
        retention: 'P30D',
      },
      chunking: {
        initialRows: 10,
        minRows: 1,
        maxRows: 100,
        targetTransactionMs: 500,
        lockTimeoutMs: 1000,
        statementTimeoutMs: 10000,
        pauseSeconds: 0,
        maxChunkBytes: 1_000_000,
      },
      dryRun: false,
      cutoff: '2026-01-01T00:00:00.000000Z',
      cursor: ['2025-12-01 00:00:00+00'],
      batchRows: 10,
      done: false,
      iterations: 0,
      generation: 1,
      totals: { rows: 0, objects: 0, bytes: 0, chunks: 0 },
    });
    expect(state.cursor).toEqual({ kind: 'window', end: '2025-12-01 00:00:00+00' });
  });
});
