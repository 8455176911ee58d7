/** Range-partitioned tables, and the policies and catalog reads, shared by the partition tests. */
import type pg from 'pg';
import type { LocalDependencyOptions } from '../../functions/local-runner/local-dependencies.ts';
import type { LocalRunResult } from '../../functions/local-runner/local-runner.ts';
import type { LifecycleConfigInput } from '../../lib/contracts/config.ts';
import { testConfig } from './archive.ts';
import type { TestDatabase } from './database.ts';
import { NOW, type Services } from './fixture.ts';

/** The partition tests' retention: at NOW, a cutoff of {@link PARTITION_CUTOFF}. */
export const PARTITION_RETENTION = 'P90D';
/** NOW less 90 days: partitions up to July 2026 lie wholly before it, August 2026 straddles it. */
export const PARTITION_CUTOFF = '2026-08-25T12:00:00.000Z';

/**
 * `public.<table>`: monthly partitions from `first` to `last` (inclusive, 'YYYY-MM-01'), optionally a
 * DEFAULT partition, and one row every 6 hours from `from` to `now` (NOW unless given; rows outside the
 * months go to DEFAULT).
 */
export async function seedPartitioned(
  pool: pg.Pool,
  table: string,
  options: { first: string; last: string; from: string; now?: Date; withDefault?: boolean },
): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS public.${table} CASCADE`);
  await pool.query(`
    CREATE TABLE public.${table} (
      id bigint NOT NULL, created_at timestamptz NOT NULL, payload text NOT NULL,
      PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)`);
  await pool.query(`CREATE INDEX ON public.${table} (created_at)`);
  await pool.query(
    `DO $$ DECLARE m date; BEGIN
       FOR m IN SELECT generate_series(date '${options.first}', date '${options.last}', interval '1 month')::date LOOP
         EXECUTE format('CREATE TABLE public.%I PARTITION OF public.${table} FOR VALUES FROM (%L) TO (%L)',
                        '${table}_' || to_char(m, 'YYYY_MM'), m::text || ' 00:00:00+00',
                        (m + interval '1 month')::date::text || ' 00:00:00+00');
       END LOOP; END $$`,
  );
  if (options.withDefault) {
    await pool.query(`CREATE TABLE public.${table}_default PARTITION OF public.${table} DEFAULT`);
  }
  await pool.query(
    `INSERT INTO public.${table} (id, created_at, payload)
     SELECT g, $1::timestamptz + g * interval '6 hours', md5(g::text)
       FROM generate_series(0, (extract(epoch FROM $2::timestamptz - $1::timestamptz) / 21600)::int) AS g`,
    [options.from, (options.now ?? NOW).toISOString()],
  );
}

/**
 * A policy of `action` on `public.<table>` by `created_at` with {@link PARTITION_RETENTION}: partition
 * retention as configured by `overrides` (on by default for a range-partitioned table).
 */
export function partitionedTablePolicy(
  action: 'archive' | 'purge',
  name: string,
  table: string,
  overrides: Record<string, unknown> = {},
): LifecycleConfigInput['policies'][number] {
  return {
    name,
    action,
    table: `public.${table}`,
    timeColumn: 'created_at',
    retention: PARTITION_RETENTION,
    chunking: { initialRows: 500, minRows: 100, maxRows: 500 },
    ...overrides,
  } as LifecycleConfigInput['policies'][number];
}

/** Runs {@link partitionedTablePolicy} (a config of its own) on the file's definition. */
export function runPartitionedTablePolicy(
  { runPolicy, definition }: Pick<Services, 'runPolicy' | 'definition'>,
  action: 'archive' | 'purge',
  name: string,
  table: string,
  options: { overrides?: Record<string, unknown>; deps?: LocalDependencyOptions } = {},
): Promise<LocalRunResult> {
  return runPolicy(testConfig([partitionedTablePolicy(action, name, table, options.overrides)]), name, {
    definition,
    deps: options.deps,
  });
}

/** Names of the partitions attached to `public.<table>`, sorted. */
export async function partitionsOf(db: TestDatabase, table: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass ORDER BY c.relname`,
    [`public.${table}`],
  );
  return rows.map((r) => r.name);
}

/** `<table>_YYYY_MM` for every month from `first` to `last` ('YYYY-MM-01', inclusive): seedPartitioned's names. */
export function monthlyPartitionNames(table: string, first: string, last: string): string[] {
  const names: string[] = [];
  for (let d = new Date(`${first}T00:00:00Z`); d <= new Date(`${last}T00:00:00Z`); ) {
    names.push(`${table}_${d.toISOString().slice(0, 7).replace('-', '_')}`);
    d = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
  }
  return names;
}

/** Whether any relation (a dropped partition, say) is still named `name`. */
export async function relationExists(db: TestDatabase, name: string): Promise<boolean> {
  const { rowCount } = await db.pool.query('SELECT 1 FROM pg_class WHERE relname = $1', [name]);
  return (rowCount ?? 0) > 0;
}

/** Ids (as text, ascending) of the rows of `public.<table>` matching `where`. */
export async function idsWhere(db: TestDatabase, table: string, where = 'true'): Promise<string[]> {
  const { rows } = await db.pool.query<{ k: string }>(
    `SELECT id::text AS k FROM public.${table} WHERE ${where} ORDER BY id`,
  );
  return rows.map((r) => r.k);
}

/** The partition units a run finished (dropped or kept), by bound: name, rows recorded, whether estimated. */
export async function finishedUnits(db: TestDatabase, runId: string | undefined) {
  const { rows } = await db.pool.query<{ partition_name: string; rows: string; rows_estimated: boolean }>(
    `SELECT partition_name, rows::text, rows_estimated
       FROM lifecycle.partition_units WHERE finished_by = $1 AND state IN ('dropped', 'kept') ORDER BY bound_to`,
    [runId ?? '00000000-0000-0000-0000-000000000000'],
  );
  return rows.map((r) => ({ name: r.partition_name, rows: Number(r.rows), estimated: r.rows_estimated }));
}

/**
 * Waits until the statistics system shows the writes made to `table` (a backend reports them up to a second
 * after its transaction ends), as it long has for the old partitions a run drops.
 */
export async function statisticsReported(
  db: TestDatabase,
  table: string,
  column: 'mod_since_analyze' | 'live_tuples',
): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const { rows } = await db.pool.query<{ n: string }>(
      `SELECT pg_stat_get_${column}($1::regclass)::text AS n`,
      [table],
    );
    if (Number(rows[0]?.n) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the statistics system never showed the writes to ${table}`);
}
