/**
 * The table of hostile inputs (issue 12), everything but the filter: config files `validate` must refuse,
 * a bad table or bucket name, `verify`/`unlock` misuse and bad command lines.
 *
 * Not here, because a suite of their own covers them with the same before/after pictures: an unknown table
 * or column, a time column of another type, a missing bucket and an unreachable database
 * (archive-bad-input.test.ts), a role without DELETE (privileges.test.ts), verify/status of an unknown
 * policy, of another policy's run or on a database without a ledger (cli-reports.test.ts), unlock of a
 * policy holding no lease (unlock.test.ts), a filter failing on row values (error-redaction.test.ts).
 */
import { configOf, eventsPolicy, type HostileCase, mentions } from './hostile-filter-cases.ts';
import { HISTORY_POLICIES } from './hostile-lanes.ts';

/** A policy on public.events with one thing broken, through `run` (or `validate`). */
function configCase(options: {
  title: string;
  policy: Record<string, unknown>;
  exit: number;
  message: RegExp;
  echo?: string[];
  command?: 'run' | 'validate';
}): HostileCase {
  return {
    section: '§6 validate',
    title: options.title,
    runAs: 'in-process',
    // Nothing is eligible (P100Y) unless the case says otherwise: a run that should have been refused
    // then shows up as a ledger row, not as 400 archived events.
    config: (lane) => configOf(eventsPolicy(lane.policy, { retention: 'P100Y', ...options.policy })),
    args: (lane) => (options.command === 'validate' ? ['validate'] : ['run', '--policy', lane.policy]),
    exit: options.exit,
    message: options.message,
    echo: () => options.echo ?? [],
  };
}

const IDENTIFIER = /identifier/i;

const config: HostileCase[] = [
  configCase({
    title: 'an unknown time zone',
    policy: { schedule: 'cron(0 3 * * ? *)', timezone: 'Mars/Olympus_Mons' },
    exit: 2,
    message: /time ?zone/i,
    echo: ['Mars/Olympus_Mons'],
  }),
  configCase({
    title: 'cron(99 99 * * ? *)',
    policy: { schedule: 'cron(99 99 * * ? *)' },
    exit: 2,
    message: /out of range|minutes|hours/i,
    echo: ['cron(99 99 * * ? *)'],
  }),
  configCase({
    title: 'chunking.minRows > chunking.maxRows',
    policy: { chunking: { initialRows: 100, minRows: 5000, maxRows: 100 } },
    exit: 2,
    message: mentions('minRows', 'maxRows'),
  }),
  {
    section: '§6 validate',
    title: 'a duplicated JSON key ("retention": "P10Y" then "PT1S")',
    // A child process: the whole way from a file on disk to a refusal, with no stack trace or Node warning.
    runAs: 'child',
    // A purge: were the later key to win, the run would delete every row of public.dup_events.
    config: (lane) => `{
  "sandbox": true,
  "policies": [
    { "name": "${lane.policy}", "action": "purge", "table": "public.dup_events", "timeColumn": "created_at",
      "retention": "P10Y", "retention": "PT1S" }
  ]
}`,
    args: (lane) => ['run', '--policy', lane.policy],
    exit: 2,
    message: mentions('duplicate', 'retention'),
  },
  {
    section: '§6 validate',
    title: 'neither "database" nor "sandbox" (cdk synth would fail)',
    config: (lane) => ({ policies: [eventsPolicy(lane.policy)] }),
    args: () => ['validate'],
    // Local runs need neither (they take DATABASE_URL): validate accepts the file and warns for deployment.
    exit: 0,
    message: mentions('warning', 'database', 'sandbox'),
  },
  configCase({
    title: 'a policy on the ledger itself (lifecycle.runs)',
    policy: { table: 'lifecycle.runs', timeColumn: 'started_at', action: 'purge' },
    exit: 2,
    message: /ledger|lifecycle schema|schema lifecycle/i,
    echo: ['lifecycle.runs'],
  }),
  configCase({
    title: 'a policy on pg_catalog.pg_class',
    policy: { table: 'pg_catalog.pg_class', timeColumn: 'relname', action: 'purge' },
    exit: 2,
    message: /system (schema|catalog)/i,
    echo: ['pg_catalog.pg_class'],
  }),
  {
    section: '§6 validate',
    title: 'a config file starting with a UTF-8 BOM',
    config: (lane) => `\uFEFF${JSON.stringify(configOf(eventsPolicy(lane.policy, { retention: 'P100Y' })))}`,
    args: () => ['validate'],
    // Editors write one: it is read as the encoding mark it is, not as an invisible character of the JSON.
    exit: 0,
    message: /OK \(1 policy\)/,
    never: /\uFEFF/,
  },
  configCase({
    title: 'a config key that does not exist ("retension")',
    policy: { retension: 'P1Y' },
    exit: 2,
    message: mentions('unrecognized|unknown', 'retension'),
  }),
  configCase({
    title: 'retention garbage ("10 years")',
    policy: { retention: '10 years' },
    exit: 2,
    message: /ISO|duration/i,
    echo: ['10 years'],
  }),
  configCase({
    title: 'a zero retention (PT0S)',
    policy: { retention: 'PT0S' },
    exit: 2,
    message: /longer than zero|shorter than|minimum/i,
  }),
  configCase({
    title: 'an unknown action ("truncate")',
    policy: { action: 'truncate' },
    exit: 2,
    message: /action/i,
    echo: ['truncate'],
  }),
  configCase({
    title: 'a SQL-ish table name (public.events; drop table victim)',
    policy: { table: 'public.events; drop table public.victim' },
    exit: 2,
    message: IDENTIFIER,
    echo: ['public.events; drop table public.victim'],
  }),
  configCase({
    title: 'a SQL-ish timeColumn (created_at; drop table victim)',
    policy: { timeColumn: 'created_at; drop table public.victim' },
    exit: 2,
    message: IDENTIFIER,
    echo: ['created_at; drop table public.victim'],
  }),
  {
    section: '§6 validate',
    title: 'a hostile policy name (../../etc)',
    config: () => configOf(eventsPolicy('../../etc', { retention: 'P100Y' })),
    args: () => ['run', '--policy', '../../etc'],
    exit: 2,
    message: /lowercase letters/i,
  },
  {
    section: '§6 validate',
    title: 'a config file that is not JSON',
    runAs: 'child',
    config: () => '{ "policies": [ { "name": "x", ',
    args: () => ['validate'],
    exit: 2,
    message: /not valid JSON/i,
  },
  {
    section: '§6 validate',
    title: 'a config file that does not exist',
    args: () => ['run', '--policy', 'x', '--config', '/nonexistent/hostile.json'],
    exit: 2,
    message: /cannot read/i,
  },
];

// Not here: a non-JSON database secret (issue 12 §5). The CLI reads DATABASE_URL, never Secrets Manager;
// the Lambdas' secret parsing is covered by test/unit/database-secret.test.ts.

/** A problem only the database can tell: the run starts, refuses at Start, changes nothing. */
const catalog: HostileCase[] = [
  {
    ...configCase({
      title: 'a quoted SQL-ish table name (public."events; drop table victim")',
      policy: { table: 'public."events; drop table public.victim"' },
      exit: 1,
      message: /does not exist/i,
    }),
    section: 'catalog',
  },
];

const runtime: HostileCase[] = [
  {
    section: 'runtime',
    title: 'a bucket name that is not one (--bucket Not_A_Bucket)',
    config: (lane) => configOf(eventsPolicy(lane.policy)),
    args: (lane) => ['run', '--policy', lane.policy, '--bucket', 'Not_A_Bucket'],
    exit: 2,
    message: /valid S3 bucket name/i,
  },
];

const historyConfigFile = () => configOf(...HISTORY_POLICIES);

const verify: HostileCase[] = [
  {
    section: '§4 verify',
    title: 'verify --run that is not a run id',
    config: historyConfigFile,
    args: () => ['verify', '--policy', 'earlier', '--run', "1' OR '1'='1"],
    exit: 2,
    message: /UUID/i,
  },
  {
    section: '§3 unlock',
    title: 'unlock without --policy',
    config: historyConfigFile,
    args: () => ['unlock'],
    exit: 2,
    message: /--policy[^\n]*required/i,
  },
];

const usage: HostileCase[] = [
  ['an unknown option (--polcy)', ['run', '--polcy', 'x'], /pg-lifecycle run: unknown option '--polcy'/],
  ['an option without its value (--policy)', ['run', '--policy'], /argument missing/i],
  ['an unknown command', ['destroy'], /pg-lifecycle: unknown command 'destroy'/],
  ['run without --policy', ['run'], /--policy[^\n]*required/i],
  ['run of a policy the config does not have', ['run', '--policy', 'nope'], /no policy named "nope"/],
  ['status --limit 0', ['status', '--limit', '0'], /--limit must be/],
].map(([title, args, message], index) => ({
  section: 'CLI usage',
  title: title as string,
  // The first in a child process: commander's error, naming the command, and no stack trace.
  runAs: index === 0 ? ('child' as const) : ('in-process' as const),
  config: historyConfigFile,
  args: () => args as string[],
  exit: 2,
  message: message as RegExp,
}));

export { catalog, config, runtime, usage, verify };
