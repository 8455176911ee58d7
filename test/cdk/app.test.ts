import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildApp, readCdkJsonContext, STACK_ID } from '../../lib/app.ts';
import { glueDatabaseNameFor } from '../../lib/stack.ts';
import { fixtureConfig } from './synth.ts';

describe('buildApp', () => {
  it('applies the feature flags of cdk.json, so in-process synth matches `cdk synth`', () => {
    // Prepare
    const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
      app: string;
      context: Record<string, unknown>;
    };

    // Act
    const { app } = buildApp(fixtureConfig(), { bundling: false, nag: false, validation: false });

    // Assess
    expect(cdkJson.app).toBe('node --import tsx bin/app.ts');
    expect(readCdkJsonContext()).toEqual(cdkJson.context);
    expect(app.node.tryGetContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy')).toBe(true);
  });

  it('turns bundling off through the bundling-stacks context and names the stack', () => {
    // Act
    const { app, stack } = buildApp(fixtureConfig(), { bundling: false, stackName: 'PgLifecycleStaging' });

    // Assess
    expect(app.node.tryGetContext('aws:cdk:bundling-stacks')).toEqual([]);
    expect(stack.node.id).toBe(STACK_ID);
    expect(stack.stackName).toBe('PgLifecycleStaging');
    expect(stack.glueDatabaseName).toBe('pg_lifecycle_staging');
  });
});

describe('glueDatabaseNameFor', () => {
  it.each([
    ['PgLifecycle', 'pg_lifecycle'],
    ['pg-lifecycle-prod', 'pg_lifecycle_prod'],
    ['Orders2DB', 'orders2_db'],
  ])('%s → %s', (stackName, expected) => {
    expect(glueDatabaseNameFor(stackName)).toBe(expected);
  });
});
