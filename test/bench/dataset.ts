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
  await db.query(`VACUUM ANALYZE ${EVENTS_TABLE}`);
  // Needs superuser (or pg_checkpoint); without it the run just starts with dirty buffers.
  await db.query('CHECKPOINT').catch(() => undefined);
}

export async function countEvents(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${EVENTS_TABLE}`);
  return Number(rows[0]?.n ?? 0);
}

/** Heap + TOAST + indexes, for the report. */
export async function tableBytes(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ bytes: string }>(
    `SELECT pg_total_relation_size('${EVENTS_TABLE}')::text AS bytes`,
  );
  return Number(rows[0]?.bytes ?? 0);
}
