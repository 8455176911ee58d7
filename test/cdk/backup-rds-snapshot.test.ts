/**
 * `backup.rdsSnapshot` from config to template: the config refuses what RDS or IAM would refuse later (every
 * problem at once); the policy's machine gets the snapshot stage after Finish, polling with Wait states and
 * failing into RecordFailure; its snapshot function runs outside the VPC and may touch only the named database
 * and snapshots with the policy's prefix (deleting only those tagged with its policy and stack), in the stack's
 * region and copyToRegion, with the copy key only through RDS; cdk-nag stays clean.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app.ts';
import { extractStateMachineDefinitions } from '../../lib/asl/resolve-definition.ts';
import { ConfigError, parseConfig } from '../../lib/config-file.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { RetryableErrorNames, StateNames } from '../../lib/contracts/payloads.ts';
import { RdsSnapshotStateNames as Names } from '../../lib/contracts/rds-snapshot-payloads.ts';
import { policyResourceCount } from '../../lib/contracts/stack-limits.ts';
import { actionsOf, logicalIdOf, type Statement, sandboxConfig, synthesize } from './synth.ts';

const KEY = 'arn:aws:kms:eu-central-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

type PolicyInput = LifecycleConfigInput['policies'][number];

function backupPolicy(name: string, rdsSnapshot: unknown, extra: Record<string, unknown> = {}): PolicyInput {
  return {
    name,
    action: 'backup',
    schedule: 'cron(0 1 * * ? *)',
    backup: { tables: ['public.*'], rdsSnapshot, ...extra },
  } as PolicyInput;
}

const config = sandboxConfig({
  policies: [
    backupPolicy('nightly', { dbInstanceIdentifier: 'orders-db', retentionDays: 14 }),
    backupPolicy('aurora', {
      dbClusterIdentifier: 'orders-aurora',
      copyToRegion: 'eu-central-1',
      copyKmsKeyArn: KEY,
      retentionDays: 30,
    }),
    backupPolicy('plain', undefined),
  ],
});
const { template, json } = synthesize(config);
const machines = extractStateMachineDefinitions(json);

function definitionOf(policy: string) {
  const found = machines.filter((m) => m.logicalId.startsWith(`Policy${policy}ChunkLoop`));
  if (found.length !== 1) throw new Error(`expected one machine for ${policy}`);
  return (found[0] as (typeof machines)[number]).definition;
}

/** Statements of the snapshot function's role (its default policy). */
function snapshotStatements(policy: string): Statement[] {
  const id = logicalIdOf(
    template,
    'AWS::IAM::Policy',
    new RegExp(`^Policy${policy}RdsSnapshotFunctionRoleDefaultPolicy`),
  );
  return template.toJSON().Resources[id].Properties.PolicyDocument.Statement as Statement[];
}

const bySid = (statements: Statement[], sid: string) => {
  const found = statements.find((s) => s.Sid === sid);
  if (!found) throw new Error(`no statement ${sid}`);
  return found;
};

/** A resource as text, with the pseudo parameters spelled the way cdk-nag flattens them. */
const text = (value: unknown) =>
  JSON.stringify(value)
    .replace(/\{"Ref":"AWS::Partition"\}/g, '"<P>"')
    .replace(/\{"Ref":"AWS::Region"\}/g, '"<R>"')
    .replace(/\{"Ref":"AWS::AccountId"\}/g, '"<A>"');

const joined = (resource: unknown): string => {
  const value = resource as { 'Fn::Join'?: [string, unknown[]] } | string;
  if (typeof value === 'string') return value;
  const parts = value['Fn::Join']?.[1] ?? [];
  return parts
    .map((part) =>
      typeof part === 'string' ? part : `<${(part as { Ref?: string }).Ref?.replace('AWS::', '') ?? '?'}>`,
    )
    .join('');
};
const resourcesOf = (statement: Statement) => [statement.Resource].flat().map(joined).sort();

const configProblems = (policy: PolicyInput): string[] => {
  try {
    parseConfig({ sandbox: true, policies: [policy] }, 'inline');
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return [...error.issues];
  }
};

describe('backup.rdsSnapshot config', () => {
  it.each([
    [{ retentionDays: 7 }, 'policies[0].backup.rdsSnapshot: name the database to snapshot'],
    [
      { dbInstanceIdentifier: 'a', dbClusterIdentifier: 'b', retentionDays: 7 },
      'policies[0].backup.rdsSnapshot.dbClusterIdentifier: name either dbInstanceIdentifier',
    ],
    [
      { dbInstanceIdentifier: 'Orders-DB', retentionDays: 7 },
      'RDS stores identifiers in lower case: write "orders-db"',
    ],
    [{ dbInstanceIdentifier: 'orders--db', retentionDays: 7 }, 'must not contain two consecutive hyphens'],
    [
      { dbInstanceIdentifier: 'db', retentionDays: 0 },
      'policies[0].backup.rdsSnapshot.retentionDays: must be at least 1',
    ],
    [{ dbInstanceIdentifier: 'db', retentionDays: 3651 }, 'must be at most 3650'],
    [
      { dbInstanceIdentifier: 'db', copyToRegion: 'Frankfurt', retentionDays: 7 },
      'must be an AWS region name',
    ],
    [{ dbInstanceIdentifier: 'db', copyKmsKeyArn: KEY, retentionDays: 7 }, 'set copyToRegion too'],
    [
      { dbInstanceIdentifier: 'db', copyToRegion: 'us-east-1', copyKmsKeyArn: KEY, retentionDays: 7 },
      'is a key in eu-central-1: the copy in us-east-1 needs a key of that region',
    ],
    [
      {
        dbInstanceIdentifier: 'db',
        copyToRegion: 'eu-central-1',
        copyKmsKeyArn: 'alias/backups',
        retentionDays: 7,
      },
      'must be a KMS key ARN',
    ],
    [{ dbInstanceIdentifier: 'db', retentionDays: 7, snapshotName: 'x' }, 'Unrecognized key'],
  ])('refuses %j', (rdsSnapshot, message) => {
    const problems = configProblems(backupPolicy('nightly', rdsSnapshot));
    expect(problems.join('\n')).toContain(message);
  });

  it('reports every problem at once', () => {
    const problems = configProblems(
      backupPolicy('nightly', {
        dbInstanceIdentifier: 'Orders',
        dbClusterIdentifier: 'x',
        copyKmsKeyArn: KEY,
        retentionDays: 0,
      }),
    );
    expect(problems).toHaveLength(4);
  });

  it('refuses a policy name that cannot prefix snapshot names, only with rdsSnapshot', () => {
    expect(
      configProblems(backupPolicy('night--ly', { dbInstanceIdentifier: 'db', retentionDays: 7 })),
    ).toEqual([
      'policies[0].name: with rdsSnapshot the policy name is part of RDS snapshot names (pg-lifecycle-night--ly-<time>), which must not contain two consecutive hyphens',
    ]);
    expect(configProblems(backupPolicy('night--ly', undefined))).toEqual([]);
  });
});

describe('backup.rdsSnapshot in the stack', () => {
  it('runs the snapshot function outside the VPC, configured from the stack, with X-Ray but no ENI actions', () => {
    const id = logicalIdOf(
      template,
      'AWS::Lambda::Function',
      /^PolicyNightlyRdsSnapshotFunction[0-9A-F]{8}$/,
    );
    const fn = template.toJSON().Resources[id].Properties;
    expect(fn.VpcConfig).toBeUndefined();
    expect(fn.Runtime).toBe('nodejs24.x');
    expect(JSON.parse(fn.Environment.Variables.LIFECYCLE_RDS_SNAPSHOT)).toEqual({
      policy: 'nightly',
      stack: 'PgLifecycle',
      kind: 'instance',
      source: 'orders-db',
      prefix: 'pg-lifecycle-nightly-',
      retentionDays: 14,
    });
    const roleId = logicalIdOf(
      template,
      'AWS::IAM::Role',
      /^PolicyNightlyRdsSnapshotFunctionRole[0-9A-F]{8}$/,
    );
    const policies = Object.values(
      template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>,
    )
      .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes(roleId))
      .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const actions = policies.flatMap(actionsOf);
    expect(actions).toEqual(expect.arrayContaining(['xray:PutTraceSegments']));
    expect(
      actions.some((a) => a.startsWith('ec2:') || a.startsWith('s3:') || a.startsWith('secretsmanager:')),
    ).toBe(false);
    expect(JSON.stringify(template.toJSON().Resources[roleId].Properties.ManagedPolicyArns ?? [])).toBe('[]');
  });

  it('scopes a DB instance policy to its instance and snapshots with its prefix, deleting only its tagged ones', () => {
    const statements = snapshotStatements('Nightly');
    // Besides writing to its policy's log group (the one statement without a Sid), exactly these.
    expect(
      statements
        .filter((s) => s.Sid === undefined)
        .flatMap(actionsOf)
        .every((a) => a.startsWith('logs:')),
    ).toBe(true);
    expect(statements.flatMap((s) => (s.Sid ? [s.Sid] : [])).sort()).toEqual([
      'DeleteOwnExpiredSnapshots',
      'ReadOwnSnapshots',
      'TagOwnSnapshots',
      'TakeSnapshot',
    ]);
    for (const statement of statements) expect(statement.Resource, statement.Sid).not.toBe('*');
    const snapshotArn = 'arn:<Partition>:rds:<Region>:<AccountId>:snapshot:pg-lifecycle-nightly-*';
    const instanceArn = 'arn:<Partition>:rds:<Region>:<AccountId>:db:orders-db';
    expect(actionsOf(bySid(statements, 'TakeSnapshot'))).toEqual(['rds:CreateDBSnapshot']);
    expect(resourcesOf(bySid(statements, 'TakeSnapshot'))).toEqual([instanceArn, snapshotArn].sort());
    expect(resourcesOf(bySid(statements, 'TagOwnSnapshots'))).toEqual([snapshotArn]);
    expect(resourcesOf(bySid(statements, 'ReadOwnSnapshots'))).toEqual([instanceArn, snapshotArn].sort());
    const deletion = bySid(statements, 'DeleteOwnExpiredSnapshots');
    expect(actionsOf(deletion)).toEqual(['rds:DeleteDBSnapshot']);
    expect(resourcesOf(deletion)).toEqual([snapshotArn]);
    expect(deletion.Condition).toEqual({
      StringEquals: {
        'aws:ResourceTag/pg-lifecycle:policy': 'nightly',
        'aws:ResourceTag/pg-lifecycle:stack': 'PgLifecycle',
      },
    });
    expect(text(statements)).not.toMatch(/Copy|kms:/);
  });

  it('scopes an Aurora policy with a copy to its cluster, its prefix in both regions, and the copy key through RDS', () => {
    const statements = snapshotStatements('Aurora');
    const source = 'arn:<Partition>:rds:<Region>:<AccountId>:cluster-snapshot:pg-lifecycle-aurora-*';
    const target = 'arn:<Partition>:rds:eu-central-1:<AccountId>:cluster-snapshot:pg-lifecycle-aurora-*';
    expect(actionsOf(bySid(statements, 'TakeSnapshot'))).toEqual(['rds:CreateDBClusterSnapshot']);
    expect(resourcesOf(bySid(statements, 'TakeSnapshot'))).toEqual(
      ['arn:<Partition>:rds:<Region>:<AccountId>:cluster:orders-aurora', source].sort(),
    );
    expect(actionsOf(bySid(statements, 'CopyOwnSnapshots'))).toEqual(['rds:CopyDBClusterSnapshot']);
    expect(resourcesOf(bySid(statements, 'CopyOwnSnapshots'))).toEqual([source, target].sort());
    expect(resourcesOf(bySid(statements, 'DeleteOwnExpiredSnapshots'))).toEqual([source, target].sort());
    expect(resourcesOf(bySid(statements, 'ReadOwnSnapshots'))).toEqual(
      [
        'arn:<Partition>:rds:<Region>:<AccountId>:cluster:orders-aurora',
        'arn:<Partition>:rds:eu-central-1:<AccountId>:cluster:orders-aurora',
        source,
        target,
      ].sort(),
    );
    const encrypt = bySid(statements, 'EncryptCopy');
    expect(actionsOf(encrypt).sort()).toEqual(['kms:CreateGrant', 'kms:DescribeKey']);
    expect(encrypt.Resource).toBe(KEY);
    expect(encrypt.Condition).toEqual({
      StringEquals: { 'kms:ViaService': 'rds.eu-central-1.amazonaws.com' },
    });
    const decrypt = bySid(statements, 'DecryptSourceForCopy');
    expect(resourcesOf(decrypt)).toEqual(['arn:<Partition>:kms:<Region>:<AccountId>:key/*']);
    expect(text(decrypt.Condition)).toContain('rds.');
    expect(actionsOf(bySid(statements, 'DeleteOwnExpiredSnapshots'))).toEqual([
      'rds:DeleteDBClusterSnapshot',
    ]);
  });

  it('gives no other function, and no policy without rdsSnapshot, any RDS or KMS action', () => {
    const others = Object.entries(
      template.toJSON().Resources as Record<
        string,
        { Type: string; Properties: { PolicyDocument?: { Statement: Statement[] } } }
      >,
    )
      .filter(([id, r]) => r.Type === 'AWS::IAM::Policy' && !/RdsSnapshotFunction/.test(id))
      .flatMap(([, r]) => r.Properties.PolicyDocument?.Statement ?? []);
    expect(
      others.flatMap(actionsOf).filter((a) => a.startsWith('rds:') && a !== 'rds:DescribeDBInstances'),
    ).toEqual([]);
    expect(
      Object.keys(template.findResources('AWS::Lambda::Function')).filter((id) =>
        id.startsWith('PolicyPlainRds'),
      ),
    ).toEqual([]);
  });

  it('takes the snapshot after a successful Finish, polls with Wait states and fails into RecordFailure', () => {
    const definition = definitionOf('Nightly');
    const states = definition.States as Record<string, Record<string, unknown>>;
    expect(states[StateNames.finish]?.Next).toBe(Names.wanted);
    expect(states[Names.wanted]).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.status', StringEquals: 'succeeded', Next: Names.create }],
      Default: Names.skipped,
    });
    expect(states[Names.wait]).toMatchObject({
      Type: 'Wait',
      SecondsPath: '$.rdsSnapshot.waitSeconds',
      Next: Names.check,
    });
    expect(states[Names.available]).toMatchObject({
      Choices: [{ Variable: '$.rdsSnapshot.snapshot.status', StringEquals: 'available', Next: Names.prune }],
      Default: Names.wait,
    });
    expect(states[Names.prune]?.End).toBe(true);
    for (const name of [Names.create, Names.check, Names.prune]) {
      const task = states[name] as {
        Resource: string;
        ResultPath: string;
        Catch: unknown[];
        Retry: Array<{ ErrorEquals: string[] }>;
      };
      expect(task.Resource, name).toMatch(/:function:PolicyNightlyRdsSnapshotFunction/);
      expect(task.ResultPath).toBe('$.rdsSnapshot');
      expect(task.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: Names.failed },
      ]);
      expect(task.Retry.at(-1)?.ErrorEquals).toEqual([...RetryableErrorNames]);
    }
    expect((states[Names.create] as { Retry: unknown[] }).Retry[0]).toEqual({
      ErrorEquals: ['RdsSourceBusyError'],
      IntervalSeconds: 300,
      MaxAttempts: 12,
      BackoffRate: 1,
    });
    expect((states[Names.check] as { Retry: unknown[] }).Retry).toHaveLength(1);
    // A snapshot failure reaches RecordFailure without the run id: the backup run succeeded and keeps its objects.
    expect(states[Names.failed]).toEqual({
      Type: 'Pass',
      Comment: expect.any(String),
      Parameters: {
        'policy.$': '$$.Execution.Input.policy',
        dryRun: false,
        'error.$': '$.error',
        'backupRunId.$': '$.runId',
      },
      Next: StateNames.recordFailure,
    });
    expect(states[StateNames.recordFailure]?.Next).toBe(StateNames.failed);
    const copyStates = [Names.copy, Names.copyWait, Names.copyCheck, Names.copyAvailable];
    for (const name of copyStates) expect(states[name], name).toBeUndefined();
    const copying = definitionOf('Aurora').States as Record<string, Record<string, unknown>>;
    for (const name of copyStates) expect(copying[name], name).toBeDefined();
    expect(copying[Names.available]).toMatchObject({ Choices: [{ Next: Names.copy }] });
    expect(copying[Names.copyAvailable]).toMatchObject({
      Choices: [{ Variable: '$.rdsSnapshot.copy.status', StringEquals: 'available', Next: Names.prune }],
      Default: Names.copyWait,
    });
    // A policy without rdsSnapshot keeps the plain chunk loop, ending at Finish.
    expect(
      (definitionOf('Plain').States as Record<string, Record<string, unknown>>)[StateNames.finish]?.End,
    ).toBe(true);
  });

  it('gives machines with a snapshot 48 hours, lets them invoke the snapshot function, and counts its resources', () => {
    expect(definitionOf('Nightly').TimeoutSeconds).toBe(48 * 3600);
    expect(definitionOf('Plain').TimeoutSeconds).toBe(24 * 3600);
    const smPolicy = logicalIdOf(template, 'AWS::IAM::Policy', /^PolicyNightlyChunkLoopRoleDefaultPolicy/);
    expect(text(template.toJSON().Resources[smPolicy])).toMatch(/PolicyNightlyRdsSnapshotFunction/);
    // policyResourceCount says what the template holds.
    const without = synthesize(sandboxConfig({ policies: [backupPolicy('plain', undefined)] }));
    const withSnapshot = synthesize(
      sandboxConfig({
        policies: [
          backupPolicy('plain', undefined),
          backupPolicy('nightly', { dbInstanceIdentifier: 'orders-db', retentionDays: 14 }),
        ],
      }),
    );
    const count = (s: typeof without) => Object.keys(s.json.Resources as object).length;
    expect(count(withSnapshot) - count(without)).toBe(
      policyResourceCount(config, config.policies[0] as never),
    );
  });
});

describe('backup.rdsSnapshot and cdk-nag', () => {
  const outdirs: string[] = [];
  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  it('leaves no unacknowledged finding', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-rds-nag-'));
    outdirs.push(outdir);
    const { app } = buildApp(config, { bundling: false, validation: false, outdir });
    expect(() => app.synth()).not.toThrow();
    expect(new AwsSolutionsChecks().validateScope(app).violations.map((v) => v.ruleName)).toEqual([]);
  });
});
