/**
 * Anonymize edge cases (from a hostile review): table shapes and column types a production database has.
 */
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { HASH_KEY as KEY, OLD, columnsPolicy as policy } from '../support/anonymize.ts';
import { testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

async function rows(db: TestDatabase, sql: string) {
  return (await db.pool.query<Record<string, string>>(sql)).rows;
}

describe('anonymize: tables and types', () => {
  it('hash and email work on a case-insensitive (nondeterministic ICU collation) column', async ({
    database: db,
    runPolicy,
  }) => {
    // The done tests are regexes on v::text, which keeps the column's collation; PostgreSQL refuses regexes
    // under nondeterministic collations. checkMasks probes over $1::text::type (default collation): it passes.
    await db.pool.query(`
      DROP TABLE IF EXISTS ci_users;
      DROP COLLATION IF EXISTS review_ci;
      CREATE COLLATION review_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
      CREATE TABLE ci_users (id int PRIMARY KEY, created_at timestamptz NOT NULL,
                             email text COLLATE review_ci, login text COLLATE review_ci);
      INSERT INTO ci_users SELECT g, ${OLD}, 'user' || g || '@corp.example', 'login' || g FROM generate_series(1, 10) g;`);

    const result = await runPolicy(
      testConfig([policy('ci_users', { email: { strategy: 'email' }, login: { strategy: 'hash' } })]),
      'review',
      { deps: { hashKey: KEY } },
    );

    expect(result.failure?.cause).toBeUndefined();
    expect(result.status).toBe('succeeded');
  });

  it('noise on numeric(p,s) never fails a row near the precision bound', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP TABLE IF EXISTS scores;
      CREATE TABLE scores (id int PRIMARY KEY, created_at timestamptz NOT NULL, score numeric(4,2), masked_at timestamptz);
      INSERT INTO scores SELECT g, ${OLD}, 99.99, NULL FROM generate_series(1, 20) g;`);

    const result = await runPolicy(
      testConfig([
        policy('scores', { score: { strategy: 'noise', amount: 5 } }, {
          anonymize: { columns: { score: { strategy: 'noise', amount: 5 } }, markerColumn: 'masked_at' },
        } as never),
      ]),
      'review',
      { deps: { hashKey: KEY } },
    );

    expect(result.failure?.cause).toBeUndefined();
    expect(result.status).toBe('succeeded');
  });

  it('generalize with a step on numeric(p,s) finer than its scale is refused at Start, touching no row', async ({
    database: db,
    runPolicy,
  }) => {
    // A bucket bound of 0.12·k is rounded when written to numeric(6,1), into the bucket below: a second run
    // would move it again (0.13 → 0.1 → 0.0). Such a step is refused when the strategy is compiled.
    await db.pool.query(`
      DROP TABLE IF EXISTS doses;
      CREATE TABLE doses (id int PRIMARY KEY, created_at timestamptz NOT NULL, dose numeric(6,1));
      INSERT INTO doses VALUES (1, ${OLD}, 0.2), (2, ${OLD}, 1.3), (3, ${OLD}, 7.7);`);
    const before = await rows(db, `SELECT id, dose::text, xmin::text FROM doses ORDER BY id`);
    const config = testConfig([policy('doses', { dose: { strategy: 'generalize', step: 0.12 } })]);

    const result = await runPolicy(config, 'review', { deps: { hashKey: KEY } });

    expect(result.failure?.error).toBe('CatalogError');
    expect(String(result.failure?.cause ?? JSON.stringify(result.failure))).toMatch(/multiple of 0\.1/);
    expect(await rows(db, `SELECT id, dose::text, xmin::text FROM doses ORDER BY id`)).toEqual(before);
  });

  it("fixed with a value PostgreSQL reads relative to now ('now') is refused or idempotent", async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP TABLE IF EXISTS seen;
      CREATE TABLE seen (id int PRIMARY KEY, created_at timestamptz NOT NULL, last_seen timestamptz);
      INSERT INTO seen SELECT g, ${OLD}, ${OLD} FROM generate_series(1, 5) g;`);
    const config = testConfig([policy('seen', { last_seen: { strategy: 'fixed', value: 'now' } })]);

    const first = await runPolicy(config, 'review', { deps: { hashKey: KEY } });
    const second = await runPolicy(config, 'review', { deps: { hashKey: KEY } });

    // Either Start refuses the volatile literal, or the second run finds nothing to do.
    if (first.status === 'succeeded') expect(second.summary?.rows).toBe(0);
    else expect(first.failure?.error).toBe('CatalogError');
  });
});
