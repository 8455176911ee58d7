import { describe, expect, it } from 'vitest';
import { parseCron, previousFireTimes, schedulePeriod } from '../../functions/core/schedule-period.ts';
import { scheduleStatus } from '../../functions/reports/compliance.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function fires(expression: string, timeZone: string, now: string) {
  const period = schedulePeriod(expression, timeZone, new Date(now));
  if (period.kind !== 'known') throw new Error(`unknown: ${period.reason}`);
  return {
    periodMs: period.periodMs,
    last: period.lastFire?.toISOString(),
    previous: period.previousFire?.toISOString(),
  };
}

describe('rate schedules', () => {
  it('are N units, whatever the time zone', () => {
    expect(schedulePeriod('rate(1 hour)', 'Europe/Berlin', new Date())).toEqual({
      kind: 'known',
      periodMs: HOUR,
    });
    expect(schedulePeriod('rate(15 minutes)', 'UTC', new Date())).toMatchObject({ periodMs: 15 * 60_000 });
    expect(schedulePeriod('rate(7 days)', 'UTC', new Date())).toMatchObject({ periodMs: 7 * DAY });
  });
});

describe('cron schedules in UTC', () => {
  it('daily: the two fire times before now, a day apart', () => {
    expect(fires('cron(0 3 * * ? *)', 'UTC', '2026-11-23T12:00:00Z')).toEqual({
      periodMs: DAY,
      last: '2026-11-23T03:00:00.000Z',
      previous: '2026-11-22T03:00:00.000Z',
    });
  });

  it('counts a fire time exactly at now', () => {
    expect(fires('cron(0 3 * * ? *)', 'UTC', '2026-11-23T03:00:00Z').last).toBe('2026-11-23T03:00:00.000Z');
  });

  it('steps, ranges and lists', () => {
    expect(fires('cron(*/15 8-10 * * ? *)', 'UTC', '2026-11-23T12:00:00Z')).toMatchObject({
      periodMs: 15 * 60_000,
      last: '2026-11-23T10:45:00.000Z',
    });
    // In the morning the gap is from yesterday's last fire (10:45) to today's first (08:00).
    expect(fires('cron(*/15 8-10 * * ? *)', 'UTC', '2026-11-23T08:05:00Z').periodMs).toBe(
      21 * HOUR + 15 * 60_000,
    );
    expect([...parseCron('5/20 0,12 * * ? *').minutes]).toEqual([5, 25, 45]);
    expect([...parseCron('0 22-2 * * ? *').hours].sort((a, b) => a - b)).toEqual([0, 1, 2, 22, 23]);
  });

  it('weekdays: Friday to Monday is three days', () => {
    // 2026-11-23 is a Monday.
    expect(fires('cron(0 9 ? * MON-FRI *)', 'UTC', '2026-11-23T12:00:00Z')).toEqual({
      periodMs: 3 * DAY,
      last: '2026-11-23T09:00:00.000Z',
      previous: '2026-11-20T09:00:00.000Z',
    });
    expect(fires('cron(0 9 ? * 2-6 *)', 'UTC', '2026-11-23T12:00:00Z').periodMs).toBe(3 * DAY);
  });

  it('L, W and #', () => {
    expect(fires('cron(0 0 L * ? *)', 'UTC', '2026-11-23T12:00:00Z')).toMatchObject({
      last: '2026-10-31T00:00:00.000Z',
      previous: '2026-09-30T00:00:00.000Z',
    });
    // First Monday of the month: 2 November and 5 October 2026.
    expect(fires('cron(0 12 ? * 2#1 *)', 'UTC', '2026-11-23T12:00:00Z')).toMatchObject({
      periodMs: 28 * DAY,
      last: '2026-11-02T12:00:00.000Z',
    });
    // Last Friday: 30 October, 25 September.
    expect(fires('cron(0 0 ? * 6L *)', 'UTC', '2026-11-23T12:00:00Z')).toMatchObject({
      last: '2026-10-30T00:00:00.000Z',
      previous: '2026-09-25T00:00:00.000Z',
    });
    // 15W: 15 November 2026 is a Sunday, so Monday the 16th; 15 October is a Thursday.
    expect(fires('cron(0 0 15W * ? *)', 'UTC', '2026-11-23T12:00:00Z')).toMatchObject({
      last: '2026-11-16T00:00:00.000Z',
      previous: '2026-10-15T00:00:00.000Z',
    });
  });

  it('yearly and leap days', () => {
    expect(fires('cron(0 0 1 1 ? *)', 'UTC', '2026-11-23T12:00:00Z').periodMs).toBe(365 * DAY);
    expect(fires('cron(0 0 29 2 ? *)', 'UTC', '2026-11-23T12:00:00Z')).toMatchObject({
      last: '2024-02-29T00:00:00.000Z',
      previous: '2020-02-29T00:00:00.000Z',
    });
  });

  it('is unknown without two past fire times', () => {
    expect(schedulePeriod('cron(0 0 1 1 ? 2026)', 'UTC', new Date('2026-11-23T12:00:00Z'))).toMatchObject({
      kind: 'unknown',
      reason: expect.stringMatching(/fewer than two fire times/),
    });
    expect(schedulePeriod('cron(0 0 30 2 ? *)', 'UTC', new Date('2026-11-23T12:00:00Z')).kind).toBe(
      'unknown',
    );
    expect(schedulePeriod('at(2026-01-01T00:00:00)', 'UTC', new Date()).kind).toBe('unknown');
  });
});

describe('cron schedules in a time zone with daylight saving time', () => {
  it('reads the fields in the zone', () => {
    // 09:00 in New York in November is 14:00 UTC (EST).
    expect(fires('cron(0 9 * * ? *)', 'America/New_York', '2026-11-23T15:00:00Z').last).toBe(
      '2026-11-23T14:00:00.000Z',
    );
  });

  it('a daily fire time is 23 hours after the last one across spring forward', () => {
    // New York, 8 March 2026: 02:00 EST → 03:00 EDT. 09:00 EST = 14:00Z, 09:00 EDT = 13:00Z.
    expect(fires('cron(0 9 * * ? *)', 'America/New_York', '2026-03-08T15:00:00Z')).toEqual({
      periodMs: 23 * HOUR,
      last: '2026-03-08T13:00:00.000Z',
      previous: '2026-03-07T14:00:00.000Z',
    });
  });

  it('and 25 hours across fall back', () => {
    // Berlin, 25 October 2026: 03:00 CEST → 02:00 CET. 03:30 CEST = 01:30Z, 03:30 CET = 02:30Z.
    expect(fires('cron(30 3 * * ? *)', 'Europe/Berlin', '2026-10-25T12:00:00Z')).toEqual({
      periodMs: 25 * HOUR,
      last: '2026-10-25T02:30:00.000Z',
      previous: '2026-10-24T01:30:00.000Z',
    });
  });

  it('a local time the clocks skip does not fire', () => {
    // Berlin, 29 March 2026: 02:00 CET → 03:00 CEST, so 02:30 does not exist that day.
    expect(fires('cron(30 2 * * ? *)', 'Europe/Berlin', '2026-03-29T12:00:00Z')).toEqual({
      periodMs: DAY,
      last: '2026-03-28T01:30:00.000Z',
      previous: '2026-03-27T01:30:00.000Z',
    });
    expect(fires('cron(30 2 * * ? *)', 'Europe/Berlin', '2026-03-30T12:00:00Z')).toEqual({
      periodMs: 47 * HOUR,
      last: '2026-03-30T00:30:00.000Z',
      previous: '2026-03-28T01:30:00.000Z',
    });
  });

  it('a local time that occurs twice fires once, at its first occurrence', () => {
    // Berlin, 25 October 2026: 02:30 happens at 00:30Z (CEST) and again at 01:30Z (CET).
    const times = previousFireTimes(
      parseCron('30 2 * * ? *'),
      'Europe/Berlin',
      new Date('2026-10-25T12:00:00Z'),
      2,
    ).map((d) => d.toISOString());
    expect(times).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-24T00:30:00.000Z']);
  });
});

describe('scheduleStatus', () => {
  it('manual, known and unknown periods', () => {
    const now = new Date('2026-11-23T12:00:00Z');
    expect(scheduleStatus({ schedule: undefined, timezone: 'UTC' }, now)).toEqual({
      expression: null,
      timezone: 'UTC',
      periodSeconds: null,
    });
    expect(scheduleStatus({ schedule: 'rate(2 hours)', timezone: 'UTC' }, now)).toMatchObject({
      periodSeconds: 7200,
    });
    expect(scheduleStatus({ schedule: 'cron(0 0 1 1 ? 2020)', timezone: 'UTC' }, now)).toMatchObject({
      periodSeconds: null,
      periodUnknown: expect.any(String),
    });
  });
});
