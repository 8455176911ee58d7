/**
 * A backup under faults and under load, through the real state machine: a terminal failure mid-run leaves
 * no listed or restorable backup and no object; a transient one is retried and the backup completes with
 * every part listed exactly once (the orphan of the failed attempt removed); a backup spanning Chunk steps
 * says `per-part`; one taken while other sessions write is consistent across tables as it claims; a table
 * altered mid-run fails the run. Bad input changes nothing.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import type { parseManifest } from '../../functions/actions/backup/manifest.ts';
import { restorePart } from '../../functions/actions/backup/part-reader.ts';
import { TransientStorageError } from '../../functions/core/errors.ts';
import { testConfig } from '../support/archive.ts';
import { keysUnderPrefix, manifestOfRun } from '../support/backups.ts';
import { describe, expect, it } from '../support/fixture.ts';

function backupConfig(name: string, tables: string[], extra: Record<string, unknown> = {}) {
  return testConfig([
    {
      name,
      action: 'backup',
      backup: { tables, partMiB: 1, maxConcurrency: 2, level: 1, ...extra },
    },
  ]);
}

/** Loads every part of the manifest's tables into `CREATE TABLE … (LIKE …)` copies in `schema`. */
async function restoreInto(
  client: pg.ClientBase,
  s3: S3Client,
  bucket: string,
  manifest: ReturnType<typeof parseManifest>,
  schema: string,
) {
  await client.query(`CREATE SCHEMA ${schema}`);
  for (const table of manifest.tables) {
    const name = table.table.split('.')[1] as string;
    await client.query(`CREATE TABLE ${schema}.${name} (LIKE ${table.table})`);
    for (const part of table.parts) {
      await restorePart({
        client,
        s3,
        bucket,
        part,
        codec: manifest.compression.codec,
        targetQuotedName: `${schema}.${name}`,
        columns: table.columns,
      });
    }
  }
}

describe('backup under faults', () => {
  it('leaves nothing of a backup that failed mid-run, and the next run completes', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA fault1;
      CREATE TABLE fault1.big (id int PRIMARY KEY, body text);
      INSERT INTO fault1.big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;`);
    const config = backupConfig('fault-once', ['fault1.*']);
    let uploads = 0;

    const failed = await runPolicy(config, 'fault-once', {
      deps: {
        hooks: {
          afterUpload: () => {
            uploads++;
            if (uploads === 3) throw new Error('injected: S3 went away for good');
          },
        },
      },
    });

    expect(failed.status).toBe('failed');
    // Parts are written two at a time: the third one's partner finished its upload too.
    expect(uploads).toBeGreaterThanOrEqual(3);
    expect(await keysUnderPrefix(s3, bucket, 'backup/fault-once/')).toEqual([]);
    const { rows } = await database.pool.query(
      `SELECT 1 FROM lifecycle.archived_objects o JOIN lifecycle.runs r USING (run_id) WHERE r.policy = 'fault-once'`,
    );
    expect(rows).toEqual([]);

    const next = await runPolicy(config, 'fault-once');
    expect(next.status).toBe('succeeded');
    const manifest = await manifestOfRun(s3, bucket, next.summary);
    expect(manifest.tables[0]?.rows).toBe(20_000);
    expect(manifest.tables[0]?.parts.length).toBeGreaterThan(2);
  });

  it('retries a transient failure: every part listed once, the failed attempt’s object removed', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA fault2;
      CREATE TABLE fault2.big (id int PRIMARY KEY, body text);
      INSERT INTO fault2.big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;`);
    let uploads = 0;

    const result = await runPolicy(backupConfig('fault-retry', ['fault2.*']), 'fault-retry', {
      deps: {
        hooks: {
          afterUpload: () => {
            uploads++;
            if (uploads === 2) throw new TransientStorageError('injected: S3 timed out once');
          },
        },
      },
    });

    expect(result.status).toBe('succeeded');
    const manifest = await manifestOfRun(s3, bucket, result.summary);
    const partKeys = manifest.tables.flatMap((t) => t.parts.map((p) => p.key)).sort();
    const stored = await keysUnderPrefix(s3, bucket, `backup/fault-retry/${manifest.backupId}/data/`);
    expect(stored).toEqual(partKeys);
    expect(result.summary?.orphansRemoved).toBeGreaterThan(0);
    expect(manifest.tables[0]?.rows).toBe(20_000);
  });

  it('says per-part when the backup spans Chunk steps, and every row is there once', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA span;
      CREATE TABLE span.keyed (id int PRIMARY KEY, body text);
      CREATE TABLE span.heap (n int, body text);
      INSERT INTO span.keyed SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;
      INSERT INTO span.heap SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;`);

    const result = await runPolicy(backupConfig('span', ['span.*'], { maxConcurrency: 1 }), 'span', {
      chunkBudgetMs: 1200,
    });

    expect(result.status).toBe('succeeded');
    expect(result.chunkInvocations).toBeGreaterThan(2);
    const manifest = await manifestOfRun(s3, bucket, result.summary);
    expect(manifest.consistency).toBe('per-part');
    const client = await database.pool.connect();
    try {
      await restoreInto(client, s3, bucket, manifest, 'span_copy');
      for (const name of ['keyed', 'heap']) {
        const { rows } = await client.query<{ same: boolean }>(
          `SELECT (SELECT array_agg(t ORDER BY t) FROM (SELECT x::text AS t FROM span.${name} x) a)
                = (SELECT array_agg(t ORDER BY t) FROM (SELECT x::text AS t FROM span_copy.${name} x) b) AS same`,
        );
        expect(rows[0]?.same, name).toBe(true);
      }
    } finally {
      client.release();
    }
  });

  it('is consistent across tables while other sessions move rows between them (snapshot)', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Each writer transaction moves one row from `a` to `b` (delete + insert): at any snapshot every id is in
    // exactly one table. A backup whose tables came from different moments would hold an id twice or never.
    await database.pool.query(`
      CREATE SCHEMA moving;
      CREATE TABLE moving.a (id int PRIMARY KEY, body text);
      CREATE TABLE moving.b (id int PRIMARY KEY, body text);
      INSERT INTO moving.a SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 30000) g;`);
    let stop = false;
    let moved = 0;
    const writer = (async () => {
      const client = await database.pool.connect();
      try {
        for (let id = 1; !stop && id <= 30000; id++) {
          await client.query(
            `WITH gone AS (DELETE FROM moving.a WHERE id = $1 RETURNING id, body)
                              INSERT INTO moving.b SELECT id, body FROM gone`,
            [id],
          );
          moved++;
        }
      } finally {
        client.release();
      }
    })();

    // The moves seen at each part's upload: rows must have moved while the backup read its parts.
    const movedAtUploads: number[] = [];
    const result = await runPolicy(backupConfig('moving', ['moving.*']), 'moving', {
      deps: { hooks: { afterUpload: () => void movedAtUploads.push(moved) } },
    });
    stop = true;
    await writer;

    expect(result.status).toBe('succeeded');
    expect(movedAtUploads.length).toBeGreaterThan(2);
    expect(movedAtUploads.at(-1)).toBeGreaterThan(movedAtUploads[0] ?? Number.POSITIVE_INFINITY);
    const manifest = await manifestOfRun(s3, bucket, result.summary);
    expect(manifest.consistency).toBe('snapshot');
    expect(manifest.tables.reduce((sum, t) => sum + t.rows, 0)).toBe(30_000);
    const client = await database.pool.connect();
    try {
      await restoreInto(client, s3, bucket, manifest, 'moving_copy');
      const { rows } = await client.query<{ ids: string; distinct_ids: string }>(
        `SELECT count(*)::text AS ids, count(DISTINCT id)::text AS distinct_ids
           FROM (SELECT id FROM moving_copy.a UNION ALL SELECT id FROM moving_copy.b) u`,
      );
      expect(rows[0]).toEqual({ ids: '30000', distinct_ids: '30000' });
    } finally {
      client.release();
    }
  });

  it('fails a backup whose table changed between steps, leaving nothing', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA altered;
      CREATE TABLE altered.t (id int PRIMARY KEY, body text);
      INSERT INTO altered.t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 20000) g;`);
    let uploads = 0;
    let altering: Promise<unknown> | undefined;

    const result = await runPolicy(backupConfig('altered', ['altered.*'], { maxConcurrency: 1 }), 'altered', {
      chunkBudgetMs: 1200,
      deps: {
        hooks: {
          afterUpload: () => {
            uploads++;
            // Queued behind the step's ACCESS SHARE lock: it happens between this step and the next.
            if (uploads === 1) altering = database.pool.query('ALTER TABLE altered.t ADD COLUMN extra int');
          },
        },
      },
    });
    await altering;

    expect(result.status).toBe('failed');
    expect(result.failure?.cause).toContain(
      'tables changed during the backup: "altered"."t" columns changed',
    );
    expect(await keysUnderPrefix(s3, bucket, 'backup/altered/')).toEqual([]);
  });
});

describe('backup bad input', () => {
  it('refuses an unknown table before writing anything', async ({ database, s3, bucket, runPolicy }) => {
    await database.pool.query('CREATE SCHEMA known; CREATE TABLE known.t (id int)');
    const result = await runPolicy(backupConfig('unknown', ['known.t', 'known.missing']), 'unknown');
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('CatalogError');
    expect(result.failure?.cause).toContain('known.missing: no such table');
    expect(result.failure?.runId).toBeUndefined();
    expect(await keysUnderPrefix(s3, bucket, 'backup/unknown/')).toEqual([]);
  });

  it('refuses a missing bucket before writing anything', async ({ database, runPolicy }) => {
    await database.pool.query('CREATE SCHEMA nobucket; CREATE TABLE nobucket.t (id int)');
    const result = await runPolicy(backupConfig('nobucket', ['nobucket.*']), 'nobucket', {
      deps: { bucket: 'pg-lifecycle-no-such-bucket' },
    });
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('StorageConfigurationError');
    const { rows } = await database.pool.query(`SELECT 1 FROM lifecycle.runs WHERE policy = 'nobucket'`);
    expect(rows).toEqual([]);
  });

  it('plans without writing: tables, estimates, how each splits, what is not included', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    await database.pool.query(`
      CREATE SCHEMA planned;
      CREATE TABLE planned.t (id int PRIMARY KEY, body text);
      CREATE TRIGGER t_noop BEFORE UPDATE ON planned.t FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
      INSERT INTO planned.t SELECT g, 'x' FROM generate_series(1, 1000) g; ANALYZE planned.t;`);
    const result = await runPolicy(backupConfig('planned', ['planned.*']), 'planned', { dryRun: true });
    expect(result.status).toBe('dry_run');
    const plan = result.summary?.plan;
    expect(plan?.tables).toEqual([
      expect.objectContaining({
        table: '"planned"."t"',
        estimatedRows: 1000,
        method: 'key',
        estimatedParts: 1,
      }),
    ]);
    expect(plan?.notIncluded?.join('\n')).toContain('triggers t_noop');
    expect(await keysUnderPrefix(s3, bucket, 'backup/planned/')).toEqual([]);
  });
});
