/**
 * The one CDK test with bundling on: esbuild turns each handler into an ES module that Node can load
 * (CJS dependencies such as pg need the createRequire banner; a broken bundle fails at import time).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { listMigrations } from '../../functions/adapters/migrations.ts';
import { buildApp } from '../../lib/app.ts';
import { fixtureConfig } from './synth.ts';

const run = promisify(execFile);
const outdir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-bundling-test-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe('handler bundles', () => {
  it('bundle the four handlers once each, to loadable ES modules exporting handler', async () => {
    // Prepare
    const { app, stack } = buildApp(fixtureConfig(), {
      bundling: true,
      nag: false,
      validation: false,
      outdir,
    });

    // Act
    const assembly = app.synth();
    const template = assembly.getStackByName(stack.stackName).template as {
      Resources: Record<string, { Type: string; Properties: { Code?: { S3Key?: string } } }>;
    };
    // The staged asset directory of a function is `asset.<hash>`, its S3 key `<hash>.zip`.
    const assetDirs = Object.values(template.Resources)
      .filter((resource) => resource.Type === 'AWS::Lambda::Function')
      .map((resource) => resource.Properties.Code?.S3Key?.replace(/\.zip$/, ''))
      .filter((hash): hash is string => hash !== undefined && existsSync(join(outdir, `asset.${hash}`)))
      .map((hash) => join(outdir, `asset.${hash}`));

    // Assess: every policy has its own four functions, all of them on the same four code assets (bundled once);
    // the stack's compliance check has a fifth.
    const enabledPolicies = fixtureConfig().policies.filter((policy) => policy.enabled).length;
    expect(assetDirs).toHaveLength(4 * enabledPolicies + 1);
    const assets = [...new Set(assetDirs)];
    expect(assets).toHaveLength(5);
    for (const dir of assets) {
      const bundle = join(dir, 'index.mjs');
      expect(existsSync(join(dir, 'index.mjs.map')), dir).toBe(true);
      // The start step applies the ledger migrations from sql/ beside the bundle.
      expect(readdirSync(join(dir, 'sql')).sort(), dir).toEqual(
        listMigrations().map((m) => `${m.version}.sql`),
      );
      expect(
        readFileSync(bundle, 'utf8').startsWith('import { createRequire as __pgLifecycleCreateRequire }'),
      ).toBe(true);
      // A separate process: importing a handler must not touch this test's module graph.
      const { stdout } = await run(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(pathToFileURL(bundle).href)}); console.log(typeof m.handler);`,
        ],
        {
          timeout: 30_000,
          env: {
            PATH: process.env.PATH,
            AWS_REGION: 'eu-west-1',
            DB_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf',
            DB_SSL: 'verify-full',
            ARCHIVE_BUCKET: 'bucket',
            GLUE_DATABASE: 'pg_lifecycle',
            POWERTOOLS_SERVICE_NAME: 'pg-lifecycle',
            POWERTOOLS_METRICS_NAMESPACE: 'PgLifecycle',
          },
        },
      );
      expect(stdout.trim(), bundle).toBe('function');
    }
  });
});
