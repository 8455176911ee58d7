/**
 * An import policy in the stack: its functions get nothing of the bucket (rows go from table to table), and the
 * config refuses a mapping that names the same table twice or maps one column twice.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lib/config-file.ts';
import { actionsOf, roleStatements, STEPS, sandboxConfig, synthesize } from './synth.ts';

const importPolicy = {
  name: 'legacy-exceptions',
  action: 'import',
  import: {
    source: 'legacy.exceptions',
    target: 'public.exceptions',
    columns: { id: 'legacy_id', message: 'msg', occurred_at: 'to_timestamp(ts_epoch)' },
  },
};

function configWith(policy: Record<string, unknown>) {
  return parseConfig({ sandbox: true, policies: [...sandboxConfig().policies, policy] }, 'import config');
}

describe('an import policy in the stack', () => {
  it('synthesizes its state machine and grants it nothing in the bucket', () => {
    const { template } = synthesize(configWith(importPolicy));

    for (const step of STEPS) {
      const s3 = roleStatements(template, 'legacy-exceptions', step)
        .flatMap(actionsOf)
        .filter((a) => a.startsWith('s3:'));
      expect(s3, step).toEqual([]);
    }
    const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine')).map((m) =>
      JSON.stringify(m.Properties.StateMachineName),
    );
    expect(machines.some((name) => name.includes('legacy-exceptions'))).toBe(true);
  });

  it('lets Start and Chunk read exactly the source object of an S3 import, nothing else of its bucket', () => {
    const { template } = synthesize(
      configWith({
        ...importPolicy,
        import: {
          ...importPolicy.import,
          source: { object: 's3://legacy-dumps/2026/exceptions.csv', format: 'csv' },
        },
      }),
    );

    for (const step of STEPS) {
      const statements = roleStatements(template, 'legacy-exceptions', step).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('s3:')),
      );
      if (step === 'Start' || step === 'Chunk') {
        const gets = statements.filter((s) => actionsOf(s).includes('s3:GetObject'));
        expect(JSON.stringify(gets.map((s) => s.Resource))).toContain('legacy-dumps/2026/exceptions.csv');
        expect(JSON.stringify(gets.map((s) => s.Resource))).not.toContain('*');
        const lists = statements.filter((s) => actionsOf(s).includes('s3:ListBucket'));
        expect(lists.map((s) => s.Condition)).toEqual([
          { StringEquals: { 's3:prefix': ['2026/exceptions.csv'] } },
        ]);
        expect(statements.flatMap(actionsOf).sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
      } else {
        expect(statements, step).toEqual([]);
      }
    }
  });

  it.each([
    [{ ...importPolicy.import, target: 'legacy.exceptions' }, /must be another table than source/],
    [{ ...importPolicy.import, columns: { id: 'a', ID: 'b' } }, /names the same target column as id/],
    [{ ...importPolicy.import, columns: {} }, /map at least one target column/],
    [{ ...importPolicy.import, columns: { id: 'a; DROP TABLE x' } }, /import\.columns\.id/],
    [{ ...importPolicy.import, source: 'lifecycle.runs' }, /no policy may touch it/],
    [{ ...importPolicy.import, batch: 5 }, /batch/],
    [{ ...importPolicy.import, source: { object: 'http://x/y.csv', format: 'csv' } }, /s3:\/\/bucket\/key/],
    [{ ...importPolicy.import, source: { object: 's3://b-1/y.csv', format: 'xlsx' } }, /csv|parquet/],
    // The key becomes an IAM ARN: a wildcard would grant the whole bucket.
    [{ ...importPolicy.import, source: { object: 's3://dumps/*', format: 'csv' } }, /no \*, \? or \$/],
    [
      { ...importPolicy.import, source: { object: 's3://dumps/a.csv', format: 'csv', delimiter: '§' } },
      /single-byte/,
    ],
    [
      { ...importPolicy.import, source: { object: 's3://dumps/a.csv', format: 'csv', null: 'a,b' } },
      /delimiter/,
    ],
  ])('refuses %j', (options, message) => {
    expect(() => configWith({ ...importPolicy, import: options })).toThrow(ConfigError);
    expect(() => configWith({ ...importPolicy, import: options })).toThrow(message);
  });
});
