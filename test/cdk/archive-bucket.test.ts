import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config-file.ts';
import { fixtureConfig, logicalIdOf, synthesize } from './synth.ts';

const { template } = synthesize(fixtureConfig());
const bucketId = logicalIdOf(template, 'AWS::S3::Bucket', /^ArchiveBucket[0-9A-F]{8}$/);
const logBucketId = logicalIdOf(template, 'AWS::S3::Bucket', 'ArchiveBucketAccessLogs');

const sslOnlyStatement = Match.objectLike({
  Effect: 'Deny',
  Action: 's3:*',
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
});

describe('archive bucket', () => {
  it('is versioned, SSE-S3 encrypted, private, owner-enforced, logged and retained', () => {
    // Assess
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        VersioningConfiguration: { Status: 'Enabled' },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LoggingConfiguration: {
          DestinationBucketName: { Ref: logBucketId },
          LogFilePrefix: 'archive-bucket/',
        },
      }),
    });
  });

  it('aborts incomplete multipart uploads and expires noncurrent versions', () => {
    // Assess
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          {
            Id: 'abort-incomplete-multipart',
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
            Status: 'Enabled',
          },
          {
            Id: 'expire-noncurrent-versions',
            NoncurrentVersionExpiration: { NoncurrentDays: 30 },
            ExpiredObjectDeleteMarker: true,
            Status: 'Enabled',
          },
        ]),
      },
    });
  });

  it('moves each archive policy prefix through IA, Glacier IR and Deep Archive on its own schedule', () => {
    // Assess
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          {
            Id: 'archive-orders-archive',
            Prefix: 'archive/orders-archive/',
            Status: 'Enabled',
            Transitions: [
              { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
              { StorageClass: 'GLACIER_IR', TransitionInDays: 90 },
              { StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 365 },
            ],
            ExpirationInDays: 3650,
          },
          {
            Id: 'archive-events-archive',
            Prefix: 'archive/events-archive/',
            Status: 'Enabled',
            Transitions: [
              { StorageClass: 'STANDARD_IA', TransitionInDays: 60 },
              { StorageClass: 'GLACIER_IR', TransitionInDays: 120 },
              { StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 240 },
            ],
          },
        ]),
      },
    });
  });

  it('has no lifecycle rule for purge policies', () => {
    // Assess
    const bucket = template.findResources('AWS::S3::Bucket')[bucketId];
    const rules = ((bucket?.Properties.LifecycleConfiguration.Rules ?? []) as Array<{ Id: string }>).map(
      (rule) => rule.Id,
    );
    expect(rules).toEqual([
      'abort-incomplete-multipart',
      'expire-noncurrent-versions',
      'archive-orders-archive',
      'archive-events-archive',
    ]);
  });

  it('refuses requests without TLS on both buckets', () => {
    // Assess
    for (const id of [bucketId, logBucketId]) {
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id },
        PolicyDocument: { Statement: Match.arrayWith([sslOnlyStatement]) },
      });
    }
  });

  it('keeps access logs in an encrypted, private bucket that only S3 log delivery writes to', () => {
    // Assess
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: Match.objectLike({
        BlockPublicAcls: true,
        RestrictPublicBuckets: true,
      }),
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-access-logs', ExpirationInDays: 365 })]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logBucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: 's3:PutObject',
            Principal: { Service: 'logging.s3.amazonaws.com' },
          }),
        ]),
      },
    });
  });

  it('uses an existing bucket as is when bucketName is configured', () => {
    // Prepare
    const config = { ...fixtureConfig(), bucketName: 'acme-archives' };

    // Act
    const { template: existing } = synthesize(config);

    // Assess
    existing.resourceCountIs('AWS::S3::Bucket', 0);
    existing.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'WriteVerifyAndLockArchives',
            Resource: {
              'Fn::Join': [
                '',
                ['arn:', { Ref: 'AWS::Partition' }, ':s3:::acme-archives/archive/orders-archive/*'],
              ],
            },
          }),
        ]),
      },
    });
  });

  it('enables Object Lock, without a default retention, only when a policy asks for objectLock', () => {
    // Prepare
    const base = fixtureConfig();
    const locked = parseConfig(
      {
        ...base,
        policies: base.policies.map((policy) =>
          policy.name === 'events-archive' && policy.action === 'archive'
            ? { ...policy, archive: { ...policy.archive, objectLock: { mode: 'GOVERNANCE', days: 90 } } }
            : policy,
        ),
      },
      'inline',
    );

    // Act
    const { template: lockedTemplate } = synthesize(locked);
    const archiveBucket = (tmpl: typeof template) =>
      tmpl.toJSON().Resources[logicalIdOf(tmpl, 'AWS::S3::Bucket', /^ArchiveBucket[0-9A-F]{8}$/)].Properties;

    // Assess: through ObjectLockConfiguration with no Rule (every object would be locked at upload with a
    // default retention, orphans of rolled-back chunks included; retention is set per object once the ledger
    // lists it). Never the top-level ObjectLockEnabled, which CloudFormation may only set by replacing a
    // deployed bucket: its ledger lists objects in the old one.
    expect(archiveBucket(lockedTemplate)).toMatchObject({
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' },
      VersioningConfiguration: { Status: 'Enabled' },
    });
    expect(archiveBucket(lockedTemplate).ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled' });
    expect(archiveBucket(template).ObjectLockConfiguration).toBeUndefined();
    // No bucket of either template sets the top-level property; the access-log bucket never gets Object
    // Lock (S3 refuses it as a log target then).
    for (const tmpl of [template, lockedTemplate]) {
      const buckets = Object.values(tmpl.findResources('AWS::S3::Bucket')) as Array<{
        Properties: Record<string, unknown>;
      }>;
      expect(buckets.length).toBe(2);
      for (const bucket of buckets) expect(bucket.Properties).not.toHaveProperty('ObjectLockEnabled');
    }
    expect(
      lockedTemplate.toJSON().Resources[
        logicalIdOf(lockedTemplate, 'AWS::S3::Bucket', 'ArchiveBucketAccessLogs')
      ].Properties.ObjectLockConfiguration,
    ).toBeUndefined();
  });

  it.each([
    [
      'an expiry before the lock ends',
      { objectLock: { mode: 'COMPLIANCE', days: 4000 }, storage: { expireAfterDays: 3650 } },
      /policies\[0\]\.archive\.objectLock: storage\.expireAfterDays \(3650\) is shorter than objectLock\.days \(4000\)/,
    ],
    [
      'an unknown mode',
      { objectLock: { mode: 'LEGAL_HOLD', days: 30 } },
      /policies\[0\]\.archive\.objectLock\.mode/,
    ],
    [
      'zero days',
      { objectLock: { mode: 'GOVERNANCE', days: 0 } },
      /policies\[0\]\.archive\.objectLock\.days/,
    ],
    ['more than 100 years', { objectLock: { mode: 'GOVERNANCE', days: 36_501 } }, /objectLock\.days/],
  ])('refuses objectLock with %s', (_name, archive, problem) => {
    // Prepare
    const base = fixtureConfig();
    const [orders] = base.policies;

    // Act / Assess
    expect(() =>
      parseConfig(
        {
          ...base,
          policies: [{ ...orders, archive: { ...(orders as { archive: object }).archive, ...archive } }],
        },
        'inline',
      ),
    ).toThrow(problem);
  });
});
