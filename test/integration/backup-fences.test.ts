import type { Context } from 'aws-lambda';
import { localDependencies } from '../../functions/local-runner/local-dependencies.ts';
import type { ChunkFaultHooks } from '../../functions/run/dependencies.ts';
import { finishRun } from '../../functions/run/finish-run.ts';
import { runChunks } from '../../functions/run/run-chunks.ts';
import { startRun } from '../../functions/run/start-run.ts';
import { buildExecutionInput } from '../../lib/execution-input.ts';
import { testConfig } from '../support/archive.ts';
import { keysUnderPrefix, manifestOfRun } from '../support/backups.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

describe('backup fences', () => {
  it('never lists a batch twice when an older invocation outlives its step', async ({
    database,
    s3,
    bucket,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA stale;
      CREATE TABLE stale.t (id int PRIMARY KEY, body text);
      INSERT INTO stale.t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;`);
    const config = testConfig([
      {
        name: 'stale',
        action: 'backup',
        backup: { tables: ['stale.*'], partMiB: 1, maxConcurrency: 1, level: 1 },
      },
    ]);
    const deps = (hooks?: ChunkFaultHooks) =>
      localDependencies({ databaseUrl: database.url, bucket, s3, now: () => NOW, hooks })({
        getRemainingTimeInMillis: () => 60_000,
      } as Context);
    const state = await startRun(deps(), { input: buildExecutionInput(config, 'stale', 'local', false) });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reached: () => void = () => undefined;
    const atLedger = new Promise<void>((resolve) => {
      reached = resolve;
    });

    // The first invocation stops just before listing its first batch (a Lambda frozen after its timeout)…
    const first = runChunks(
      deps({
        beforeLedger: async () => {
          reached();
          await gate;
        },
      }),
      state,
    );
    first.catch(() => undefined);
    await atLedger;
    // …its retry does the whole backup, then the first one thaws and tries to commit.
    const retried = await runChunks(deps(), state);
    release();

    await expect(first).rejects.toMatchObject({ name: 'LeaseLostError' });
    expect(retried.done).toBe(true);
    const summary = await finishRun(deps(), retried);
    const manifest = await manifestOfRun(s3, bucket, summary);
    expect(manifest.tables[0]?.rows).toBe(20_000);
    expect(manifest.tables[0]?.parts.map((p) => p.key.match(/part-(\d+)/)?.[1])).toEqual(
      manifest.tables[0]?.parts.map((_, i) => String(i + 1).padStart(5, '0')),
    );
    // The thawed invocation's part was never listed: Finish removed it as an orphan.
    const stored = await keysUnderPrefix(s3, bucket, `backup/stale/${manifest.backupId}/data/`);
    expect(stored).toEqual(manifest.tables[0]?.parts.map((p) => p.key).sort());
  });

  it('fails a table walked by heap blocks whose heap was rewritten between steps, leaving nothing', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA rewritten;
      CREATE TABLE rewritten.heap (n int, body text);
      INSERT INTO rewritten.heap SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;
      DELETE FROM rewritten.heap WHERE n % 3 = 0;`);
    let uploads = 0;
    let rewriting: Promise<unknown> | undefined;
    const config = testConfig([
      {
        name: 'rewritten',
        action: 'backup',
        backup: { tables: ['rewritten.*'], partMiB: 1, maxConcurrency: 1, level: 1 },
      },
    ]);

    const result = await runPolicy(config, 'rewritten', {
      chunkBudgetMs: 1200,
      deps: {
        hooks: {
          afterUpload: () => {
            uploads++;
            // Queued behind the step's ACCESS SHARE lock: it compacts the heap between this step and the next.
            if (uploads === 1) rewriting = database.pool.query('VACUUM FULL rewritten.heap');
          },
        },
      },
    });
    await rewriting;

    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('CatalogError');
    expect(result.failure?.cause).toContain('"rewritten"."heap" was rewritten during the backup');
    expect(await keysUnderPrefix(s3, bucket, 'backup/rewritten/')).toEqual([]);
  });

  it('refuses a role whose row level security would hide rows, before anything is read or written', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA rls;
      CREATE TABLE rls.t (id int PRIMARY KEY, owner text);
      INSERT INTO rls.t SELECT g, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END FROM generate_series(1, 1000) g;
      ALTER TABLE rls.t ENABLE ROW LEVEL SECURITY;
      CREATE POLICY only_a ON rls.t FOR SELECT USING (owner = 'a');
      DROP ROLE IF EXISTS rls_backup;
      CREATE ROLE rls_backup LOGIN PASSWORD 'rls-backup';
      GRANT USAGE ON SCHEMA rls TO rls_backup;
      GRANT SELECT ON rls.t TO rls_backup;`);
    const url = new URL(database.url);
    url.username = 'rls_backup';
    url.password = 'rls-backup';
    const config = testConfig([{ name: 'rls', action: 'backup', backup: { tables: ['rls.*'] } }]);

    const result = await runPolicy(config, 'rls', { deps: { databaseUrl: url.toString() } });

    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('InsufficientPrivilegeError');
    expect(result.failure?.cause).toContain('lacks BYPASSRLS on "rls"."t"');
    expect(await keysUnderPrefix(s3, bucket, 'backup/rls/')).toEqual([]);
    await database.pool.query('DROP OWNED BY rls_backup; DROP ROLE rls_backup');
  });

  it('goes on with a run the previous release started (ledger at sql/009) after the upgrade', async ({
    database,
  }) => {
    await database.pool.query(
      'CREATE TABLE public.upgrade_logs (id bigint PRIMARY KEY, created_at timestamptz NOT NULL); CREATE INDEX ON public.upgrade_logs (created_at)',
    );
    await database.pool.query(
      `INSERT INTO public.upgrade_logs SELECT g, $1::timestamptz - g * interval '1 hour' FROM generate_series(1, 2000) g`,
      [NOW.toISOString()],
    );
    const config = testConfig([
      {
        name: 'upgrade-purge',
        action: 'purge',
        table: 'public.upgrade_logs',
        timeColumn: 'created_at',
        retention: 'P30D',
      },
    ]);
    const deps = localDependencies({ databaseUrl: database.url, now: () => NOW })({
      getRemainingTimeInMillis: () => 60_000,
    } as Context);
    const state = await startRun(deps, {
      input: buildExecutionInput(config, 'upgrade-purge', 'local', false),
    });
    // The ledger as the previous release left it: sql/010 undone, the run in flight.
    await database.pool.query(`
      ALTER TABLE lifecycle.runs DROP COLUMN detail, DROP COLUMN step_token;
      ALTER TABLE lifecycle.archived_objects DROP COLUMN detail,
        DROP CONSTRAINT archived_objects_archive_copy_check, DROP CONSTRAINT archived_objects_rows_check,
        ADD CONSTRAINT archived_objects_rows_check CHECK (rows > 0);
      DROP TABLE lifecycle.restore_drills;
      DELETE FROM lifecycle.schema_migrations WHERE version = '010_backups';`);

    // The new release's steps of that run.
    const stepped = await runChunks(deps, state);
    const summary = await finishRun(deps, stepped);

    expect(summary.status).toBe('succeeded');
    expect(summary.rows).toBe(2000 - 30 * 24);
    const { rows } = await database.pool.query(
      `SELECT 1 FROM lifecycle.schema_migrations WHERE version = '010_backups'`,
    );
    expect(rows).toHaveLength(1);
  });
});
