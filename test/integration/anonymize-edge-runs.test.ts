/**
 * Anonymize edge cases (from a hostile review): each test drives a policy through the real state machine against a
 * real PostgreSQL and checks one promise a DBA would rely on.
 */
import type { StepLogger } from '../../functions/run/dependencies.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { HASH_KEY as KEY, OLD, columnsPolicy as policy } from '../support/anonymize.ts';
import { testConfig } from '../support/archive.ts';
import type { TestDatabase } from '../support/database.ts';
import { describe, expect, it } from '../support/fixture.ts';

type PolicyInput = LifecycleConfigInput['policies'][number];

/** id → [row text, xmin] */
async function snapshot(db: TestDatabase, table: string, order = 'ctid') {
  const { rows } = await db.pool.query<{ text: string; xmin: string }>(
    `SELECT t::text AS text, xmin::text AS xmin FROM ${table} t ORDER BY ${order}`,
  );
  return rows;
}

function capturingLogger(lines: string[]): StepLogger {
  const write = (message: string, fields?: Record<string, unknown>) =>
    lines.push(JSON.stringify({ message, ...fields }));
  return { info: write, warn: write, error: write };
}

describe('anonymize: runs', () => {
  it('a strategy that maps two values to one is refused at Start on a unique column; hash masks every row', async ({
    database: db,
    runPolicy,
  }) => {
    // Prepare: 300 due users with a unique email; masking two of them to one value would fail every run.
    await db.pool.query(`
      DROP TABLE IF EXISTS users_u;
      CREATE TABLE users_u (id int PRIMARY KEY, created_at timestamptz NOT NULL, email text UNIQUE);
      INSERT INTO users_u SELECT g, ${OLD} + g * interval '1 minute', 'user' || g || '@corp.example'
        FROM generate_series(1, 300) g;
      UPDATE users_u SET email = 'Bob@corp.example' WHERE id = 120;
      UPDATE users_u SET email = 'bob@corp.example' WHERE id = 121;`);
    const before = await snapshot(db, 'users_u', 'id');

    // Act
    const refused = await runPolicy(
      testConfig([policy('users_u', { email: { strategy: 'email' } })]),
      'review',
      {
        deps: { hashKey: KEY },
      },
    );
    const unchanged = await snapshot(db, 'users_u', 'id');
    const hashed = await runPolicy(
      testConfig([policy('users_u', { email: { strategy: 'hash' } })]),
      'review',
      {
        deps: { hashKey: KEY },
      },
    );

    // Assess
    expect(refused.failure?.error).toBe('CatalogError');
    expect(refused.failure?.cause).toContain('users_u_email_key');
    expect(unchanged).toEqual(before);
    expect(hashed.status).toBe('succeeded');
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM users_u WHERE email NOT LIKE 'anon\\_%'`,
    );
    expect(Number(rows[0]?.n)).toBe(0);
  });
  it('generalize with a step never fails on a value of the column (smallint near its minimum)', async ({
    database: db,
    runPolicy,
  }) => {
    // strategies.ts promises "No expression here fails on a row's value"; floor(v/step)*step rounds towards
    // -infinity, below the type's minimum.
    await db.pool.query(`
      DROP TABLE IF EXISTS temps;
      CREATE TABLE temps (id int PRIMARY KEY, created_at timestamptz NOT NULL, reading smallint, price numeric(5,2));
      INSERT INTO temps VALUES (1, ${OLD}, 120, 12.34), (2, ${OLD}, -32768, -999.99);`);
    const config = testConfig([
      policy('temps', {
        reading: { strategy: 'generalize', step: 100 },
        price: { strategy: 'generalize', step: 10 },
      }),
    ]);

    const result = await runPolicy(config, 'review', { deps: { hashKey: KEY } });

    expect(result.failure?.cause).toBeUndefined();
    expect(result.status).toBe('succeeded');
  });

  it('the json strategy never fails a row on a key PostgreSQL accepted as json (lone surrogate escape)', async ({
    database: db,
    runPolicy,
  }) => {
    // json input only checks the syntax of \\u escapes; json_object_keys/json_each de-escape keys and refuse
    // a lone surrogate. The comment in strategies.ts names only \\u0000 as the exception.
    await db.pool.query(`
      DROP TABLE IF EXISTS docs;
      CREATE TABLE docs (id int PRIMARY KEY, created_at timestamptz NOT NULL, body json);
      INSERT INTO docs VALUES (1, ${OLD}, '{"address": "x", "ok": 1}'),
                              (2, ${OLD}, '{"\\ud83d": 1, "address": "secret street"}');`);
    const config = testConfig([policy('docs', { body: { strategy: 'jsonb', removeKeys: ['address'] } })]);

    const result = await runPolicy(config, 'review', { deps: { hashKey: KEY } });

    expect(result.failure?.cause).toBeUndefined();
    expect(result.status).toBe('succeeded');
  });

  it('a table without a primary key, many rows sharing one time, small chunks: all due rows masked once, re-run touches nothing', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP TABLE IF EXISTS events_nopk;
      CREATE TABLE events_nopk (created_at timestamptz, who text, note text);
      INSERT INTO events_nopk SELECT ${OLD} + (g % 3) * interval '1 second', 'who' || g, 'n' || g
        FROM generate_series(1, 700) g;
      INSERT INTO events_nopk SELECT now() + interval '1 year', 'new' || g, 'n' FROM generate_series(1, 20) g;
      INSERT INTO events_nopk VALUES (NULL, 'null-time', 'n');`);
    const config = testConfig([
      policy('events_nopk', { who: { strategy: 'hash' }, note: { strategy: 'partial', keepFirst: 1 } }),
    ]);

    const first = await runPolicy(config, 'review', { deps: { hashKey: KEY } });
    const after = await snapshot(db, 'events_nopk');
    const second = await runPolicy(config, 'review', { deps: { hashKey: KEY } });

    expect(first.status).toBe('succeeded');
    expect(first.summary?.rows).toBe(700);
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM events_nopk WHERE who ~ '^anon_'`,
    );
    expect(Number(rows[0]?.n)).toBe(700);
    expect(second.summary?.rows).toBe(0);
    expect(await snapshot(db, 'events_nopk')).toEqual(after);
  });

  it('a partitioned table without a primary key: exactly the due rows, once', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP TABLE IF EXISTS pevents;
      CREATE TABLE pevents (created_at timestamptz NOT NULL, region text, who text) PARTITION BY LIST (region);
      CREATE TABLE pevents_a PARTITION OF pevents FOR VALUES IN ('a');
      CREATE TABLE pevents_b PARTITION OF pevents FOR VALUES IN ('b');
      INSERT INTO pevents SELECT ${OLD}, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, 'who' || g
        FROM generate_series(1, 400) g;
      INSERT INTO pevents SELECT now() + interval '1 year', 'a', 'new' || g FROM generate_series(1, 10) g;`);
    const config = testConfig([policy('pevents', { who: { strategy: 'hash' } })]);

    const first = await runPolicy(config, 'review', { deps: { hashKey: KEY } });
    const after = await snapshot(db, 'pevents', 'tableoid, ctid');
    const second = await runPolicy(config, 'review', { deps: { hashKey: KEY } });

    expect(first.status).toBe('succeeded');
    expect(first.summary?.rows).toBe(400);
    expect(second.summary?.rows).toBe(0);
    expect(await snapshot(db, 'pevents', 'tableoid, ctid')).toEqual(after);
  });

  it('a masked column that is a foreign key is refused at Start (dry run lists it), not discovered by a failing chunk', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP TABLE IF EXISTS orders_fk, customers_fk;
      CREATE TABLE customers_fk (ref text PRIMARY KEY);
      INSERT INTO customers_fk SELECT 'C-' || g FROM generate_series(1, 10) g;
      CREATE TABLE orders_fk (id int PRIMARY KEY, created_at timestamptz NOT NULL,
                              customer_ref text REFERENCES customers_fk (ref));
      INSERT INTO orders_fk SELECT g, ${OLD}, 'C-' || (1 + g % 10) FROM generate_series(1, 100) g;`);
    const config = testConfig([policy('orders_fk', { customer_ref: { strategy: 'hash' } })]);

    const plan = await runPolicy(config, 'review', { dryRun: true, deps: { hashKey: KEY } });
    const run = await runPolicy(config, 'review', { deps: { hashKey: KEY } });

    // The plan says nothing; the run passes Start and dies in its first chunk with 23503.
    expect(plan.summary?.plan?.refusals.length ?? 0).toBeGreaterThan(0);
    expect(run.failure?.error).toBe('CatalogError');
  });

  it('a chunk failing on a table CHECK leaks no original value to cause or logs', async ({
    database: db,
    runPolicy,
  }) => {
    await db.pool.query(`
      DROP TABLE IF EXISTS phones;
      CREATE TABLE phones (id int PRIMARY KEY, created_at timestamptz NOT NULL, full_name text,
                           phone text CHECK (phone ~ '^\\+'));
      INSERT INTO phones SELECT g, ${OLD}, 'Secret Person ' || g, '+4420794600' || g FROM generate_series(1, 5) g;`);
    const logs: string[] = [];
    const config = testConfig([policy('phones', { phone: { strategy: 'partial', keepLast: 2 } })]);

    const result = await runPolicy(config, 'review', { deps: { hashKey: KEY, log: capturingLogger(logs) } });

    expect(result.status).toBe('failed');
    const text = `${result.failure?.cause}\n${logs.join('\n')}`;
    expect(text).not.toContain('Secret Person');
    expect(text).not.toContain('+4420794600');
  });
});
