/**
 * Maintain where things get in its way: no REINDEX CONCURRENTLY starts while an older transaction is open, and
 * one that cannot finish within lockTimeoutMs leaves no invalid copy behind; tables the role does not own are skipped with the reason
 * while its own are maintained; a policy none of whose tables the role owns is refused before anything runs.
 */
import pg from 'pg';
import { reindexConcurrently } from '../../functions/actions/maintain/statements.ts';
import { testConfig } from '../support/archive.ts';
import { migrateLedger } from '../support/database.ts';
import { afterAll, beforeAll, describe, expect, it } from '../support/fixture.ts';
import { changeAndPublish, maintenanceLedgerOf } from '../support/maintain.ts';

const role = 'maintain_app';

const ledgerOf = maintenanceLedgerOf;
const publish = changeAndPublish;

beforeAll(async ({ database }) => {
  await migrateLedger(database);
});

afterAll(async ({ database }) => {
  const { rowCount } = await database.pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (rowCount === 0) return;
  await database.pool.query(`DROP OWNED BY ${role}`);
  await database.pool.query(`DROP ROLE ${role}`);
});

describe('maintain, in the way', () => {
  it('starts no REINDEX while an older transaction is open, and a REINDEX that waits past lockTimeoutMs drops its copy', async ({
    database,
    runPolicy,
  }) => {
    // Prepare: a bloated index, and a session holding a snapshot older than the rebuild (no lock on the table).
    await publish(
      database.pool,
      `CREATE SCHEMA held;
       CREATE TABLE held.t (id bigint PRIMARY KEY, k bigint NOT NULL) WITH (autovacuum_enabled = off);
       CREATE INDEX t_k ON held.t (k);
       INSERT INTO held.t SELECT g, g FROM generate_series(1, 100000) g;`,
    );
    await publish(database.pool, 'DELETE FROM held.t WHERE id % 10 <> 0');
    await publish(database.pool, 'VACUUM (ANALYZE) held.t');
    const holder = await database.pool.connect();
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await holder.query('SELECT 1');
    await new Promise((resolve) => setTimeout(resolve, 600));

    // Act: a run, then a REINDEX started anyway (as one the transaction began after would be).
    let result: Awaited<ReturnType<typeof runPolicy>>;
    let direct: Awaited<ReturnType<typeof reindexConcurrently>>;
    const client = await database.pool.connect();
    try {
      result = await runPolicy(
        testConfig([
          {
            name: 'held',
            action: 'maintain',
            chunking: { lockTimeoutMs: 300 },
            maintain: { tables: ['held.t'], minRelationBytes: 0, maxTableBloatPercent: 99 },
          },
        ]),
        'held',
      );
      const { rows } = await client.query<{ oid: string }>(`SELECT 'held.t'::regclass::oid::text AS oid`);
      direct = await reindexConcurrently(client, { oid: rows[0]?.oid as string }, 'held.t_k', {
        timeoutMs: 10_000,
        lockTimeoutMs: 300,
      });
    } finally {
      client.release();
      await holder.query('ROLLBACK');
      holder.release();
    }

    // Assess: the run goes on and records why it did not rebuild (it would have waited for the transaction).
    expect(result.failure).toBeUndefined();
    const rows = await ledgerOf(database.pool, result.summary?.runId);
    expect(rows.filter((r) => r.statement === 'reindex')).toEqual([]);
    expect(rows.map((r) => [r.index_name, r.statement])).toEqual([
      ['"t_k"', 'skip'],
      ['"t_pkey"', 'skip'],
    ]);
    for (const row of rows)
      expect(row.reason).toMatch(/^REINDEX not run: a transaction of this database has been open for/);
    expect(direct.outcome).toBe('lock-timeout');
    expect(`${direct.error}; ${direct.cleanup}`).toMatch(
      /^a lock was not granted within 300 ms \(lockTimeoutMs\); held\.t_k_ccnew dropped$/,
    );
    const { rows: indexes } = await database.pool.query<{ name: string; valid: boolean }>(
      `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'held.t'::regclass ORDER BY 1`,
    );
    expect(indexes).toEqual([
      { name: 't_k', valid: true },
      { name: 't_pkey', valid: true },
    ]);
  });

  it('skips the tables the role does not own, with the reason, and maintains its own', async ({
    database,
    runPolicy,
  }) => {
    // Prepare
    const dbName = new URL(database.url).pathname.slice(1);
    await database.pool.query(`
      CREATE ROLE ${role} LOGIN PASSWORD 'maintain-password';
      GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(dbName)} TO ${role};
      GRANT USAGE ON SCHEMA lifecycle TO ${role};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA lifecycle TO ${role};
      CREATE SCHEMA owned;
      GRANT USAGE ON SCHEMA owned TO ${role};
      CREATE TABLE owned.mine (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
      CREATE TABLE owned.theirs (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = off);
      ALTER TABLE owned.mine OWNER TO ${role};`);
    await publish(database.pool, 'INSERT INTO owned.mine SELECT g, g FROM generate_series(1, 100) g');
    const url = new URL(database.url);
    url.username = role;
    url.password = 'maintain-password';
    const config = (tables: string[]) =>
      testConfig([{ name: 'owned', action: 'maintain', maintain: { tables } }]);

    // Act
    const result = await runPolicy(config(['owned.*']), 'owned', { deps: { databaseUrl: url.toString() } });
    const refused = await runPolicy(config(['owned.theirs']), 'owned', {
      deps: { databaseUrl: url.toString() },
    });

    // Assess
    expect(result.failure).toBeUndefined();
    expect(await ledgerOf(database.pool, result.summary?.runId)).toEqual([
      expect.objectContaining({ table_name: '"owned"."mine"', statement: 'analyze', outcome: 'done' }),
      expect.objectContaining({
        table_name: '"owned"."theirs"',
        statement: 'skip',
        outcome: 'skipped',
        reason: `role ${role} does not own "owned"."theirs" (VACUUM, ANALYZE and REINDEX need the owner or a superuser)`,
      }),
    ]);
    expect(refused.failure?.error).toBe('InsufficientPrivilegeError');
    expect(refused.failure?.cause).toMatch(/^role maintain_app does not own "owned"."theirs"/);
    expect(refused.failure?.runId).toBeUndefined();
  });
});
