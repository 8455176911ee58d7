/**
 * An archive policy over a seeded events table (seedEvents: one row every 6 hours back from NOW), with
 * what its guarantees are checked against, for the tests that disturb such a run (faults, concurrent
 * sessions, taken leases, a killed CLI) and then check that no row was lost or archived twice.
 *
 * `it` here is the fixture's with one more file-scoped fixture, `events`: such archives on the file's
 * database and bucket. A file using it takes its hooks from here too (see `hooksOf`).
 */
import { expect } from 'vitest';
import type { LocalDependencyOptions } from '../../functions/local-runner/local-dependencies.ts';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from './archive.ts';
import {
  type ArchiveScope,
  type ArchiveState,
  eligibleEventIds,
  expectArchiveGuarantees,
  idKeyedScope,
  runRecord,
  seedEvents,
  tableKeys,
} from './archive-guarantees.ts';
import { hooksOf, NOW, type Services, test } from './fixture.ts';

export interface EventArchiveOptions {
  /** `public.<table>`; the policy's name with `-` as `_` when absent. */
  readonly table?: string;
  /** @default 2000 */
  readonly rows?: number;
  /** @default 'P90D' */
  readonly retention?: string;
  /** @default fixed 200-row chunks */
  readonly chunking?: Readonly<Record<string, number>>;
  readonly filter?: string;
  readonly filterFunctions?: readonly string[];
  /** Workers of a parallel run. @default none (one chunk loop) */
  readonly parallelism?: number;
  /** An index on `created_at`: the archive's chunks are then window DELETEs. @default false */
  readonly timeIndex?: boolean;
}

export interface PreparedEventArchive {
  readonly table: string;
  readonly scope: ArchiveScope;
  /** Keys of every row before the run. */
  readonly before: string[];
  /** Keys of the rows the policy archives at NOW (before any run). */
  readonly eligible: string[];
  readonly config: ReturnType<typeof testConfig>;
}

/** Fixed 200-row chunks: 1,641 eligible rows of 2,000 make 9 chunks, most spanning two month partitions. */
export const FIXED_CHUNKS = { initialRows: 200, minRows: 200, maxRows: 200 };

/** A year's retention in 100-row chunks: of 2,000 events the oldest 540 are past it, six chunks. */
export const YEAR_IN_CHUNKS_OF_100 = {
  retention: 'P1Y',
  chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
} as const;

/** The archive policy `name` on `public.<table>` by `created_at`. */
export function eventArchivePolicy(
  name: string,
  table: string,
  options: Omit<EventArchiveOptions, 'table' | 'rows'> = {},
): LifecycleConfigInput['policies'][number] {
  return {
    name,
    table: `public.${table}`,
    action: 'archive',
    timeColumn: 'created_at',
    retention: options.retention ?? 'P90D',
    chunking: { ...(options.chunking ?? FIXED_CHUNKS) },
    ...(options.filter === undefined ? {} : { filter: options.filter }),
    ...(options.filterFunctions === undefined ? {} : { filterFunctions: [...options.filterFunctions] }),
    ...(options.parallelism === undefined ? {} : { parallelism: options.parallelism }),
  };
}

/** Seeds the events table of `policy` and returns the policy's config and what the run is checked against. */
export async function prepareEventArchive(
  services: Pick<Services, 'db' | 's3' | 'bucket'>,
  policy: string,
  options: EventArchiveOptions = {},
): Promise<PreparedEventArchive> {
  const { db } = services;
  const table = options.table ?? policy.replaceAll('-', '_');
  const retention = options.retention ?? 'P90D';
  await seedEvents(db.pool, table, options.rows ?? 2000, NOW, { timeIndex: options.timeIndex ?? false });
  const scope = idKeyedScope(services, policy, table);
  return {
    table,
    scope,
    before: await tableKeys(db.pool, scope.tableKeysSql),
    eligible: await eligibleEventIds(db.pool, table, NOW, retention),
    config: testConfig([eventArchivePolicy(policy, table, options)]),
  };
}

export const sorted = (keys: readonly string[]): string[] => [...keys].sort();

/** `all` but `removed`, in the order of `all`. */
export function without(all: readonly string[], removed: readonly string[]): string[] {
  const gone = new Set(removed);
  return all.filter((k) => !gone.has(k));
}

/** The run succeeded and archived exactly the eligible rows, once each, with every guarantee kept. */
export async function expectCompleteArchive(
  prepared: PreparedEventArchive,
  result: LocalRunResult,
): Promise<ArchiveState> {
  expect(result.failure).toBeUndefined();
  expect(result.status).toBe('succeeded');
  const state = await expectArchiveGuarantees(prepared.scope, prepared.before);
  expect(sorted(state.archivedKeys)).toEqual(sorted(prepared.eligible));
  expect(sorted(state.remainingKeys)).toEqual(sorted(without(prepared.before, prepared.eligible)));
  expect(result.summary?.rows).toBe(prepared.eligible.length);
  const run = await runRecord(prepared.scope.pool, result.summary?.runId);
  expect(run).toMatchObject({
    status: 'succeeded',
    rows: String(prepared.eligible.length),
    error_name: null,
  });
  return state;
}

/** The file's events archives (the `events` fixture). */
export interface EventArchives {
  /** Seeds the events table of `policy` and returns the policy's config and what its run is checked against. */
  prepare(policy: string, options?: EventArchiveOptions): Promise<PreparedEventArchive>;
  /**
   * Runs the prepared policy on the file's definition with about one chunk per Chunk invocation, so that
   * the run spans several Lambda invocations (and their retries); `deps` are the faults to inject.
   */
  run(prepared: PreparedEventArchive, deps?: LocalDependencyOptions): Promise<LocalRunResult>;
}

export const it = test.extend(
  'events',
  { scope: 'file' },
  ({ database, s3, bucket, runPolicy, definition }): EventArchives => ({
    prepare: (policy, options) => prepareEventArchive({ db: database, s3, bucket }, policy, options),
    run: (prepared, deps = {}) =>
      runPolicy(prepared.config, prepared.scope.policy, { definition, chunkBudgetMs: 1_100, deps }),
  }),
);

export const { beforeAll, afterAll, beforeEach, afterEach } = hooksOf(it);
