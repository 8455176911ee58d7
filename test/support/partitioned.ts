/** Range-partitioned fixtures shared by the partition tests. */
import type pg from 'pg';

/**
 * `public.<table>`: monthly partitions from `first` to `last` (inclusive, 'YYYY-MM-01'), optionally a
 * DEFAULT partition, and one row every 6 hours from `from` to `now` (rows outside the months go to DEFAULT).
 */
export async function seedPartitioned(
  pool: pg.Pool,
  table: string,
  options: { first: string; last: string; from: string; now: Date; withDefault?: boolean },
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
    [options.from, options.now.toISOString()],
  );
}
