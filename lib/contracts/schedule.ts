/**
 * EventBridge Scheduler expressions and time zones, checked field by field when the config is read: a
 * schedule CloudFormation would reject (`cron(99 99 * * ? *)`) or a time zone Scheduler does not know
 * otherwise fails only at `cdk deploy`, long after `validate` said OK.
 *
 * Syntax: https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
 */
import { z } from 'zod';

interface CronField {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** Names accepted for values (JAN-DEC, SUN-SAT), in order from `min`. */
  readonly names?: readonly string[];
  /** Whether `/` increments are allowed (not in day-of-week). */
  readonly steps: boolean;
  /** The wildcards Scheduler takes in this field, for messages. */
  readonly wildcards: string;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const BASIC = ', - * /';
const MINUTES: CronField = { name: 'minutes', min: 0, max: 59, steps: true, wildcards: BASIC };
const HOURS: CronField = { name: 'hours', min: 0, max: 23, steps: true, wildcards: BASIC };
const DAY_OF_MONTH: CronField = {
  name: 'day-of-month',
  min: 1,
  max: 31,
  steps: true,
  wildcards: ', - * ? / L W',
};
const MONTH: CronField = { name: 'month', min: 1, max: 12, names: MONTHS, steps: true, wildcards: BASIC };
const DAY_OF_WEEK: CronField = {
  name: 'day-of-week',
  min: 1,
  max: 7,
  names: WEEKDAYS,
  steps: false,
  wildcards: ', - * ? L #',
};
const YEAR: CronField = { name: 'year', min: 1970, max: 2199, steps: true, wildcards: BASIC };

/** Describes a value's range, e.g. `0-59` or `1-12 or JAN-DEC`. */
function describeRange(field: CronField): string {
  const names = field.names ? ` or ${field.names[0]}-${field.names[field.names.length - 1]}` : '';
  return `${field.min}-${field.max}${names}`;
}

/** One value: a number in range or (month, day-of-week) its three-letter name; undefined when invalid. */
function parseValue(text: string, field: CronField): number | undefined {
  if (/^\d{1,4}$/.test(text)) {
    const value = Number(text);
    return value >= field.min && value <= field.max ? value : undefined;
  }
  const index = field.names?.indexOf(text.toUpperCase()) ?? -1;
  return index >= 0 ? field.min + index : undefined;
}

/** A comma list of items `*`, `a`, `a-b`, each optionally followed by an increment `/n` (`,` `-` `*` `/`). */
function listProblem(text: string, field: CronField): string | undefined {
  for (const item of text.split(',')) {
    const [base = '', step, extra] = item.split('/');
    if (extra !== undefined) return `${field.name} "${item}" has more than one "/"`;
    if (step !== undefined) {
      if (!field.steps) return `${field.name} does not take "/" increments`;
      // An increment as long as the field's span never repeats (*/60 in minutes); the cron parser refuses it.
      const largest = field.min === 0 ? field.max : field.max - field.min + 1;
      if (!/^\d{1,4}$/.test(step) || Number(step) < 1 || Number(step) > largest) {
        return `${field.name} increment "${step}" in "${item}" must be 1-${largest}`;
      }
    }
    if (base === '*') continue;
    const bounds = base.split('-');
    if (bounds.length > 2 || bounds.some((bound) => parseValue(bound, field) === undefined)) {
      return `${field.name} "${item}" is out of range (${describeRange(field)}, with ${field.wildcards})`;
    }
  }
  return undefined;
}

function dayOfMonthProblem(text: string): string | undefined {
  if (text === '?' || text === 'L' || text === 'LW') return undefined;
  const weekday = /^(\d{1,2})W$/.exec(text);
  if (weekday) {
    return parseValue(weekday[1] as string, DAY_OF_MONTH) === undefined
      ? `day-of-month "${text}" is out of range (1W-31W)`
      : undefined;
  }
  if (/[?LW]/.test(text)) return `day-of-month "${text}": ?, L and W stand alone (?, L, LW, 15W)`;
  return listProblem(text, DAY_OF_MONTH);
}

function dayOfWeekProblem(text: string): string | undefined {
  if (text === '?' || text === 'L') return undefined;
  const last = /^([^#L]+)L$/.exec(text);
  if (last) {
    return parseValue(last[1] as string, DAY_OF_WEEK) === undefined
      ? `day-of-week "${text}" is out of range (1L-7L or SUNL-SATL: the last such day of the month)`
      : undefined;
  }
  const nth = /^([^#]+)#(\d+)$/.exec(text);
  if (nth) {
    if (parseValue(nth[1] as string, DAY_OF_WEEK) === undefined)
      return `day-of-week "${text}" is out of range (1-7 or SUN-SAT before #)`;
    const n = Number(nth[2]);
    return n >= 1 && n <= 5 ? undefined : `day-of-week "${text}": the instance after # must be 1-5`;
  }
  if (/[?L#]/.test(text)) {
    return `day-of-week "${text}": ?, L and # stand alone (?, L, 6L, 3#2; one # expression only)`;
  }
  return listProblem(text, DAY_OF_WEEK);
}

function cronProblem(body: string): string | undefined {
  const fields = body.trim().split(/\s+/);
  if (fields.length !== 6) {
    return `cron needs 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`;
  }
  const [minutes, hours, dayOfMonth, month, dayOfWeek, year] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
    return 'cron: one of day-of-month or day-of-week must be "?", not both';
  }
  const problem =
    listProblem(minutes, MINUTES) ??
    listProblem(hours, HOURS) ??
    dayOfMonthProblem(dayOfMonth) ??
    listProblem(month, MONTH) ??
    dayOfWeekProblem(dayOfWeek) ??
    listProblem(year, YEAR);
  return problem === undefined ? undefined : `cron: ${problem}`;
}

function rateProblem(body: string): string | undefined {
  const match = /^(\d+) (minute|minutes|hour|hours|day|days)$/.exec(body);
  if (!match) return 'rate needs "rate(N minutes|hours|days)", N a whole number';
  const value = Number(match[1]);
  const unit = match[2] as string;
  if (!Number.isSafeInteger(value) || value < 1 || match[1]?.startsWith('0')) {
    return `rate value "${match[1]}" must be a whole number from 1 up, without leading zeros`;
  }
  // Scheduler's documented rule: rate(1 hours) and rate(5 hour) are invalid.
  const plural = unit.endsWith('s');
  if (value === 1 && plural) return `write rate(1 ${unit.slice(0, -1)}) (singular unit for 1)`;
  if (value > 1 && !plural) return `write rate(${value} ${unit}s) (plural unit above 1)`;
  return undefined;
}

/** Why a schedule expression is refused, or undefined when EventBridge Scheduler takes it. */
export function scheduleExpressionProblem(expression: string): string | undefined {
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (cron) return cronProblem(cron[1] ?? '');
  const rate = /^rate\((.*)\)$/.exec(expression);
  if (rate) return rateProblem(rate[1] ?? '');
  return 'must be "cron(...)" or "rate(N minutes|hours|days)"';
}

/**
 * EventBridge Scheduler expressions: `cron(min hour dom month dow year)` or `rate(n unit)`, each field
 * in its range with the wildcards Scheduler allows there.
 */
export const ScheduleSchema = z.string().superRefine((value, ctx) => {
  const problem = scheduleExpressionProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * Why a time zone is refused, or undefined for an IANA name (canonical or alias: UTC, Etc/UTC,
 * Europe/Berlin, US/Pacific). Intl knows the names but matches them case-insensitively and may accept
 * offsets; Scheduler wants the name as IANA spells it.
 */
export function timeZoneProblem(name: string): string | undefined {
  const unknown = `unknown time zone "${name}" (an IANA name such as UTC, Europe/Berlin or America/New_York)`;
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return unknown;
  }
  // Same name in another case (utc, Europe/BERLIN): Intl accepts it, Scheduler does not.
  if (resolved !== name && resolved.toLowerCase() === name.toLowerCase()) {
    return `unknown time zone "${name}" (did you mean ${resolved}?)`;
  }
  // IANA names are Area/Location words (letters, digits, _ - +), each part starting with a capital; this
  // also refuses the offsets (+01:00) newer Intl versions take.
  if (!/^[A-Z][A-Za-z0-9_+-]*(?:\/[A-Z][A-Za-z0-9_+-]*)*$/.test(name)) return unknown;
  return undefined;
}

/** IANA time zone a cron schedule is read in. */
export const TimeZoneSchema = z.string().superRefine((value, ctx) => {
  const problem = timeZoneProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
