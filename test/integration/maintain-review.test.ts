/**
 * Maintain under the review's findings: no REINDEX that would likely stop midway and leave a copy every write
 * keeps up to date (a leftover of its own, an old transaction); VACUUM and ANALYZE never queue behind another
 * session's lock (an autovacuum); a statement never starts late in a step with a stub of a timeout, and one the
 * step's deadline cut short is retried once by the next step; VACUUM is decided on dead tuples, free space is
 * reported; two maintain runs never run statements at once.
 */
import pg from 'pg';
import { MaintainOptionsSchema } from '../../functions/actions/maintain/contract.ts';
import { maintainIndex, type WorkContext } from '../../functions/actions/maintain/work.ts';
import { testConfig } from '../support/archive.ts';
import { migrateLedger } from '../support/database.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';
import { changeAndPublish, maintenanceLedgerOf } from '../support/maintain.ts';

const ledgerOf = maintenanceLedgerOf;
const publish = changeAndPublish;

async function indexesOf(pool: pg.Pool, table: string) {
  const { rows } = await pool.query<{ name: string; valid: boolean }>(
    `SELECT c.relname AS name, i.indisvalid AS valid
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass ORDER BY 1`,
    [table],
  );
  return rows;
}

/** 100 000 rows, 90 % deleted and vacuumed: both indexes (t_k, t_pkey) bloated past 30 %. */
async function seedBloatedIndexes(pool: pg.Pool, schema: string): Promise<void> {
  await publish(
    pool,
    `CREATE SCHEMA ${schema};
     CREATE TABLE ${schema}.t (id bigint PRIMARY KEY, k bigint NOT NULL) WITH (autovacuum_enabled = off);
     CREATE INDEX t_k ON ${schema}.t (k);
     INSERT INTO ${schema}.t SELECT g, g FROM generate_series(1, 100000) g;`,
  );
  await publish(pool, `DELETE FROM ${schema}.t WHERE id % 10 <> 0`);
  await publish(pool, `VACUUM (ANALYZE) ${schema}.t`);
}

/** A function an expression index calls: it sleeps `slow.ctl.s` seconds a row (ANALYZE evaluates it). */
async function seedSlowAnalyze(pool: pg.Pool, tables: string[]): Promise<void> {
  await publish(
    pool,
    `CREATE SCHEMA IF NOT EXISTS slow;
     CREATE TABLE IF NOT EXISTS slow.ctl (s float8 NOT NULL);
     INSERT INTO slow.ctl SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM slow.ctl);
     UPDATE slow.ctl SET s = 0;
     CREATE OR REPLACE FUNCTION slow.f(v int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS
       $$ BEGIN PERFORM pg_sleep((SELECT s FROM slow.ctl)); RETURN v; END $$;
     ${tables
       .map(
         (t) => `CREATE TABLE slow.${t} (id int) WITH (autovacuum_enabled = off);
                 INSERT INTO slow.${t} SELECT generate_series(1, 300);
                 CREATE INDEX ${t}_f ON slow.${t} (slow.f(id));`,
       )
       .join('\n')}`,
  );
}

beforeAll(async ({ database }) => {
  await migrateLedger(database);
});

describe('maintain, after the review', () => {
  it('F1: never rebuilds an index that has a _ccnew leftover of its own, and says why', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: t_k's leftover, as a REINDEX CONCURRENTLY cancelled midway leaves it (invalid).
    await seedBloatedIndexes(database.pool, 'own_leftover');
    await expect(
      database.pool.query('CREATE UNIQUE INDEX CONCURRENTLY t_k_ccnew ON own_leftover.t ((k % 2))'),
    ).rejects.toThrow();

    // Act
    const result = await runPolicy(
      testConfig([
        {
          name: 'own-leftover',
          action: 'maintain',
          maintain: { tables: ['own_leftover.t'], minRelationBytes: 0, maxTableBloatPercent: 99 },
        },
      ]),
      'own-leftover',
    );

    // Assess
    expect(result.failure).toBeUndefined();
    const rows = await ledgerOf(database.pool, result.summary?.runId);
    expect(rows.filter((r) => r.index_name === '"t_k"')).toEqual([
      expect.objectContaining({
        statement: 'skip',
        outcome: 'skipped',
        reason: expect.stringMatching(
          /^REINDEX not run: t_k_ccnew left by an earlier REINDEX CONCURRENTLY of it; drop it first/,
        ),
      }),
    ]);
    expect(rows.filter((r) => r.statement === 'reindex').map((r) => [r.index_name, r.outcome])).toEqual([
      ['"t_pkey"', 'done'],
    ]);
    expect(await indexesOf(database.pool, 'own_leftover.t')).toEqual([
      { name: 't_k', valid: true },
      { name: 't_k_ccnew', valid: false },
      { name: 't_pkey', valid: true },
    ]);
  });

  it('F1: after a REINDEX whose copy could not be dropped, no more REINDEX of that table in the run', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: a run of its own (for its id), and in its ledger a REINDEX of the table whose clean-up failed.
    await seedBloatedIndexes(database.pool, 'failed_cleanup');
    const run = await runPolicy(
      testConfig([
        {
          name: 'failed-cleanup',
          action: 'maintain',
          maintain: { tables: ['failed_cleanup.t'], reindex: 'skip' },
        },
      ]),
      'failed-cleanup',
    );
    const runId = run.summary?.runId as string;
    await database.pool.query(
      `INSERT INTO lifecycle.maintenance_actions
         (run_id, policy, table_name, index_name, statement, outcome, reason, size_bytes_before, error)
       VALUES ($1, 'failed-cleanup', '"failed_cleanup"."t"', '"t_k"', 'reindex', 'lock-timeout', 'bloat', 1,
               'a lock was not granted within 300 ms (lockTimeoutMs); failed_cleanup.t_k_ccnew not dropped (x)')`,
      [runId],
    );
    const { rows } = await database.pool.query<{ oid: string }>(
      `SELECT 'failed_cleanup.t'::regclass::oid::text AS oid`,
    );
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const ctx: WorkContext = {
      db: client,
      runId,
      options: MaintainOptionsSchema.parse({ tables: ['failed_cleanup.t'], minRelationBytes: 0 }),
      lockTimeoutMs: 30_000,
      availableMs: () => 600_000,
      stepMs: () => 600_000,
      fits: () => 'now',
      openWatcher: async () => {
        const watcher = new pg.Client({ connectionString: database.url });
        await watcher.connect();
        return watcher;
      },
      exact: undefined,
    };

    // Act: the table's second rebuildable index (t_pkey), as the run would come to it.
    let result: Awaited<ReturnType<typeof maintainIndex>>;
    try {
      result = await maintainIndex(ctx, { oid: rows[0]?.oid as string, table: '"failed_cleanup"."t"' }, 1);
    } finally {
      await client.end();
    }

    // Assess
    expect(result.ran).toBe(false);
    expect(result.entries).toEqual([
      expect.objectContaining({
        index: '"t_pkey"',
        statement: 'skip',
        outcome: 'skipped',
        reason: expect.stringMatching(
          /^REINDEX not run: a REINDEX of this table earlier in this run could not drop its copy; none more in this run/,
        ),
      }),
    ]);
  });

  it('F1: a long transaction across two runs: no REINDEX starts, no copy is left behind', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: a report reading the table in one long transaction, across two scheduled runs.
    await seedBloatedIndexes(database.pool, 'long_reader');
    const config = testConfig([
      {
        name: 'long-reader',
        action: 'maintain',
        chunking: { lockTimeoutMs: 300 },
        maintain: { tables: ['long_reader.t'], minRelationBytes: 0, maxTableBloatPercent: 99 },
      },
    ]);
    const holder = await database.pool.connect();
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await holder.query('SELECT count(*) FROM long_reader.t');
    await new Promise((resolve) => setTimeout(resolve, 600));

    // Act
    const runs: Array<Awaited<ReturnType<typeof runPolicy>>> = [];
    try {
      runs.push(await runPolicy(config, 'long-reader'));
      runs.push(await runPolicy(config, 'long-reader'));
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }

    // Assess
    for (const run of runs) {
      expect(run.failure).toBeUndefined();
      const rows = await ledgerOf(database.pool, run.summary?.runId);
      expect(rows.filter((r) => r.statement === 'reindex')).toEqual([]);
      expect(rows.map((r) => [r.index_name, r.statement])).toEqual([
        ['"t_k"', 'skip'],
        ['"t_pkey"', 'skip'],
      ]);
      for (const row of rows)
        expect(row.reason).toMatch(
          /^REINDEX not run: a transaction of this database has been open for \d+ s \(pid \d+\), longer than lockTimeoutMs 300/,
        );
    }
    expect(await indexesOf(database.pool, 'long_reader.t')).toEqual([
      { name: 't_k', valid: true },
      { name: 't_pkey', valid: true },
    ]);
  });

  it('F2: skips a table another session holds (an autovacuum) instead of queueing for its lock', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: a table due for ANALYZE, held in SHARE UPDATE EXCLUSIVE mode as an autovacuum holds it.
    await publish(
      database.pool,
      `CREATE SCHEMA held_av;
       CREATE TABLE held_av.t (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
       INSERT INTO held_av.t SELECT g, g FROM generate_series(1, 1000) g;`,
    );
    const holder = await database.pool.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE held_av.t IN SHARE UPDATE EXCLUSIVE MODE');

    // Act
    let result: Awaited<ReturnType<typeof runPolicy>>;
    try {
      result = await runPolicy(
        testConfig([
          {
            name: 'held-av',
            action: 'maintain',
            chunking: { lockTimeoutMs: 5_000 },
            maintain: { tables: ['held_av.t'] },
          },
        ]),
        'held-av',
      );
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }

    // Assess: recorded as skipped at once, not a lock-timeout after 5 s of queueing.
    expect(result.failure).toBeUndefined();
    const rows = await ledgerOf(database.pool, result.summary?.runId);
    expect(rows).toEqual([
      expect.objectContaining({
        table_name: '"held_av"."t"',
        statement: 'skip',
        outcome: 'skipped',
        reason: 'locked by another session (autovacuum?): ANALYZE not run, it was due (never analyzed)',
        error: expect.stringMatching(/^skipping analyze of "t" --- lock not available/),
      }),
    ]);
    expect(rows[0]?.duration_ms).toBeLessThan(2_000);
  });

  it('F3: never starts a REINDEX with a stub of a timeout when a step is too short for one', async ({
    database,
    runPolicy,
  }) => {
    // Prepare
    await seedBloatedIndexes(database.pool, 'short_step');

    // Act: 30 s a step leaves 15 s for statements, less than a REINDEX and its 20 s clean-up reserve.
    const result = await runPolicy(
      testConfig([
        {
          name: 'short-step',
          action: 'maintain',
          maintain: { tables: ['short_step.t'], minRelationBytes: 0, maxTableBloatPercent: 99 },
        },
      ]),
      'short-step',
      { chunkBudgetMs: 30_000 },
    );

    // Assess
    expect(result.failure).toBeUndefined();
    const rows = await ledgerOf(database.pool, result.summary?.runId);
    expect(rows.map((r) => [r.index_name, r.statement, r.outcome])).toEqual([
      ['"t_k"', 'skip', 'skipped'],
      ['"t_pkey"', 'skip', 'skipped'],
    ]);
    for (const row of rows)
      expect(row.reason).toMatch(
        /^REINDEX not run: a Chunk step has 1\d s for statements, too short for a REINDEX CONCURRENTLY/,
      );
  });

  it("F3: a statement the step's deadline cut short is retried once by the next step, not passed", async ({
    database,
    runPolicy,
  }) => {
    // Prepare: an ANALYZE that takes ~15 s (300 sampled rows, 50 ms each through the expression index).
    await seedSlowAnalyze(database.pool, ['cut']);
    await database.pool.query('UPDATE slow.ctl SET s = 0.05');

    // Act: 25 s a step leaves ~10 s for it (timeoutMs is 600 000).
    let result: Awaited<ReturnType<typeof runPolicy>>;
    try {
      result = await runPolicy(
        testConfig([{ name: 'cut-short', action: 'maintain', maintain: { tables: ['slow.cut'] } }]),
        'cut-short',
        { chunkBudgetMs: 25_000 },
      );
    } finally {
      await database.pool.query('UPDATE slow.ctl SET s = 0');
    }

    // Assess: the first attempt keeps the cursor; the next step's is the last.
    expect(result.failure).toBeUndefined();
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(2);
    const rows = await ledgerOf(database.pool, result.summary?.runId);
    expect(rows.map((r) => [r.table_name, r.statement, r.outcome])).toEqual([
      ['"slow"."cut"', 'analyze', 'timed-out'],
      ['"slow"."cut"', 'analyze', 'timed-out'],
    ]);
    expect(rows[0]?.error).toMatch(
      // The ANALYZE runs at the default (autovacuum) pace, which the message names.
      /^exceeded \d+ ms \(throttled: vacuum_cost_delay \d+ ms per \d+ cost units\): cut short by the step's deadline, not timeoutMs 600000; retried in the next step$/,
    );
    expect(rows[1]?.error).toMatch(
      /^exceeded \d+ ms \(throttled: [^)]*\): cut short by the step's deadline again \(retried once\)$/,
    );
  });

  it('F3: does not start a statement late in a step: the next step starts it with a whole budget', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: two tables due for an ANALYZE of ~6 s each (20 ms a sampled row).
    await seedSlowAnalyze(database.pool, ['late_a', 'late_b']);
    await database.pool.query('UPDATE slow.ctl SET s = 0.02');

    // Act: 45 s a step leaves ~30 s: after the first ANALYZE less than 90 % of that is left.
    let result: Awaited<ReturnType<typeof runPolicy>>;
    try {
      result = await runPolicy(
        testConfig([
          { name: 'late', action: 'maintain', maintain: { tables: ['slow.late_a', 'slow.late_b'] } },
        ]),
        'late',
        { chunkBudgetMs: 45_000 },
      );
    } finally {
      await database.pool.query('UPDATE slow.ctl SET s = 0');
    }

    // Assess
    expect(result.failure).toBeUndefined();
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(2);
    expect(
      (await ledgerOf(database.pool, result.summary?.runId)).map((r) => [
        r.table_name,
        r.statement,
        r.outcome,
      ]),
    ).toEqual([
      ['"slow"."late_a"', 'analyze', 'done'],
      ['"slow"."late_b"', 'analyze', 'done'],
    ]);
  });

  it('F5: does not VACUUM free space it cannot reclaim; the plan reports it', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: every other row deleted and vacuumed: half of each page free, (almost) no dead tuples — a VACUUM
    // leaves the few a concurrent snapshot can still see (0.3 % once, with other test files running):
    // any share below the 20 % that would make it a VACUUM.
    await publish(
      database.pool,
      `CREATE SCHEMA holes;
       CREATE TABLE holes.t (id bigint PRIMARY KEY, payload text NOT NULL) WITH (autovacuum_enabled = off);
       INSERT INTO holes.t SELECT g, md5(g::text) FROM generate_series(1, 100000) g;`,
    );
    await publish(database.pool, 'DELETE FROM holes.t WHERE id % 2 = 0');
    await publish(database.pool, 'VACUUM (ANALYZE) holes.t');
    const config = testConfig([
      { name: 'holes', action: 'maintain', maintain: { tables: ['holes.t'], reindex: 'skip' } },
    ]);

    // Act
    const first = await runPolicy(config, 'holes');
    const plan = await runPolicy(config, 'holes', { dryRun: true });

    // Assess
    expect(first.failure).toBeUndefined();
    expect(
      (await ledgerOf(database.pool, first.summary?.runId)).filter((r) => r.statement === 'vacuum'),
    ).toEqual([]);
    const item = plan.summary?.plan?.maintenance?.find((i) => i.table === '"holes"."t"' && !i.index);
    expect(item).toMatchObject({
      statement: 'none',
      reason: expect.stringMatching(
        /% bloat \(estimated from statistics\) above maxTableBloatPercent 20 with 1?\d\.\d % dead tuples \(pg_stat_user_tables\): free space only VACUUM FULL or pg_repack reclaims/,
      ),
    });
    expect(plan.summary?.plan?.warnings).toEqual([
      expect.stringMatching(/^"holes"."t": .*free space only VACUUM FULL or pg_repack reclaims/),
    ]);
  });

  it('F4: waits while another maintain run holds the maintenance lock, then runs', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: a table due for ANALYZE, and the lock held as another maintain run would hold it.
    await publish(
      database.pool,
      `CREATE SCHEMA busy;
       CREATE TABLE busy.t (id int PRIMARY KEY) WITH (autovacuum_enabled = off);
       INSERT INTO busy.t SELECT generate_series(1, 100);`,
    );
    const holder = await database.pool.connect();
    await holder.query(`SELECT pg_advisory_lock(hashtext('pg-lifecycle maintain'))`);
    const analyzed = async () =>
      (
        await database.pool.query<{ at: string | null }>(
          `SELECT last_analyze::text AS at FROM pg_stat_user_tables WHERE relid = 'busy.t'::regclass`,
        )
      ).rows[0]?.at ?? null;

    // Act
    let whileHeld: string | null = 'not read';
    let running: ReturnType<typeof runPolicy> | undefined;
    try {
      running = runPolicy(
        testConfig([{ name: 'busy', action: 'maintain', maintain: { tables: ['busy.t'] } }]),
        'busy',
        { pauseMs: 200 },
      );
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      whileHeld = await analyzed();
    } finally {
      await holder.query(`SELECT pg_advisory_unlock(hashtext('pg-lifecycle maintain'))`);
      holder.release();
    }
    const result = await running;

    // Assess
    expect(whileHeld).toBeNull();
    expect(result.failure).toBeUndefined();
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(2);
    expect(
      (await ledgerOf(database.pool, result.summary?.runId)).map((r) => [r.statement, r.outcome]),
    ).toEqual([['analyze', 'done']]);
    expect(await analyzed()).not.toBeNull();
  });
});
