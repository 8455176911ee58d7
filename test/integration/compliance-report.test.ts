/**
 * `pg-lifecycle report` against a real ledger: a fresh success is on time and an old one overdue (exit 1),
 * rows past retention are counted over the action's own target (anonymize: only rows still unmasked), a
 * count that cannot finish within the policy's statement_timeout is reported as not counted, and subject
 * requests are counted per state; the CLI prints one JSON object and exits by what needs attention.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { createSubjectRequest } from '../../functions/actions/subjects/requests.ts';
import { buildComplianceReport, type PolicyCompliance } from '../../functions/reports/compliance.ts';
import { testConfig } from '../support/archive.ts';
import { runCli } from '../support/cli.ts';
import { createTestDatabase, migrateLedger, type TestDatabase } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';

const KEY = 'test hash key for the compliance report';
const DAY_MS = 86_400_000;

function purge(name: string, table: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    table: `public.${table}`,
    action: 'purge',
    timeColumn: 'created_at',
    retention: 'P30D',
    ...extra,
  };
}

const policies = [
  purge('fresh', 'fresh_events', { schedule: 'rate(1 day)' }),
  purge('stale', 'stale_events', { schedule: 'cron(0 3 * * ? *)', timezone: 'Europe/Berlin' }),
  purge('slow', 'slow_events', {
    schedule: 'rate(1 day)',
    chunking: { statementTimeoutMs: 200, targetTransactionMs: 100 },
  }),
  purge('off', 'fresh_events', { enabled: false, schedule: 'rate(1 hour)' }),
  {
    name: 'masked',
    table: 'public.people',
    action: 'anonymize',
    timeColumn: 'created_at',
    retention: 'P30D',
    anonymize: { columns: { name: { strategy: 'null' } } },
  },
  {
    name: 'gdpr',
    action: 'subjects',
    schedule: 'rate(1 hour)',
    subjects: {
      keyName: 'person_id',
      tables: [{ table: 'public.people', keyColumn: 'id', action: 'delete' }],
    },
  },
];
const config = testConfig(policies as Parameters<typeof testConfig>[0]);

async function seed(db: TestDatabase): Promise<void> {
  await migrateLedger(db);
  for (const table of ['fresh_events', 'stale_events', 'slow_events']) {
    await db.pool.query(`
      CREATE TABLE public.${table} (id bigint PRIMARY KEY, created_at timestamptz NOT NULL);
      CREATE INDEX ON public.${table} (created_at);
      INSERT INTO public.${table} SELECT g, now() - interval '400 days' + g * interval '1 hour' FROM generate_series(1, 50) g;
      INSERT INTO public.${table} SELECT g, now() - interval '1 day' FROM generate_series(51, 60) g;`);
  }
  await db.pool.query(`
    CREATE TABLE public.people (id bigint PRIMARY KEY, name text, created_at timestamptz NOT NULL);
    CREATE INDEX ON public.people (created_at);
    INSERT INTO public.people SELECT g, 'name ' || g, now() - interval '100 days' FROM generate_series(1, 20) g;
    INSERT INTO public.people SELECT g, NULL, now() - interval '100 days' FROM generate_series(21, 25) g;
    INSERT INTO public.people SELECT g, 'name ' || g, now() - interval '1 day' FROM generate_series(26, 30) g;`);
}

/** A finished run of `policy` straight into the ledger, `ageMs` ago. */
async function insertRun(
  db: TestDatabase,
  run: { policy: string; action: string; status: string; ageMs: number; source?: string },
): Promise<void> {
  const finished = new Date(Date.now() - run.ageMs).toISOString();
  await db.pool.query(
    `INSERT INTO lifecycle.runs (run_id, policy, action, table_name, time_column, cutoff, status, trigger,
                                 started_at, finished_at, source)
     VALUES ($1, $2, $3, 'public.x', 'created_at', $4::timestamptz - interval '30 days', $5, 'schedule',
             $4::timestamptz - interval '1 minute', $4::timestamptz, $6)`,
    [randomUUID(), run.policy, run.action, finished, run.status, run.source ?? 'time-cutoff'],
  );
}

async function seedRequests(db: TestDatabase): Promise<void> {
  const ask = (subjectKey: string, daysAgo: number) =>
    createSubjectRequest(db.pool, {
      policy: 'gdpr',
      kind: 'erase',
      subjectKey,
      hashKey: KEY,
      dueDays: 30,
      requestedAt: new Date(Date.now() - daysAgo * DAY_MS),
    });
  await ask('1', 1); // pending, on time
  await ask('2', 40); // pending, overdue
  const failed = await ask('3', 2);
  await db.pool.query(
    `UPDATE lifecycle.subject_requests SET status = 'failed', error = 'boom' WHERE request_id = $1`,
    [failed.request.requestId],
  );
  const done = await ask('4', 3);
  await db.pool.query(
    `UPDATE lifecycle.subject_requests SET status = 'completed', completed_at = now(), subject_key = NULL WHERE request_id = $1`,
    [done.request.requestId],
  );
}

async function report(db: TestDatabase, policy?: string) {
  const client = await db.pool.connect();
  try {
    return await buildComplianceReport(client as pg.ClientBase, config, {
      now: new Date(),
      ...(policy ? { policy } : {}),
    });
  } finally {
    client.release();
  }
}

function entry(policies: PolicyCompliance[], name: string): PolicyCompliance {
  const found = policies.find((p) => p.policy === name);
  if (!found) throw new Error(`no ${name} in the report`);
  return found;
}

let configDir: string;
let bare: TestDatabase;

beforeAll(async ({ database, runPolicy }) => {
  await seed(database);
  // A real run of `fresh`: its success is a moment old.
  const run = await runPolicy(config, 'fresh');
  expect(run.status).toBe('succeeded');
  // `stale` last succeeded five days ago (a daily schedule: overdue); a later failure does not count.
  await insertRun(database, { policy: 'stale', action: 'purge', status: 'succeeded', ageMs: 5 * DAY_MS });
  await insertRun(database, { policy: 'stale', action: 'purge', status: 'failed', ageMs: DAY_MS });
  await insertRun(database, { policy: 'slow', action: 'purge', status: 'succeeded', ageMs: 3_600_000 });
  await insertRun(database, {
    policy: 'gdpr',
    action: 'subjects',
    status: 'succeeded',
    ageMs: 600_000,
    source: 'subject',
  });
  await seedRequests(database);
  configDir = await mkdtemp(path.join(tmpdir(), 'compliance-'));
  bare = await createTestDatabase('compliance_no_ledger');
});

afterAll(async () => {
  if (configDir) await rm(configDir, { recursive: true, force: true });
  await bare?.drop();
});

describe('the compliance report', () => {
  it('shows each enabled policy with its last success, what is overdue, rows past retention and requests', async ({
    database,
  }) => {
    // Act
    const result = await report(database);

    // Assess
    expect(result.policies.map((p) => p.policy)).toEqual(['fresh', 'stale', 'slow', 'masked', 'gdpr']);
    expect(result.attention).toBe(true);

    const fresh = entry(result.policies, 'fresh');
    expect(fresh.overdue).toBe(false);
    expect(fresh.schedule).toMatchObject({ expression: 'rate(1 day)', periodSeconds: 86_400 });
    expect(Date.now() - new Date(fresh.lastSuccess ?? 0).getTime()).toBeLessThan(10 * 60_000);
    expect(fresh.rowsPastRetention).toMatchObject({ status: 'counted', rows: 0, oldest: null });

    const stale = entry(result.policies, 'stale');
    expect(stale.overdue).toBe(true);
    expect(stale.schedule).toMatchObject({ timezone: 'Europe/Berlin', periodSeconds: 86_400 });
    expect(Date.now() - new Date(stale.lastSuccess ?? 0).getTime()).toBeGreaterThan(4.9 * DAY_MS);
    expect(stale.rowsPastRetention).toMatchObject({
      status: 'counted',
      rows: 50,
      oldest: expect.any(String),
    });

    // Manual (no schedule): never overdue, even never run; only rows not yet masked are counted.
    const masked = entry(result.policies, 'masked');
    expect(masked).toMatchObject({
      overdue: false,
      lastSuccess: null,
      firstSeen: null,
      schedule: { expression: null },
    });
    expect(masked.rowsPastRetention).toMatchObject({ status: 'counted', rows: 20 });

    const gdpr = entry(result.policies, 'gdpr');
    expect(gdpr.overdue).toBe(false);
    expect(gdpr.requests).toEqual({ pending: 2, overdue: 1, failed: 1, completedRecently: 1 });
    expect(gdpr.rowsPastRetention).toBeUndefined();
  });

  it('reports a count that outlasts the policy statement_timeout as not counted', async ({ database }) => {
    // Prepare: another session holds the table, so the count waits past 200 ms.
    const holder = await database.pool.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE public.slow_events IN ACCESS EXCLUSIVE MODE');

      // Act
      const result = await report(database, 'slow');

      // Assess
      expect(result.policies).toHaveLength(1);
      expect(result.policies[0]).toMatchObject({
        policy: 'slow',
        overdue: false,
        rowsPastRetention: { status: 'timeout', timeoutMs: 200 },
      });
      expect(result.attention).toBe(false);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
  });
});

describe('pg-lifecycle report', () => {
  it('exits 1 with one JSON object when something is overdue, 0 when not, 2 without a ledger', async ({
    database,
  }) => {
    // Prepare
    const file = path.join(configDir, 'config.json');
    writeFileSync(file, JSON.stringify({ sandbox: true, policies }));
    const env = { DATABASE_URL: database.url };

    // Act
    // One at a time: four CLI processes at once only contend for the two cores.
    const all = await runCli(['report', '--config', file, '--json'], { env });
    const fresh = await runCli(['report', '--config', file, '--policy', 'fresh', '--json'], { env });
    const text = await runCli(['report', '--config', file], { env });
    const noLedger = await runCli(['report', '--config', file], { env: { DATABASE_URL: bare.url } });

    // Assess
    expect(all.stderr).toBe('');
    expect(all.code).toBe(1);
    const parsed = JSON.parse(all.stdout) as { attention: boolean; policies: PolicyCompliance[] };
    expect(all.stdout.trim().split('\n')).toHaveLength(1);
    expect(parsed).toMatchObject({
      attention: true,
      database: expect.any(String),
      generatedAt: expect.any(String),
    });
    expect(entry(parsed.policies, 'stale')).toMatchObject({ overdue: true, rowsPastRetention: { rows: 50 } });
    expect(fresh.code).toBe(0);
    expect(JSON.parse(fresh.stdout)).toMatchObject({ attention: false, policies: [{ policy: 'fresh' }] });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/gdpr\s+subjects\s+.*REQUESTS\s+requests: 2 pending, 1 overdue, 1 failed/);
    expect(text.stdout).toMatch(
      /stale\s+purge\s+cron\(0 3 \* \* \? \*\) Europe\/Berlin \(every 1d\).*OVERDUE\s+50 rows past retention/,
    );
    expect(noLedger.code).toBe(2);
    expect(noLedger.stderr).toMatch(/no ledger in database .*pg-lifecycle migrate/);
  });
});
