/**
 * Pacing (`chunking.sleepCoefficient`, pt-archiver's `--sleep-coef`) through the synthesized state machine with
 * the real handlers: after each chunk the run rests that many times the chunk's own time, with no chunk
 * transaction open — in the Chunk step while it has time, else in the Pause state — and still moves every row.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { ledgerObjects, readArchivedRows, testConfig } from '../support/archive.ts';
import { beforeEach, describe, expect, it, NOW } from '../support/fixture.ts';
import { partitionsOf, runPartitionedTablePolicy, seedPartitioned } from '../support/partitioned.ts';
import { capturingLogger, committedChunkLines } from '../support/subject-archives.ts';

type Policy = LifecycleConfigInput['policies'][number];

/** Each chunk's transaction lasts at least this long (a hook before its ledger rows), so rests are measurable. */
const CHUNK_FLOOR_MS = 30;
/** What the lock sampler leaves out at each end of a rest (ms). */
const REST_EDGE_MS = 20;

beforeEach(async ({ database: db }) => {
  await db.pool.query(`
    DROP TABLE IF EXISTS public."Paced Samples";
    CREATE TABLE public."Paced Samples" (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, note text);
    CREATE INDEX ON public."Paced Samples" (created_at);`);
  // 600 rows, one a day back from NOW: 500 older than the 100-day retention (ids 101-600), 100 not.
  await db.pool.query(
    `INSERT INTO public."Paced Samples"
     SELECT g, $1::timestamptz - g * interval '1 day', 'n' || g FROM generate_series(1, 600) g`,
    [NOW.toISOString()],
  );
});

function pacedPolicy(action: 'archive' | 'purge', sleepCoefficient?: number): Policy {
  return {
    name: `paced-${action}`,
    action,
    table: 'public."Paced Samples"',
    timeColumn: 'created_at',
    retention: 'P100D',
    chunking: {
      initialRows: 100,
      minRows: 100,
      maxRows: 100,
      ...(sleepCoefficient === undefined ? {} : { sleepCoefficient }),
    },
    ...(action === 'purge' ? { vacuum: { enabled: false } } : {}),
  };
}

interface LedgerChunk {
  seq: number;
  rows: number;
  /** BEGIN of the chunk transaction (its ledger row's time less its recorded duration), ms since the epoch. */
  begunAt: number;
  committedAt: number;
  durationMs: number;
}

async function ledgerChunks(pool: pg.Pool, runId: string | undefined): Promise<LedgerChunk[]> {
  const { rows } = await pool.query<{ seq: number; rows: number; duration_ms: number; at: string }>(
    `SELECT seq, rows, duration_ms, (extract(epoch FROM committed_at) * 1000)::float8::text AS at
       FROM lifecycle.chunks WHERE run_id = $1 ORDER BY seq`,
    [runId],
  );
  return rows.map((r) => ({
    seq: r.seq,
    rows: r.rows,
    durationMs: r.duration_ms,
    committedAt: Number(r.at),
    begunAt: Number(r.at) - r.duration_ms,
  }));
}

/** The units a run dropped, in order: their ledger start and end (ms since the epoch; the DROP's COMMIT after). */
async function droppedUnits(pool: pg.Pool, runId: string | undefined): Promise<LedgerUnit[]> {
  const { rows } = await pool.query<LedgerUnit>(
    `SELECT (extract(epoch FROM started_at) * 1000)::float8 AS started,
            (extract(epoch FROM finished_at) * 1000)::float8 AS finished
       FROM lifecycle.partition_units WHERE run_id = $1 AND state = 'dropped' ORDER BY started_at`,
    [runId],
  );
  return rows;
}

interface LedgerUnit {
  started: number;
  finished: number;
}

/** Time from each chunk's ledger row to the next chunk's BEGIN, against the rest the coefficient asks for. */
function restsAfterChunks(chunks: readonly LedgerChunk[], coefficient: number) {
  return chunks.slice(1).map((next, i) => {
    const chunk = chunks[i] as LedgerChunk;
    return { gapMs: next.begunAt - chunk.committedAt, owedMs: coefficient * chunk.durationMs };
  });
}

describe('chunk pacing (sleepCoefficient)', () => {
  it('purge: rests the coefficient times each chunk before the next, logs the rest, deletes every old row', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: a sampler of the locks other sessions hold on the table (a chunk transaction holds one to its end).
    const config = testConfig([pacedPolicy('purge', 3)]);
    const log = capturingLogger();
    const sampler = await db.pool.connect();
    const samples: Array<{ at: number; held: number }> = [];
    let sampling = true;
    const sampled = (async () => {
      while (sampling) {
        const { rows } = await sampler.query<{ at: number; held: number }>(
          `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS at,
                  (SELECT count(*) FROM pg_locks
                    WHERE relation = 'public."Paced Samples"'::regclass AND pid <> pg_backend_pid())::int AS held`,
        );
        samples.push(...rows);
        await sleep(2);
      }
    })();

    // Act
    let result: Awaited<ReturnType<typeof runPolicy>>;
    try {
      result = await runPolicy(config, 'paced-purge', {
        deps: { log, hooks: { beforeLedger: () => sleep(CHUNK_FLOOR_MS) } },
      });
    } finally {
      sampling = false;
      await sampled;
      sampler.release();
    }

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(500);
    expect(await db.pool.query(`SELECT count(*)::int AS n FROM public."Paced Samples"`)).toMatchObject({
      rows: [{ n: 100 }],
    });
    const chunks = await ledgerChunks(db.pool, result.summary?.runId);
    expect(chunks.map((c) => c.rows)).toEqual([100, 100, 100, 100, 100]);
    // Timers may fire up to 1 ms early and the ledger rounds durations: 2 ms of slack.
    for (const { gapMs, owedMs } of restsAfterChunks(chunks, 3)) {
      expect(owedMs).toBeGreaterThanOrEqual(3 * CHUNK_FLOOR_MS);
      expect(gapMs).toBeGreaterThanOrEqual(owedMs - 2);
    }
    // In the middle of each rest (≥ 90 ms) no session held a lock on the table: the rest comes after COMMIT, not
    // inside the transaction. 20 ms are left out at each end: the COMMIT follows the ledger row, and a BEGIN
    // placed by a duration Node measured may be off by a round trip, both longer on a loaded machine.
    const inRests = samples.filter((sample) =>
      chunks.slice(1).some((next, i) => {
        const chunk = chunks[i] as LedgerChunk;
        return sample.at > chunk.committedAt + REST_EDGE_MS && sample.at < next.begunAt - REST_EDGE_MS;
      }),
    );
    expect(inRests.length).toBeGreaterThanOrEqual(4);
    expect(inRests.filter((sample) => sample.held > 0)).toEqual([]);
    const committed = committedChunkLines(log.lines);
    expect(committed).toHaveLength(5);
    for (const line of committed) expect(line.sleepMs).toBeGreaterThanOrEqual(3 * (line.durationMs ?? 0));
  });

  it('archive: paced chunks never overlap (each begins after the last committed); unpaced ones do', async ({
    database: db,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: the same rows archived twice, unpaced then paced.
    const hooks = { beforeLedger: () => sleep(CHUNK_FLOOR_MS) };
    const unpaced = await runPolicy(testConfig([pacedPolicy('archive')]), 'paced-archive', {
      deps: { hooks },
    });
    expect(unpaced.failure).toBeUndefined();
    await db.pool.query(`TRUNCATE public."Paced Samples"`);
    await db.pool.query(
      `INSERT INTO public."Paced Samples"
       SELECT g, $1::timestamptz - g * interval '1 day', 'n' || g FROM generate_series(1, 600) g`,
      [NOW.toISOString()],
    );

    // Act
    const paced = await runPolicy(testConfig([pacedPolicy('archive', 2)]), 'paced-archive', {
      deps: { hooks },
    });

    // Assess: every old row in S3 once, none left in the table.
    expect(paced.failure).toBeUndefined();
    expect(paced.summary?.rows).toBe(500);
    const archived = await readArchivedRows(s3, bucket, await ledgerObjects(db.pool, paced.summary?.runId));
    expect(new Set(archived.map((row) => String(row.id))).size).toBe(500);
    expect(
      await db.pool.query(`SELECT min(id)::int AS min, count(*)::int AS n FROM public."Paced Samples"`),
    ).toMatchObject({ rows: [{ min: 1, n: 100 }] });
    // Unpaced, the next chunk's DELETE runs while this one uploads: it begins before this one's ledger row.
    const unpacedRests = restsAfterChunks(await ledgerChunks(db.pool, unpaced.summary?.runId), 0);
    expect(unpacedRests.some(({ gapMs }) => gapMs < 0)).toBe(true);
    const pacedChunks = await ledgerChunks(db.pool, paced.summary?.runId);
    // An archive chunk also ends at its object's Hive partition (a month of these rows): more than 5 chunks.
    expect(pacedChunks.reduce((sum, c) => sum + c.rows, 0)).toBe(500);
    expect(pacedChunks.length).toBeGreaterThanOrEqual(5);
    for (const { gapMs, owedMs } of restsAfterChunks(pacedChunks, 2)) {
      expect(owedMs).toBeGreaterThanOrEqual(2 * CHUNK_FLOOR_MS);
      expect(gapMs).toBeGreaterThanOrEqual(owedMs - 2);
    }
  });

  it('a rest the Chunk step has no time left for is the Pause state’s: the next step begins after it', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: chunks of ≥ 150 ms at coefficient 4 owe ≥ 600 ms; a 1.5 s step budget never has room for it
    // (a step needs twice its last chunk plus 1 s left, the rest included), so every chunk ends its step.
    const config = testConfig([pacedPolicy('purge', 4)]);

    // Act: the Pause state's own wait (no pauseMs override).
    const result = await runPolicy(config, 'paced-purge', {
      pauseMs: undefined,
      chunkBudgetMs: 1_500,
      deps: { hooks: { beforeLedger: () => sleep(150) } },
    });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.summary?.rows).toBe(500);
    const chunks = await ledgerChunks(db.pool, result.summary?.runId);
    expect(chunks).toHaveLength(5);
    // One step per chunk, and the final step that finds no row.
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(6);
    for (const { gapMs, owedMs } of restsAfterChunks(chunks, 4)) {
      expect(owedMs).toBeGreaterThanOrEqual(600);
      // The Pause state waits whole seconds: at least the rest owed.
      expect(gapMs).toBeGreaterThanOrEqual(Math.max(owedMs, 1000) - 2);
    }
  });

  it('partition units rest between them as chunks do: each unit starts c × the last one’s time after it', async ({
    services,
  }) => {
    // Prepare: March to July 2026 lie wholly before the cutoff (five units), August straddles it.
    const { db } = services;
    await seedPartitioned(db.pool, 'paced_months', {
      first: '2026-03-01',
      last: '2026-12-01',
      from: '2026-03-01',
    });

    // Act
    const result = await runPartitionedTablePolicy(services, 'purge', 'paced-months', 'paced_months', {
      overrides: { chunking: { sleepCoefficient: 10 }, vacuum: { enabled: false } },
    });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(await partitionsOf(db, 'paced_months')).not.toContain('paced_months_2026_07');
    const units = await droppedUnits(db.pool, result.summary?.runId);
    expect(units).toHaveLength(5);
    // A unit's ledger times leave out its DROP's COMMIT, which its rest counts: the gap is at least 10 × them.
    units.slice(1).forEach((unit, i) => {
      const previous = units[i] as LedgerUnit;
      expect(unit.started - previous.finished).toBeGreaterThanOrEqual(
        10 * (previous.finished - previous.started) - 2,
      );
    });
    // The last unit's rest comes before the first chunk (August's rows before the cutoff).
    const { rows: firstChunks } = await db.pool.query<{ begun: number }>(
      `SELECT (extract(epoch FROM committed_at) * 1000)::float8 - duration_ms AS begun
         FROM lifecycle.chunks c
        WHERE run_id = $1 AND rows > 0
          AND NOT EXISTS (SELECT 1 FROM lifecycle.partition_units u WHERE u.run_id = c.run_id AND u.chunk_seq = c.seq)
        ORDER BY seq LIMIT 1`,
      [result.summary?.runId],
    );
    const last = units[units.length - 1] as LedgerUnit;
    expect(firstChunks).toHaveLength(1);
    expect((firstChunks[0]?.begun ?? 0) - last.finished).toBeGreaterThanOrEqual(
      10 * (last.finished - last.started) - 2,
    );
  });

  it('a rest between units the step has no time for is the Pause state’s, as after a chunk', async ({
    services,
  }) => {
    // Prepare: a 1 s step budget never leaves room for a unit's rest (it needs 1 s left, twice the unit and the
    // rest), however fast the units are.
    const { db } = services;
    await seedPartitioned(db.pool, 'paced_months_pause', {
      first: '2026-05-01',
      last: '2026-12-01',
      from: '2026-05-01',
    });
    const config = testConfig([
      {
        name: 'paced-months-pause',
        action: 'purge',
        table: 'public.paced_months_pause',
        timeColumn: 'created_at',
        retention: 'P90D',
        chunking: { sleepCoefficient: 10 },
        vacuum: { enabled: false },
      },
    ]);

    // Act: the Pause state's own wait (no pauseMs override).
    const result = await services.runPolicy(config, 'paced-months-pause', {
      pauseMs: undefined,
      chunkBudgetMs: 1_000,
    });

    // Assess: May, June and July went as units, one per step, a whole-second Pause between them.
    expect(result.failure).toBeUndefined();
    const units = await droppedUnits(db.pool, result.summary?.runId);
    expect(units).toHaveLength(3);
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(3);
    units.slice(1).forEach((unit, i) => {
      const previous = units[i] as LedgerUnit;
      expect(unit.started - previous.finished).toBeGreaterThanOrEqual(1000 - 2);
    });
  });
});
