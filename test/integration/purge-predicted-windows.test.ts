/**
 * Predicted purge windows (functions/actions/purge/chunk.ts): after a probed window, the next window's end is
 * its first row's time plus `limit` rows at the last window's rows per second, with no scan counting its rows.
 * On shapes where that guess goes wrong — rows that grow denser, gaps of a year, times at -infinity — every
 * eligible row must still go, no chunk may hold more than `maxRows`, and the run must not crawl.
 */

import type pg from 'pg';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { beforeEach, describe, expect, it, NOW, type RunPolicy } from '../support/fixture.ts';
import { capturingLogger, chunkSelections, logLinesOf } from '../support/subject-archives.ts';

type Policy = LifecycleConfigInput['policies'][number];

beforeEach(async ({ database: db }) => {
  await db.pool.query(`
    DROP TABLE IF EXISTS public."Sensor Log";
    CREATE TABLE public."Sensor Log" ("Logged At" timestamptz NOT NULL, reading integer NOT NULL);
    CREATE INDEX ON public."Sensor Log" ("Logged At");`);
});

function purgePolicy(chunking: Record<string, number>): Policy {
  return {
    name: 'sensor-purge',
    action: 'purge',
    table: 'public."Sensor Log"',
    timeColumn: '"Logged At"',
    retention: 'P30D',
    chunking,
    vacuum: { enabled: false },
  };
}

/** Inserts the rows `select` yields (its $1 is NOW). */
async function seed(pool: pg.Pool, select: string): Promise<void> {
  await pool.query(`INSERT INTO public."Sensor Log"\n${select}`, [NOW.toISOString()]);
}

/** Runs the purge with `chunking` through the state machine: its result, log lines and chunk selections. */
async function purge(
  runPolicy: RunPolicy,
  chunking: Record<string, number>,
): Promise<{ result: Awaited<ReturnType<RunPolicy>>; lines: string[]; selections: string[] }> {
  const log = capturingLogger();
  const result = await runPolicy(testConfig([purgePolicy(chunking)]), 'sensor-purge', { deps: { log } });
  expect(result.failure).toBeUndefined();
  return { result, lines: log.lines, selections: chunkSelections(log.lines) };
}

async function chunkRows(pool: pg.Pool, runId: string | undefined): Promise<number[]> {
  const { rows } = await pool.query<{ rows: number }>(
    `SELECT rows FROM lifecycle.chunks WHERE run_id = $1 AND rows > 0 ORDER BY seq`,
    [runId],
  );
  return rows.map((r) => r.rows);
}

/** Rows left older than the 30-day retention, and newer. */
async function remaining(pool: pg.Pool) {
  const { rows } = await pool.query<{ old: number; recent: number }>(
    `SELECT count(*) FILTER (WHERE "Logged At" < $1::timestamptz - interval '30 days')::int AS old,
            count(*) FILTER (WHERE "Logged At" >= $1::timestamptz - interval '30 days')::int AS recent
       FROM public."Sensor Log"`,
    [NOW.toISOString()],
  );
  return rows[0];
}

describe('predicted purge windows', () => {
  it('predicts windows on evenly spaced rows, and probes again when the rows grow denser than predicted', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 3 000 rows a minute apart, then, 30 s after the last of them, 3 000 rows a millisecond apart (a
    // burst), then 1 000 a minute apart again, all past retention; 100 recent rows.
    await seed(
      db.pool,
      `SELECT $1::timestamptz - interval '200 days' + g * interval '1 minute', 1 FROM generate_series(1, 3000) g
       UNION ALL
       SELECT $1::timestamptz - interval '200 days' + interval '3000 minutes 30 seconds' + g * interval '1 millisecond', 2
         FROM generate_series(1, 3000) g
       UNION ALL
       SELECT $1::timestamptz - interval '180 days' + g * interval '1 minute', 3 FROM generate_series(1, 1000) g
       UNION ALL
       SELECT $1::timestamptz - g * interval '1 hour', 4 FROM generate_series(1, 100) g`,
    );

    // Act
    const { result, lines, selections } = await purge(runPolicy, {
      initialRows: 100,
      minRows: 50,
      maxRows: 400,
    });

    // Assess: every old row gone, no chunk over maxRows although a window predicted from the sparse rows spans
    // the whole burst; that window was rolled back, and probed windows took the burst.
    expect(result.summary?.rows).toBe(7000);
    expect(await remaining(db.pool)).toEqual({ old: 0, recent: 100 });
    const sizes = await chunkRows(db.pool, result.summary?.runId);
    expect(sizes.reduce((sum, n) => sum + n, 0)).toBe(7000);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(400);
    expect(selections[0]).toBe('window');
    expect(selections).toContain('predicted-window');
    expect(selections.slice(selections.indexOf('predicted-window'))).toContain('window');
    // Once or twice: the rolled-back chunk's window is probed (a prediction at half the rows from the sparse rate
    // would span the burst again, down to minRows); a probed window that straddles the edge measures a rate
    // between the two, and the next prediction may overshoot once more.
    const overMaxRows = logLinesOf(lines, 'chunk over its transaction budget, rolled back; retrying smaller');
    expect(overMaxRows.length).toBeGreaterThanOrEqual(1);
    expect(overMaxRows.length).toBeLessThanOrEqual(2);
  }, 30_000);

  it('measures the rate again when rows thin out after a burst, instead of taking them a row or two per window', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 4 000 rows a millisecond apart, then 1 000 rows a minute apart.
    await seed(
      db.pool,
      `SELECT $1::timestamptz - interval '200 days' + g * interval '1 millisecond', 1 FROM generate_series(1, 4000) g
       UNION ALL
       SELECT $1::timestamptz - interval '190 days' + g * interval '1 minute', 2 FROM generate_series(1, 1000) g`,
    );

    // Act
    const { result, selections } = await purge(runPolicy, {
      initialRows: 100,
      minRows: 50,
      maxRows: 400,
    });

    // Assess: windows predicted at the burst's rate hold one sparse row each; the first such window is probed
    // again, and predictions go on at the new rate: about 4 000 / 320 + 1 000 / 320 windows, not a thousand.
    expect(await remaining(db.pool)).toEqual({ old: 0, recent: 0 });
    const sizes = await chunkRows(db.pool, result.summary?.runId);
    expect(sizes.reduce((sum, n) => sum + n, 0)).toBe(5000);
    expect(sizes.length).toBeLessThanOrEqual(40);
    expect(selections.filter((s) => s === 'window').length).toBeGreaterThanOrEqual(2);
    expect(selections.at(-1)).toBe('predicted-window');
  }, 60_000);

  it('crosses a year without rows in one window, and takes a run of -infinity times by keyset', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 250 rows at -infinity, 1 000 rows a second apart, a year with none, 1 000 more a second apart.
    await seed(
      db.pool,
      `SELECT '-infinity', 0 FROM generate_series(1, 250)
       UNION ALL
       SELECT $1::timestamptz - interval '500 days' + g * interval '1 second', 1 FROM generate_series(1, 1000) g
       UNION ALL
       SELECT $1::timestamptz - interval '100 days' + g * interval '1 second', 2 FROM generate_series(1, 1000) g
       UNION ALL
       SELECT $1::timestamptz - g * interval '1 hour', 3 FROM generate_series(1, 100) g`,
    );

    // Act
    const { result, selections } = await purge(runPolicy, {
      initialRows: 100,
      minRows: 50,
      maxRows: 125,
    });

    // Assess: the -infinity run in keyset chunks, both seconds-apart stretches in windows of about 100 rows
    // (predicted ones aim at 0.8 × maxRows): the predicted window after the gap starts at the first row after it,
    // not where the last window ended (a 100-second window from there would take a year of empty windows).
    expect(result.summary?.rows).toBe(2250);
    expect(await remaining(db.pool)).toEqual({ old: 0, recent: 100 });
    const sizes = await chunkRows(db.pool, result.summary?.runId);
    expect(sizes.reduce((sum, n) => sum + n, 0)).toBe(2250);
    expect(sizes.length).toBeLessThanOrEqual(30);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(125);
    expect(selections.slice(0, 2)).toEqual(['keyset', 'keyset']);
    expect(selections.filter((s) => s === 'predicted-window').length).toBeGreaterThanOrEqual(15);
  }, 30_000);

  it('keeps predicting once chunks reach maxRows on randomly spaced rows: windows aim below maxRows', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 20 000 rows spaced 0–2 s apart (a fixed pseudo-random spacing), a second apart on average.
    await seed(
      db.pool,
      `SELECT $1::timestamptz - interval '100 days'
                + sum((abs(hashtext(g::text)) % 2000) / 1000.0) OVER (ORDER BY g) * interval '1 second', 1
         FROM generate_series(1, 20000) g`,
    );

    // Act: the first chunk is already at maxRows.
    const { result, lines, selections } = await purge(runPolicy, {
      initialRows: 2000,
      minRows: 50,
      maxRows: 2000,
    });

    // Assess: a window predicted for maxRows rows would hold more than that about every other time (then rolled
    // back, and prediction off); aimed at 0.8 × maxRows, none is rolled back and every window after the first is
    // predicted.
    expect(await remaining(db.pool)).toEqual({ old: 0, recent: 0 });
    expect(Math.max(...(await chunkRows(db.pool, result.summary?.runId)))).toBeLessThanOrEqual(2000);
    expect(lines.filter((line) => line.includes('rolled back'))).toEqual([]); // either kind of rollback
    expect(selections[0]).toBe('window');
    expect(new Set(selections.slice(1))).toEqual(new Set(['predicted-window']));
  }, 30_000);

  it('never predicts a window for a chunk at minRows, which no transaction budget would cut short', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 1 000 rows a second apart, then a burst of 3 000 rows a millisecond apart.
    await seed(
      db.pool,
      `SELECT $1::timestamptz - interval '100 days' + g * interval '1 second', 1 FROM generate_series(1, 1000) g
       UNION ALL
       SELECT $1::timestamptz - interval '99 days' + g * interval '1 millisecond', 2 FROM generate_series(1, 3000) g`,
    );

    // Act: every chunk is at minRows.
    const { result, lines, selections } = await purge(runPolicy, {
      initialRows: 100,
      minRows: 100,
      maxRows: 100,
    });

    // Assess: probed windows only (a predicted one would have spanned the burst and deleted it whole before its
    // row count could refuse it), 100 rows each, nothing rolled back.
    expect(await remaining(db.pool)).toEqual({ old: 0, recent: 0 });
    expect(await chunkRows(db.pool, result.summary?.runId)).toEqual(Array.from({ length: 40 }, () => 100));
    expect(new Set(selections)).toEqual(new Set(['window']));
    expect(lines.filter((line) => line.includes('rolled back'))).toEqual([]); // either kind of rollback
  }, 30_000);
});
