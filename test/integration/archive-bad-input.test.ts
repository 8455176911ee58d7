/**
 * Bad input, through the synthesized state machine (run locally with the real handlers) against a real
 * PostgreSQL and a real S3 API server: each mistake ends the run as failed with an error that names it,
 * and changes nothing: not the table, not the ledger (runs, chunks, objects, pending keys, leases), not S3
 * (the database's catalog and every table's rows, and the bucket's objects, byte for byte).
 */
import { createServer } from 'node:net';
import type { LocalDependencyOptions } from '../../functions/local-runner/local-dependencies.ts';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import { policyDigest } from '../../lib/contracts/policy-digest.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { testConfig } from '../support/archive.ts';
import { seedEvents } from '../support/archive-guarantees.ts';
import { beforeAll, describe, expect, it, NOW, type Services } from '../support/fixture.ts';
import { closedPort } from '../support/net.ts';
import { snapshotDatabaseAndBucket } from '../support/snapshot.ts';

const TABLE = 'bad_input_events';

/** A valid policy on a table with eligible rows; each case breaks one thing. */
const validPolicy = {
  name: 'bad-input',
  table: `public.${TABLE}`,
  action: 'archive' as const,
  timeColumn: 'created_at',
  retention: 'P90D',
  chunking: { initialRows: 200, minRows: 200, maxRows: 200 },
};

/** What the stack gives the Start function for a config holding only `validPolicy`. */
function deployedDigests(): Record<string, string> {
  const input = buildExecutionInput(testConfig([validPolicy]), validPolicy.name, 'schedule', false);
  return { [validPolicy.name]: policyDigest(input.policy, input.chunking) };
}

/** Everything a run could change (the database's catalog and rows, the bucket), in a comparable form. */
const everything = ({ db, s3, bucket }: Pick<Services, 'db' | 's3' | 'bucket'>) =>
  snapshotDatabaseAndBucket(db.url, s3, bucket);

beforeAll(async ({ database: db, runPolicy, definition }) => {
  await seedEvents(db.pool, TABLE, 1000, NOW);
  // A ledger with history (one earlier run of another policy, its objects in the bucket) to stay unchanged.
  await seedEvents(db.pool, 'earlier_events', 300, NOW);
  const earlier = await runPolicy(
    testConfig([{ ...validPolicy, name: 'earlier', table: 'public.earlier_events' }]),
    'earlier',
    { definition },
  );
  if (earlier.status !== 'succeeded') throw new Error(`baseline run ${earlier.status}`);
});

interface BadInputCase {
  readonly title: string;
  readonly policy?: Partial<typeof validPolicy> & { filter?: string };
  /** Laid over the run's dependencies; given the file's bucket. */
  readonly deps?: (bucket: string) => Promise<Partial<LocalDependencyOptions>>;
  readonly error: string;
  readonly cause: RegExp;
}

const cases: BadInputCase[] = [
  {
    title: 'an unknown table',
    policy: { table: 'public.no_such_table' },
    error: 'CatalogError',
    cause: /no_such_table.* does not exist/,
  },
  {
    title: 'an unknown timeColumn',
    policy: { timeColumn: 'no_such_column' },
    error: 'CatalogError',
    cause: /column no_such_column does not exist in "public"."bad_input_events"/,
  },
  {
    title: 'a timeColumn that is not a time type',
    policy: { timeColumn: 'payload' },
    error: 'CatalogError',
    cause: /payload is text; timeColumn must be timestamptz, timestamp or date/,
  },
  {
    title: 'a filter naming an unknown column',
    policy: { filter: 'no_such_column = 1' },
    error: 'InvalidFilterError',
    cause: /no_such_column = 1.*column "no_such_column" does not exist/,
  },
  {
    // EXPLAIN would not run it; the plan's counts and every chunk would, once per row.
    title: 'a filter calling a volatile function (it could write, end sessions or change settings)',
    policy: { filter: `payload IS NOT NULL AND "set_config"('statement_timeout', '0', false) IS NOT NULL` },
    error: 'InvalidFilterError',
    cause: /calls set_config\(text,text,boolean\) \(volatile\): a volatile function/,
  },
  {
    // It plans (EXPLAIN casts nothing); the first rows read make it fail, before any lease or run row.
    title: 'a filter that fails on the rows themselves',
    policy: { filter: `(payload::jsonb ->> 'x') IS NULL` },
    error: 'InvalidFilterError',
    cause: /fails on its rows: 22P02: invalid input syntax for type json/,
  },
  {
    title: 'a filter that is not boolean',
    policy: { filter: '1 + 1' },
    error: 'InvalidFilterError',
    cause: /1 \+ 1.*must be type boolean/,
  },
  {
    // StartExecution rights alone must not point a deployed stack at another filter, table or retention.
    title: 'an execution input whose policy differs from the deployed one',
    policy: { filter: 'true' },
    deps: async () => ({ deployedPolicies: deployedDigests() }),
    error: 'InvalidPayloadError',
    cause: /policy "bad-input" differs from the deployed configuration/,
  },
  {
    title: 'an execution input naming a policy that is not deployed',
    policy: { name: 'not-deployed' } as Partial<typeof validPolicy>,
    deps: async () => ({ deployedPolicies: deployedDigests() }),
    error: 'InvalidPayloadError',
    cause: /policy "not-deployed" is not deployed \(known: bad-input\)/,
  },
  {
    title: 'a bucket that does not exist',
    deps: async (bucket) => ({ bucket: `${bucket}-missing` }),
    error: 'StorageConfigurationError',
    // Start lists the policy's prefix (its only bucket grant), so S3 names the missing bucket.
    cause: /bucket archive-bad-input-.*-missing: NoSuchBucket \(404\)/,
  },
  {
    title: 'an unreachable database (after the retries)',
    deps: async () => ({
      databaseUrl: `postgres://postgres:postgres@127.0.0.1:${await closedPort()}/postgres`,
    }),
    error: 'TransientDatabaseError',
    cause: /ECONNREFUSED/,
  },
];

describe('archive with bad input', () => {
  it.for(cases)(
    'refuses $title with $error and changes nothing',
    async ({ policy, deps, error, cause }, { services }) => {
      const { bucket, runPolicy, definition } = services;
      // Prepare
      const before = await everything(services);
      const config = testConfig([{ ...validPolicy, ...policy }]);

      // Act
      const result = await runPolicy(config, policy?.name ?? validPolicy.name, {
        definition,
        deps: await deps?.(bucket),
      });

      // Assess
      expect(result.status).toBe('failed');
      expect(result.summary).toBeUndefined();
      expect(result.failure?.error).toBe(error);
      expect(result.failure?.cause).toMatch(cause);
      // Refused before a run was opened: nothing to close, no run id.
      expect(result.failure?.runId).toBeUndefined();
      expect(result.chunkInvocations).toBe(0);
      expect(await everything(services)).toEqual(before);
    },
  );

  it('retries a database that drops every connection, then fails with TransientDatabaseError', async ({
    services,
  }) => {
    const { runPolicy, definition } = services;
    // Prepare: a server that accepts and immediately closes each connection, counting them.
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    const before = await everything(services);

    // Act
    let result: LocalRunResult;
    try {
      result = await runPolicy(testConfig([validPolicy]), validPolicy.name, {
        definition,
        deps: { databaseUrl: `postgres://postgres:postgres@127.0.0.1:${address.port}/postgres` },
      });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }

    // Assess: Start was tried 1 + 6 times (the Retry's MaxAttempts), then the failure was recorded.
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('TransientDatabaseError');
    expect(result.failure?.cause).toMatch(/Connection terminated/);
    expect(connections).toBe(7);
    expect(await everything(services)).toEqual(before);
  });

  it.for(['CASCADE', 'SET NULL'])(
    'refuses a table referenced ON DELETE %s (those rows would change unarchived) and changes nothing',
    async (onDelete, { services }) => {
      const { db, runPolicy, definition } = services;
      // Prepare: a child row for every event, nullable so SET NULL applies.
      await db.pool.query(`
        CREATE TABLE public.event_tags (
          id integer PRIMARY KEY,
          event_id bigint CONSTRAINT tags_event_fk REFERENCES public.${TABLE} (id) ON DELETE ${onDelete})`);
      await db.pool.query(`INSERT INTO public.event_tags SELECT id, id FROM public.${TABLE}`);
      const before = await everything(services);

      // Act
      let plan: LocalRunResult;
      let result: LocalRunResult;
      let after: Awaited<ReturnType<typeof everything>>;
      try {
        const config = testConfig([validPolicy]);
        plan = await runPolicy(config, validPolicy.name, { definition, dryRun: true });
        result = await runPolicy(config, validPolicy.name, { definition });
        // The child table's rows are part of the picture: taken before the table goes.
        after = await everything(services);
      } finally {
        await db.pool.query(`DROP TABLE public.event_tags`);
      }

      // Assess
      expect(plan.summary?.plan?.refusals.map((r) => r.error)).toEqual(['ForeignKeyError']);
      expect(result.status).toBe('failed');
      expect(result.failure?.error).toBe('ForeignKeyError');
      expect(result.failure?.cause).toContain(
        `"public"."event_tags" (constraint tags_event_fk, ON DELETE ${onDelete})`,
      );
      expect(result.failure?.runId).toBeUndefined();
      expect(after).toEqual(before);
    },
  );
});
