/**
 * The benchmark table `bench.events`: an append-only, camera-style event table whose rows are all older than
 * the retention cutoff, physically in time order (as an identity-keyed, insert-only table is).
 */
import type pg from 'pg';

export const EVENTS_TABLE = 'bench.events';

/** Rows end two days before now (the policy keeps one day) and span this much time, whatever their number. */
const SPAN = '90 days';

/** Drops and recreates the table with `rows` rows, then VACUUM ANALYZE and CHECKPOINT so runs start settled. */
export async function fillEvents(db: pg.Client, rows: number): Promise<void> {
  await db.query('CREATE SCHEMA IF NOT EXISTS bench');
  await db.query(`DROP TABLE IF EXISTS ${EVENTS_TABLE}`);
  await db.query(`
    CREATE TABLE ${EVENTS_TABLE} (
      id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      created_at timestamptz   NOT NULL,
      camera_id  integer       NOT NULL,
      kind       text          NOT NULL,
      value      numeric(12,4),
      payload    jsonb,
      flag       boolean       NOT NULL)`);
  // Ascending time with ids; every value has microseconds; 2% NULL values.
  await db.query(
    `INSERT INTO ${EVENTS_TABLE} (created_at, camera_id, kind, value, payload, flag)
     SELECT now() - interval '2 days' - (p.n - g) * (interval '${SPAN}' / p.n) + ((g::bigint * 7919) % 1000) * interval '1 microsecond',
            g % 500,
            (ARRAY['person', 'vehicle', 'bicycle', 'animal', 'unknown'])[1 + g % 5],
            CASE WHEN g % 50 = 0 THEN NULL ELSE round(((g::bigint * 7919) % 10000000) / 1234.5678, 4) END,
            jsonb_build_object('zone', g % 16, 'confidence', round(((g * 13) % 100) / 100.0, 2),
                               'box', jsonb_build_array(g % 640, g % 480, 32 + g % 64, 64 + g % 32)),
            g % 10 = 0
       FROM (SELECT $1::int AS n) AS p, generate_series(1, p.n) AS g`,
    [rows],
  );
  await db.query(`CREATE INDEX ON ${EVENTS_TABLE} (created_at)`);
  await settle(db, EVENTS_TABLE);
  // Needs superuser (or pg_checkpoint); without it the run just starts with dirty buffers.
  await db.query('CHECKPOINT').catch(() => undefined);
}

/**
 * CHECKPOINT, then VACUUM ANALYZE. The throwaway cluster commits asynchronously (synchronous_commit off),
 * and VACUUM does not mark a page all-visible while its inserter's commit may be unflushed, so without
 * the checkpoint the visibility map stays empty (pg_class.relallvisible 0), unlike the old rows of a
 * production table, which autovacuum marked long ago. Both the single DELETE and the purge start from
 * that settled state. CHECKPOINT needs superuser (or pg_checkpoint); without it the map stays as it is.
 */
async function settle(db: pg.Client, table: string): Promise<void> {
  await db.query('CHECKPOINT').catch(() => undefined);
  await db.query(`VACUUM ANALYZE ${table}`);
}

export async function countEvents(db: pg.Client, table = EVENTS_TABLE): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
  return Number(rows[0]?.n ?? 0);
}

/** Heap + TOAST + indexes, for the report. */
export async function tableBytes(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ bytes: string }>(
    `SELECT pg_total_relation_size('${EVENTS_TABLE}')::text AS bytes`,
  );
  return Number(rows[0]?.bytes ?? 0);
}

/** The same events, RANGE-partitioned by month on `created_at` (see `fillMonthlyEvents`). */
export const MONTHLY_EVENTS_TABLE = 'bench.events_by_month';

/**
 * Drops and recreates `bench.events_by_month`, RANGE-partitioned by calendar month (UTC) on `created_at`:
 * `months` partitions, the newest one holding `cutoff` (and no row), the others wholly before it, and
 * `rows` rows (same columns and values as `fillEvents`) spread evenly over those older months, so a purge
 * at `cutoff` takes every row. Returns the partition count.
 */
export async function fillMonthlyEvents(
  db: pg.Client,
  rows: number,
  cutoff: string,
  months: number,
): Promise<number> {
  await db.query('CREATE SCHEMA IF NOT EXISTS bench');
  await db.query(`DROP TABLE IF EXISTS ${MONTHLY_EVENTS_TABLE}`);
  await db.query(`
    CREATE TABLE ${MONTHLY_EVENTS_TABLE} (
      id         bigint        NOT NULL,
      created_at timestamptz   NOT NULL,
      camera_id  integer       NOT NULL,
      kind       text          NOT NULL,
      value      numeric(12,4),
      payload    jsonb,
      flag       boolean       NOT NULL,
      PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)`);
  // Month m = 0 … months-1 starts (months-1-m) months before the cutoff's month.
  await db.query(
    `DO $$ DECLARE last date := date_trunc('month', $c$${cutoff}$c$::timestamptz AT TIME ZONE 'UTC')::date; m date;
     BEGIN
       FOR m IN SELECT generate_series(last - interval '${months - 1} months', last, interval '1 month')::date LOOP
         EXECUTE format('CREATE TABLE bench.%I PARTITION OF ${MONTHLY_EVENTS_TABLE} FOR VALUES FROM (%L) TO (%L)',
                        'events_' || to_char(m, 'YYYY_MM'), m::text || ' 00:00:00+00',
                        (m + interval '1 month')::date::text || ' 00:00:00+00');
       END LOOP;
     END $$`,
  );
  await db.query(
    `INSERT INTO ${MONTHLY_EVENTS_TABLE} (id, created_at, camera_id, kind, value, payload, flag)
     SELECT g,
            p.first + (g - 1) * ((p.last - p.first) / p.n) + ((g::bigint * 7919) % 1000) * interval '1 microsecond',
            g % 500,
            (ARRAY['person', 'vehicle', 'bicycle', 'animal', 'unknown'])[1 + g % 5],
            CASE WHEN g % 50 = 0 THEN NULL ELSE round(((g::bigint * 7919) % 10000000) / 1234.5678, 4) END,
            jsonb_build_object('zone', g % 16, 'confidence', round(((g * 13) % 100) / 100.0, 2),
                               'box', jsonb_build_array(g % 640, g % 480, 32 + g % 64, 64 + g % 32)),
            g % 10 = 0
       FROM (SELECT $1::int AS n,
                    (date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') - $3::int * interval '1 month' AS first,
                    date_trunc('month', $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS last) AS p,
            generate_series(1, p.n) AS g`,
    [rows, cutoff, months - 1],
  );
  await db.query(`CREATE INDEX ON ${MONTHLY_EVENTS_TABLE} (created_at)`);
  await settle(db, MONTHLY_EVENTS_TABLE);
  await db.query('CHECKPOINT').catch(() => undefined);
  return months;
}

/** The backup benchmark's schema: the policy backs up `BACKUP_SCHEMA.*`, which holds this one table. */
export const BACKUP_SCHEMA = 'bench_backup';
export const BACKUP_TABLE = `${BACKUP_SCHEMA}.events`;
/** The columns of `BACKUP_TABLE`, in order: what COPY writes and every backup part carries. */
export const BACKUP_COLUMNS = ['id', 'camera_id', 'note', 'created_at'] as const;

/**
 * Drops and recreates `bench_backup.events` (bigint identity key, int, text of 64 characters, timestamptz with
 * microseconds; the shape the backup's own measurements used) with `rows` rows in key and time order, then
 * settles it like `fillEvents`. About 107 bytes of COPY text per row; the text is a word, a zone and an md5
 * (half of it hex that compresses poorly), padded with dots.
 */
export async function fillBackupEvents(db: pg.Client, rows: number): Promise<void> {
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${BACKUP_SCHEMA}`);
  await db.query(`DROP TABLE IF EXISTS ${BACKUP_TABLE}`);
  await db.query(`
    CREATE TABLE ${BACKUP_TABLE} (
      id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      camera_id  integer     NOT NULL,
      note       text        NOT NULL,
      created_at timestamptz NOT NULL)`);
  await db.query(
    `INSERT INTO ${BACKUP_TABLE} (camera_id, note, created_at)
     SELECT g % 500,
            rpad((ARRAY['person', 'vehicle', 'bicycle', 'animal', 'unknown'])[1 + g % 5] || ' zone ' || (g % 16)
                 || ' ' || md5(g::text), 64, '.'),
            now() - interval '2 days' - (p.n - g) * (interval '${SPAN}' / p.n) + ((g::bigint * 7919) % 1000) * interval '1 microsecond'
       FROM (SELECT $1::int AS n) AS p, generate_series(1, p.n) AS g`,
    [rows],
  );
  await settle(db, BACKUP_TABLE);
  await db.query('CHECKPOINT').catch(() => undefined);
}
