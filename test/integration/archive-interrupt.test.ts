/**
 * Ctrl-C during a local run (`pg-lifecycle run`): the open chunk rolls back, committed chunks stay
 * archived, the run is recorded as interrupted and its lease released, so the next run starts at once
 * and finishes the work.
 */
import { testConfig } from '../support/archive.ts';
import {
  eligibleEventIds,
  expectArchiveGuarantees,
  runRecord,
  seedEvents,
  tableKeys,
} from '../support/archive-guarantees.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

describe('interrupted local run', () => {
  it('records the interruption, releases the lease, keeps every row, and the next run finishes', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare
    await seedEvents(db.pool, 'events', 2000, NOW);
    const tableKeysSql = 'SELECT id::text AS k FROM public.events';
    const before = await tableKeys(db.pool, tableKeysSql);
    const eligible = await eligibleEventIds(db.pool, 'events', NOW, 'P1Y');
    const config = testConfig([
      {
        name: 'interrupted',
        table: 'public.events',
        action: 'archive',
        timeColumn: 'created_at',
        retention: 'P1Y',
        chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
      },
    ]);
    const interrupt = new AbortController();
    let commits = 0;
    const deps = {
      // Ctrl-C arrives while the third chunk is being uploaded, and that upload takes a while longer: the
      // run must not record its failure (and clean up) before the in-flight chunk has stopped.
      hooks: {
        afterUpload: async () => {
          if (++commits !== 3) return;
          interrupt.abort();
          await new Promise((resolve) => setTimeout(resolve, 300));
        },
      },
    };

    // Act
    const interrupted = await runPolicy(config, 'interrupted', { signal: interrupt.signal, deps });

    // Assess
    expect(interrupted.status).toBe('failed');
    expect(interrupted.failure?.error).toBe('Interrupted');
    expect((await runRecord(db.pool, interrupted.failure?.runId))?.status).toBe('failed');
    const scope = {
      pool: db.pool,
      s3,
      bucket,
      policy: 'interrupted',
      tableKeysSql,
      keyOf: (r: Record<string, unknown>) => String(r.id),
    };
    const partial = await expectArchiveGuarantees(scope, before);
    // The chunks committed before Ctrl-C stay archived, and the failed run counts exactly those.
    expect(partial.archivedKeys.length).toBeGreaterThan(0);
    expect(partial.archivedKeys.length).toBeLessThan(eligible.length);
    expect(Number((await runRecord(db.pool, interrupted.failure?.runId))?.rows)).toBe(
      partial.archivedKeys.length,
    );

    // Act: the next run is not locked out and completes the work.
    const next = await runPolicy(config, 'interrupted', { deps: { ...deps, hooks: undefined } });
    expect(next.status).toBe('succeeded');
    const state = await expectArchiveGuarantees(scope, before);
    expect(state.archivedKeys.sort()).toEqual([...eligible].sort());
  });
});
