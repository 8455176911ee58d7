/**
 * The contract every action module keeps with the generic engine, run for each registered action and for a
 * fake one the engine has never seen (test/support/fake-action.ts) through the real state machine: an empty
 * source ends the run, a failing complete phase rolls the chunk back, a step retried after COMMIT resumes
 * where the ledger says, the cursor only moves forward, and an action without a partition strategy never
 * detaches a partition. What differs per action is only how a test reads what a run did.
 */
import type { ActionModule } from '../../functions/actions/action-module.ts';
import type { ChunkAction, ChunkInput, TakenChunk } from '../../functions/actions/chunk-action.ts';
import { type ActionRegistry, actionModules } from '../../functions/actions/registry.ts';
import { TransientDatabaseError } from '../../functions/core/errors.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { LifecycleConfigSchema } from '../../lib/contracts/config.ts';
import type { PolicyAction } from '../../lib/contracts/policy.ts';
import type { WorkCursor } from '../../lib/contracts/work-cursor.ts';
import { type FakeActionLog, fakeAction } from '../support/fake-action.ts';
import { describe, expect, it, NOW, type Services } from '../support/fixture.ts';

const ROWS = 240;
/** Rows 1..ELIGIBLE are older than the 30-day retention; the rest are newer. */
const ELIGIBLE = 200;
const TABLE = 'public.contract_events';

interface Subject {
  readonly name: string;
  /** The policy's action (the fake stands in for purge's module, with a purge-shaped policy). */
  readonly action: PolicyAction;
  /** A fresh module (and, for the fake, the log of what it did). */
  make(): { module: ActionModule; log?: FakeActionLog };
}

/**
 * Every registered action over the time-cutoff source (a new one is held to the contract as soon as it is
 * registered), and the fake. The whole-table source (backup) keeps the same promises on its own shape —
 * failure mid-run, a retried step, a cursor that only moves forward — in backup-run.test.ts.
 */
const subjects: Subject[] = [
  ...Object.entries(actionModules)
    .filter(([, module]) => module.source.kind === 'time-cutoff')
    .map(([action, module]) => ({
      name: action,
      action: action as Subject['action'],
      make: () => ({ module: module as ActionModule }),
    })),
  { name: 'a fake action', action: 'purge', make: () => fakeAction() },
];

/** One row per hour back from 45 days before NOW (rows 1..200 eligible), plus 40 rows newer than the cutoff. */
async function seed(db: Services['db'], options: { partitioned?: boolean; eligible?: boolean } = {}) {
  await db.pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
  if (options.partitioned) {
    await db.pool.query(`
      CREATE TABLE ${TABLE} (id bigint NOT NULL, created_at timestamptz NOT NULL, payload text NOT NULL,
                             PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)`);
    for (const [name, from, to] of [
      ['contract_events_old', '2026-09-01', '2026-10-01'],
      ['contract_events_oct', '2026-10-01', '2026-11-01'],
      ['contract_events_new', '2026-11-01', '2027-01-01'],
    ]) {
      await db.pool.query(
        `CREATE TABLE public.${name} PARTITION OF ${TABLE} FOR VALUES FROM ('${from}') TO ('${to}')`,
      );
    }
  } else {
    await db.pool.query(
      `CREATE TABLE ${TABLE} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, payload text NOT NULL)`,
    );
  }
  await db.pool.query(`CREATE INDEX ON ${TABLE} (created_at)`);
  // Eligible rows: 45 days before NOW and older, one per hour (all before the 30-day cutoff); the rest recent.
  await db.pool.query(
    `INSERT INTO ${TABLE} (id, created_at, payload)
     SELECT g, CASE WHEN g <= $2 AND $3 THEN $1::timestamptz - interval '45 days' - g * interval '1 hour'
                    ELSE $1::timestamptz - (g % 20) * interval '1 hour' END,
            md5(g::text)
       FROM generate_series(1, $4) AS g`,
    [NOW.toISOString(), ELIGIBLE, options.eligible ?? true, ROWS],
  );
  await db.pool.query(`ANALYZE ${TABLE}`);
}

function config(subject: Subject, overrides: Record<string, unknown> = {}) {
  const input: LifecycleConfigInput = {
    policies: [
      {
        name: 'contract',
        action: subject.action,
        table: TABLE,
        timeColumn: 'created_at',
        retention: 'P30D',
        chunking: { initialRows: 40, minRows: 10, maxRows: 50 },
        ...overrides,
      } as LifecycleConfigInput['policies'][number],
    ],
  };
  return LifecycleConfigSchema.parse(input);
}

function registryWith(subject: Subject, module: ActionModule): ActionRegistry {
  return { ...actionModules, [subject.action]: module } as ActionRegistry;
}

/** The module with its chunk work wrapped (the wrapper sees every call the loop makes). */
function wrapChunks(module: ActionModule, wrap: (inner: ChunkAction) => Partial<ChunkAction>): ActionModule {
  return {
    ...module,
    chunkAction: (ctx) => {
      const inner = module.chunkAction(ctx);
      return {
        takeIsTransaction: inner.takeIsTransaction,
        prepare: inner.prepare?.bind(inner),
        take: inner.take.bind(inner),
        complete: inner.complete.bind(inner),
        afterCommit: inner.afterCommit?.bind(inner),
        ...wrap(inner),
      } as ChunkAction;
    },
  };
}

async function tableRows(db: Services['db']): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${TABLE}`);
  return Number(rows[0]?.n);
}

async function ledgerRun(db: Services['db'], runId: string | undefined) {
  const { rows } = await db.pool.query<{
    rows: string;
    chunks: string;
    chunk_rows: string | null;
    status: string;
    source: string;
  }>(
    `SELECT r.rows::text, r.chunks::text, r.status, r.source,
            (SELECT sum(c.rows)::text FROM lifecycle.chunks c WHERE c.run_id = r.run_id) AS chunk_rows
       FROM lifecycle.runs r WHERE r.run_id = $1`,
    [runId],
  );
  return rows[0];
}

/** Ids of the rows the run took: deleted ones (archive, purge) or the fake's committed keys. */
async function handledIds(db: Services['db'], log: FakeActionLog | undefined): Promise<number[]> {
  if (log) return log.committed.map((key) => Number((JSON.parse(key) as string[])[1])).sort((a, b) => a - b);
  const { rows } = await db.pool.query<{ id: string }>(
    `SELECT g::text AS id FROM generate_series(1, ${ROWS}) AS g
      WHERE NOT EXISTS (SELECT 1 FROM ${TABLE} t WHERE t.id = g) ORDER BY g`,
  );
  return rows.map((r) => Number(r.id));
}

const eligibleIds = Array.from({ length: ELIGIBLE }, (_, i) => i + 1);

describe.each(subjects)('action contract: $name', (subject) => {
  it('ends the run on an empty source, having changed nothing', async ({ database, runPolicy }) => {
    // Prepare: no row is older than the cutoff.
    await seed(database, { eligible: false });
    const { module, log } = subject.make();

    // Act
    const result = await runPolicy(config(subject), 'contract', {
      deps: { actions: registryWith(subject, module) },
    });

    // Assess
    expect(result.status).toBe('succeeded');
    expect(result.summary).toMatchObject({ rows: 0, chunks: 0, objects: 0 });
    expect(await tableRows(database)).toBe(ROWS);
    expect(log?.completed ?? []).toEqual([]);
  });

  it('rolls a chunk back when its complete phase fails', async ({ database, runPolicy }) => {
    // Prepare
    await seed(database);
    const { module, log } = subject.make();
    const failing = wrapChunks(module, () => ({
      complete: async () => {
        throw new Error('injected: complete failed');
      },
    }));

    // Act
    const result = await runPolicy(config(subject), 'contract', {
      deps: { actions: registryWith(subject, failing) },
    });

    // Assess: the run failed with nothing of the chunk kept, in the table or in the ledger.
    expect(result.status).toBe('failed');
    expect(await tableRows(database)).toBe(ROWS);
    const run = await ledgerRun(database, result.ledgerRun?.runId);
    expect(run).toMatchObject({ status: 'failed', rows: '0', chunks: '0', chunk_rows: null });
    expect(log?.committed ?? []).toEqual([]);
  });

  it('resumes where the ledger says when a step is retried after COMMIT', async ({ database, runPolicy }) => {
    // Prepare: the second chunk's COMMIT goes through, then the step dies before returning.
    await seed(database);
    const { module, log } = subject.make();
    let commits = 0;
    const hooks = {
      afterCommit: () => {
        commits++;
        if (commits === 2) throw new TransientDatabaseError('injected: connection lost after COMMIT');
      },
    };

    // Act
    const result = await runPolicy(config(subject), 'contract', {
      deps: { actions: registryWith(subject, module), hooks },
    });

    // Assess: every eligible row taken once, none twice, none of the newer ones; totals count each chunk once.
    expect(result.status).toBe('succeeded');
    expect(commits).toBeGreaterThan(2);
    if (log) {
      expect(new Set(log.completed).size).toBe(log.completed.length);
      expect(
        log.completed.map((key) => Number((JSON.parse(key) as string[])[1])).sort((a, b) => a - b),
      ).toEqual(eligibleIds);
    } else {
      expect(await handledIds(database, log)).toEqual(eligibleIds);
    }
    const run = await ledgerRun(database, result.summary?.runId);
    expect(run).toMatchObject({
      status: 'succeeded',
      rows: String(ELIGIBLE),
      chunk_rows: String(ELIGIBLE),
      source: module.source.kind,
    });
  });

  it('moves the cursor only forward: each chunk starts where the one before ended', async ({
    database,
    runPolicy,
  }) => {
    // Prepare
    await seed(database);
    const { module } = subject.make();
    const takes: Array<{ from: WorkCursor | null; to: WorkCursor | undefined }> = [];
    const watched = wrapChunks(module, (inner) => ({
      take: async (tx, input: ChunkInput, prepared) => {
        const taken: TakenChunk | undefined = await inner.take(tx, input, prepared);
        takes.push({ from: input.cursor, to: taken?.cursor });
        return taken;
      },
    }));

    // Act
    const result = await runPolicy(config(subject), 'contract', {
      deps: { actions: registryWith(subject, watched) },
    });

    // Assess
    expect(result.status).toBe('succeeded');
    expect(takes.length).toBeGreaterThan(3);
    expect(takes[0]?.from).toBeNull();
    expect(takes.at(-1)?.to).toBeUndefined();
    const timeOf = (cursor: WorkCursor) =>
      Date.parse(
        (cursor.kind === 'window' ? cursor.end : cursor.kind === 'keyset' ? cursor.values[0] : '') ?? '',
      );
    for (let i = 1; i < takes.length; i++) {
      const before = takes[i - 1]?.to;
      const from = takes[i]?.from;
      expect(from).toEqual(before);
      if (before && from) expect(timeOf(from)).toBeGreaterThanOrEqual(timeOf(before));
    }
    const { rows } = await database.pool.query<{ max_time: string | null }>(
      `SELECT max_time FROM lifecycle.chunks WHERE run_id = $1 ORDER BY seq`,
      [result.summary?.runId],
    );
    const times = rows.map((r) => Date.parse(r.max_time ?? ''));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('never detaches a partition without a partition strategy', async ({ database, runPolicy }) => {
    // Prepare: RANGE-partitioned on the time column, two partitions wholly before the cutoff; the module's
    // partition strategy (archive and purge have one) is taken away.
    await seed(database, { partitioned: true });
    const { module, log } = subject.make();
    const withoutPartitions: ActionModule = { ...module, partitions: undefined };

    // Act
    const result = await runPolicy(config(subject), 'contract', {
      deps: { actions: registryWith(subject, withoutPartitions) },
    });

    // Assess: every partition still attached and no unit recorded; the eligible rows went through chunks.
    expect(result.status).toBe('succeeded');
    const { rows: attached } = await database.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = $1::regclass ORDER BY 1`,
      [TABLE],
    );
    expect(attached.map((r) => r.name)).toEqual([
      'contract_events_new',
      'contract_events_oct',
      'contract_events_old',
    ]);
    const units = await database.pool.query('SELECT 1 FROM lifecycle.partition_units WHERE run_id = $1', [
      result.summary?.runId,
    ]);
    expect(units.rowCount).toBe(0);
    expect(await handledIds(database, log)).toEqual(eligibleIds);
    expect(result.summary?.rows).toBe(ELIGIBLE);
  });
});

describe('a prepare phase before BEGIN', () => {
  it('waits through the Pause state when it asks to, then goes on', async ({ database, runPolicy }) => {
    // Prepare: the fake asks to wait before its first and third chunk attempts (a restore not ready yet).
    await seed(database);
    const fake = fakeAction({ waitBefore: [1, 3] });
    const subject = subjects.at(-1) as Subject;

    // Act
    const result = await runPolicy(config(subject), 'contract', {
      deps: { actions: registryWith(subject, fake.module) },
    });

    // Assess: each wait ended a Chunk step without a chunk; the run still took every eligible row once.
    expect(result.status).toBe('succeeded');
    expect(fake.log.waits).toBe(2);
    expect(result.chunkInvocations).toBeGreaterThanOrEqual(3);
    expect(await handledIds(database, fake.log)).toEqual(eligibleIds);
    expect(new Set(fake.log.completed).size).toBe(ELIGIBLE);
  });
});
