/**
 * A plain table with INHERITS children is refused by the actions that walk one table by ctid (purge, archive,
 * anonymize) before anything changes: ctid is unique only within one table, so a chunk that finds its rows again
 * by ctid through the parent would also hit a child's rows that merely share a ctid (a child's recent rows
 * deleted by a purge of the parent's old ones).
 */
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it, NOW } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

async function seedInherited(db: TestDatabase): Promise<void> {
  await db.pool.query(
    `
    DROP TABLE IF EXISTS logs CASCADE;
    CREATE TABLE logs (at timestamptz NOT NULL, message text NOT NULL);
    CREATE TABLE logs_old () INHERITS (logs);
    CREATE TABLE logs_new () INHERITS (logs);
    CREATE INDEX ON logs (at); CREATE INDEX ON logs_old (at); CREATE INDEX ON logs_new (at);
    INSERT INTO logs_old SELECT $1::timestamptz - interval '400 days' - g * interval '1 hour', 'old ' || g FROM generate_series(1, 50) g;
    INSERT INTO logs_new SELECT $1::timestamptz - g * interval '1 hour', 'new ' || g FROM generate_series(1, 50) g;
    ANALYZE logs; ANALYZE logs_old; ANALYZE logs_new;`.replaceAll('$1', `'${NOW.toISOString()}'`),
  );
}

async function allRows(db: TestDatabase): Promise<string[]> {
  const { rows } = await db.pool.query<{ r: string }>(
    `SELECT tableoid::regclass::text || ' ' || l::text AS r FROM logs l ORDER BY 1`,
  );
  return rows.map((r) => r.r);
}

const policies: PolicyInput[] = [
  { name: 'p', action: 'purge', table: 'logs', timeColumn: 'at', retention: 'P90D' } as PolicyInput,
  { name: 'a', action: 'archive', table: 'logs', timeColumn: 'at', retention: 'P90D' } as PolicyInput,
  {
    name: 'n',
    action: 'anonymize',
    table: 'logs',
    timeColumn: 'at',
    retention: 'P90D',
    anonymize: { columns: { message: { strategy: 'fixed', value: 'X' } } },
  } as PolicyInput,
];

describe('a table with INHERITS children', () => {
  for (const policy of policies) {
    it(`is refused by ${policy.action} before any row changes`, async ({ database: db, runPolicy }) => {
      // Prepare
      await seedInherited(db);
      const before = await allRows(db);

      // Act
      const result = await runPolicy(testConfig([policy]), policy.name);

      // Assess
      expect(result.status).toBe('failed');
      expect(result.failure?.error).toBe('CatalogError');
      expect(result.failure?.cause).toContain('inherit from it (logs_new, logs_old)');
      expect(await allRows(db)).toEqual(before);
    });
  }
});
