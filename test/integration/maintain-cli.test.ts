/**
 * `pg-lifecycle plan` for a maintain policy, as a user reads it: the due statements with their figures and
 * reasons, in text; nothing changed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../support/cli.ts';
import { describe, expect, it } from '../support/fixture.ts';
import { changeAndPublish } from '../support/maintain.ts';

describe('pg-lifecycle plan (maintain)', () => {
  it('lists a VACUUM for the bloated table with its bloat and reason, and changes nothing', async ({
    database,
  }) => {
    await changeAndPublish(
      database.pool,
      `DROP SCHEMA IF EXISTS "Maint Cli" CASCADE; CREATE SCHEMA "Maint Cli";
       CREATE TABLE "Maint Cli"."Events" (id bigint PRIMARY KEY, payload text NOT NULL) WITH (autovacuum_enabled = off);
       INSERT INTO "Maint Cli"."Events" SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
       ANALYZE "Maint Cli"."Events";
       DELETE FROM "Maint Cli"."Events" WHERE id % 10 <> 0;`,
    );
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'maintain-cli-')), 'config.json');
    const policy = {
      name: 'nightly',
      action: 'maintain',
      maintain: { tables: ['"Maint Cli".*'], reindex: 'skip' },
    };
    writeFileSync(file, JSON.stringify({ sandbox: true, policies: [policy] }));
    const deadBefore = await database.pool.query<{ n: string }>(
      `SELECT n_dead_tup::text AS n FROM pg_stat_user_tables WHERE schemaname = 'Maint Cli'`,
    );

    const plan = await runCli(['plan', '--config', file, '--policy', 'nightly'], {
      env: { DATABASE_URL: database.url },
    });

    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/nightly: dry run, maintenance: [1-9]\d* statements due \(nothing changed\)/);
    expect(plan.stdout).toMatch(
      / {2}VACUUM +"Maint Cli"\."Events": [\d.]+ [KM]i?B, [\d.]+ % bloat \(statistics\): /,
    );
    const deadAfter = await database.pool.query<{ n: string }>(
      `SELECT n_dead_tup::text AS n FROM pg_stat_user_tables WHERE schemaname = 'Maint Cli'`,
    );
    expect(deadAfter.rows[0]?.n).toBe(deadBefore.rows[0]?.n);
  });
});
