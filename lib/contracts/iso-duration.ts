/**
 * ISO-8601 durations (`P2Y`, `P6M`, `P90D`, `PT12H`, `P1Y2M3DT4H5M6S`, `P2W`) and calendar-aware
 * subtraction that matches PostgreSQL's `timestamptz - interval` in UTC (month ends clamp: Mar 31 - P1M = Feb 29).
 */
export interface IsoDuration {
  readonly years: number;
  readonly months: number;
  readonly days: number;
  readonly hours: number;
  readonly minutes: number;
  readonly seconds: number;
  /** Rough length (30-day months, 365-day years) for sanity checks only. */
  readonly totalSecondsApprox: number;
}

const DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;

export function parseIsoDuration(text: string): IsoDuration {
  const match = DURATION.exec(text);
  if (!match || text === 'P' || text.endsWith('T')) {
    throw new Error(`"${text}" is not an ISO-8601 duration such as P2Y, P6M, P90D or PT12H`);
  }
  const n = (i: number) => Number(match[i] ?? 0);
  const years = n(1);
  const months = n(2);
  const days = n(3) * 7 + n(4);
  const hours = n(5);
  const minutes = n(6);
  const seconds = n(7);
  const totalSecondsApprox =
    years * 365 * 86_400 + months * 30 * 86_400 + days * 86_400 + hours * 3600 + minutes * 60 + seconds;
  return { years, months, days, hours, minutes, seconds, totalSecondsApprox };
}

/** `now - duration`, in UTC, as a Date. */
export function subtractDuration(now: Date, duration: IsoDuration): Date {
  const year = now.getUTCFullYear() - duration.years;
  const monthIndex = now.getUTCMonth() - duration.months;
  const target = new Date(Date.UTC(year, monthIndex, 1));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  const day = Math.min(now.getUTCDate(), lastDay);
  const shifted = Date.UTC(
    target.getUTCFullYear(),
    target.getUTCMonth(),
    day,
    now.getUTCHours(),
    now.getUTCMinutes(),
    now.getUTCSeconds(),
    now.getUTCMilliseconds(),
  );
  const ms =
    ((duration.days * 24 + duration.hours) * 60 + duration.minutes) * 60_000 + duration.seconds * 1000;
  return new Date(shifted - ms);
}
