/**
 * How the chunk loop uses its connections (run/run-chunks.ts): an action with nothing to complete outside the
 * database (purge) runs its chunks one after another on one connection; an archive overlaps them on two, and
 * the next chunk's DELETE is on its way to the server before the previous chunk's Parquet encoding holds the
 * event loop (`ChunkInput.sent`). Both through the real state machine, rows conserved.
 */
import type { ChunkAction, ChunkInput } from '../../functions/actions/chunk-action.ts';
import { type ActionRegistry, actionModules } from '../../functions/actions/registry.ts';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import { runPolicyLocally } from '../../functions/local-runner/local-runner.ts';
import { ledgerObjects, readArchivedRows, testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

const ELIGIBLE = 3000;
const RECENT = 200;
const CHUNK_ROWS = 300;

async function seed(db: TestDatabase, table: string): Promise<void> {
  await db.pool.query(`DROP TABLE IF EXISTS public.${table}`);
  await db.pool.query(
    `CREATE TABLE public.${table} (id bigint PRIMARY KEY, at timestamptz NOT NULL, note text);
     CREATE INDEX ON public.${table} (at)`,
  );
  await db.pool.query(
    `INSERT INTO public.${table}
     SELECT g, $1::timestamptz - interval '100 days' + g * interval '1 minute', repeat('x', g % 50)
       FROM generate_series(1, $2::int) g
     UNION ALL
     SELECT 1000000 + g, $1::timestamptz - g * interval '1 minute', NULL FROM generate_series(1, $3::int) g`,
    [NOW.toISOString(), ELIGIBLE, RECENT],
  );
}

function policy(name: string, action: 'archive' | 'purge', table: string) {
  return {
    name,
    action,
    table: `public.${table}`,
    timeColumn: 'at',
    retention: 'P30D',
    chunking: { initialRows: CHUNK_ROWS, minRows: CHUNK_ROWS, maxRows: CHUNK_ROWS },
    ...(action === 'purge' ? { vacuum: { enabled: false } } : {}),
  };
}

/** Sessions of the run's role in this database with an open transaction, and all of them. */
async function sessions(db: TestDatabase): Promise<{ inTransaction: number; open: number }> {
  const { rows } = await db.pool.query<{ in_tx: number; open: number }>(
    `SELECT count(*) FILTER (WHERE xact_start IS NOT NULL)::int AS in_tx, count(*)::int AS open
       FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'pg-lifecycle'`,
  );
  return { inTransaction: rows[0]?.in_tx ?? 0, open: rows[0]?.open ?? 0 };
}

describe('chunk loop connections', () => {
  it('a purge runs its chunks one after another on one connection (plus the side connection)', async ({
    database: db,
    definition,
  }) => {
    await seed(db, 'seq_purge');
    const seen: Array<{ inTransaction: number; open: number }> = [];
    const config = testConfig([policy('seq-purge', 'purge', 'seq_purge')]);
    const result = await runPolicyLocally({
      config,
      policyName: 'seq-purge',
      definition,
      pauseMs: 0,
      retryIntervalMs: 0,
      dependencies: localDependencies({
        databaseUrl: db.url,
        now: () => NOW,
        // Just before each chunk's COMMIT: its own transaction is the only one open, on one of two sessions.
        hooks: { beforeCommit: async () => void seen.push(await sessions(db)) },
      }),
    });
    expect(result.status).toBe('succeeded');
    expect(result.summary?.rows).toBe(ELIGIBLE);
    expect(seen.length).toBe(ELIGIBLE / CHUNK_ROWS + 1); // the last, empty chunk commits too
    expect(seen.every((s) => s.inTransaction === 1 && s.open === 2)).toBe(true);
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.seq_purge');
    expect(rows[0]?.n).toBe(RECENT);
  });

  it("an archive sends the next chunk's DELETE before it encodes the previous chunk, on a second connection", async ({
    database: db,
    definition,
    bucket,
    s3,
  }) => {
    await seed(db, 'ovl_archive');
    const events: string[] = [];
    let takes = 0;
    // The archive module, its chunk action wrapped to record when each take's statement was sent and when each
    // completion (encoding, upload) began.
    const actions: ActionRegistry = {
      ...actionModules,
      archive: {
        ...actionModules.archive,
        chunkAction: (ctx) => {
          const inner = actionModules.archive.chunkAction(ctx) as ChunkAction;
          const chunkOf = new WeakMap<object, number>();
          return {
            ...inner,
            takeIsTransaction: inner.takeIsTransaction,
            targetHeadroom: inner.targetHeadroom,
            signalsSent: inner.signalsSent,
            take: async (tx, input: ChunkInput, ready) => {
              const n = takes++;
              const sent = () => {
                events.push(`sent ${n}`);
                input.sent?.();
              };
              const taken = await inner.take(tx, { ...input, sent }, ready);
              events.push(`taken ${n}`);
              if (taken) chunkOf.set(taken, n);
              return taken;
            },
            complete: (taken, input) => {
              events.push(`complete ${chunkOf.get(taken)}`);
              return inner.complete(taken, input);
            },
            afterCommit: inner.afterCommit?.bind(inner),
            close: inner.close?.bind(inner),
          };
        },
      },
    };
    const seen: Array<{ inTransaction: number; open: number }> = [];
    const result = await runPolicyLocally({
      config: testConfig([policy('ovl-archive', 'archive', 'ovl_archive')]),
      policyName: 'ovl-archive',
      definition,
      pauseMs: 0,
      retryIntervalMs: 0,
      dependencies: (context) => ({
        ...localDependencies({
          databaseUrl: db.url,
          now: () => NOW,
          bucket,
          s3,
          actions,
          hooks: { beforeCommit: async () => void seen.push(await sessions(db)) },
        })(context),
        // Wait as long as it takes: the order checked below must not depend on this machine's load.
        chunkSentWaitMs: 60_000,
      }),
    });
    expect(result.status).toBe('succeeded');
    expect(result.summary?.rows).toBe(ELIGIBLE);
    const chunks = ELIGIBLE / CHUNK_ROWS;
    // Every chunk but the last had a successor whose statement was sent before its own completion began, and that
    // completion began as soon as it was sent: before the successor's take ended (the loop's own signal, not the
    // end of the take, released it; the wait above is long enough that only the signal can).
    for (let n = 0; n < chunks - 1; n++) {
      expect(events.indexOf(`sent ${n + 1}`)).toBeGreaterThanOrEqual(0);
      expect(events.indexOf(`sent ${n + 1}`)).toBeLessThan(events.indexOf(`complete ${n}`));
      expect(events.indexOf(`complete ${n}`)).toBeLessThan(events.indexOf(`taken ${n + 1}`));
    }
    // Three sessions (side and two chunk connections), and at some COMMIT the next chunk's transaction was open.
    expect(Math.max(...seen.map((s) => s.open))).toBe(3);
    expect(seen.some((s) => s.inTransaction === 2)).toBe(true);
    // Nothing lost: the archived rows are exactly the deleted ones.
    const objects = await ledgerObjects(db.pool, result.summary?.runId);
    const archived = await readArchivedRows(s3, bucket, objects);
    expect(archived.map((row) => Number(row.id)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: ELIGIBLE }, (_, i) => i + 1),
    );
  });
});
