/**
 * First sightings (sql/014, lifecycle.policy_first_seen) against a real ledger: a scheduled policy that has never
 * succeeded is overdue only two schedule periods after the compliance check first saw it (or after its first run
 * started, when earlier), so a first deploy no longer holds the overdue alarm until every schedule has fired; a
 * policy whose last success is old stays overdue as before. The Lambda handler migrates the ledger and records
 * each deployed scheduled policy once (a later invocation keeps the first time); `pg-lifecycle report` only
 * reads the sightings, and on a ledger without the table reports by the rule from before.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Context } from 'aws-lambda';
import type pg from 'pg';
import { vi } from 'vitest';
import { listMigrations } from '../../functions/adapters/migrations.ts';
import { type ComplianceCheckResult, handler } from '../../functions/compliance.ts';
import {
  buildComplianceReport,
  buildOverdueReport,
  type PolicyCompliance,
  recordFirstSeen,
} from '../../functions/reports/compliance.ts';
import {
  COMPLIANCE_POLICIES_ENV,
  COMPLIANCE_STACK_ENV,
  compliancePolicies,
  encodeCompliancePolicies,
} from '../../lib/contracts/compliance-check.ts';
import { testConfig } from '../support/archive.ts';
import { runCli } from '../support/cli.ts';
import { createTestDatabase, migrateLedger, type TestDatabase } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';

const DAY_MS = 86_400_000;
const FIRST_SEEN_MIGRATION = '014_policy_first_seen';

/** Each policy its own table (a table is purged by one policy). */
const tableOf = (policy: string) => `events_${policy.replace(/-/g, '_')}`;

function purge(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    table: `public.${tableOf(name)}`,
    action: 'purge',
    timeColumn: 'created_at',
    retention: 'P30D',
    ...extra,
  };
}

const policies = [
  purge('daily-new', { schedule: 'rate(1 day)' }),
  purge('daily-stale', { schedule: 'rate(1 day)' }),
  purge('daily-failing', { schedule: 'rate(1 day)' }),
  purge('daily-ok', { schedule: 'rate(1 day)' }),
  purge('by-hand'),
  {
    name: 'gdpr',
    action: 'subjects',
    subjects: {
      keyName: 'person_id',
      tables: [{ table: 'public.people', keyColumn: 'id', action: 'delete' }],
    },
  },
];
const config = testConfig(policies as Parameters<typeof testConfig>[0]);

async function createEvents(db: TestDatabase): Promise<void> {
  const names = ['daily-new', 'daily-stale', 'daily-failing', 'daily-ok', 'by-hand'].map(tableOf);
  for (const table of [...names, 'people'])
    await db.pool.query(
      `CREATE TABLE public.${table} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL);
       CREATE INDEX ON public.${table} (created_at);`,
    );
}

/** A finished real run of a purge policy straight into the ledger: started `startedAgoMs` ago, a minute long. */
async function insertRun(
  db: TestDatabase,
  run: { policy: string; status: 'succeeded' | 'failed'; startedAgoMs: number },
): Promise<void> {
  const started = new Date(Date.now() - run.startedAgoMs).toISOString();
  await db.pool.query(
    `INSERT INTO lifecycle.runs (run_id, policy, action, table_name, time_column, cutoff, status, trigger,
                                 started_at, finished_at)
     VALUES ($1, $2, 'purge', 'public.x', 'created_at', $3::timestamptz - interval '30 days', $4, 'schedule',
             $3::timestamptz, $3::timestamptz + interval '1 minute')`,
    [randomUUID(), run.policy, started, run.status],
  );
}

async function withPoolClient<T>(db: TestDatabase, use: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    return await use(client);
  } finally {
    client.release();
  }
}

/** The overdue report (the Lambda's) of the config's enabled policies. */
function overdueReport(db: TestDatabase) {
  return withPoolClient(db, (client) =>
    buildOverdueReport(
      client,
      config.policies.filter((p) => p.enabled),
      { now: new Date() },
    ),
  );
}

function entry(entries: readonly PolicyCompliance[], name: string): PolicyCompliance {
  const found = entries.find((p) => p.policy === name);
  if (!found) throw new Error(`no ${name} in the report`);
  return found;
}

async function firstSeenRows(db: TestDatabase): Promise<Record<string, string>> {
  const { rows } = await db.pool.query<{ policy: string; first_seen: string }>(
    `SELECT policy, first_seen::text AS first_seen FROM lifecycle.policy_first_seen ORDER BY policy`,
  );
  return Object.fromEntries(rows.map((r) => [r.policy, r.first_seen]));
}

async function setFirstSeen(db: TestDatabase, policy: string, agoMs: number): Promise<void> {
  await db.pool.query(
    `UPDATE lifecycle.policy_first_seen SET first_seen = clock_timestamp() - $2 * interval '1 millisecond'
      WHERE policy = $1`,
    [policy, agoMs],
  );
}

async function hasFirstSeenTable(db: TestDatabase): Promise<boolean> {
  const { rows } = await db.pool.query<{ present: boolean }>(
    `SELECT to_regclass('lifecycle.policy_first_seen') IS NOT NULL AS present`,
  );
  return rows[0]?.present === true;
}

const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((db) => db.drop()));
});

describe('the overdue rule with first sightings', () => {
  beforeAll(async ({ database }) => {
    await migrateLedger(database);
    await createEvents(database);
  });

  it('does not count a scheduled policy never run as overdue when first seen now, but does three periods on', async ({
    database,
  }) => {
    // Prepare
    const recorded = await withPoolClient(database, (client) =>
      recordFirstSeen(client, [{ name: 'daily-new', schedule: 'rate(1 day)' }]),
    );
    expect(recorded).toEqual(['daily-new']);

    // Act
    const fresh = entry((await overdueReport(database)).policies, 'daily-new');
    await setFirstSeen(database, 'daily-new', 3 * DAY_MS);
    const late = entry((await overdueReport(database)).policies, 'daily-new');
    const cli = await withPoolClient(database, (client) =>
      buildComplianceReport(client, config, { now: new Date(), policy: 'daily-new' }),
    );

    // Assess
    expect(fresh).toMatchObject({ lastSuccess: null, overdue: false });
    expect(Math.abs(Date.now() - new Date(fresh.firstSeen ?? 0).getTime())).toBeLessThan(60_000);
    expect(late).toMatchObject({ lastSuccess: null, overdue: true });
    expect(Date.now() - new Date(late.firstSeen ?? 0).getTime()).toBeGreaterThan(2.9 * DAY_MS);
    // The CLI's report reads the same sightings.
    expect(cli.policies[0]).toMatchObject({ policy: 'daily-new', overdue: true, firstSeen: late.firstSeen });
    expect(cli.attention).toBe(true);
  });

  it('keeps a policy whose last success is long ago overdue, however recently it was first seen', async ({
    database,
  }) => {
    // Prepare
    await insertRun(database, { policy: 'daily-stale', status: 'succeeded', startedAgoMs: 5 * DAY_MS });
    await withPoolClient(database, (client) =>
      recordFirstSeen(client, [{ name: 'daily-stale', schedule: 'rate(1 day)' }]),
    );

    // Act
    const stale = entry((await overdueReport(database)).policies, 'daily-stale');

    // Assess
    expect(stale.overdue).toBe(true);
    expect(Date.now() - new Date(stale.lastSuccess ?? 0).getTime()).toBeGreaterThan(4.9 * DAY_MS);
    expect(stale.firstSeen).not.toBeNull();
  });

  it('reckons a policy failing since before its first sighting from its first run (an upgrade buys it no grace)', async ({
    database,
  }) => {
    // Prepare: runs since three days, all failed; the check (just upgraded) sees it for the first time now.
    await insertRun(database, { policy: 'daily-failing', status: 'failed', startedAgoMs: 3 * DAY_MS });
    await insertRun(database, { policy: 'daily-failing', status: 'failed', startedAgoMs: DAY_MS });
    await withPoolClient(database, (client) =>
      recordFirstSeen(client, [{ name: 'daily-failing', schedule: 'rate(1 day)' }]),
    );

    // Act
    const failing = entry((await overdueReport(database)).policies, 'daily-failing');

    // Assess
    expect(failing).toMatchObject({ lastSuccess: null, overdue: true });
  });
});

/** A Lambda context as much as the handler and its middlewares read of one. */
function lambdaContext(): Context {
  return {
    functionName: 'PgLifecycle-ComplianceCheck',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:PgLifecycle-ComplianceCheck',
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/compliance',
    logStreamName: 'test',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 110_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

describe('the compliance check Lambda', () => {
  let db: TestDatabase;
  const deployed = compliancePolicies(config);
  const scheduled = deployed.filter((p) => p.schedule !== undefined).map((p) => p.name);

  beforeAll(async () => {
    // A database no run has touched yet: no ledger at all (a first deploy).
    db = await createTestDatabase('compliance_first_seen_handler');
    databases.push(db);
    await createEvents(db);
  });

  async function invoke(): Promise<ComplianceCheckResult> {
    vi.stubEnv('DATABASE_URL', db.url);
    vi.stubEnv('DB_SECRET_ARN', undefined);
    vi.stubEnv(COMPLIANCE_POLICIES_ENV, encodeCompliancePolicies(deployed));
    vi.stubEnv(COMPLIANCE_STACK_ENV, 'PgLifecycle');
    try {
      return (await handler({ trigger: 'schedule' }, lambdaContext())) as ComplianceCheckResult;
    } finally {
      vi.unstubAllEnvs();
    }
  }

  it('migrates the ledger, records each deployed scheduled policy once and reports none of them overdue', async () => {
    // Act
    const first = await invoke();
    const seen = await firstSeenRows(db);
    const second = await invoke();

    // Assess: the first invocation made the ledger (014 included) and saw every scheduled policy.
    const { rows: applied } = await db.pool.query<{ version: string }>(
      'SELECT version FROM lifecycle.schema_migrations ORDER BY version',
    );
    expect(applied.map((r) => r.version)).toEqual(listMigrations().map((m) => m.version));
    expect(applied.map((r) => r.version)).toContain(FIRST_SEEN_MIGRATION);
    expect(first.firstSeen).toEqual([...scheduled].sort());
    expect(Object.keys(seen).sort()).toEqual([...scheduled].sort());
    // Never run, just deployed: not overdue (before sql/014 every one of them was, and the alarm fired).
    expect(first).toMatchObject({ policies: deployed.length, overduePolicies: [] });
    // The second keeps every first sighting as it was.
    expect(second.firstSeen).toEqual([]);
    expect(second.overduePolicies).toEqual([]);
    expect(await firstSeenRows(db)).toEqual(seen);
  });

  it('reports a policy overdue once two periods passed since its first sighting without a success', async () => {
    // Prepare: daily-new was first seen three days ago; daily-ok succeeded an hour ago.
    await setFirstSeen(db, 'daily-new', 3 * DAY_MS);
    await setFirstSeen(db, 'daily-ok', 3 * DAY_MS);
    await insertRun(db, { policy: 'daily-ok', status: 'succeeded', startedAgoMs: 3_600_000 });
    const before = await firstSeenRows(db);

    // Act
    const result = await invoke();

    // Assess
    expect(result.overduePolicies).toEqual(['daily-new']);
    expect(result.firstSeen).toEqual([]);
    expect(await firstSeenRows(db)).toEqual(before);
  });
});

describe('pg-lifecycle report and first sightings', () => {
  let db: TestDatabase;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    // A ledger migrated by the release before sql/014: every migration but that one.
    db = await createTestDatabase('compliance_first_seen_cli');
    databases.push(db);
    dir = mkdtempSync(path.join(tmpdir(), 'pgl-first-seen-'));
    for (const migration of listMigrations().filter((m) => m.version !== FIRST_SEEN_MIGRATION)) {
      writeFileSync(path.join(dir, `${migration.version}.sql`), migration.sql);
    }
    await migrateLedger(db, dir);
    await createEvents(db);
    await insertRun(db, { policy: 'daily-ok', status: 'succeeded', startedAgoMs: 3_600_000 });
    file = path.join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        sandbox: true,
        policies: [
          purge('daily-new', { schedule: 'rate(1 day)' }),
          purge('daily-ok', { schedule: 'rate(1 day)' }),
        ],
      }),
    );
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('works on a ledger without the table, by the rule from before, and creates nothing', async () => {
    // Act
    const all = await runCli(['report', '--config', file, '--json'], { env: { DATABASE_URL: db.url } });
    const ok = await runCli(['report', '--config', file, '--policy', 'daily-ok', '--json'], {
      env: { DATABASE_URL: db.url },
    });

    // Assess: never succeeded and never seen is overdue (exit 1); the policy that succeeded is not.
    expect(all.stderr).toBe('');
    expect(all.code).toBe(1);
    const parsed = JSON.parse(all.stdout) as { attention: boolean; policies: PolicyCompliance[] };
    expect(entry(parsed.policies, 'daily-new')).toMatchObject({
      overdue: true,
      lastSuccess: null,
      firstSeen: null,
    });
    expect(entry(parsed.policies, 'daily-ok')).toMatchObject({ overdue: false, firstSeen: null });
    expect(ok.code).toBe(0);
    // Read only: no migration applied, no table made.
    expect(await hasFirstSeenTable(db)).toBe(false);
  });

  it('reads the sightings the check recorded, and records none of its own', async () => {
    // Prepare: the stack's check migrated the ledger and saw daily-new (not daily-ok: say it is deployed elsewhere).
    await migrateLedger(db);
    await withPoolClient(db, (client) =>
      recordFirstSeen(client, [{ name: 'daily-new', schedule: 'rate(1 day)' }]),
    );
    const before = await firstSeenRows(db);

    // Act
    const all = await runCli(['report', '--config', file, '--json'], { env: { DATABASE_URL: db.url } });

    // Assess: daily-new has its grace now; the CLI wrote nothing (daily-ok is still unseen).
    expect(all.stderr).toBe('');
    expect(all.code).toBe(0);
    const parsed = JSON.parse(all.stdout) as { attention: boolean; policies: PolicyCompliance[] };
    expect(entry(parsed.policies, 'daily-new')).toMatchObject({ overdue: false, lastSuccess: null });
    expect(entry(parsed.policies, 'daily-new').firstSeen).toEqual(expect.any(String));
    expect(entry(parsed.policies, 'daily-ok')).toMatchObject({ overdue: false, firstSeen: null });
    expect(await firstSeenRows(db)).toEqual(before);
    expect(Object.keys(before)).toEqual(['daily-new']);
  });
});
