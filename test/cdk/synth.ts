/**
 * Synthesizes the stack in-process for template assertions: bundling and the built-in CloudFormation
 * validation off (~0.5 s instead of ~5 s), cdk-nag only where a test asks for it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { type BuildAppOptions, buildApp } from '../../lib/app.ts';
import { loadConfigFile, parseConfig } from '../../lib/config-file.ts';
import type { LifecycleConfig, LifecycleConfigInput } from '../../lib/contracts/config.ts';
import type { PgLifecycleStack } from '../../lib/stack.ts';

export const FIXTURE_PATH = fileURLToPath(new URL('../fixtures/aws.config.json', import.meta.url));

/** The `database` fixture: 2 archive policies, 2 purge policies (one without schedule), 1 disabled. */
export function fixtureConfig(): LifecycleConfig {
  return loadConfigFile(FIXTURE_PATH);
}

/** A minimal sandbox config (the stack creates VPC + RDS). */
export function sandboxConfig(overrides: Partial<LifecycleConfigInput> = {}): LifecycleConfig {
  return parseConfig(
    {
      sandbox: true,
      policies: [
        {
          name: 'orders-archive',
          action: 'archive',
          table: 'orders',
          timeColumn: 'created_at',
          retention: 'P1Y',
          schedule: 'cron(0 3 * * ? *)',
        },
      ],
      ...overrides,
    },
    'sandbox config',
  );
}

/** The sandbox config plus a purge policy whose throttle reads Aurora replica lag from CloudWatch. */
export function cloudWatchThrottleConfig(): LifecycleConfig {
  const base = sandboxConfig();
  return parseConfig(
    {
      sandbox: true,
      policies: [
        ...base.policies,
        {
          name: 'sessions-purge',
          action: 'purge',
          table: 'sessions',
          timeColumn: 'last_seen',
          retention: 'P30D',
          schedule: 'rate(1 hour)',
          throttle: {
            maxReplicaLagSeconds: 30,
            cloudWatch: { metric: 'AuroraReplicaLag', dbInstanceIdentifiers: ['orders-reader-1'] },
          },
        },
      ],
    },
    'cloudWatch throttle config',
  );
}

/** The sandbox config with parallel workers: the archive policy with 8, a purge policy with 4. */
export function parallelConfig(): LifecycleConfig {
  const base = sandboxConfig();
  return parseConfig(
    {
      sandbox: true,
      policies: [
        ...base.policies.map((policy) => ({ ...policy, parallelism: 8 })),
        {
          name: 'sessions-purge',
          action: 'purge',
          table: 'sessions',
          timeColumn: 'last_seen',
          retention: 'P30D',
          schedule: 'rate(1 hour)',
          parallelism: 4,
        },
      ],
    },
    'parallel config',
  );
}

export interface Synthesized {
  readonly app: App;
  readonly stack: PgLifecycleStack;
  readonly template: Template;
  /** The raw template, e.g. for `extractStateMachineDefinitions`. */
  readonly json: Record<string, unknown>;
}

/** Builds and synthesizes the app; the cloud assembly directory is removed afterwards. */
export function synthesize(config: LifecycleConfig, options: BuildAppOptions = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-cdk-test-'));
  try {
    const { app, stack } = buildApp(config, {
      bundling: false,
      validation: false,
      nag: false,
      outdir,
      ...options,
    });
    const json = app.synth().getStackByName(stack.stackName).template as Record<string, unknown>;
    return { app, stack, template: Template.fromJSON(json), json };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Logical id of the only resource of a type whose id starts with `prefix` (or matches a pattern). */
export function logicalIdOf(template: Template, type: string, prefix: string | RegExp): string {
  const matches = (id: string) => (typeof prefix === 'string' ? id.startsWith(prefix) : prefix.test(id));
  const ids = Object.keys(template.findResources(type)).filter(matches);
  if (ids.length !== 1) throw new Error(`expected one ${type} matching ${prefix}, found [${ids.join(', ')}]`);
  return ids[0] as string;
}

/** An IAM statement as synthesized. */
export interface Statement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Sid?: string;
  readonly Condition?: unknown;
}

/** The step functions of a policy, as named in construct ids (`Policy<Name><Step>Function`). */
export const STEPS = ['Start', 'Chunk', 'Finish', 'RecordFailure'] as const;

/** `orders-archive` → `OrdersArchive`, as the stack names a policy's constructs. */
export function pascal(policyName: string): string {
  return policyName
    .split('-')
    .map((part) => `${part.slice(0, 1).toUpperCase()}${part.slice(1)}`)
    .join('');
}

/** Statements of the default policy of a policy's step function role (empty when it has none). */
export function roleStatements(
  template: Template,
  policyName: string,
  step: (typeof STEPS)[number],
): Statement[] {
  const prefix = `Policy${pascal(policyName)}${step}FunctionRoleDefaultPolicy`;
  const entry = Object.entries(template.findResources('AWS::IAM::Policy')).find(([id]) =>
    id.startsWith(prefix),
  );
  return (entry?.[1].Properties.PolicyDocument.Statement ?? []) as Statement[];
}

/** Every action of a statement, as a list. */
export const actionsOf = (statement: Statement): string[] => [statement.Action].flat();
