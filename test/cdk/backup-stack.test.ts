/**
 * A backup policy in the stack: its schedule starts the same chunk-loop machine, its objects live under
 * `backup/<policy>/` and expire after retentionDays, and its functions may touch nothing else: the chunk
 * writes parts, Finish reads schema.sql back and writes post-data and the manifest, Finish and RecordFailure
 * list and delete under the prefix (a failed backup's objects) — no more.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { sandboxConfig, synthesize } from './synth.ts';

const config = sandboxConfig({
  policies: [
    {
      name: 'nightly',
      action: 'backup',
      schedule: 'cron(0 1 * * ? *)',
      backup: {
        tables: ['public.*', '"Sales"."Order Lines"'],
        exclude: ['public.audit_logs'],
        retentionDays: 30,
      },
    },
  ],
});
const { template } = synthesize(config);

function statementsOf(
  roleMatch: RegExp,
): Array<{ Sid?: string; Action: string | string[]; Resource: unknown }> {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.entries(policies)
    .filter(([id]) => roleMatch.test(id))
    .flatMap(
      ([, resource]) =>
        (resource as { Properties: { PolicyDocument: { Statement: never[] } } }).Properties.PolicyDocument
          .Statement,
    );
}

describe('backup policy in the stack', () => {
  it('expires its objects after retentionDays under its own prefix', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Id: 'backup-nightly',
            Prefix: 'backup/nightly/',
            ExpirationInDays: 30,
            Status: 'Enabled',
          }),
        ]),
      },
    });
  });

  it('schedules the run at the policy’s cron', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 1 * * ? *)',
      Description: Match.stringLikeRegexp('backup of public\\.\\*, "Sales"\\."Order Lines"'),
    });
  });

  it('grants S3 actions only under backup/nightly/', () => {
    const all = statementsOf(/nightly/i).filter((s) => JSON.stringify(s.Action).includes('s3:'));
    expect(all.length).toBeGreaterThan(0);
    for (const statement of all) {
      const text = JSON.stringify(statement);
      // Object actions on the prefix's keys; ListBucket only with the prefix condition.
      expect(text.includes('backup/nightly/*'), text).toBe(true);
      expect(text).not.toMatch(/archive\//);
    }
    const finish = statementsOf(/nightlyFinish|FinishnightlY|nightly.*Finish/i);
    const actions = finish.flatMap((s) => [s.Action].flat());
    expect(actions).toEqual(
      expect.arrayContaining(['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:ListBucket']),
    );
  });
});
