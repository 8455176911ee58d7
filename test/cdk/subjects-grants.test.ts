/**
 * A subjects policy's grants on the archive objects of the tables it maps: its Chunk exports a subject's archived
 * rows and rewrites every archive object holding them (functions/actions/subjects/object-rewrite.ts), its Finish
 * and RecordFailure delete what a crashed rewrite left unlisted. Exactly the prefixes of the archive policies of
 * its mapped tables (tables compared as PostgreSQL reads them), nothing of another archive policy, and nothing at
 * all when none of its tables is archived.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app.ts';
import { parseConfig } from '../../lib/config-file.ts';
import { archivedTablesOf, grantArchiveErasure } from '../../lib/constructs/policy-grants.ts';
import type { LifecycleConfig, LifecycleConfigInput, SubjectsPolicy } from '../../lib/contracts/config.ts';
import { actionsOf, logicalIdOf, roleStatements, STEPS, type Statement, synthesize } from './synth.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

const archivePolicy = (name: string, table: string, extra: Record<string, unknown> = {}) =>
  ({
    name,
    action: 'archive',
    table,
    timeColumn: 'created_at',
    retention: 'P1Y',
    schedule: 'cron(0 3 * * ? *)',
    ...extra,
  }) as PolicyInput;

const subjectsPolicy = (tables: string[]) =>
  ({
    name: 'gdpr',
    action: 'subjects',
    schedule: 'rate(1 hour)',
    subjects: {
      keyName: 'user_id',
      tables: tables.map((table) => ({ table, keyColumn: 'user_id', action: 'delete' })),
    },
  }) as PolicyInput;

function configWith(policies: PolicyInput[], extra: Partial<LifecycleConfigInput> = {}): LifecycleConfig {
  return parseConfig({ sandbox: true, ...extra, policies }, 'subjects grants config');
}

/** Archive policies on public.users and public.orders; the subjects policy maps users written another way. */
const mappingUsers = configWith([
  archivePolicy('users-archive', 'public.users'),
  archivePolicy('orders-archive', 'public.orders'),
  subjectsPolicy(['"public"."users"']),
]);
/** The same archives; the subjects policy maps only a table no policy archives. */
const mappingNothingArchived = configWith([
  archivePolicy('users-archive', 'public.users'),
  archivePolicy('orders-archive', 'public.orders'),
  subjectsPolicy(['public.accounts']),
]);

/** What only a subjects policy's Chunk gets, on the archive prefixes of its mapped tables. */
const ERASURE_ACTIONS = ['s3:RestoreObject', 'kms:Decrypt', 'kms:GenerateDataKey'];
/**
 * Deleting every version of a key: every storing policy's deleters get these on their own prefix (orphans, a stale
 * upload), a subjects policy's also on the archive prefixes of its mapped tables; never on any other prefix.
 */
const VERSION_ACTIONS = ['s3:ListBucketVersions', 's3:DeleteObjectVersion'];

/** The prefixes a statement names (its objects' ARN, or its s3:prefix condition). */
const prefixesOf = (statement: Statement): string[] =>
  [...JSON.stringify(statement).matchAll(/"\/?((?:archive|subjects)\/[^/"]+\/)\*"/g)].map(
    (m) => m[1] as string,
  );

/** Every statement of a policy's four step roles, by step. */
function stepStatements(template: Template, policy: string): Array<[string, Statement]> {
  return STEPS.flatMap((step) =>
    roleStatements(template, policy, step).map((statement) => [step, statement] as [string, Statement]),
  );
}

describe('archivedTablesOf', () => {
  it('finds the archive policies of the mapped tables as PostgreSQL names them, disabled ones too', () => {
    // Prepare
    const config = configWith([
      archivePolicy('users-archive', 'public.users'),
      archivePolicy('users-legacy', 'USERS', { enabled: false }),
      archivePolicy('orders-archive', 'public.orders'),
      archivePolicy('mixed-case-archive', '"Public"."users"'),
      subjectsPolicy(['"public"."users"', 'public.accounts']),
    ]);
    const subjects = config.policies.find((p) => p.name === 'gdpr') as SubjectsPolicy;

    // Act
    const archives = archivedTablesOf(
      subjects.subjects.tables.map((t) => t.table),
      config.policies,
    );

    // Assess: "Public" quoted is another schema; USERS unquoted is public.users.
    expect(archives).toEqual([
      { policy: 'users-archive', table: 'public.users', prefix: 'archive/users-archive/' },
      { policy: 'users-legacy', table: 'USERS', prefix: 'archive/users-legacy/' },
    ]);
  });
});

describe('a subjects policy mapping an archived table', () => {
  const { template } = synthesize(mappingUsers);
  const bucketId = logicalIdOf(template, 'AWS::S3::Bucket', /^ArchiveBucket[0-9A-F]{8}$/);
  const bucketArn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
  const objectsOf = (prefix: string) => ({ 'Fn::Join': ['', [bucketArn, `/${prefix}*`]] });

  it('lets its Chunk read and rewrite the objects of that archive policy, on its prefix only', () => {
    // Act
    const chunk = roleStatements(template, 'gdpr', 'Chunk');

    // Assess
    expect(chunk).toContainEqual({
      Sid: 'ListArchivedObjectVersions',
      Effect: 'Allow',
      Action: ['s3:ListBucket', 's3:ListBucketVersions'],
      Resource: bucketArn,
      Condition: { StringLike: { 's3:prefix': ['archive/users-archive/*'] } },
    });
    expect(chunk).toContainEqual({
      Sid: 'ReadAndRewriteArchivedObjects',
      Effect: 'Allow',
      // Sorted, as CDK writes them.
      Action: [
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:GetObject',
        's3:GetObjectLegalHold',
        's3:GetObjectRetention',
        's3:PutObject',
        's3:RestoreObject',
      ],
      Resource: objectsOf('archive/users-archive/'),
    });
    // Its own prefix stays as it was; no bucket key in this stack, so no KMS grant.
    expect(chunk.filter((s) => JSON.stringify(s).includes('/subjects/gdpr/'))).toHaveLength(1);
    expect(chunk.flatMap(actionsOf).filter((action) => action.startsWith('kms:'))).toEqual([]);
  });

  it('lets its Finish and RecordFailure delete every version of a crashed rewrite’s orphans there, and Start nothing', () => {
    for (const step of ['Finish', 'RecordFailure'] as const) {
      const statements = roleStatements(template, 'gdpr', step);
      expect(statements).toContainEqual({
        Sid: 'RemoveArchiveRewriteOrphans',
        Effect: 'Allow',
        // GetObject: the HEAD proving no version of the deleted key is left.
        Action: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObject'],
        Resource: objectsOf('archive/users-archive/'),
      });
      expect(statements).toContainEqual({
        Sid: 'ListArchiveRewriteOrphanVersions',
        Effect: 'Allow',
        Action: ['s3:ListBucket', 's3:ListBucketVersions'],
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': ['archive/users-archive/*'] } },
      });
    }
    expect(JSON.stringify(roleStatements(template, 'gdpr', 'Start'))).not.toContain('/archive/');
  });

  it('grants nothing on the prefix of an archive policy of a table it does not map', () => {
    // Assess: every archive statement of its roles names users-archive, none orders-archive.
    const statements = stepStatements(template, 'gdpr');
    const archiveStatements = statements.filter(([, s]) => JSON.stringify(s).includes('archive/'));
    expect(archiveStatements.map(([step, s]) => `${step}:${s.Sid}`).sort()).toEqual([
      'Chunk:ListArchivedObjectVersions',
      'Chunk:ReadAndRewriteArchivedObjects',
      'Finish:ListArchiveRewriteOrphanVersions',
      'Finish:RemoveArchiveRewriteOrphans',
      'RecordFailure:ListArchiveRewriteOrphanVersions',
      'RecordFailure:RemoveArchiveRewriteOrphans',
    ]);
    expect(JSON.stringify(statements)).not.toContain('orders-archive');
    // And no other role of the stack gets the erasure's actions; the version actions an archive policy's
    // deleters have (orphans, stale uploads) name its own prefix only.
    for (const policy of ['users-archive', 'orders-archive']) {
      const own = stepStatements(template, policy);
      const actions = own.flatMap(([, s]) => actionsOf(s));
      expect(actions.filter((action) => ERASURE_ACTIONS.includes(action))).toEqual([]);
      const versioned = own.filter(([, s]) => actionsOf(s).some((a) => VERSION_ACTIONS.includes(a)));
      expect(versioned.map(([step]) => step).sort()).toEqual([
        'Chunk',
        'Chunk',
        'Finish',
        'Finish',
        'RecordFailure',
        'RecordFailure',
      ]);
      for (const [step, statement] of versioned)
        expect(prefixesOf(statement), `${policy} ${step}`).toEqual([`archive/${policy}/`]);
    }
  });
});

describe('a subjects policy mapping no archived table', () => {
  it('gets no grant on any archive prefix, and none of the erasure’s actions', () => {
    // Act
    const { template } = synthesize(mappingNothingArchived);
    const statements = stepStatements(template, 'gdpr');

    // Assess
    expect(statements.length).toBeGreaterThan(0);
    expect(JSON.stringify(statements)).not.toContain('archive/');
    expect(
      statements.flatMap(([, s]) => actionsOf(s)).filter((action) => ERASURE_ACTIONS.includes(action)),
    ).toEqual([]);
    expect(statements.map(([, s]) => s.Sid)).not.toContain('ReadAndRewriteArchivedObjects');
    // Its own orphans' versions only (Chunk, Finish, RecordFailure), under its own prefix.
    const versioned = statements.filter(([, s]) => actionsOf(s).some((a) => VERSION_ACTIONS.includes(a)));
    expect(new Set(versioned.map(([step]) => step))).toEqual(new Set(['Chunk', 'Finish', 'RecordFailure']));
    for (const [step, statement] of versioned)
      expect(prefixesOf(statement), step).toEqual(['subjects/gdpr/']);
  });
});

describe('grantArchiveErasure with a bucket under a customer-managed key', () => {
  it('lets Chunk use the key through S3 only, and nothing when no archive is mapped', () => {
    // Prepare
    const stack = new Stack(new App(), 'Keyed', { env: { account: '123456789012', region: 'eu-west-1' } });
    const bucket = new Bucket(stack, 'Bucket', { encryption: BucketEncryption.KMS });
    const fn = (id: string) =>
      new LambdaFunction(stack, id, {
        runtime: Runtime.NODEJS_22_X,
        handler: 'index.handler',
        code: Code.fromInline('exports.handler = async () => {};'),
      });
    const functions = {
      start: fn('Start'),
      chunk: fn('Chunk'),
      finish: fn('Finish'),
      recordFailure: fn('RecordFailure'),
    };
    const other = new Stack(new App(), 'Unmapped');
    const otherBucket = new Bucket(other, 'Bucket', { encryption: BucketEncryption.KMS });
    const otherChunk = new LambdaFunction(other, 'Chunk', {
      runtime: Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: Code.fromInline('exports.handler = async () => {};'),
    });

    // Act
    grantArchiveErasure(functions, bucket, 'gdpr', [
      { policy: 'users-archive', table: 'public.users', prefix: 'archive/users-archive/' },
    ]);
    grantArchiveErasure(
      { start: otherChunk, chunk: otherChunk, finish: otherChunk, recordFailure: otherChunk },
      otherBucket,
      'gdpr',
      [],
    );

    // Assess
    const template = Template.fromStack(stack);
    const keyId = logicalIdOf(template, 'AWS::KMS::Key', 'BucketKey');
    const chunkPolicy = Object.entries(template.findResources('AWS::IAM::Policy')).find(([id]) =>
      id.startsWith('ChunkServiceRoleDefaultPolicy'),
    )?.[1];
    expect(chunkPolicy?.Properties.PolicyDocument.Statement).toContainEqual({
      Sid: 'RewriteArchivedObjectsEncryption',
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
      Condition: { StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } },
    });
    expect(Template.fromStack(other).findResources('AWS::IAM::Policy')).toEqual({});
  });
});

describe('the archive grants of a subjects policy and cdk-nag', () => {
  const outdirs: string[] = [];
  afterAll(() => {
    for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['the stack’s bucket', mappingUsers],
    ['an existing bucket', { ...mappingUsers, bucketName: 'acme-archives' }],
    [
      'two archived tables mapped',
      configWith([
        archivePolicy('users-archive', 'public.users'),
        archivePolicy('orders-archive', 'public.orders'),
        subjectsPolicy(['"public"."users"', 'Public.Orders']),
      ]),
    ],
    ['no archived table mapped', mappingNothingArchived],
  ])('leave no unacknowledged finding with %s', (_name, config) => {
    // Prepare
    const outdir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-subjects-nag-'));
    outdirs.push(outdir);
    const { app } = buildApp(config, { bundling: false, validation: false, outdir });

    // Act
    app.synth();
    const direct = new AwsSolutionsChecks().validateScope(app);

    // Assess
    expect(direct.violations.map((violation) => violation.ruleName)).toEqual([]);
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string }> }>;
    };
    expect(
      report.pluginReports.flatMap((r) => r.violations.map((v) => `${r.pluginName}: ${v.ruleName}`)),
    ).toEqual([]);
  });
});
