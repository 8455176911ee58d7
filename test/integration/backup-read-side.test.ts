/**
 * The read side against what the backup action itself writes (the synthesized state machine, real handlers):
 * its backup is listed complete with its expiry, verifies clean against the bucket and the run's ledger
 * record, restores into a fresh database equal to the source, and passes a drill.
 */
import { readContentChecksum } from '../../functions/actions/backup/content-checksum.ts';
import {
  findBackup,
  listBackups,
  restoreBackup,
  restoreDrillsLedger,
  runDrill,
  verifyBackup,
} from '../../functions/actions/backup/restore/index.ts';
import { Ledger } from '../../functions/adapters/ledger/index.ts';
import { testConfig } from '../support/archive.ts';
import { sortedRowTexts, textClient, withTextClient } from '../support/backup-parts.ts';
import { createTestDatabase } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';

describe('a backup written by the backup action', () => {
  it('is listed, verifies clean, restores equal into a fresh database and passes a drill', async ({
    database,
    s3,
    bucket,
    runPolicy,
  }) => {
    // Prepare: a backup run through the state machine.
    await database.pool.query(`
      CREATE SCHEMA sales;
      CREATE TABLE sales.customers (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
      CREATE TABLE sales.orders (id bigserial PRIMARY KEY, customer int REFERENCES sales.customers (id),
                                 placed timestamptz, note text);
      CREATE TABLE sales.events (at date NOT NULL, body text) PARTITION BY RANGE (at);
      CREATE TABLE sales.events_2026 PARTITION OF sales.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      CREATE TABLE sales.events_rest PARTITION OF sales.events DEFAULT;
      INSERT INTO sales.customers (name) SELECT E'name\\t' || g FROM generate_series(1, 2000) g;
      INSERT INTO sales.orders (customer, placed, note)
        SELECT 1 + g % 2000, timestamptz '2026-01-01 00:00:00.000001+00' + g * interval '1 minute',
               CASE WHEN g % 5 = 0 THEN NULL ELSE E'line\\nbreak ' || g END FROM generate_series(1, 6000) g;
      INSERT INTO sales.events SELECT date '2025-10-01' + g % 200, 'e' || g FROM generate_series(1, 3000) g;`);
    const config = testConfig([
      {
        name: 'sales-nightly',
        action: 'backup',
        backup: { tables: ['sales.*'], partMiB: 1, compression: 'gzip', level: 1, retentionDays: 14 },
      },
    ]);
    const run = await runPolicy(config, 'sales-nightly');
    expect(run.summary?.status).toBe('succeeded');

    // Act + Assess: listed complete, with its expiry.
    const [listed] = await listBackups(s3, bucket, { policy: 'sales-nightly' });
    expect(listed).toMatchObject({ status: 'complete', tables: 3, rows: 11_000, retentionDays: 14 });
    expect(listed?.expiresAt).toEqual(expect.any(String));

    // Verifies clean, the ledger compared.
    const manifest = await findBackup(s3, bucket, 'sales-nightly', 'latest');
    const verification = await verifyBackup(s3, bucket, manifest, { ledger: new Ledger(database.pool) });
    expect(verification).toMatchObject({ ok: true, problems: [], rowsCounted: 11_000, ledger: 'checked' });

    // Restores equal into a fresh database (the partitioned table through its parent).
    const target = await createTestDatabase('read_side_target');
    try {
      const client = await textClient(target);
      try {
        const restored = await restoreBackup({
          db: client,
          s3,
          bucket,
          manifest,
          mode: 'full',
          ifExists: 'fail',
        });
        expect(restored.tables.map((t) => [t.table, t.rows])).toEqual(
          manifest.tables.map((t) => [t.table, t.rows]),
        );
      } finally {
        await client.end();
      }
      for (const table of manifest.tables) {
        const read = (db: typeof database) =>
          withTextClient(db, async (c) => ({
            checksum: await readContentChecksum(c, table.table, table.columns),
            rows: await sortedRowTexts(c, table.table, table.columns),
          }));
        expect(await read(target), table.table).toEqual(await read(database));
      }
      const next = await target.pool.query<{ id: string }>(
        `INSERT INTO sales.orders (customer, placed) VALUES (1, now()) RETURNING id::text`,
      );
      expect(next.rows[0]?.id).toBe('6001');
    } finally {
      await target.drop();
    }

    // Passes a drill.
    const client = await database.pool.connect();
    try {
      const drill = await runDrill({
        db: client,
        s3,
        bucket,
        policy: 'sales-nightly',
        ledger: restoreDrillsLedger(client),
      });
      expect(drill).toMatchObject({ status: 'passed', backupId: manifest.backupId, scratchDropped: true });
    } finally {
      client.release();
    }
  });
});
