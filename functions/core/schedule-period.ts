/**
 * When an EventBridge Scheduler expression last fired, and its period: `rate(N unit)` is N units; a
 * `cron(min hour day-of-month month day-of-week year)` read in an IANA time zone has as its period the gap
 * between the two fire times before `now` (so a daily schedule is 23 or 25 hours across a DST change, and a
 * schedule of weekdays is 3 days on a Monday). Pure: no clock, no I/O.
 *
 * Daylight saving time as Scheduler documents it: a local time the clocks skip (spring forward) does not
 * fire; a local time that occurs twice (fall back) fires once, at its first occurrence.
 *
 * Supported cron syntax: `*`, `?`, numbers and names (JAN-DEC, SUN-SAT with 1 = SUN), lists, ranges, `/`
 * increments, and the day-of-month `L`, `LW`, `15W` and day-of-week `L`, `6L`, `3#2` forms. Expressions are
 * assumed valid (lib/contracts/schedule.ts checks them when the config is read); anything this reader cannot
 * follow yields an `unknown` result with the reason, never a guess.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export type SchedulePeriod =
  | {
      readonly kind: 'known';
      readonly periodMs: number;
      /** The last fire time at or before `now` (cron only; a rate's fire times depend on its creation). */
      readonly lastFire?: Date;
      /** The fire time before that (cron only). */
      readonly previousFire?: Date;
    }
  | { readonly kind: 'unknown'; readonly reason: string };

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** Oldest year searched for earlier fire times (the year field's own minimum). */
const MIN_YEAR = 1970;

/** The period of a schedule expression at `now`, in `timeZone` (cron only; rates ignore it). */
export function schedulePeriod(expression: string, timeZone: string, now: Date): SchedulePeriod {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (rate) {
    const unit = (rate[2] as string).replace(/s$/, '');
    const unitMs = unit === 'minute' ? MINUTE_MS : unit === 'hour' ? HOUR_MS : DAY_MS;
    return { kind: 'known', periodMs: Number(rate[1]) * unitMs };
  }
  const cron = /^cron\((.*)\)$/.exec(expression.trim());
  if (!cron) return { kind: 'unknown', reason: `not a cron(...) or rate(...) expression: ${expression}` };
  let schedule: CronSchedule;
  try {
    schedule = parseCron(cron[1] ?? '');
  } catch (error) {
    return { kind: 'unknown', reason: (error as Error).message };
  }
  const [last, previous] = previousFireTimes(schedule, timeZone, now, 2);
  if (!last || !previous) {
    return {
      kind: 'unknown',
      reason: `${expression} has fewer than two fire times before ${now.toISOString()}`,
    };
  }
  return {
    kind: 'known',
    periodMs: last.getTime() - previous.getTime(),
    lastFire: last,
    previousFire: previous,
  };
}

/** A day rule beyond the plain value set: day-of-month or day-of-week as a predicate over one date. */
type DayRule = (year: number, month: number, day: number) => boolean;

export interface CronSchedule {
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly years: ReadonlySet<number> | 'any';
  /** Whether a date (month 1-12) is a fire day, from day-of-month or day-of-week (the other is `?`). */
  readonly day: DayRule;
}

class CronSyntaxError extends Error {
  override readonly name = 'CronSyntaxError';
}

function parseValue(text: string, min: number, max: number, names?: readonly string[]): number {
  let value: number;
  if (/^\d{1,4}$/.test(text)) value = Number(text);
  else {
    const index = names?.indexOf(text.toUpperCase()) ?? -1;
    if (index < 0) throw new CronSyntaxError(`cannot read "${text}"`);
    value = min + index;
  }
  if (value < min || value > max) throw new CronSyntaxError(`"${text}" is outside ${min}-${max}`);
  return value;
}

/** A comma list of `*`, `a`, `a-b`, each optionally with `/step`, as the set of its values. */
function parseList(text: string, min: number, max: number, names?: readonly string[]): Set<number> {
  const values = new Set<number>();
  for (const item of text.split(',')) {
    const [base = '', stepText, extra] = item.split('/');
    if (extra !== undefined) throw new CronSyntaxError(`"${item}" has more than one "/"`);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new CronSyntaxError(`bad increment in "${item}"`);
    let from: number;
    let to: number;
    if (base === '*') {
      from = min;
      to = max;
    } else {
      const bounds = base.split('-');
      if (bounds.length > 2) throw new CronSyntaxError(`cannot read "${item}"`);
      from = parseValue(bounds[0] as string, min, max, names);
      // `a/n` runs from a to the field's end; `a-b` (with or without /n) to b.
      to = bounds.length === 2 ? parseValue(bounds[1] as string, min, max, names) : stepText ? max : from;
    }
    if (to < from) {
      // A wrapping range (FRI-MON, 22-2): from a to the end, then from the start to b.
      for (let v = from; v <= max; v += step) values.add(v);
      const offset = (max - from + 1) % step;
      for (let v = min + (offset === 0 ? 0 : step - offset); v <= to; v += step) values.add(v);
    } else {
      for (let v = from; v <= to; v += step) values.add(v);
    }
  }
  return values;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** 1 = Sunday … 7 = Saturday, as the cron day-of-week field counts. */
function weekday(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;
}

/** The weekday (Monday-Friday) nearest to `target` within the month, as `W` reads it. */
function nearestWeekday(year: number, month: number, target: number): number | undefined {
  const last = daysInMonth(year, month);
  if (target > last) return undefined;
  const dow = weekday(year, month, target);
  if (dow === 7) return target === 1 ? 3 : target - 1; // Saturday: the Friday before, or Monday the 3rd
  if (dow === 1) return target === last ? target - 2 : target + 1; // Sunday: the Monday after, or Friday
  return target;
}

function dayOfMonthRule(text: string): DayRule {
  if (text === 'L') return (y, m, d) => d === daysInMonth(y, m);
  if (text === 'LW') return (y, m, d) => d === nearestWeekday(y, m, daysInMonth(y, m));
  const w = /^(\d{1,2})W$/.exec(text);
  if (w) {
    const target = parseValue(w[1] as string, 1, 31);
    return (y, m, d) => d === nearestWeekday(y, m, target);
  }
  const days = parseList(text, 1, 31);
  return (_y, _m, d) => days.has(d);
}

function dayOfWeekRule(text: string): DayRule {
  // `L` alone: the last day of the week, Saturday.
  if (text === 'L') return (y, m, d) => weekday(y, m, d) === 7;
  const last = /^(.+)L$/.exec(text);
  if (last) {
    const dow = parseValue(last[1] as string, 1, 7, WEEKDAYS);
    return (y, m, d) => weekday(y, m, d) === dow && d + 7 > daysInMonth(y, m);
  }
  const nth = /^(.+)#(\d)$/.exec(text);
  if (nth) {
    const dow = parseValue(nth[1] as string, 1, 7, WEEKDAYS);
    const n = Number(nth[2]);
    return (y, m, d) => weekday(y, m, d) === dow && Math.ceil(d / 7) === n;
  }
  const days = parseList(text, 1, 7, WEEKDAYS);
  return (y, m, d) => days.has(weekday(y, m, d));
}

/** The six fields of a cron body. @throws CronSyntaxError for what this reader does not follow */
export function parseCron(body: string): CronSchedule {
  const fields = body.trim().split(/\s+/);
  if (fields.length !== 6) throw new CronSyntaxError(`cron needs 6 fields, got ${fields.length}`);
  const [minutes, hours, dayOfMonth, month, dayOfWeek, year] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if ((dayOfMonth === '?') === (dayOfWeek === '?'))
    throw new CronSyntaxError('one of day-of-month or day-of-week must be "?"');
  return {
    minutes: parseList(minutes, 0, 59),
    hours: parseList(hours, 0, 23),
    months: parseList(month, 1, 12, MONTHS),
    years: year === '*' ? 'any' : parseList(year, MIN_YEAR, 2199),
    day: dayOfMonth === '?' ? dayOfWeekRule(dayOfWeek) : dayOfMonthRule(dayOfMonth),
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Offset of `timeZone` at an instant, in ms (local wall time minus UTC). */
function offsetAt(timeZone: string, instantMs: number): number {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, format);
  }
  const parts: Record<string, number> = {};
  for (const part of format.formatToParts(new Date(instantMs))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const wall = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return wall - Math.floor(instantMs / 1000) * 1000;
}

/**
 * The instant a local wall time (given as if it were UTC ms) happens in `timeZone`: undefined for a time the
 * clocks skip, the first occurrence of one they repeat.
 */
export function wallTimeToInstant(timeZone: string, wallMs: number): number | undefined {
  const offsets = new Set([offsetAt(timeZone, wallMs - DAY_MS / 2), offsetAt(timeZone, wallMs + DAY_MS / 2)]);
  const instants = [...offsets]
    .map((offset) => wallMs - offset)
    .filter((instant) => offsetAt(timeZone, instant) === wallMs - instant)
    .sort((a, b) => a - b);
  return instants[0];
}

/** Up to `count` fire times at or before `now`, newest first. */
export function previousFireTimes(
  schedule: CronSchedule,
  timeZone: string,
  now: Date,
  count: number,
): Date[] {
  const nowMs = now.getTime();
  // Local wall time of now, plus slack for the offset changing between now and a candidate.
  const horizon = nowMs + offsetAt(timeZone, nowMs) + 3 * HOUR_MS;
  const found: Date[] = [];
  const minutes = [...schedule.minutes].sort((a, b) => b - a);
  const hours = [...schedule.hours].sort((a, b) => b - a);
  const months = [...schedule.months].sort((a, b) => b - a);
  const startYear = new Date(horizon).getUTCFullYear();
  for (let year = startYear; year >= MIN_YEAR; year--) {
    if (schedule.years !== 'any' && !schedule.years.has(year)) continue;
    for (const month of months) {
      if (Date.UTC(year, month - 1, 1) > horizon) continue;
      for (let day = daysInMonth(year, month); day >= 1; day--) {
        const dayStart = Date.UTC(year, month - 1, day);
        if (dayStart > horizon || !schedule.day(year, month, day)) continue;
        for (const hour of hours) {
          for (const minute of minutes) {
            const wall = dayStart + hour * HOUR_MS + minute * MINUTE_MS;
            if (wall > horizon) continue;
            const instant = wallTimeToInstant(timeZone, wall);
            if (instant === undefined || instant > nowMs) continue;
            found.push(new Date(instant));
            if (found.length >= count) return found;
          }
        }
      }
    }
  }
  return found;
}
