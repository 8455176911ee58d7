/**
 * Anonymize edge cases (from a hostile review): what Start checks and what the plan says.
 */
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { HASH_KEY as KEY, NEW, OLD, anonymizePolicy as policy } from '../support/anonymize.ts';
import { testConfig } from '../support/archive.ts';
import { describe, expect, it } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

describe('anonymize: Start and plan', () => {
  it('a domain CHECK no synthetic value satisfies still gets the masked value checked at Start', async ({
    database: db,
    runPolicy,
  }) => {
    // checkMasks keeps only synthetic values the domain accepts; none does, so it probes NULL, which every
    // strategy maps to NULL and the domain accepts: the refusal is vacuous and the first chunk fails instead.
    await db.pool.query(`
      DROP TABLE IF EXISTS refs; DROP DOMAIN IF EXISTS ref_code;
      CREATE DOMAIN ref_code AS text CHECK (VALUE ~ '^C-[0-9]+$');
      CREATE TABLE refs (id int PRIMARY KEY, created_at timestamptz NOT NULL, customer_ref ref_code);
      INSERT INTO refs SELECT g, ${OLD}, 'C-' || g FROM generate_series(1, 10) g;`);
    const config = testConfig([policy('refs', { columns: { customer_ref: { strategy: 'hash' } } })]);

    const plan = await runPolicy(config, 'review', { dryRun: true, deps: { hashKey: KEY } });
    const run = await runPolicy(config, 'review', { deps: { hashKey: KEY } });

    expect(run.failure?.error).toBe('CatalogError');
    expect(plan.summary?.plan?.refusals.length ?? 0).toBeGreaterThan(0);
  });

  it('mixed-case, spaced names with a marker column; plan eligibleRows equals the rows the run masks', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP SCHEMA IF EXISTS "My App" CASCADE; CREATE SCHEMA "My App";
      CREATE TABLE "My App"."Visit Log" ("Visit Id" bigint PRIMARY KEY, "Visited At" timestamp NOT NULL,
        "E-Mail" varchar(60), "Phone No" text, "Masked At" timestamp);
      INSERT INTO "My App"."Visit Log"
        SELECT g, (${OLD})::timestamp + g * interval '1 minute', 'v' || g || '@x.example', '+1 555 01' || g, NULL
          FROM generate_series(1, 120) g;
      INSERT INTO "My App"."Visit Log" SELECT 1000 + g, (${NEW})::timestamp, 'n@x.example', '+1', NULL FROM generate_series(1, 5) g;
      UPDATE "My App"."Visit Log" SET "Masked At" = now() WHERE "Visit Id" <= 20;`);
    const config = testConfig([
      policy(
        '"My App"."Visit Log"',
        {
          columns: { '"E-Mail"': { strategy: 'email' }, '"Phone No"': { strategy: 'partial', keepLast: 2 } },
          markerColumn: '"Masked At"',
        },
        { timeColumn: '"Visited At"' },
      ),
    ]);

    const plan = await runPolicy(config, 'review', { dryRun: true, deps: { hashKey: KEY } });
    const run = await runPolicy(config, 'review', { deps: { hashKey: KEY } });
    const again = await runPolicy(config, 'review', { deps: { hashKey: KEY } });

    expect(run.status).toBe('succeeded');
    expect(plan.summary?.plan?.eligibleRows).toBe(100);
    expect(run.summary?.rows).toBe(100);
    expect(again.summary?.rows).toBe(0);
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM "My App"."Visit Log" WHERE "E-Mail" LIKE 'anon\\_%' AND "Masked At" IS NOT NULL`,
    );
    expect(Number(rows[0]?.n)).toBe(100);
  });
});
