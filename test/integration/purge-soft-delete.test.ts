/**
 * Purge with `softDelete`: rows past retention get their soft-delete column set instead of being deleted
 * (the others untouched, a re-run changes no row version), and a hard purge on that column deletes exactly the
 * rows soft-deleted longer ago than its own retention. A soft-delete column that cannot be one is refused before
 * anything changes.
 */
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

async function seed(db: TestDatabase): Promise<void> {
  await db.pool.query(`
    DROP TABLE IF EXISTS accounts;
    CREATE TABLE accounts (id bigint PRIMARY KEY, last_seen timestamptz NOT NULL, deleted_at timestamptz, name text);
    CREATE INDEX ON accounts (last_seen); CREATE INDEX ON accounts (deleted_at);
    INSERT INTO accounts SELECT g, '${NOW.toISOString()}'::timestamptz - g * interval '1 day', NULL, 'account ' || g
      FROM generate_series(1, 1000) g;
    -- Ten accounts were soft-deleted long ago (a year), before this run.
    UPDATE accounts SET deleted_at = '${NOW.toISOString()}'::timestamptz - interval '1 year' WHERE id BETWEEN 991 AND 1000;`);
}

const soft = {
  name: 'soft',
  action: 'purge',
  table: 'accounts',
  timeColumn: 'last_seen',
  retention: 'P2Y',
  softDelete: { column: 'deleted_at' },
  chunking: { initialRows: 100, minRows: 50, maxRows: 200 },
} as PolicyInput;

const hard = {
  name: 'hard',
  action: 'purge',
  table: 'accounts',
  timeColumn: 'deleted_at',
  retention: 'P30D',
} as PolicyInput;

async function rows(db: TestDatabase): Promise<Map<string, { deleted: boolean; xmin: string }>> {
  const { rows: all } = await db.pool.query<{ id: string; deleted: boolean; xmin: string }>(
    `SELECT id::text, deleted_at IS NOT NULL AS deleted, xmin::text FROM accounts ORDER BY id`,
  );
  return new Map(all.map((r) => [r.id, { deleted: r.deleted, xmin: r.xmin }]));
}

describe('purge with softDelete', () => {
  it('sets the column on the rows past retention only, and a re-run changes nothing', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: accounts 731..990 are older than two years and not yet soft-deleted.
    await seed(db);
    const before = await rows(db);

    // Act
    const result = await runPolicy(testConfig([soft]), 'soft');
    const after = await rows(db);
    const again = await runPolicy(testConfig([soft]), 'soft');

    // Assess
    expect(result.status).toBe('succeeded');
    expect(result.summary?.rows).toBe(260);
    expect(after.size).toBe(1000);
    for (const [id, row] of after) {
      const n = Number(id);
      expect(row.deleted, id).toBe(n > 730);
      if (n <= 730 || n > 990) expect(row.xmin, id).toBe(before.get(id)?.xmin);
    }
    expect(again.summary?.rows).toBe(0);
    expect(await rows(db)).toEqual(after);
  });

  it('leaves the hard purge of the column to delete only rows soft-deleted past its retention', async ({
    database: db,
    runPolicy,
  }) => {
    await seed(db);
    await runPolicy(testConfig([soft, hard]), 'soft');

    const result = await runPolicy(testConfig([soft, hard]), 'hard');

    expect(result.status).toBe('succeeded');
    expect(result.summary?.rows).toBe(10);
    const left = await rows(db);
    expect(left.size).toBe(990);
    expect([...left.keys()].some((id) => Number(id) > 990)).toBe(false);
  });

  it('refuses a NOT NULL or non-time soft-delete column before changing anything', async ({
    database: db,
    runPolicy,
  }) => {
    await seed(db);
    const before = await rows(db);

    const notTime = await runPolicy(
      testConfig([{ ...soft, softDelete: { column: 'name' } } as PolicyInput]),
      'soft',
    );

    expect(notTime.failure?.error).toBe('CatalogError');
    expect(notTime.failure?.cause).toContain('softDelete.column must be timestamptz, timestamp or date');
    expect(await rows(db)).toEqual(before);
  });
});
