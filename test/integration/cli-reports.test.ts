/**
 * What the CLI reports, against a real PostgreSQL and S3: a failed or interrupted run reports the ledger's
 * true totals (what its committed chunks archived, and kept) next to its error; `verify` and `status` say
 * plainly when there is no ledger, an unknown policy or a run of another policy (exit 2), instead of an
 * empty "OK".
 */
import { randomUUID } from 'node:crypto';
import { formatReport, toReport } from '../../bin/cli/run-command.ts';
import { ledgerObjects, testConfig } from '../support/archive.ts';
import { runRecord, seedEvents } from '../support/archive-guarantees.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it, NOW } from '../support/fixture.ts';
import { runCliInProcess } from '../support/leases.ts';

// A second database, which never gets a ledger.
let empty: TestDatabase;

beforeAll(async () => {
  empty = await createTestDatabase('cli_no_ledger');
});
afterAll(async () => {
  await empty?.drop();
});

function policy(name: string, table: string) {
  return {
    name,
    table: `public.${table}`,
    action: 'archive' as const,
    timeColumn: 'created_at',
    retention: 'P1Y',
    chunking: { initialRows: 100, minRows: 100, maxRows: 100 },
  };
}

describe('run --json of a run that failed after committing chunks', () => {
  it('reports the rows, objects, bytes and chunks the ledger holds for it, next to the error', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: the third chunk fails terminally after its upload, before its ledger rows (it rolls back).
    await seedEvents(db.pool, 'failing', 2000, NOW);
    let chunks = 0;
    const beforeLedger = () => {
      if (++chunks === 3)
        throw Object.assign(new Error('injected: bucket policy changed'), { name: 'BoomError' });
    };

    // Act
    const result = await runPolicy(testConfig([policy('failing', 'failing')]), 'failing', {
      deps: { hooks: { beforeLedger } },
    });
    const report = toReport(result, 'archive');

    // Assess
    expect(report).toMatchObject({ status: 'failed', error: 'BoomError', totalsFrom: 'ledger' });
    const run = await runRecord(db.pool, report.runId);
    const objects = await ledgerObjects(db.pool, report.runId);
    expect(report.chunks).toBe(2);
    expect(report.rows).toBeGreaterThan(0);
    expect(report.rows).toBe(Number(run?.rows));
    expect(report.rows).toBe(objects.reduce((sum, o) => sum + o.rows, 0));
    expect(report.objects).toBe(objects.length);
    expect(report.bytes).toBe(objects.reduce((sum, o) => sum + o.bytes, 0));
    expect(report.cutoff).toBe('2025-11-23T12:00:00.000000Z');
    expect(formatReport(report)).toContain(`committed before the failure (kept): ${report.rows} rows in`);
  });

  it('reports an interrupted run (Ctrl-C) with what it committed', async ({ database: db, runPolicy }) => {
    // Prepare
    await seedEvents(db.pool, 'interrupted', 2000, NOW);
    const interrupt = new AbortController();
    let commits = 0;

    // Act
    const result = await runPolicy(testConfig([policy('interrupted', 'interrupted')]), 'interrupted', {
      signal: interrupt.signal,
      deps: {
        hooks: {
          afterCommit: () => {
            if (++commits === 3) interrupt.abort();
          },
        },
      },
    });
    const report = toReport(result, 'archive');

    // Assess
    expect(report).toMatchObject({ status: 'failed', error: 'Interrupted', totalsFrom: 'ledger' });
    const run = await runRecord(db.pool, report.runId);
    expect(report.rows).toBeGreaterThanOrEqual(300);
    expect(report.rows).toBe(Number(run?.rows));
    expect(report.chunks).toBe(Number(run?.chunks));
    expect(report.objects).toBe((await ledgerObjects(db.pool, report.runId)).length);
  });
});

describe('verify and status refuse to report on nothing', () => {
  it('says plainly that a database has no ledger', async ({ bucket }) => {
    const verify = await runCliInProcess(empty, ['verify', '--policy', 'any', '--bucket', bucket]);
    const status = await runCliInProcess(empty, ['status']);
    const unlock = await runCliInProcess(empty, ['unlock', '--policy', 'any']);
    const expected =
      /no ledger in database cli_no_ledger_\w+: nothing has run here yet; `pg-lifecycle migrate` creates it/;
    for (const outcome of [verify, status, unlock]) {
      expect(outcome.code).toBe(2);
      expect(outcome.stderr).toMatch(expected);
    }
    // Saying so created nothing.
    const { rows } = await empty.pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'lifecycle'`);
    expect(rows).toEqual([]);
  });

  it('refuses an unknown policy and a run of another policy (exit 2), and verifies a real one', async ({
    database: db,
    bucket,
    runPolicy,
  }) => {
    // Prepare: two archive policies that ran.
    await seedEvents(db.pool, 'verified_a', 2000, NOW);
    await seedEvents(db.pool, 'verified_b', 2000, NOW);
    const config = testConfig([policy('verified-a', 'verified_a'), policy('verified-b', 'verified_b')]);
    const a = await runPolicy(config, 'verified-a');
    const b = await runPolicy(config, 'verified-b');
    expect([a.status, b.status]).toEqual(['succeeded', 'succeeded']);

    // Act
    const unknown = await runCliInProcess(db, ['verify', '--policy', 'verified-c', '--bucket', bucket]);
    const otherRun = await runCliInProcess(db, [
      'verify',
      '--policy',
      'verified-a',
      '--bucket',
      bucket,
      '--run',
      String(b.summary?.runId),
    ]);
    const noRun = await runCliInProcess(db, [
      'verify',
      '--policy',
      'verified-a',
      '--bucket',
      bucket,
      '--run',
      randomUUID(),
    ]);
    const good = await runCliInProcess(db, [
      'verify',
      '--policy',
      'verified-a',
      '--bucket',
      bucket,
      '--run',
      String(a.summary?.runId),
    ]);

    // Assess
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no runs of policy "verified-c"');
    expect(unknown.stderr).toContain('verified-a, verified-b');
    expect(unknown.stdout).not.toContain('OK');
    expect(otherRun.code).toBe(2);
    expect(otherRun.stderr).toContain(
      `run ${b.summary?.runId} belongs to policy "verified-b", not "verified-a"`,
    );
    expect(noRun.code).toBe(2);
    expect(noRun.stderr).toMatch(/no run [0-9a-f-]{36} in the ledger/);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/verified-a: [1-9]\d* objects, \d+ rows: OK/);
  });
});
