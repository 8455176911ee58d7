/**
 * An anonymize policy in the stack: its Start and Chunk functions (and only they) may read the hash key secret
 * the config names, by its full ARN; without a secret in the config nothing is granted (Start then refuses a
 * policy that hashes); nothing of the bucket is granted to any of its functions (its rows stay in the table);
 * and the config refuses noise without a marker column.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config-file.ts';
import { actionsOf, roleStatements, STEPS, sandboxConfig, synthesize } from './synth.ts';

const HASH_KEY_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pg-lifecycle/hash-key-AbCdEf';

const anonymizePolicy = {
  name: 'old-profiles',
  action: 'anonymize',
  table: 'public.user_profiles',
  timeColumn: 'last_login',
  retention: 'P5Y',
  schedule: 'cron(0 3 ? * SUN *)',
  anonymize: { columns: { email: { strategy: 'email' }, notes: { strategy: 'null' } } },
};

function configWith(extra: Record<string, unknown> = {}) {
  return parseConfig(
    { sandbox: true, policies: [...sandboxConfig().policies, anonymizePolicy], ...extra },
    'anonymize config',
  );
}

const secretReads = (
  policy: string,
  step: (typeof STEPS)[number],
  template: ReturnType<typeof synthesize>['template'],
) =>
  roleStatements(template, policy, step).filter(
    // CDK merges the grants of one action set into one statement: the ARN is one of its resources.
    (s) =>
      actionsOf(s).includes('secretsmanager:GetSecretValue') && [s.Resource].flat().includes(HASH_KEY_ARN),
  );

describe('an anonymize policy in the stack', () => {
  it('lets only its Start and Chunk functions read the hash key secret, and grants it nothing in the bucket', () => {
    // Act
    const { template } = synthesize(configWith({ anonymization: { hashKeySecretArn: HASH_KEY_ARN } }));

    // Assess
    for (const step of STEPS) {
      const reads = secretReads('old-profiles', step, template);
      expect(reads.length, step).toBe(step === 'Start' || step === 'Chunk' ? 1 : 0);
      expect(
        roleStatements(template, 'old-profiles', step)
          .flatMap(actionsOf)
          .filter((a) => a.startsWith('s3:')),
      ).toEqual([]);
      expect(secretReads('orders-archive', step, template)).toEqual([]);
    }
    const functions = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (f) => f.Properties.Environment?.Variables?.HASH_KEY_SECRET_ARN === HASH_KEY_ARN,
    );
    expect(functions).toHaveLength(2);
  });

  it('grants no secret without anonymization.hashKeySecretArn', () => {
    const { template } = synthesize(configWith());

    for (const step of STEPS) expect(secretReads('old-profiles', step, template)).toEqual([]);
    expect(JSON.stringify(template.toJSON())).not.toContain('HASH_KEY_SECRET_ARN');
  });

  it('refuses noise without a marker column, and masking the time column', () => {
    const bad = {
      ...anonymizePolicy,
      anonymize: {
        columns: { salary: { strategy: 'noise', amount: 100 }, last_login: { strategy: 'null' } },
      },
    };

    expect(() => parseConfig({ sandbox: true, policies: [bad] }, 'bad config')).toThrow(
      /noise is not idempotent by value[\s\S]*time column/,
    );
  });
});

describe('a subjects policy in the stack', () => {
  it('bounds its functions’ S3 access to subjects/<policy>/ and lets Start and Chunk read the hash key', () => {
    // Prepare
    const subjects = {
      name: 'gdpr',
      action: 'subjects',
      schedule: 'rate(1 hour)',
      subjects: {
        keyName: 'user_id',
        tables: [{ table: 'public.users', keyColumn: 'id', action: 'delete' }],
      },
    };

    // Act
    const { template } = synthesize(
      parseConfig(
        {
          sandbox: true,
          anonymization: { hashKeySecretArn: HASH_KEY_ARN },
          policies: [...sandboxConfig().policies, subjects],
        },
        'subjects config',
      ),
    );

    // Assess: every S3 object statement of its Chunk function names the policy's own prefix, nothing wider.
    const s3Resources = roleStatements(template, 'gdpr', 'Chunk')
      .filter((s) => actionsOf(s).some((a) => a.startsWith('s3:') && a.includes('Object')))
      .flatMap((s) => [s.Resource].flat())
      .map((r) => JSON.stringify(r));
    expect(s3Resources.length).toBeGreaterThan(0);
    for (const resource of s3Resources) expect(resource).toContain('/subjects/gdpr/');
    // Every erasure records keyed hashes: its Start and Chunk read the hash key, the others do not.
    for (const step of STEPS)
      expect(secretReads('gdpr', step, template).length, step).toBe(
        step === 'Start' || step === 'Chunk' ? 1 : 0,
      );
  });
});
