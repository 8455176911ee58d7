/**
 * The integration files' one setup, as Vitest fixtures: `database` (a database of the file's own),
 * `s3` and `bucket` (a bucket of the file's own on the local S3 server), `runPolicy` (a config's policy
 * through the synthesized state machine against them) and `definition` (that state machine, synthesized
 * once for the file). All are file-scoped and lazy: a file gets a database or a bucket only if one of its
 * tests or hooks names it, and each is dropped (or its client closed) when the file ends, even when a test
 * failed.
 *
 * Use `it`/`test` from here instead of Vitest's, and `beforeAll`/`afterAll` from here where a hook needs a
 * fixture (`beforeAll(async ({ database }) => ...)`: suite hooks see file-scoped fixtures only). A file that
 * extends `test` takes its hooks from `hooksOf(itsTest)`.
 */

import { basename } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { expect, test as vitestTest } from 'vitest';
import type { LocalDependencyOptions } from '../../functions/local-runner/local-dependencies.ts';
import type { LocalRunOptions, LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import { type AslDefinition, synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { contractOf } from '../../lib/contracts/policy.ts';
import { runLocally, testConfig } from './archive.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { createTestBucket, testS3Client } from './s3.ts';

export { describe, expect } from 'vitest';

/** The clock of every integration run: rows are seeded relative to it and `runPolicy` hands it to the steps. */
export const NOW = new Date('2026-11-23T12:00:00.000Z');

export interface RunPolicyOptions extends Omit<LocalRunOptions, 'config' | 'policyName' | 'dependencies'> {
  /**
   * Laid over the file's defaults (its database, `NOW`, and for an archive policy its bucket and client).
   * A key given as undefined removes that default: `{ bucket: undefined }` runs an archive with no bucket.
   */
  readonly deps?: LocalDependencyOptions;
}

/** Runs `policyName` of `config` like `runLocally` (no sleeping), against the file's database and bucket. */
export type RunPolicy = (
  config: LifecycleConfig,
  policyName: string,
  options?: RunPolicyOptions,
) => Promise<LocalRunResult>;

/** The file's fixtures as its own helpers take them (`db` is the `database` fixture): the `services` fixture. */
export interface Services {
  readonly db: TestDatabase;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly runPolicy: RunPolicy;
  readonly definition: AslDefinition;
}

/** Names a file's database and bucket after the file, so that a leftover one says where it came from. */
function filePrefix(): string {
  const path = expect.getState().testPath ?? '';
  return basename(path).replace(/\.test\.ts$/, '') || 'integration';
}

/** The file's S3 client, and its bucket made on first use (a file whose runs are all purges makes none). */
interface Storage {
  readonly s3: S3Client;
  bucket(): Promise<string>;
}

export const test = vitestTest
  .extend('prefix', { scope: 'file' }, (): string => filePrefix())
  .extend('database', { scope: 'file' }, async ({ prefix }, { onCleanup }): Promise<TestDatabase> => {
    const database = await createTestDatabase(prefix);
    onCleanup(() => database.drop());
    return database;
  })
  .extend('storage', { scope: 'file' }, ({ prefix }, { onCleanup }): Storage => {
    const s3 = testS3Client();
    onCleanup(() => s3.destroy());
    let bucket: Promise<string> | undefined;
    return {
      s3,
      bucket: () => {
        bucket ??= createTestBucket(prefix);
        return bucket;
      },
    };
  })
  // Every policy's machine has this definition but for its functions' ARNs (the local runner binds Task
  // states by name): one synth serves all of a file's runs, where each new config would cost another.
  .extend(
    'definition',
    { scope: 'file' },
    (): Promise<AslDefinition> =>
      synthesizeDefinition(
        testConfig([
          {
            name: 'synth-only',
            table: 'synth_only',
            action: 'archive',
            timeColumn: 'created_at',
            retention: 'P1D',
          },
        ]),
      ),
  )
  .extend('s3', { scope: 'file' }, ({ storage }): S3Client => storage.s3)
  .extend('bucket', { scope: 'file' }, ({ storage }): Promise<string> => storage.bucket())
  .extend('runPolicy', { scope: 'file' }, ({ database, storage }): RunPolicy => {
    return async (config, policyName, options = {}) => {
      const { deps, ...rest } = options;
      const policy = config.policies.find((p) => p.name === policyName);
      // As the CLI needs a bucket only for actions that keep objects: a purge run is given no object store.
      const store =
        !policy || contractOf(policy).storage(policy) === undefined
          ? {}
          : deps !== undefined && 'bucket' in deps
            ? { s3: storage.s3 }
            : { s3: storage.s3, bucket: await storage.bucket() };
      return runLocally({
        ...rest,
        config,
        policyName,
        deps: { databaseUrl: database.url, now: () => NOW, ...store, ...deps },
      });
    };
  })
  // All of the above under the names the file's helpers take (naming it makes the bucket and the synth).
  .extend(
    'services',
    { scope: 'file' },
    ({ database, s3, bucket, runPolicy, definition }): Services => ({
      db: database,
      s3,
      bucket,
      runPolicy,
      definition,
    }),
  );

type Hook = (...args: never[]) => unknown;

/**
 * The suite hooks of `extended` (this `test`, or a file's `test.extend(...)` of it), bound: Vitest finds
 * the fixtures through `this`. A file that extends `test` takes its hooks from here: the hooks of another
 * `test` see other instances of the file-scoped fixtures (another database, another bucket).
 */
export function hooksOf<T extends { beforeAll: Hook; afterAll: Hook; beforeEach: Hook; afterEach: Hook }>(
  extended: T,
) {
  return {
    beforeAll: extended.beforeAll.bind(extended) as T['beforeAll'],
    afterAll: extended.afterAll.bind(extended) as T['afterAll'],
    beforeEach: extended.beforeEach.bind(extended) as T['beforeEach'],
    afterEach: extended.afterEach.bind(extended) as T['afterEach'],
  };
}

export const it = test;
export const { beforeAll, afterAll, beforeEach, afterEach } = hooksOf(test);
