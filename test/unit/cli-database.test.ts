/**
 * A database the CLI cannot reach is one message that says where it tried (host:port, database, user), which
 * variables chose that, and what to check — once, not once per policy, and never the password. Port 1 on
 * 127.0.0.1 refuses at once: no server and no network are needed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeTarget, unreachableMessage } from '../../bin/cli/database-target.ts';

const UNREACHABLE = 'postgres://u:hunter2@127.0.0.1:1/db';

/** `main(args)` with stdout and stderr captured. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
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

const purge = (name: string) => ({
  name,
  table: `public.${name.replaceAll('-', '_')}`,
  action: 'purge',
  timeColumn: 'created_at',
  retention: 'P1Y',
});
const dir = mkdtempSync(join(tmpdir(), 'pgl-cli-db-'));
const configFile = join(dir, 'three.json');
writeFileSync(
  configFile,
  JSON.stringify({ sandbox: true, policies: [purge('logs-a'), purge('logs-b'), purge('logs-c')] }),
);

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('an unreachable database', () => {
  it.each([
    ['plan of three policies', ['plan', '--config', configFile]],
    ['plan --json', ['plan', '--config', configFile, '--json']],
    ['run', ['run', '--config', configFile, '--policy', 'logs-b']],
    ['migrate', ['migrate']],
    ['report', ['report', '--config', configFile]],
  ])(
    '%s: exit 1 after one message naming host, port, database, user and DATABASE_URL',
    async (_title, args) => {
      // Prepare
      vi.stubEnv('DATABASE_URL', UNREACHABLE);

      // Act
      const { code, stdout, stderr } = await cli(args);

      // Assess
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr.match(/cannot connect/g)).toHaveLength(1);
      expect(stderr).toContain(
        `pg-lifecycle ${args[0]}: cannot connect to PostgreSQL at 127.0.0.1:1, database "db" as user "u" ` +
          '(set by DATABASE_URL): connection refused (ECONNREFUSED)',
      );
      expect(stderr).toMatch(/check that PostgreSQL runs there and listens on that port/);
      expect(stderr).not.toMatch(/FAILED|TransientDatabaseError|hunter2/);
    },
  );

  it('names the PG* variables that chose the target, and the defaults for the rest', () => {
    vi.stubEnv('DATABASE_URL', '');
    vi.stubEnv('PGHOST', 'db.internal');
    vi.stubEnv('PGPORT', '6543');
    vi.stubEnv('PGDATABASE', '');
    vi.stubEnv('PGUSER', 'ops');
    expect(describeTarget({})).toBe(
      'db.internal:6543, database "ops" as user "ops" (set by PGHOST, PGPORT, PGUSER, the rest defaults)',
    );
  });

  it('says when nothing was set, and names a Unix socket as such', () => {
    for (const name of ['DATABASE_URL', 'PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER']) vi.stubEnv(name, '');
    expect(describeTarget({})).toMatch(
      /^localhost:5432, .*\(defaults: neither DATABASE_URL nor PGHOST\/PGPORT\/PGDATABASE\/PGUSER is set\)$/,
    );
    expect(describeTarget({ connectionString: 'postgres:///app?host=/var/run/postgresql' })).toMatch(
      /^socket \/var\/run\/postgresql\/\.s\.PGSQL\.5432, database "app"/,
    );
  });

  it.each([
    [{ code: 'ENOTFOUND' }, /host name not found \(ENOTFOUND\)\n {2}check the host name/],
    [
      { code: '28P01', message: 'password authentication failed for user "u"' },
      /login refused \(28P01\)[\s\S]*pg_hba/,
    ],
    [{ code: '3D000', message: 'database "db" does not exist' }, /no such database \(3D000\)/],
    [new Error('Connection terminated unexpectedly'), /the server closed the connection[\s\S]*SSL/],
  ])('explains %j', (error, message) => {
    vi.stubEnv('DATABASE_URL', UNREACHABLE);
    const text = unreachableMessage(error, { connectionString: UNREACHABLE });
    expect(text).toMatch(message);
    expect(text).not.toContain('hunter2');
  });

  it('takes a connect that ran out its time for a timeout, whatever pg called it', () => {
    const text = unreachableMessage(new Error('Connection terminated unexpectedly'), {}, true);
    expect(text).toMatch(/no answer within 10 s\n {2}check that no firewall or security group/);
  });
});
