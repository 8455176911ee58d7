/**
 * Legacy import through the local state machine on real PostgreSQL: a legacy table with deliberate bad rows
 * (each rejected with its reason, the rest imported exactly once across two runs), the dry run (counts and
 * reasons, nothing written), bad config refused before anything is written, and mixed-case names.
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { importReport } from '../../functions/reports/import-report.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import { runCli } from '../support/cli.ts';
import { describe, expect, it } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

function importPolicy(options: Record<string, unknown>, overrides: Partial<PolicyInput> = {}): PolicyInput {
  return {
    name: 'legacy',
    action: 'import',
    chunking: { initialRows: 40, minRows: 40, maxRows: 40 },
    import: options,
    ...overrides,
  } as PolicyInput;
}

/** 200 legacy rows; 7 of them bad for the target in five different ways. */
const LEGACY = `
  DROP SCHEMA IF EXISTS legacy CASCADE; CREATE SCHEMA legacy;
  DROP TABLE IF EXISTS public.exceptions; DROP TABLE IF EXISTS public.services;
  CREATE TABLE public.services (name text PRIMARY KEY);
  INSERT INTO public.services VALUES ('api'), ('web'), ('worker');
  CREATE TABLE public.exceptions (
    id bigint PRIMARY KEY,
    service text NOT NULL REFERENCES public.services (name),
    message text NOT NULL,
    severity smallint NOT NULL CHECK (severity BETWEEN 1 AND 5),
    occurred_at timestamptz NOT NULL,
    imported boolean NOT NULL DEFAULT true);
  CREATE TABLE legacy.exceptions (
    legacy_id int PRIMARY KEY, svc text, msg text, sev text, ts_epoch bigint);
  INSERT INTO legacy.exceptions
    SELECT g, (ARRAY['api','web','worker'])[1 + g % 3], 'boom ' || g, (1 + g % 5)::text, 1700000000 + g
      FROM generate_series(1, 200) g;
  UPDATE legacy.exceptions SET msg = NULL WHERE legacy_id = 17;             -- NOT NULL
  UPDATE legacy.exceptions SET sev = 'high' WHERE legacy_id IN (33, 150);   -- cast to smallint fails
  UPDATE legacy.exceptions SET sev = '9' WHERE legacy_id = 64;              -- CHECK
  UPDATE legacy.exceptions SET svc = 'billing' WHERE legacy_id IN (90, 91); -- foreign key
  UPDATE legacy.exceptions SET svc = NULL WHERE legacy_id = 199;            -- NOT NULL
`;

const MAPPING = {
  source: 'legacy.exceptions',
  target: 'public.exceptions',
  columns: {
    id: 'legacy_id',
    service: 'svc',
    message: 'msg',
    severity: 'sev',
    occurred_at: 'to_timestamp(ts_epoch)',
  },
};

const BAD = ['17', '33', '64', '90', '91', '150', '199'];

describe('import', () => {
  it('imports the valid rows once across two runs, rejects each bad row with its reason, and a fixed row goes in later', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(LEGACY);
    const config = testConfig([importPolicy(MAPPING)]);

    const first = await runPolicy(config, 'legacy');
    expect(first.status).toBe('succeeded');
    expect(first.summary?.rows).toBe(193);

    const rejects = await db.pool.query<{ key: string; sqlstate: string; reason: string; run_id: string }>(
      `SELECT source_key->>0 AS key, sqlstate, reason, run_id::text FROM lifecycle.import_rejects
        WHERE policy = 'legacy' ORDER BY (source_key->>0)::int`,
    );
    expect(rejects.rows.map((r) => r.key)).toEqual(BAD);
    const byKey = new Map(rejects.rows.map((r) => [r.key, r]));
    expect(byKey.get('17')?.sqlstate).toBe('23502');
    expect(byKey.get('33')?.sqlstate).toBe('22P02');
    expect(byKey.get('64')?.sqlstate).toBe('23514');
    expect(byKey.get('90')?.sqlstate).toBe('23503');
    expect(byKey.get('199')?.sqlstate).toBe('23502');
    // The reasons name columns and constraints, never the rejected values.
    expect(byKey.get('33')?.reason).not.toContain('high');
    expect(byKey.get('90')?.reason).not.toContain('billing');
    expect(byKey.get('90')?.reason).toContain('exceptions_service_fkey');

    // Exact values for a valid row.
    const row = await db.pool.query(
      `SELECT id::text, service, message, severity::text, occurred_at = to_timestamp(1700000042) AS same_time
         FROM public.exceptions WHERE id = 42`,
    );
    expect(row.rows[0]).toEqual({
      id: '42',
      service: 'api',
      message: 'boom 42',
      severity: '3',
      same_time: true,
    });

    const figures = await db.pool.query(
      `SELECT examined::int, inserted::int, skipped::int, rejected::int FROM lifecycle.import_runs WHERE run_id = $1`,
      [rejects.rows[0]?.run_id],
    );
    expect(figures.rows[0]).toEqual({ examined: 200, inserted: 193, skipped: 0, rejected: 7 });

    // Second run: nothing imported twice; the same rows refused again (one reject row each, the new run's).
    const second = await runPolicy(config, 'legacy');
    expect(second.status).toBe('succeeded');
    expect(second.summary?.rows).toBe(0);
    const counts = await db.pool.query<{ rows: string; distinct_ids: string }>(
      `SELECT count(*)::text AS rows, count(DISTINCT id)::text AS distinct_ids FROM public.exceptions`,
    );
    expect(counts.rows[0]).toEqual({ rows: '193', distinct_ids: '193' });
    const again = await db.pool.query<{ n: string; runs: string }>(
      `SELECT count(*)::text AS n, count(DISTINCT run_id)::text AS runs FROM lifecycle.import_rejects WHERE policy = 'legacy'`,
    );
    expect(again.rows[0]).toEqual({ n: '7', runs: '1' });

    // The source fixed for two rows: the next run imports them and forgets their rejects.
    await db.pool.query(`UPDATE legacy.exceptions SET sev = '4' WHERE legacy_id = 64;
                         UPDATE legacy.exceptions SET msg = 'late' WHERE legacy_id = 17`);
    const third = await runPolicy(config, 'legacy');
    expect(third.summary?.rows).toBe(2);
    const left = await db.pool.query<{ key: string }>(
      `SELECT source_key->>0 AS key FROM lifecycle.import_rejects WHERE policy = 'legacy' ORDER BY 1::text`,
    );
    expect(left.rows.map((r) => r.key).sort()).toEqual(['150', '199', '33', '90', '91']);

    // The validation report: each run's figures, the outstanding rejects by reason with their keys.
    const report = await importReport(db.pool, 'legacy');
    expect(report.runs.map((r) => [r.examined, r.inserted, r.skipped, r.rejected])).toEqual([
      [200, 2, 193, 5],
      [200, 0, 193, 7],
      [200, 193, 0, 7],
    ]);
    expect(report.outstandingRejects).toBe(5);
    const keysBySqlstate = Object.fromEntries(
      report.reasons.map((r) => [r.sqlstate, r.sampleKeys.map((k) => k[0]).sort()]),
    );
    expect(keysBySqlstate).toEqual({ '22P02': ['150', '33'], '23503': ['90', '91'], '23502': ['199'] });
  });

  it('pg-lifecycle plan and import report: counts and reasons as text and JSON, exit 1 while rows are refused', async ({
    database: db,
  }) => {
    await db.pool.query(LEGACY);
    await db.pool.query(`DELETE FROM lifecycle.import_rejects WHERE policy = 'legacy'`);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'import-cli-')), 'config.json');
    writeFileSync(file, JSON.stringify({ sandbox: true, policies: [importPolicy(MAPPING)] }));
    const env = { DATABASE_URL: db.url };

    const plan = await runCli(['plan', '--config', file, '--policy', 'legacy'], { env });
    const run = await runCli(['run', '--config', file, '--policy', 'legacy', '--json'], { env });
    const text = await runCli(['import', 'report', '--config', file], { env });
    const json = await runCli(['import', 'report', '--config', file, '--policy', 'legacy', '--json'], {
      env,
    });
    const wrong = await runCli(['import', 'report', '--config', file, '--policy', 'nope'], { env });

    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('would import  193 rows; already there 0; refused 7');
    expect(plan.stdout).toMatch(/refused +2 × 22P02: .*e\.g\. source keys \(33\) \(150\)/);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ policy: 'legacy', action: 'import', rows: 193 });
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('legacy: 7 source rows refused and not imported');
    expect(text.stdout).toMatch(/examined 200, imported 193, already there 0, refused 7/);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { policies: Array<{ outstandingRejects: number }> };
    expect(report.policies[0]?.outstandingRejects).toBe(7);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('no policy named "nope"');
  });

  it('a dry run counts valid, present and invalid rows with reasons and writes nothing', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(LEGACY);
    await db.pool.query(
      `INSERT INTO public.exceptions (id, service, message, severity, occurred_at) VALUES (5, 'api', 'already', 1, now())`,
    );
    const config = testConfig([importPolicy(MAPPING)]);
    const before = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM public.exceptions`);
    const ledgerBefore = await db.pool.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM lifecycle.import_rejects) + (SELECT count(*) FROM lifecycle.runs) AS n`,
    );

    const plan = await runPolicy(config, 'legacy', { dryRun: true });

    const found = plan.summary?.plan?.import;
    expect(found).toMatchObject({
      sourceRows: 200,
      validatedRows: 200,
      valid: 192,
      alreadyImported: 1,
      invalid: 7,
    });
    const reasons = found?.reasons ?? [];
    expect(reasons.reduce((sum, r) => sum + r.rows, 0)).toBe(7);
    expect(reasons.flatMap((r) => r.sampleKeys.map((k) => k[0])).sort()).toEqual([...BAD].sort());
    const after = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM public.exceptions`);
    expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
    const ledger = await db.pool.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM lifecycle.import_rejects) + (SELECT count(*) FROM lifecycle.runs) AS n`,
    );
    expect(ledger.rows[0]?.n).toBe(ledgerBefore.rows[0]?.n);
  });

  it('refuses a bad mapping before anything is written: unknown column, volatile function, type mismatch, no key', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(LEGACY);
    await db.pool.query(`DROP TABLE IF EXISTS legacy.nokey; CREATE TABLE legacy.nokey (a int, b text)`);
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [
        { ...MAPPING, columns: { ...MAPPING.columns, nope: 'msg' } },
        'CatalogError',
        /column nope does not exist/,
      ],
      [
        { ...MAPPING, columns: { ...MAPPING.columns, message: 'no_such_col' } },
        'InvalidFilterError',
        /no_such_col/,
      ],
      [
        { ...MAPPING, columns: { ...MAPPING.columns, message: 'msg || random()::text' } },
        'InvalidFilterError',
        /random/,
      ],
      [
        { ...MAPPING, columns: { ...MAPPING.columns, occurred_at: 'ts_epoch' } },
        'InvalidFilterError',
        /occurred_at|timestamp/,
      ],
      [
        { ...MAPPING, source: 'legacy.nokey', columns: { id: 'a', message: 'b' } },
        'CatalogError',
        /no primary key/,
      ],
      [{ ...MAPPING, source: 'legacy.missing' }, 'CatalogError', /legacy\.missing/],
    ];
    for (const [options, error, message] of cases) {
      const result = await runPolicy(testConfig([importPolicy(options)]), 'legacy');
      expect(result.failure?.error, JSON.stringify(options.columns)).toBe(error);
      expect(result.failure?.cause).toMatch(message);
    }
    const written = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM public.exceptions`);
    expect(written.rows[0]?.n).toBe('0');
  });

  it('mixed-case, spaced names and a composite source key', async ({ database: db, runPolicy }) => {
    await db.pool.query(`
      DROP SCHEMA IF EXISTS "Old App" CASCADE; CREATE SCHEMA "Old App";
      DROP TABLE IF EXISTS "New Orders";
      CREATE TABLE "Old App"."Order Lines" ("Order No" int, "Line" int, "Item Name" text, PRIMARY KEY ("Order No", "Line"));
      INSERT INTO "Old App"."Order Lines" SELECT o, l, 'item ' || o || '/' || l FROM generate_series(1, 30) o, generate_series(1, 3) l;
      CREATE TABLE "New Orders" ("Order Id" text PRIMARY KEY, "Item" varchar(12) NOT NULL);
      UPDATE "Old App"."Order Lines" SET "Item Name" = 'an item name far too long' WHERE ("Order No", "Line") = (5, 1);`);
    const config = testConfig([
      importPolicy({
        source: '"Old App"."Order Lines"',
        target: '"New Orders"',
        columns: { '"Order Id"': `"Order No" || '-' || "Line"`, '"Item"': '"Item Name"' },
      }),
    ]);

    const run = await runPolicy(config, 'legacy');

    expect(run.status).toBe('succeeded');
    // Every generated name fits varchar(12) but the one made too long: refused (22001), never cut short.
    expect(run.summary?.rows).toBe(89);
    const rejected = await db.pool.query<{ key: string[]; sqlstate: string }>(
      `SELECT source_key AS key, sqlstate FROM lifecycle.import_rejects WHERE run_id = $1::uuid`,
      [run.summary?.runId],
    );
    expect(rejected.rows).toEqual([{ key: ['5', '1'], sqlstate: '22001' }]);
    const { rows } = await db.pool.query<{ item: string }>(
      `SELECT "Item" AS item FROM "New Orders" WHERE "Order Id" = '27-2'`,
    );
    expect(rows[0]?.item).toBe('item 27/2');
  });
});
