import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  buildConfigJsonSchema,
  ConfigError,
  formatZodIssues,
  loadConfigFile,
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
        { ...validPolicy, name: 'Bad Name', schedule: '0 2 * * *' },
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
