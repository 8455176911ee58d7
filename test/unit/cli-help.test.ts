/**
 * The command line itself (bin/cli/program.ts on commander): each command's help shows its own options and
 * no other command's, `help <cmd>` is the same text, and what commander refuses — an unknown option or
 * command, a missing value, an option of another command — exits 2 naming the command, before any I/O.
 */
import { describe, expect, it, vi } from 'vitest';

interface CliOutput {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `main(args)` in this process, with stdout and stderr captured. */
async function cli(args: string[]): Promise<CliOutput> {
  const out: string[] = [];
  const err: string[] = [];
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0),
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0),
  ];
  try {
    const { main } = await import('../../bin/cli/main.ts');
    return { code: await main(args), stdout: out.join(''), stderr: err.join('') };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

/** Each command's help: options it must list, and options of other commands it must not. */
const HELP: Array<[string[], string[], string[]]> = [
  [['validate'], ['--config'], ['--policy', '--json']],
  [['schema'], ['--out', 'lifecycle.schema.json'], ['--policy', '--json']],
  [['run'], ['--policy', '--bucket', '--dry-run', '--force', '--json', '--verbose'], ['--tier', '--limit']],
  [['plan'], ['--policy', '--force', '--json'], ['--bucket', '--dry-run', '--tier']],
  [['start'], ['--policy', '--state-machine-arn', '--dry-run', '--json'], ['--bucket', '--limit']],
  [['status'], ['--policy', '--state-machine-arn', '--limit', '"10"', '--json'], ['--bucket', '--force']],
  [['verify'], ['--policy', '--bucket', '--run', '--backup', '--json'], ['--mode', '--force']],
  [
    ['backups', 'list'],
    ['--policy', '--bucket', '--json'],
    ['--mode', '--backup'],
  ],
  [
    ['restore'],
    ['--backup', '--mode', '--table', '--into-schema', '--if-exists', '--json'],
    ['--tier', '--dry-run'],
  ],
  [['drill'], ['--policy', '--bucket', '--json'], ['--mode', '--table']],
  [
    ['restore-archive'],
    ['--from', '--to', '--where', '--into', '--allow-no-key', '--tier', '--json'],
    ['--mode', '--dry-run', '--into-schema'],
  ],
  [
    ['subject', 'request'],
    ['--erase', '--export', '--policy', '--json'],
    ['--presign', '--bucket'],
  ],
  [
    ['subject', 'status'],
    ['--policy', '--presign', '--json'],
    ['--erase', '--bucket'],
  ],
  [
    ['subject', 'process'],
    ['--policy', '--bucket', '--json'],
    ['--erase', '--presign'],
  ],
  [['subject', 'retry'], ['<request-id>'], ['--json', '--policy']],
  [['report'], ['--policy', '--json'], ['--bucket', '--force']],
  [['unlock'], ['--policy', '--force', '--reason', '--json'], ['--bucket', '--dry-run']],
  [['migrate'], ['--config'], ['--policy', '--json']],
];

describe('pg-lifecycle <command> --help', () => {
  it.each(HELP)('%j --help: exit 0, its own options, with an example', async (command, own, others) => {
    // Act
    const { code, stdout, stderr } = await cli([...command, '--help']);

    // Assess
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toContain(`Usage: pg-lifecycle ${command.join(' ')}`);
    for (const option of own) expect(stdout).toContain(option);
    for (const option of others) expect(stdout).not.toContain(option);
    expect(stdout).toMatch(/Examples?:\n {2}pg-lifecycle|Examples?:\n {2}DATABASE_URL=/);
  });

  it('help <command> prints the same text as <command> --help', async () => {
    const viaHelp = await cli(['help', 'run']);
    const viaOption = await cli(['run', '--help']);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(viaOption.stdout);
    const nested = await cli(['subject', 'help', 'process']);
    expect(nested.code).toBe(0);
    expect(nested.stdout).toBe((await cli(['subject', 'process', '--help'])).stdout);
  });

  it('--help lists every command with a line each, then the environment and the exit codes', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    for (const command of [
      'validate',
      'schema',
      'run',
      'plan',
      'start',
      'status',
      'verify',
      'backups',
      'restore',
      'drill',
      'restore-archive',
      'subject',
      'report',
      'unlock',
      'migrate',
    ])
      expect(stdout).toMatch(new RegExp(`\\n {2}${command}( \\[options\\])? +[A-Z]`));
    expect(stdout).toMatch(/Environment\n {2}DATABASE_URL or PG\*/);
    expect(stdout).toMatch(
      /Exit codes\n {2}0 {2}success\n {2}1 .*\n(.*\n)* {2}2 .*\n(.*\n)* {2}3 {2}restore-archive/,
    );
  });

  it('without a command, or a group without its subcommand, shows the help on stderr and exits 2', async () => {
    for (const args of [[], ['subject'], ['backups']]) {
      const { code, stdout, stderr } = await cli(args);
      expect(code, JSON.stringify(args)).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toContain(`Usage: pg-lifecycle ${args.join(' ')}`.trimEnd());
    }
  });
});

describe('pg-lifecycle usage errors', () => {
  it.each([
    [
      'an unknown option, with the nearest one',
      ['run', '--polcy', 'x'],
      "pg-lifecycle run: unknown option '--polcy'\n(Did you mean --policy?)\nsee pg-lifecycle run --help",
    ],
    [
      'an option of another command (restore-archive’s --tier on run)',
      ['run', '--policy', 'x', '--tier', 'Bulk'],
      "pg-lifecycle run: unknown option '--tier'\nsee pg-lifecycle run --help",
    ],
    [
      'an option of another command (run’s --dry-run on plan)',
      ['plan', '--dry-run'],
      "pg-lifecycle plan: unknown option '--dry-run'",
    ],
    [
      'an option of another subcommand (status’s --presign on subject request)',
      ['subject', 'request', '--erase', '1', '--presign', '60'],
      "pg-lifecycle subject request: unknown option '--presign'",
    ],
    [
      'an option without its value',
      ['run', '--policy'],
      "pg-lifecycle run: option '--policy <name>' argument missing\nsee pg-lifecycle run --help",
    ],
    ['an unknown command', ['destroy'], "pg-lifecycle: unknown command 'destroy'\n"],
    [
      'an unknown subcommand, with the nearest one',
      ['backups', 'lst'],
      "pg-lifecycle backups: unknown command 'lst'\n(Did you mean list?)\nsee pg-lifecycle backups --help",
    ],
    [
      'an argument a command does not take',
      ['report', 'now'],
      "pg-lifecycle report: too many arguments for 'report'",
    ],
    [
      'a missing argument',
      ['subject', 'retry'],
      "pg-lifecycle subject retry: missing required argument 'request-id'",
    ],
  ])('%s exits 2 and names the command', async (_title, args, message) => {
    // Act: --config first, as scripts put it; nothing is read before the command line is known good.
    const { code, stdout, stderr } = await cli(['--config', '/nonexistent/lifecycle.config.json', ...args]);

    // Assess
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(message);
    expect(stderr).not.toMatch(/cannot read/);
  });

  it('takes --config before or after the command', async () => {
    const before = await cli(['--config', '/nonexistent/a.json', 'validate']);
    const after = await cli(['validate', '--config', '/nonexistent/a.json']);
    expect(before.code).toBe(2);
    expect(before.stderr).toMatch(/^\/nonexistent\/a\.json: cannot read/);
    expect(after).toEqual(before);
  });
});
