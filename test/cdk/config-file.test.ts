import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { main } from '../../bin/cli/main.ts';
import { buildApp } from '../../lib/app.ts';
import {
  buildConfigJsonSchema,
  ConfigError,
  deploymentIssues,
  formatZodIssues,
  loadConfigFile,
  parseConfig,
  writeConfigJsonSchema,
} from '../../lib/config-file.ts';
import { ExecutionInputSchema } from '../../lib/contracts/payloads.ts';
import { buildExecutionInput, UnknownPolicyError } from '../../lib/execution-input.ts';
import { FIXTURE_PATH, fixtureConfig } from './synth.ts';

const dir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const validPolicy = {
  name: 'orders-archive',
  action: 'archive',
  table: 'orders',
  timeColumn: 'created_at',
  retention: 'P2Y',
};

describe('loadConfigFile', () => {
  it('returns the validated config with defaults applied', () => {
    // Prepare / Act
    const config = loadConfigFile(FIXTURE_PATH);

    // Assess
    expect(config.policies.map((policy) => policy.name)).toEqual([
      'orders-archive',
      'events-archive',
      'sessions-purge',
      'manual-purge',
      'paused-purge',
    ]);
    expect(config.policies[2]?.timezone).toBe('UTC');
    expect(config.sandbox).toBe(false);
  });

  it('lists every issue with the file name and a dotted/indexed path', () => {
    // Prepare
    const path = writeConfig('bad.json', {
      sandbox: true,
      policies: [
        { ...validPolicy, retention: '2 years' },
        { ...validPolicy, name: 'Bad Name', table: 'events', schedule: '0 2 * * *' },
      ],
    });

    // Act
    const error = (() => {
      try {
        loadConfigFile(path);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.name).toBe('ConfigError');
    expect(configError.message).toContain(
      `${path}: policies[0].retention: "2 years" is not an ISO-8601 duration such as P2Y`,
    );
    expect(configError.message).toMatch(new RegExp(`${path}: policies\\[1\\]\\.name: must be lowercase`));
    expect(configError.message).toContain(`${path}: policies[1].schedule: must be "cron(...)"`);
    expect(configError.issues).toHaveLength(3);
  });

  it('reports unreadable files and invalid JSON as ConfigError', () => {
    // Prepare
    const notJson = writeConfig('not-json.json', '{ "policies": [ }');
    const missing = join(dir, 'missing.json');

    // Act / Assess
    expect(() => loadConfigFile(notJson)).toThrow(new RegExp(`^${notJson}: is not valid JSON`));
    expect(() => loadConfigFile(missing)).toThrow(new RegExp(`^${missing}: cannot read the file`));
  });
});

describe('formatZodIssues', () => {
  it('joins keys with dots and indexes with brackets; the root is (root)', () => {
    // Prepare
    const schema = z.object({ a: z.array(z.object({ b: z.string() })) }).refine(() => false, 'whole thing');

    // Act
    const result = schema.safeParse({ a: [{ b: 'x' }, { b: 1 }] });

    // Assess
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(formatZodIssues(result.error)).toEqual([
      'a[1].b: Invalid input: expected string, received number',
    ]);
    const root = schema.safeParse({ a: [] });
    expect(root.success ? [] : formatZodIssues(root.error)).toEqual(['(root): whole thing']);
  });
});

describe('config JSON Schema', () => {
  it('describes the input shape (defaults optional) and is written as JSON', () => {
    // Prepare
    const path = join(dir, 'lifecycle.schema.json');

    // Act
    const schema = buildConfigJsonSchema() as {
      properties: Record<string, unknown>;
      required?: string[];
    };
    writeConfigJsonSchema(path);

    // Assess
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['database', 'sandbox', 'bucketName', 'alarmEmail', 'defaults', 'policies']),
    );
    expect(schema.required).toEqual(['policies']);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(schema);
  });
});

describe('buildExecutionInput', () => {
  it('carries the policy and its resolved chunking (built-in < defaults < policy)', () => {
    // Prepare
    const config = fixtureConfig();

    // Act
    const input = buildExecutionInput(config, 'orders-archive', 'schedule', false);

    // Assess
    expect(ExecutionInputSchema.parse(input)).toEqual(input);
    expect(input.policy.name).toBe('orders-archive');
    expect(input.trigger).toBe('schedule');
    expect(input.dryRun).toBe(false);
    expect(input.continuation).toBeUndefined();
    expect(input.chunking).toMatchObject({
      initialRows: 5000,
      maxRows: 20_000,
      pauseSeconds: 1,
      minRows: 500,
    });
  });

  it('refuses an unknown policy name, naming the known ones', () => {
    // Prepare
    const config = fixtureConfig();

    // Act / Assess
    expect(() => buildExecutionInput(config, 'nope', 'manual', true)).toThrow(UnknownPolicyError);
    expect(() => buildExecutionInput(config, 'nope', 'manual', true)).toThrow(
      /known: orders-archive, events-archive/,
    );
  });
});

/** The ConfigError `loadConfigFile` throws for `path`, or a failure when it loads. */
function loadError(path: string): ConfigError {
  try {
    loadConfigFile(path);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`${path} loaded without error`);
}

/** Characters a reader cannot see (what a message must never carry). */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;

describe('loadConfigFile: what JSON.parse lets through', () => {
  const policyText = (retention: string) =>
    `{ "name": "orders-archive", "action": "archive", "table": "orders", "timeColumn": "created_at", ${retention} }`;

  it('refuses a repeated key instead of keeping the later value, naming where it is', () => {
    // Prepare: the second retention (PT1S, also refused) would silently win over P10Y.
    const path = writeConfig(
      'duplicate.json',
      `{ "sandbox": true, "sandbox": true,\n  "policies": [ ${policyText('"retention": "P10Y", "retention": "P2Y"')} ] }`,
    );

    // Act
    const error = loadError(path);

    // Assess
    expect(error.issues).toEqual([
      '(root): duplicate key "sandbox"',
      'policies[0]: duplicate key "retention"',
    ]);
    expect(error.message).toContain(`${path}: policies[0]: duplicate key "retention"`);
  });

  it('reports repeated keys together with the schema problems, in one pass', () => {
    const path = writeConfig(
      'duplicate-and-invalid.json',
      `{ "sandbox": true, "policies": [ ${policyText('"retention": "P2Y", "schedule": "cron(99 99 * * ? *)", "retention": "P2Y"')} ] }`,
    );
    expect(loadError(path).issues).toEqual([
      'policies[0]: duplicate key "retention"',
      'policies[0].schedule: cron: minutes "99" is out of range (0-59, with , - * /)',
    ]);
  });

  it('accepts a UTF-8 byte order mark (Windows editors write one) by dropping it', () => {
    const path = writeConfig(
      'bom.json',
      `\uFEFF${JSON.stringify({ sandbox: true, policies: [validPolicy] })}`,
    );
    expect(loadConfigFile(path).policies[0]?.name).toBe('orders-archive');
  });

  it('refuses UTF-16 and bytes that are not UTF-8, saying where', () => {
    const utf16 = join(dir, 'utf16.json');
    writeFileSync(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{}', 'utf16le')]));
    const latin1 = join(dir, 'latin1.json');
    writeFileSync(latin1, Buffer.from('{\n  "alarmEmail": "caf\xe9@example.com"\n}', 'latin1'));

    expect(loadError(utf16).issues).toEqual(['is UTF-16 text; save it as UTF-8']);
    expect(loadError(latin1).issues).toEqual(['is not UTF-8 text (line 2, column 21); save it as UTF-8']);
  });

  it('places a syntax error by line and column and names an invisible character by code point', () => {
    // Prepare: a zero-width space pasted before a value, and a BOM in the middle of the file.
    const zeroWidth = writeConfig('zero-width.json', '{\n  "sandbox": \u200Btrue\n}');
    const innerBom = writeConfig('inner-bom.json', '{ "sandbox": true }\n\uFEFF');
    const trailingComma = writeConfig('comma.json', '{\n  "policies": [],\n}');

    // Act
    const messages = [zeroWidth, innerBom, trailingComma].map((path) => loadError(path).message);

    // Assess
    expect(messages).toEqual([
      `${zeroWidth}: is not valid JSON: line 2, column 14: unexpected U+200B where a value should start`,
      `${innerBom}: is not valid JSON: line 2, column 1: unexpected U+FEFF after the end of the JSON value`,
      `${trailingComma}: is not valid JSON: line 3, column 1: unexpected "}" where a "key" should start`,
    ]);
    for (const message of messages) expect(message).not.toMatch(INVISIBLE);
  });

  it('shows invisible characters inside values as \\uXXXX escapes', () => {
    // A zero-width space typed into the retention: the message must show why "P2Y" is refused.
    const path = writeConfig('invisible-value.json', {
      sandbox: true,
      policies: [{ ...validPolicy, retention: 'P2Y\u200B' }],
    });
    const error = loadError(path);
    expect(error.issues).toEqual([
      'policies[0].retention: "P2Y\\u200B" is not an ISO-8601 duration such as P2Y, P6M, P90D or PT12H',
    ]);
    expect(error.message).not.toMatch(INVISIBLE);
  });
});

describe('a config with neither database nor sandbox', () => {
  const local = { policies: [validPolicy] };
  const missingDatabase = /config needs `database` \(an existing PostgreSQL\) or `sandbox: true`/;

  it('is valid for local runs, and a deployment issue', () => {
    // Prepare
    const config = parseConfig(local, 'inline');

    // Act / Assess
    expect(deploymentIssues(config)).toEqual([expect.stringMatching(missingDatabase)]);
    expect(deploymentIssues(parseConfig({ ...local, sandbox: true }, 'inline'))).toEqual([]);
    expect(() => buildApp(config, { bundling: false, nag: false, validation: false })).toThrow(ConfigError);
  });

  it('validate says OK and warns that a deployment needs one (exit 0: local runs take DATABASE_URL)', async () => {
    // Prepare
    const path = writeConfig('local-only.json', local);
    const out: string[] = [];
    const err: string[] = [];
    const stdout = vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk) => out.push(String(chunk)) > 0);
    const stderr = vi
      .spyOn(process.stderr, 'write')
      .mockImplementation((chunk) => err.push(String(chunk)) > 0);

    // Act
    let code: number;
    try {
      code = await main(['validate', '--config', path]);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }

    // Assess
    expect(code).toBe(0);
    expect(out.join('')).toBe(`${path}: OK (1 policy)\n`);
    expect(err.join('')).toMatch(new RegExp(`^${path}: warning: \\(root\\): config needs \`database\``));
  });

  it('cdk synth (bin/app.ts) fails with one line naming the problem, not a stack trace', async () => {
    // Prepare
    const path = writeConfig('synth-no-database.json', local);

    // Act: the CDK app entry as `cdk synth` runs it, asynchronously.
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
        cwd: join(import.meta.dirname, '../..'),
        env: { PATH: process.env.PATH, HOME: process.env.HOME, LIFECYCLE_CONFIG: path, CDK_OUTDIR: dir },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });

    // Assess
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^Invalid pg-lifecycle configuration: ${path}: \\(root\\): config needs`),
    );
  }, 60_000);
});
