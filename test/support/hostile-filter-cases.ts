/**
 * The table of hostile inputs (issue 12), filter part, and the shape of a case: a command line (and config
 * file, environment, another session's lock) that must end with a given exit code and a message naming the
 * problem, and leave the databases and the bucket byte-identical. `hostile-inputs.test.ts` runs them.
 *
 * Expected messages match the explanation, not the input: the runner removes the case's own input
 * (`echo`) from the output first, so a message that only repeats the hostile filter matches nothing.
 */
import type { Lane, LaneDatabase } from './hostile-lanes.ts';
import { holdLock } from './hostile-lanes.ts';

/** A lane as one case sees it: its target database and its own policy name. */
export interface CaseLane extends Lane {
  /** The database DATABASE_URL points at. */
  readonly db: LaneDatabase;
  /** A policy name no other case uses (leases and ledger rows of one case never meet another's). */
  readonly policy: string;
  /** A TCP port nothing listens on. */
  readonly closedPort: number;
}

export interface HostileCase {
  /** Part of the issue the case belongs to (whose fix it waits for, if it fails). */
  readonly section: string;
  readonly title: string;
  /** @default 'ledger' */
  readonly target?: 'ledger' | 'bare';
  /** Written to a file passed as `--config`: an object as JSON, a string as is. */
  readonly config?: (lane: CaseLane) => unknown;
  readonly args: (lane: CaseLane) => string[];
  /** Replaces variables of the default environment (undefined removes one). */
  readonly env?: (lane: CaseLane) => Record<string, string | undefined>;
  /** Another session holds a lock while the CLI runs; the returned function releases it. */
  readonly hold?: (lane: CaseLane) => Promise<() => Promise<void>>;
  readonly exit: number;
  /** Matched against stdout + stderr with the case's own input removed. */
  readonly message: RegExp;
  /** Must not appear anywhere in the output (row values, invisible characters). */
  readonly never?: RegExp;
  /** The input as the output may repeat it. @default the filter, when there is one */
  readonly echo?: (lane: CaseLane) => string[];
  /**
   * How long the CLI may run before it is killed (SIGKILL, like a lost Lambda). Generous: on two cores
   * shared with other test files one run has taken 60 s. @default 120_000
   */
  readonly timeoutMs?: number;
}

/** A regex requiring every part, in any order (case-insensitive). */
export function mentions(...parts: string[]): RegExp {
  return new RegExp(`^${parts.map((part) => `(?=[\\s\\S]*(?:${part}))`).join('')}`, 'i');
}

export type Command = 'plan' | 'run --dry-run' | 'run';

export const commandArgs = (command: Command, policy: string): string[] =>
  command === 'plan'
    ? ['plan', '--policy', policy]
    : ['run', '--policy', policy, ...(command === 'run --dry-run' ? ['--dry-run'] : [])];

/** An archive policy on public.events (400 rows, all past the retention: a filter is evaluated on them). */
export const eventsPolicy = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  action: 'archive',
  table: 'public.events',
  timeColumn: 'created_at',
  retention: 'P30D',
  chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
  ...extra,
});

export const configOf = (...policies: unknown[]) => ({ sandbox: true, policies });

/** One case per command: a filter on public.events. */
function filterCases(options: {
  section: string;
  title: string;
  filter: (lane: CaseLane) => string;
  commands: readonly Command[];
  exit: number;
  message: RegExp;
  never?: RegExp;
  target?: (command: Command) => 'ledger' | 'bare';
  chunking?: Record<string, number>;
  hold?: HostileCase['hold'];
  timeoutMs?: number;
}): HostileCase[] {
  return options.commands.map((command) => ({
    section: options.section,
    title: `${options.title} (${command})`,
    target: options.target?.(command) ?? 'ledger',
    config: (lane) =>
      configOf(
        eventsPolicy(lane.policy, {
          filter: options.filter(lane),
          ...(options.chunking ? { chunking: { ...eventsPolicy('x').chunking, ...options.chunking } } : {}),
        }),
      ),
    args: (lane) => commandArgs(command, lane.policy),
    exit: options.exit,
    message: options.message,
    ...(options.never ? { never: options.never } : {}),
    ...(options.hold ? { hold: options.hold } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    echo: (lane) => [options.filter(lane)],
  }));
}

const VOLATILE = 'volatile';
const dropVictim = (lane: CaseLane) => `'${lane.db.connstr}', 'DROP TABLE public.victim'`;
const ALL: readonly Command[] = ['plan', 'run --dry-run', 'run'];
const UNICODE_ESCAPE = /U&|Unicode escape|UESCAPE/i;

const filterGuard: HostileCase[] = [
  ...filterCases({
    section: '§1 filter guard',
    title: 'U&"dblink_exe\\0063"(…, \'DROP TABLE victim\') through dblink',
    filter: (lane) => `U&"dblink_exe\\0063"(${dropVictim(lane)}) IS NOT NULL`,
    commands: ALL,
    target: (command) => (command === 'plan' ? 'bare' : 'ledger'),
    exit: 2,
    message: UNICODE_ESCAPE,
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'U&"pg_terminate_backen\\0064"(pid of another session)',
    filter: (lane) => `U&"pg_terminate_backen\\0064"(${lane.db.bystander.pid})`,
    commands: ALL,
    target: (command) => (command === 'plan' ? 'bare' : 'ledger'),
    exit: 2,
    message: UNICODE_ESCAPE,
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'U&"dblink_exe!0063" UESCAPE \'!\'(…)',
    filter: (lane) => `U&"dblink_exe!0063" UESCAPE '!'(${dropVictim(lane)}) IS NOT NULL`,
    commands: ['plan'],
    exit: 2,
    message: UNICODE_ESCAPE,
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: "a U&'…' string literal",
    filter: () => `payload <> U&'\\0070ayload-1'`,
    commands: ['run'],
    exit: 2,
    message: UNICODE_ESCAPE,
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'schema-qualified pg_catalog.random()',
    filter: () => 'pg_catalog.random() < 2',
    commands: ['plan'],
    exit: 1,
    message: mentions(VOLATILE, 'random'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'quoted "nextval"(…) (would advance a sequence)',
    filter: () => `"nextval"('public.hostile_seq') > 0`,
    commands: ['run'],
    exit: 1,
    message: mentions(VOLATILE, 'nextval'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'quoted and qualified "public"."dblink_exec"(…, \'DROP TABLE victim\')',
    filter: (lane) => `"public"."dblink_exec"(${dropVictim(lane)}) IS NOT NULL`,
    commands: ['plan', 'run'],
    exit: 1,
    message: mentions(VOLATILE, 'dblink_exec'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'pg_catalog.pg_terminate_backend(pid of another session)',
    filter: (lane) => `pg_catalog.pg_terminate_backend(${lane.db.bystander.pid})`,
    commands: ['run --dry-run'],
    exit: 1,
    message: mentions(VOLATILE, 'pg_terminate_backend'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'OPERATOR(public.===) of a custom operator whose function is volatile',
    filter: () => 'id OPERATOR(public.===) id',
    commands: ['plan', 'run'],
    exit: 1,
    message: mentions(VOLATILE, '===|hostile_eq'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'the custom operator === written bare',
    filter: () => 'id === id',
    commands: ['run --dry-run'],
    exit: 1,
    message: mentions(VOLATILE, '===|hostile_eq'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'a cast (::) through a volatile cast function',
    filter: () => `id::public.hostile_mood = 'ok'`,
    commands: ['plan'],
    exit: 1,
    message: mentions(VOLATILE, 'hostile_to_mood'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'CAST(… AS …) through a volatile cast function',
    filter: () => 'CAST(id AS public.hostile_mood) IS NOT NULL',
    commands: ['run'],
    exit: 1,
    message: mentions(VOLATILE, 'hostile_to_mood'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'a volatile function called inside a subquery',
    filter: () => 'EXISTS (SELECT 1 WHERE public.hostile_touch())',
    commands: ['plan'],
    exit: 1,
    message: mentions(VOLATILE, 'hostile_touch'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'a view whose definition calls a volatile function',
    filter: () => 'id IN (SELECT id FROM public.hostile_view)',
    commands: ['plan', 'run'],
    exit: 1,
    message: mentions(VOLATILE, 'hostile_touch'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'table_to_xml (stable) reading a view whose definition calls a volatile function',
    // The view is named in a string, not in the query: no relation of the parse tree leads to it.
    filter: () => `table_to_xml('public.hostile_view', true, false, '') IS NOT NULL`,
    commands: ['plan'],
    exit: 1,
    // Not 'query' or the function's name alone: a plan that went ahead prints both in its EXPLAIN.
    message: mentions('table_to_xml|hostile_view|hostile_touch', 'volatile|not allowed|may not|must not'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'a cast to a domain whose CHECK calls a volatile function',
    filter: () => 'id::public.hostile_positive > 0',
    // The domain and row type exist only in the bare database (see hostile-lanes.ts).
    target: () => 'bare',
    commands: ['plan'],
    exit: 1,
    message: mentions(VOLATILE, 'hostile_touch'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: "a row-type literal '(5)'::hostile_row whose field is that domain (checked by record_in)",
    filter: () => `'(5)'::public.hostile_row IS NOT NULL`,
    // The domain and row type exist only in the bare database (see hostile-lanes.ts).
    target: () => 'bare',
    commands: ['plan'],
    exit: 1,
    message: mentions(VOLATILE, 'hostile_touch|hostile_row|hostile_positive'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'jsonb_populate_record (stable) filling a row type whose field is that domain',
    filter: () => `jsonb_populate_record(NULL::public.hostile_row, '{"v": 5}') IS NOT NULL`,
    // The domain and row type exist only in the bare database (see hostile-lanes.ts).
    target: () => 'bare',
    commands: ['plan'],
    exit: 1,
    message: mentions(VOLATILE, 'hostile_touch|hostile_row|hostile_positive'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'a volatile function called in attribute notation (events.hostile_flag, no parentheses)',
    filter: () => 'events.hostile_flag',
    commands: ['plan'],
    exit: 1,
    message: mentions(VOLATILE, 'hostile_flag'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'pg_sleep (would hold the run for 10 minutes per row)',
    filter: () => 'pg_catalog.pg_sleep(600) IS NOT NULL',
    commands: ['plan'],
    exit: 1,
    message: mentions(VOLATILE, 'pg_sleep'),
  }),
  ...filterCases({
    section: '§1 filter guard',
    title: 'lo_import (would create large objects)',
    filter: () => `lo_import('/etc/hostname') > 0`,
    commands: ['run'],
    exit: 1,
    message: mentions(VOLATILE, 'lo_import'),
  }),
];

/** Refused when the config is read (exit 2), whatever the command: shown through `run`. */
const filterScreen: HostileCase[] = [
  ["an E'…' escape string", `payload = E'payload-1'`, /escape string/i],
  ['a semicolon', 'true; DROP TABLE public.victim', /";"|semicolon/i],
  ['a line comment', 'id > 0 -- OR true', /comment/i],
  ['a block comment', 'id > 0 /* OR true */', /comment/i],
  ['a $1 parameter', 'id > $1', /parameter|"\$"/i],
  ['dollar quoting', 'payload <> $$x$$', /dollar|"\$"/i],
  ['a DROP statement', 'id > 0 AND NOT EXISTS (DROP TABLE public.victim)', /statement/i],
  ['an UPDATE in a subquery', `id IN (UPDATE public.victim SET note = 'x' RETURNING id)`, /statement/i],
  ['an unclosed parenthesis', '(id > 0', /unbalanced|parenthes/i],
  ['a parenthesis closing the WHERE early', 'id > 0) OR (true', /unbalanced|parenthes/i],
].flatMap(([title, filter, message]) =>
  filterCases({
    section: '§1 filter screen',
    title: `a filter with ${title}`,
    filter: () => filter as string,
    commands: ['run'],
    exit: 2,
    message: message as RegExp,
  }),
);

const lockOnEvents = (lane: CaseLane) =>
  holdLock(lane.db.url, 'LOCK TABLE public.events IN ACCESS EXCLUSIVE MODE');
const LOCK_REPORT = mentions('lock', 'pid \\d+|held by|waited');

const timeouts: HostileCase[] = [
  ...filterCases({
    section: '§2 timeouts',
    title: "the policy's table held under ACCESS EXCLUSIVE by another session",
    filter: () => 'amount >= 0',
    commands: ['run', 'plan'],
    chunking: { lockTimeoutMs: 500 },
    hold: lockOnEvents,
    exit: 1,
    message: LOCK_REPORT,
    timeoutMs: 90_000,
  }),
  ...filterCases({
    section: '§2 timeouts',
    title: 'a filter reading a table another session holds under ACCESS EXCLUSIVE',
    filter: () => 'EXISTS (SELECT 1 FROM public.victim)',
    commands: ['run'],
    chunking: { lockTimeoutMs: 500 },
    hold: (lane) => holdLock(lane.db.url, 'LOCK TABLE public.victim IN ACCESS EXCLUSIVE MODE'),
    exit: 1,
    message: LOCK_REPORT,
    timeoutMs: 90_000,
  }),
  ...filterCases({
    section: '§2 timeouts',
    title: 'a filter locking (FOR SHARE) a row another session holds FOR UPDATE',
    filter: () => 'id NOT IN (SELECT id FROM public.events WHERE id = 7 FOR SHARE)',
    commands: ['run'],
    chunking: { lockTimeoutMs: 500 },
    hold: (lane) => holdLock(lane.db.url, 'SELECT id FROM public.events WHERE id = 7 FOR UPDATE'),
    exit: 1,
    // Refused as a row lock (§1) or reported as the lock it waited for (§2): either names the lock.
    message: mentions('lock', 'FOR UPDATE|FOR SHARE|held by|waited'),
    timeoutMs: 90_000,
  }),
];

const redaction: HostileCase[] = filterCases({
  section: '§5 redaction',
  title: 'a filter failing on row values (payload::int)',
  filter: () => 'payload::int > 0',
  commands: ['run', 'plan'],
  exit: 1,
  message: /invalid input syntax|22P02/i,
  // The rows' payloads are 'payload-<id>': none may reach the output.
  never: /payload-\d/,
});

export { filterGuard, filterScreen, redaction, timeouts };
