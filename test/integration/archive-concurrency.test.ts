/**
 * Archive runs alongside other sessions, through the synthesized state machine (run locally with the
 * real handlers) against a real PostgreSQL and a real S3 API server: concurrent updates of the rows being
 * archived, a second run of the same policy, and rows locked by another transaction.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import type { ChunkFaultHooks } from '../../functions/run/dependencies.ts';
import { testConfig } from '../support/archive.ts';
import { expectArchiveGuarantees, runsOfPolicy } from '../support/archive-guarantees.ts';
import { eventArchivePolicy, FIXED_CHUNKS, it, sorted } from '../support/event-archive.ts';
import { describe, expect } from '../support/fixture.ts';
import { openSession } from '../support/sessions.ts';
import { capturingLogger, chunkSelections } from '../support/subject-archives.ts';

/** Holds each chunk's locks a little longer, so other sessions really overlap with open chunks. */
const slowCommit = (ms: number): ChunkFaultHooks => ({ beforeCommit: () => sleep(ms) });

// Each case twice: keyset slices (no index on the time column) and window DELETEs (with one).
for (const timeIndex of [false, true]) {
  const suffix = timeIndex ? '-indexed' : '';
  describe(`archive alongside other sessions${timeIndex ? ', window DELETEs (time column indexed)' : ''}`, () => {
    it('archives exactly the version of each row it deleted while other sessions update them', async ({
      database: db,
      events,
    }) => {
      // Prepare
      const prepared = await events.prepare(`concurrent-updates${suffix}`, { timeIndex });
      const eligibleIds = prepared.eligible;
      /** Highest counter each id was committed with (autocommit: a returned row is a committed update). */
      const lastCommitted = new Map<string, number>();
      /** Ids with an update committed while the run was in progress. */
      const updatedDuringRun = new Set<string>();
      let running = false;
      let updates = 0;
      let stop = false;
      const updaters = await Promise.all([openSession(db), openSession(db)]);
      const loops = updaters.map(async (client) => {
        while (!stop) {
          // Half the updates go to the oldest rows (highest ids), which the first chunks take.
          const span = Math.random() < 0.5 ? 300 : eligibleIds.length;
          const id = eligibleIds[eligibleIds.length - 1 - Math.floor(Math.random() * span)] as string;
          const { rows } = await client.query<{ counter: number }>(
            `UPDATE public.${prepared.table} SET counter = counter + 1 WHERE id = $1 RETURNING counter`,
            [id],
          );
          const counter = rows[0]?.counter;
          if (counter !== undefined) {
            lastCommitted.set(id, Math.max(counter, lastCommitted.get(id) ?? 0));
            if (running) updatedDuringRun.add(id);
            updates++;
          }
        }
      });
      while (updates < 50) await sleep(5);

      // Act
      let result: LocalRunResult;
      const log = capturingLogger();
      try {
        running = true;
        result = await events.run(prepared, { hooks: slowCommit(15), log });
        running = false;
      } finally {
        stop = true;
        await Promise.all(loops);
        await Promise.all(updaters.map((client) => client.end()));
      }

      // Assess
      expect(result.status).toBe('succeeded');
      expect(updatedDuringRun.size).toBeGreaterThan(0);
      // The chunks were of the kind this case is about: windows with the index, keyset slices without (either
      // turns to SKIP LOCKED for a while after an update held a row past the 20 ms lock_timeout).
      const selections = chunkSelections(log.lines);
      expect(selections.length).toBeGreaterThan(0);
      expect(selections).not.toContain(timeIndex ? 'keyset' : 'window');
      const state = await expectArchiveGuarantees(prepared.scope, prepared.before);
      const mismatches = state.archived
        .map((row) => ({
          id: String(row.id),
          archived: Number(row.counter),
          committed: lastCommitted.get(String(row.id)) ?? 0,
        }))
        .filter((row) => row.archived !== row.committed);
      expect(mismatches, 'archived counter = last committed counter').toEqual([]);
      // The overlap was real: rows updated while the run was in progress were archived by it, with their updates.
      const updatedThenArchived = state.archived.filter((row) => updatedDuringRun.has(String(row.id)));
      expect(updatedThenArchived.length).toBeGreaterThan(10);
      expect(updatedThenArchived.every((row) => Number(row.counter) > 0)).toBe(true);
      // Rows still in the table kept their last committed version too.
      const remaining = await db.pool.query<{ id: string; counter: number }>(
        `SELECT id::text, counter FROM public.${prepared.table}`,
      );
      expect(remaining.rows.filter((row) => row.counter !== (lastCommitted.get(row.id) ?? 0))).toEqual([]);

      // Act: a second run picks up any row the first one skipped while an update held it
      const second = await events.run(prepared);

      // Assess
      expect(second.status).toBe('succeeded');
      const final = await expectArchiveGuarantees(prepared.scope, prepared.before);
      expect(sorted(final.archivedKeys)).toEqual(sorted(prepared.eligible));
      expect(
        final.archived.filter((row) => Number(row.counter) !== (lastCommitted.get(String(row.id)) ?? 0)),
      ).toEqual([]);
    });

    it('goes on to the end of the eligible rows when an update commits while a chunk statement runs', async ({
      database: db,
      runPolicy,
      definition,
      events,
    }) => {
      // Prepare: the filter sleeps on one row of the first chunk, holding that chunk's DELETE statement open
      // (its snapshot taken, its rows not yet locked) long enough for another session to commit an update.
      const prepared = await events.prepare(`update-inside-chunk${suffix}`, { timeIndex });
      const eligible = prepared.eligible;
      // Ids grow towards the past: the first chunk takes the 200 highest eligible ids.
      const sleeper = eligible[eligible.length - 1] as string;
      const updatedMidStatement = eligible[eligible.length - 100] as string;
      // Declared IMMUTABLE (a lie, for the test) and listed in filterFunctions: runs refuse filters calling
      // volatile functions, and functions that are not PostgreSQL's own unless the config lists them.
      await db.pool.query(`
      CREATE OR REPLACE FUNCTION public.sleep_on(id bigint, target bigint) RETURNS boolean
        LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN IF id = target THEN PERFORM pg_sleep(0.5); END IF; RETURN true; END $$`);
      const config = testConfig([
        eventArchivePolicy(prepared.scope.policy, prepared.table, {
          filter: `public.sleep_on(id, ${sleeper})`,
          filterFunctions: ['public.sleep_on(bigint, bigint)'],
        }),
      ]);

      // Act
      const run = runPolicy(config, prepared.scope.policy, { definition, chunkBudgetMs: 1_100 });
      const deadline = Date.now() + 10_000;
      let sleeping = false;
      while (!sleeping && Date.now() < deadline) {
        const { rowCount } = await db.pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'`,
        );
        sleeping = rowCount === 1;
        if (!sleeping) await sleep(5);
      }
      const update = await db.pool.query(
        `UPDATE public.${prepared.table} SET counter = counter + 1 WHERE id = $1`,
        [updatedMidStatement],
      );
      const result = await run;

      // Assess
      expect(sleeping).toBe(true);
      expect(update.rowCount).toBe(1);
      expect(result.status).toBe('succeeded');
      const state = await expectArchiveGuarantees(prepared.scope, prepared.before);
      // Only the row updated under the statement may be passed over (the next run takes it); every other
      // eligible row must be archived: a chunk that deleted fewer rows than it locked is not the last one.
      const remainingSet = new Set(state.remainingKeys);
      const eligibleLeftBehind = eligible.filter((id) => remainingSet.has(id));
      const wronglyLeft = eligibleLeftBehind.filter((id) => id !== updatedMidStatement);
      const chunks = await db.pool.query<{ rows: string }>(
        'SELECT rows::text FROM lifecycle.chunks WHERE run_id = $1 ORDER BY seq',
        [result.summary?.runId],
      );
      const chunkRows = chunks.rows.map((c) => c.rows).join(', ');
      expect(
        wronglyLeft.length,
        `eligible rows left behind by a 'succeeded' run (chunk rows: ${chunkRows})`,
      ).toBe(0);
      const archivedUpdated = state.archived.find((row) => String(row.id) === updatedMidStatement);
      if (archivedUpdated) expect(Number(archivedUpdated.counter)).toBe(1);
    });

    it('lets exactly one of two simultaneous runs of a policy work, and refuses the other with LeaseHeldError', async ({
      database: db,
      events,
    }) => {
      // Prepare
      const prepared = await events.prepare(`two-runs${suffix}`, { timeIndex });

      // Act
      const runs = [
        events.run(prepared, { hooks: slowCommit(10) }),
        events.run(prepared, { hooks: slowCommit(10) }),
      ];
      const first = await Promise.race(runs);
      // The refused run ends while the other still works: its failure must not have touched the lease.
      const leaseWhileRunning = await db.pool.query<{ status: string }>(
        `SELECT r.status FROM lifecycle.leases l JOIN lifecycle.runs r USING (run_id) WHERE l.policy = $1`,
        [prepared.scope.policy],
      );
      const results = await Promise.all(runs);

      // Assess
      expect(results.map((r) => r.status).sort()).toEqual(['failed', 'succeeded']);
      const refused = results.find((r) => r.status === 'failed');
      const winner = results.find((r) => r.status === 'succeeded');
      expect(refused?.failure).toMatchObject({
        error: 'LeaseHeldError',
        cause: expect.stringContaining('already running'),
      });
      expect(first).toBe(refused);
      expect(leaseWhileRunning.rows).toEqual([{ status: 'running' }]);
      expect(winner?.summary?.rows).toBe(prepared.eligible.length);
      const ledgerRuns = await runsOfPolicy(db.pool, prepared.scope.policy);
      expect(ledgerRuns).toHaveLength(1);
      expect(ledgerRuns[0]).toMatchObject({ run_id: winner?.summary?.runId, status: 'succeeded' });
      const state = await expectArchiveGuarantees(prepared.scope, prepared.before);
      expect(sorted(state.archivedKeys)).toEqual(sorted(prepared.eligible));
    });

    it('skips rows another transaction holds instead of waiting, and archives them in a later run', async ({
      database: db,
      events,
    }) => {
      // Prepare: a lock timeout far above the run's duration, so any wait would show.
      const prepared = await events.prepare(`locked-rows${suffix}`, {
        timeIndex,
        chunking: { ...FIXED_CHUNKS, lockTimeoutMs: 20_000 },
      });
      const eligible = prepared.eligible;
      const log = capturingLogger();
      const selectedForUpdate = [eligible[5], eligible[700], eligible[1400]] as string[];
      const updatedUncommitted = [eligible[6], eligible[701], eligible[eligible.length - 1]] as string[];
      const held = [...selectedForUpdate, ...updatedUncommitted];
      const locker = await openSession(db);
      let result: LocalRunResult | 'timed out';
      let lockerState: string | undefined;
      try {
        await locker.query('BEGIN');
        const lockerPid = (await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]
          ?.pid;
        await locker.query(
          `SELECT id FROM public.${prepared.table} WHERE id = ANY ($1::bigint[]) FOR UPDATE`,
          [selectedForUpdate],
        );
        await locker.query(
          `UPDATE public.${prepared.table} SET counter = counter + 100 WHERE id = ANY ($1::bigint[])`,
          [updatedUncommitted],
        );

        // Act
        const run = events.run(prepared, { log });
        result = await Promise.race([run, sleep(10_000).then(() => 'timed out' as const)]);
        const activity = await db.pool.query<{ state: string }>(
          'SELECT state FROM pg_stat_activity WHERE pid = $1',
          [lockerPid],
        );
        lockerState = activity.rows[0]?.state;
        if (result === 'timed out') {
          await locker.query('ROLLBACK');
          await run;
        }
      } finally {
        await locker.query('ROLLBACK').catch(() => undefined);
        await locker.end();
      }

      // Assess: finished while the other transaction still held its locks, passing over them with SKIP LOCKED
      expect(result).not.toBe('timed out');
      expect(chunkSelections(log.lines)).toContain('skip-locked');
      expect(lockerState).toBe('idle in transaction');
      if (result === 'timed out') return;
      expect(result.status).toBe('succeeded');
      const state = await expectArchiveGuarantees(prepared.scope, prepared.before);
      const heldSet = new Set(held);
      expect(sorted(state.archivedKeys)).toEqual(sorted(eligible.filter((id) => !heldSet.has(id))));
      expect(state.remainingKeys).toEqual(expect.arrayContaining(held));

      // Act: the locks are gone; the next run takes the rows it skipped
      const second = await events.run(prepared);

      // Assess
      expect(second.status).toBe('succeeded');
      expect(second.summary?.rows).toBe(held.length);
      const final = await expectArchiveGuarantees(prepared.scope, prepared.before);
      expect(sorted(final.archivedKeys)).toEqual(sorted(eligible));
      // The rolled-back update never happened: the archived rows carry the committed version.
      const heldRows = final.archived.filter((row) => heldSet.has(String(row.id)));
      expect(heldRows.map((row) => Number(row.counter))).toEqual(held.map(() => 0));
    });
  });
}
