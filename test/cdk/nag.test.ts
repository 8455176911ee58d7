import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app.ts';
import type { PolicyRunner } from '../../lib/constructs/policy-runner.ts';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import type { PgLifecycleStack } from '../../lib/stack.ts';
import { cloudWatchThrottleConfig, fixtureConfig, parallelConfig, sandboxConfig } from './synth.ts';

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

interface ValidationReport {
  readonly pluginReports: ReadonlyArray<{
    readonly pluginName: string;
    readonly violations: ReadonlyArray<{ readonly ruleName: string; readonly severity: string }>;
  }>;
}

/** The orders-archive policy's functions and state machine. */
function runnerOf(stack: PgLifecycleStack): PolicyRunner {
  const runner = stack.runners.get('orders-archive');
  if (!runner) throw new Error('no runner for orders-archive');
  return runner;
}

/** Synthesizes with cdk-nag registered the way bin/app.ts does it. */
function synthWithNag(config: LifecycleConfig) {
  const outdir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-nag-test-'));
  outdirs.push(outdir);
  const built = buildApp(config, { bundling: false, validation: false, outdir });
  return { ...built, outdir };
}

function readReport(outdir: string): ValidationReport {
  return JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
}

/** Every acknowledgement recorded in the tree: [construct path, rule id, reason]. */
function acknowledgements(root: IConstruct): Array<[string, string, string]> {
  return root.node
    .findAll()
    .flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) =>
          Object.entries(entry.data as Record<string, string>).map(
            ([id, reason]) => [construct.node.path, id, reason] as [string, string, string],
          ),
        ),
    );
}

describe('cdk-nag AWS Solutions checks', () => {
  it.each([
    ['an existing database', fixtureConfig()],
    ['an existing bucket', { ...fixtureConfig(), bucketName: 'acme-archives' }],
    ['the sandbox database', sandboxConfig()],
    ['a throttle reading replica lag from CloudWatch', cloudWatchThrottleConfig()],
    ['parallel workers (Distributed Map)', parallelConfig()],
  ])('leave no unacknowledged finding (errors or warnings) with %s', (_name, config) => {
    // Prepare
    const { app, outdir } = synthWithNag(config);

    // Act
    app.synth();
    const direct = new AwsSolutionsChecks().validateScope(app);

    // Assess
    expect(direct.violations.map((violation) => violation.ruleName)).toEqual([]);
    const reported = readReport(outdir).pluginReports.flatMap((report) =>
      report.violations.map(
        (violation) => `${report.pluginName}: ${violation.ruleName} (${violation.severity})`,
      ),
    );
    expect(reported).toEqual([]);
  });

  it('fail the synth on a finding nobody acknowledged', () => {
    // Prepare
    const { app, stack } = synthWithNag(fixtureConfig());
    new Bucket(stack, 'Careless');

    // Act / Assess
    expect(() => app.synth()).toThrow(/AwsSolutions-S10/);
  });

  it.each([
    [
      'a "*" resource on a function role',
      'AwsSolutions-IAM5[Resource::*]',
      (stack: PgLifecycleStack) => {
        runnerOf(stack).functions.finish.addToRolePolicy(
          new PolicyStatement({ actions: ['s3:DeleteObject'], resources: ['*'] }),
        );
      },
    ],
    [
      'a "*" resource on a state machine role',
      'AwsSolutions-IAM5[Resource::*]',
      (stack: PgLifecycleStack) => {
        runnerOf(stack).chunkLoop.stateMachine.addToRolePolicy(
          new PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }),
        );
      },
    ],
    [
      'a wildcard action on a function role',
      'AwsSolutions-IAM5[Action::s3:List*]',
      (stack: PgLifecycleStack) => {
        runnerOf(stack).functions.start.addToRolePolicy(
          new PolicyStatement({ actions: ['s3:List*'], resources: [stack.archiveBucket.bucket.bucketArn] }),
        );
      },
    ],
    [
      "another policy's prefix on a function role",
      '/archive/events-archive/*]',
      (stack: PgLifecycleStack) => {
        runnerOf(stack).functions.recordFailure.addToRolePolicy(
          new PolicyStatement({
            actions: ['s3:DeleteObject'],
            resources: [stack.archiveBucket.bucket.arnForObjects('archive/events-archive/*')],
          }),
        );
      },
    ],
  ])('fail the synth on a new wildcard grant nobody acknowledged: %s', (_name, finding, grant) => {
    // Prepare
    const { app, stack } = synthWithNag(fixtureConfig());
    grant(stack);

    // Act / Assess
    expect(() => app.synth()).toThrow(finding);
  });

  it('still accept the "*"-only actions a role was built with', () => {
    // Prepare: X-Ray upload is on the functions' list of actions AWS authorizes only on "*".
    const { app, stack } = synthWithNag(fixtureConfig());
    runnerOf(stack).functions.chunk.addToRolePolicy(
      new PolicyStatement({ actions: ['xray:PutTraceSegments'], resources: ['*'] }),
    );

    // Act / Assess
    expect(() => app.synth()).not.toThrow();
  });

  it('are acknowledged one finding at a time, each with a specific reason', () => {
    // Prepare
    const { app } = synthWithNag(sandboxConfig());

    // Act
    app.synth();
    const acks = acknowledgements(app);

    // Assess
    expect(acks.length).toBeGreaterThan(10);
    for (const [path, id, reason] of acks) {
      expect(id, path).not.toMatch(/^(Annotation::)?AwsSolutions-IAM[45]$/);
      expect(reason.length, `${path} ${id}`).toBeGreaterThanOrEqual(60);
    }
  });
});
