/**
 * The table of hostile inputs (issue 12), filter part, and the shape of a case: a command line (and config
 * file, environment, another session's lock) that must end with a given exit code and a message naming the
 * problem, and leave the databases and the bucket byte-identical. `hostile-inputs.test.ts` runs them.
 *
 * Expected messages match the explanation, not the input: the runner removes the case's own input
 * (`echo`) from the output first, so a message that only repeats the hostile filter matches nothing.
 *
 * Each filter goes through one command, `run`: `plan` is the same run with dryRun, and the filter guard
 * runs at Start before anything a dry run does differently; Unicode escapes are refused while the config
 * is read, whatever the command. Every way of spelling a volatile call is refused in-process by
 * test/integration/filter-guard.test.ts; here a few go end to end through the CLI.
 */
import type { Lane, LaneDatabase } from './hostile-lanes.ts';
import { holdLock } from './hostile-lanes.ts';

/** A lane as one case sees it: its target database and its own policy name. */
export interface CaseLane extends Lane {
  /** The database DATABASE_URL points at. */
  readonly db: LaneDatabase;
  /** A policy name no other case uses (leases and ledger rows of one case never meet another's). */
  readonly policy: string;
}

export interface HostileCase {
  /** Part of the issue the case belongs to (whose fix it waits for, if it fails). */
  readonly section: string;
  readonly title: string;
  /**
   * `child`: a real process (`node --import tsx bin/pg-lifecycle.ts`), for what only a process shows: a
   * stack trace or Node warning it prints, backends it leaves, the whole path from the command line to
   * Start. `in-process`: `main()` of bin/cli/main.ts in the test process (the same code after argv, in a
   * fraction of the time); such cases take no `env`. @default 'in-process'
   */
  readonly runAs?: 'child' | 'in-process';
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
   * How long a child process may run before it is killed (SIGKILL, like a lost Lambda). Generous: on two cores
   * shared with other test files one run has taken 60 s. @default 120_000
   */
  readonly timeoutMs?: number;
}

/** A regex requiring every part, in any order (case-insensitive). */
export function mentions(...parts: string[]): RegExp {
  return new RegExp(`^${parts.map((part) => `(?=[\\s\\S]*(?:${part}))`).join('')}`, 'i');
}

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

/** `run` of a policy on public.events with a filter. */
function filterCase(options: {
  section: string;
  title: string;
  filter: (lane: CaseLane) => string;
  exit: number;
  message: RegExp;
  runAs?: HostileCase['runAs'];
  target?: HostileCase['target'];
  chunking?: Record<string, number>;
  hold?: HostileCase['hold'];
  timeoutMs?: number;
}): HostileCase {
  return {
    section: options.section,
    title: options.title,
    runAs: options.runAs ?? 'in-process',
    target: options.target ?? 'ledger',
    config: (lane) =>
      configOf(
        eventsPolicy(lane.policy, {
          filter: options.filter(lane),
          ...(options.chunking ? { chunking: { ...eventsPolicy('x').chunking, ...options.chunking } } : {}),
        }),
      ),
    args: (lane) => ['run', '--policy', lane.policy],
    exit: options.exit,
    message: options.message,
    ...(options.hold ? { hold: options.hold } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    echo: (lane) => [options.filter(lane)],
  };
}

const VOLATILE = 'volatile';
const dropVictim = (lane: CaseLane) => `'${lane.db.connstr}', 'DROP TABLE public.victim'`;
const UNICODE_ESCAPE = /U&|Unicode escape|UESCAPE/i;

const filterGuard: HostileCase[] = [
  filterCase({
    section: '§1 filter guard',
    title: 'quoted and qualified "public"."dblink_exec"(…, \'DROP TABLE victim\')',
    filter: (lane) => `"public"."dblink_exec"(${dropVictim(lane)}) IS NOT NULL`,
    runAs: 'child',
    exit: 1,
    message: mentions(VOLATILE, 'dblink_exec'),
  }),
  filterCase({
    section: '§1 filter guard',
    title:
      "a row-type literal '(5)'::hostile_row whose field is a domain with a volatile CHECK (bare database)",
    filter: () => `'(5)'::public.hostile_row IS NOT NULL`,
    // The domain and row type exist only in the bare database (see hostile-lanes.ts), which must also stay
    // without a ledger: the guard refuses before Start applies the migrations.
    target: 'bare',
    runAs: 'child',
    exit: 1,
    message: mentions(VOLATILE, 'hostile_touch|hostile_row|hostile_positive'),
  }),
  filterCase({
    section: '§1 filter guard',
    title: 'U&"dblink_exe\\0063"(…, \'DROP TABLE victim\') through dblink',
    filter: (lane) => `U&"dblink_exe\\0063"(${dropVictim(lane)}) IS NOT NULL`,
    runAs: 'child',
    exit: 2,
    message: UNICODE_ESCAPE,
  }),
  filterCase({
    section: '§1 filter guard',
    title: 'U&"pg_terminate_backen\\0064"(pid of another session)',
    filter: (lane) => `U&"pg_terminate_backen\\0064"(${lane.db.bystander.pid})`,
    exit: 2,
    message: UNICODE_ESCAPE,
  }),
  filterCase({
    section: '§1 filter guard',
    title: 'U&"dblink_exe!0063" UESCAPE \'!\'(…)',
    filter: (lane) => `U&"dblink_exe!0063" UESCAPE '!'(${dropVictim(lane)}) IS NOT NULL`,
    exit: 2,
    message: UNICODE_ESCAPE,
  }),
  filterCase({
    section: '§1 filter guard',
    title: "a U&'…' string literal",
    filter: () => `payload <> U&'\\0070ayload-1'`,
    exit: 2,
    message: UNICODE_ESCAPE,
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
].map(([title, filter, message]) =>
  filterCase({
    section: '§1 filter screen',
    title: `a filter with ${title}`,
    filter: () => filter as string,
    exit: 2,
    message: message as RegExp,
  }),
);

/**
 * One lock case, in a child process: what it checks is that the process leaves no backend waiting on the
 * lock. Which lock a run waited for, and how long, is test/integration/lock-timeouts.test.ts.
 */
const timeouts: HostileCase[] = [
  filterCase({
    section: '§2 timeouts',
    title: "the policy's table held under ACCESS EXCLUSIVE by another session",
    filter: () => 'amount >= 0',
    runAs: 'child',
    chunking: { lockTimeoutMs: 500 },
    hold: (lane) => holdLock(lane.db.url, 'LOCK TABLE public.events IN ACCESS EXCLUSIVE MODE'),
    exit: 1,
    message: mentions('lock', 'pid \\d+|held by|waited'),
    timeoutMs: 90_000,
  }),
];

export { filterGuard, filterScreen, timeouts };
