/**
 * The pure side of bounded waits: which table lock a statement asks for (so that only sessions whose locks
 * conflict with it are named), the sentence a timeout becomes, and the connection bounds a step gets.
 */
import { describe, expect, it } from 'vitest';
import {
  describeLockWait,
  type RelationLock,
  requestedLockMode,
  tupleWaitOf,
} from '../../functions/core/lock-conflicts.ts';
import { capToDeadline, timeoutsOfInput } from '../../functions/core/session-timeouts.ts';

describe('requestedLockMode', () => {
  it.each([
    [
      'SELECT avg(x) FROM (SELECT * FROM "public"."events" WHERE created_at < $1 LIMIT 100) s',
      'AccessShareLock',
    ],
    ['EXPLAIN SELECT ctid FROM "public"."events" ORDER BY created_at', 'AccessShareLock'],
    [
      'DELETE FROM "public"."events" WHERE ctid = ANY(ARRAY(SELECT ctid FROM "public"."events" LIMIT 10 FOR UPDATE SKIP LOCKED)) RETURNING *',
      'RowExclusiveLock',
    ],
    ['SELECT 1 FROM lifecycle.leases WHERE policy = $1 FOR UPDATE', 'RowShareLock'],
    ['LOCK TABLE "public"."events_2024" IN SHARE MODE', 'ShareLock'],
    ['VACUUM (ANALYZE) "public"."events"', 'ShareUpdateExclusiveLock'],
    [
      'ALTER TABLE "public"."events" DETACH PARTITION "public"."events_2024" CONCURRENTLY',
      'ShareUpdateExclusiveLock',
    ],
    ['DROP TABLE "public"."events_2024"', 'AccessExclusiveLock'],
    ["SELECT * FROM events WHERE note = 'DELETE me'", 'AccessShareLock'],
  ])('%s asks for %s', (sql, mode) => {
    expect(requestedLockMode(sql)).toBe(mode);
  });
});

const shareHolder: RelationLock = {
  pid: 11,
  mode: 'ShareLock',
  granted: true,
  relation: 'public.events',
  names: ['events'],
  applicationName: 'psql',
  state: 'active',
};

describe('describeLockWait', () => {
  it('names a holder only when its lock conflicts with what the statement asked for', () => {
    // A SHARE lock (CREATE INDEX) blocks a DELETE, not a SELECT.
    const base = { sqlstate: '55P03', elapsedMs: 2003.6, locks: [shareHolder] };
    expect(describeLockWait({ ...base, statement: 'DELETE FROM public.events WHERE id = 1' })).toBe(
      '55P03: waited 2004 ms (lock_timeout) for a lock on public.events held by pid 11 (ShareLock; application_name psql; state active)',
    );
    expect(describeLockWait({ ...base, statement: 'SELECT count(*) FROM public.events' })).toBe(
      '55P03: waited 2004 ms (lock_timeout) for a lock; its holder had let go by the time it was looked up',
    );
  });

  it('names a session queued ahead for a conflicting lock, and a partition by its parent', () => {
    const queued: RelationLock = {
      ...shareHolder,
      pid: 12,
      mode: 'AccessExclusiveLock',
      granted: false,
      relation: 'public.events_2024',
      names: ['events_2024', 'events'],
    };
    expect(
      describeLockWait({
        sqlstate: '55P03',
        elapsedMs: 300,
        locks: [queued],
        statement: 'SELECT * FROM "public"."events"',
      }),
    ).toBe(
      '55P03: waited 300 ms (lock_timeout) for a lock on public.events_2024 held by pid 12 (waiting for AccessExclusiveLock, queued ahead; application_name psql; state active)',
    );
  });

  it('reads the relation and tuple of a row-lock wait from the error context', () => {
    expect(
      tupleWaitOf('while updating tuple (0,2) in relation "camera_counters"\nSQL statement "UPDATE …"'),
    ).toEqual({ relation: 'camera_counters', tid: '(0,2)' });
    expect(tupleWaitOf('PL/pgSQL function f() line 3 at RAISE')).toBeUndefined();
  });
});

describe('session timeouts', () => {
  it('never lets a statement outlive the step that sent it', () => {
    expect(capToDeadline({ lockTimeoutMs: 2_000, statementTimeoutMs: 600_000 }, 270_000)).toEqual({
      lockTimeoutMs: 2_000,
      statementTimeoutMs: 270_000,
    });
    expect(capToDeadline({ lockTimeoutMs: 60_000, statementTimeoutMs: 600_000 }, 5_000)).toEqual({
      lockTimeoutMs: 5_000,
      statementTimeoutMs: 5_000,
    });
    expect(capToDeadline({ lockTimeoutMs: 2_000, statementTimeoutMs: 60_000 }, -10)).toEqual({
      lockTimeoutMs: 1_000,
      statementTimeoutMs: 1_000,
    });
  });

  it("reads the policy's timeouts from whatever state a failed step left", () => {
    const chunking = { initialRows: 10, lockTimeoutMs: 750, statementTimeoutMs: 9_000, pauseSeconds: 0 };
    expect(timeoutsOfInput({ runId: 'x', chunking, error: {} })).toEqual({
      lockTimeoutMs: 750,
      statementTimeoutMs: 9_000,
    });
    expect(timeoutsOfInput({ policy: { name: 'p' } })).toBeUndefined();
    expect(timeoutsOfInput({ chunking: { lockTimeoutMs: 'soon' } })).toBeUndefined();
  });
});
