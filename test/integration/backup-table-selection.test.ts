/**
 * Which tables a backup takes, resolved against a real catalog: schema patterns, exact (quoted) names,
 * partitioned tables with their partitions, exclusions, and every way a pattern can be wrong, all reported
 * at once before anything is read.
 */
import { selectBackupTables } from '../../functions/actions/backup/table-selection.ts';
import { beforeAll, describe, expect, it } from '../support/fixture.ts';

beforeAll(async ({ database }) => {
  await database.pool.query(`
    CREATE SCHEMA "Sales";
    CREATE TABLE "Sales"."Order Lines" (id int PRIMARY KEY);
    CREATE TABLE "Sales".customers (id int PRIMARY KEY);
    CREATE VIEW "Sales".big_customers AS SELECT * FROM "Sales".customers;
    CREATE SEQUENCE "Sales".ticket_seq;
    CREATE TABLE public.events (id int, at date) PARTITION BY RANGE (at);
    CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    CREATE TABLE public.events_rest PARTITION OF public.events DEFAULT;
    CREATE TABLE public.metrics (id int, at date) PARTITION BY RANGE (at);
    CREATE TABLE public.metrics_2026 PARTITION OF public.metrics FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')
      PARTITION BY RANGE (at);
    CREATE TABLE public.metrics_2026_h1 PARTITION OF public.metrics_2026 FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
    CREATE TABLE public.audit_logs (id int);
    CREATE TABLE public.notes (id int);
    CREATE SCHEMA empty_schema;`);
});

const names = (tables: Array<{ schema: string; table: string; kind: string }>) =>
  tables.map((t) => `${t.schema}.${t.table}:${t.kind}`);

describe('backup table selection', () => {
  it('takes a schema’s tables and partitioned tables, not their partitions, views or sequences', async ({
    database,
  }) => {
    const tables = await selectBackupTables(database.pool, {
      tables: ['public.*', '"Sales".*'],
      exclude: [],
    });
    expect(names(tables)).toEqual([
      'Sales.Order Lines:r',
      'Sales.customers:r',
      'public.audit_logs:r',
      'public.events:p',
      'public.metrics:p',
      'public.notes:r',
    ]);
  });

  it('never takes a partition next to a partitioned table above it (its rows would be restored twice)', async ({
    database,
  }) => {
    const tables = await selectBackupTables(database.pool, {
      tables: ['public.events_2026', 'public.events', 'public.metrics_2026_h1', 'public.metrics_2026'],
      exclude: [],
    });
    expect(names(tables)).toEqual(['public.events:p', 'public.metrics_2026:p']);
    const excluded = await selectBackupTables(database.pool, {
      tables: ['public.metrics_2026_h1', 'public.notes'],
      exclude: ['public.metrics_2026'],
    });
    expect(names(excluded)).toEqual(['public.notes:r']);
  });

  it('leaves out what exclude names, a partitioned table with every partition', async ({ database }) => {
    const tables = await selectBackupTables(database.pool, {
      tables: ['public.*', 'public.events_2026'],
      exclude: ['public.audit_logs', 'events'],
    });
    expect(names(tables)).toEqual(['public.metrics:p', 'public.notes:r']);
  });

  it('takes a partition named exactly as a table of its own', async ({ database }) => {
    const tables = await selectBackupTables(database.pool, { tables: ['events_2026'], exclude: [] });
    expect(names(tables)).toEqual(['public.events_2026:r']);
  });

  it('reports every pattern at fault at once', async ({ database }) => {
    await expect(
      selectBackupTables(database.pool, {
        tables: [
          '"Sales".big_customers',
          'sales."Order Lines"',
          'empty_schema.*',
          '"Sales".ticket_seq',
          'nope',
        ],
        exclude: [],
      }),
    ).rejects.toThrow(
      'backup tables: "Sales".big_customers is a view: backups export tables\' data only; ' +
        'sales."Order Lines": no such table; empty_schema.*: the schema has no tables; ' +
        '"Sales".ticket_seq is a sequence: backups export tables\' data only; nope: no such table',
    );
  });

  it('refuses exclusions that leave nothing', async ({ database }) => {
    await expect(
      selectBackupTables(database.pool, { tables: ['public.notes'], exclude: ['public.*'] }),
    ).rejects.toThrow('backup tables: exclude leaves no table to back up');
  });

  it('refuses an exclusion that would leave nothing out: a typo, or a partition of a table backed up whole', async ({
    database,
  }) => {
    await expect(
      selectBackupTables(database.pool, {
        tables: ['public.*'],
        exclude: ['public.audit_log', 'public.events_2026', 'public.metrics_2026_h1'],
      }),
    ).rejects.toThrow(
      'backup tables: exclude public.audit_log: no such table; ' +
        'exclude public.events_2026: public.events_2026 is a partition of public.events, which is backed up with all its partitions (exclude the parent instead); ' +
        'exclude public.metrics_2026_h1: public.metrics_2026_h1 is a partition of public.metrics, which is backed up with all its partitions (exclude the parent instead)',
    );
  });
});
