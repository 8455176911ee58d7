-- Demo data for sql/demo/schema.sql: about 945,000 rows from 2021-01-01 up to now().
-- Deterministic apart from the anchor on now(): each table part seeds random() itself, so its values do not
-- depend on the order parts run in. Every time value has a non-zero microsecond part, so code that truncates
-- to milliseconds shows up.
--
-- `-- @part` lines split the file for bin/local/demo-seed.ts, which runs the table parts two at a time, each
-- in one transaction on a connection that ran "helpers" first. Run top to bottom (psql -f) it does the same.

-- @part helpers
-- The instant at `fraction` of the way from 2021-01-01 (0) to now (1), with the given microseconds (1..999999).
-- Epoch arithmetic, not interval arithmetic, so the session time zone and DST cannot shift anything past now().
CREATE OR REPLACE FUNCTION pg_temp.demo_time(fraction double precision, micros integer) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT to_timestamp(floor(
           extract(epoch FROM timestamptz '2021-01-01 00:00:00+00')
           + (extract(epoch FROM now()) - extract(epoch FROM timestamptz '2021-01-01 00:00:00+00') - 2) * fraction
         ))
         + micros * interval '1 microsecond'
$$;

-- A random instant between two others, for derived times (ended_at, resolved_at, ...), nudged off a whole second.
CREATE OR REPLACE FUNCTION pg_temp.demo_between(low timestamptz, high timestamptz, fraction double precision)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
  SELECT t + CASE WHEN extract(microseconds FROM t)::bigint % 1000000 = 0 THEN interval '1 microsecond' ELSE interval '0' END
  FROM to_timestamp(extract(epoch FROM low) + (extract(epoch FROM high) - extract(epoch FROM low)) * fraction) AS t
$$;

-- @part table counting_results
TRUNCATE public.counting_results RESTART IDENTITY;
SELECT setseed(0.42);

-- 300,000 rows: 100,000 reports of 3 zones each; a report's rows share created_at (keyset ties).
INSERT INTO public.counting_results (
  camera_id, site_id, zone, count_type, count_value, confidence, avg_dwell_seconds, net_flow,
  is_validated, model_version, window_seconds, attributes, tags, created_at
)
SELECT
  1 + r % 400,
  (1 + (r % 400) / 20)::smallint,
  (ARRAY['entrance', 'exit', 'aisle-1', 'aisle-2', 'checkout', 'parking-a', 'lobby'])[1 + (r + 3 * k) % 7],
  CASE WHEN random() < 0.05 THEN 'critical'
       ELSE (ARRAY['person', 'vehicle', 'bicycle', 'queue', 'occupancy'])[1 + floor(random() * 5)::int] END,
  floor(random() ^ 2 * 500)::int,
  0.5 + random() * 0.5,
  CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 3600)::numeric, 4) END,
  round(((random() - 0.5) * 200)::numeric, 4),
  random() < 0.3,
  'v' || (1 + r * 4 / 100000) || '.' || (r / 7000) % 10,
  (ARRAY[60, 300, 900])[1 + r % 3]::smallint,
  CASE WHEN random() < 0.2 THEN NULL
       ELSE jsonb_build_object(
         'night_mode', random() < 0.3,
         'lux', round((random() * 800)::numeric, 1),
         'occluded', random() < 0.05,
         'labels', jsonb_build_array('zone-' || k, 'fw-' || (r % 5))
       ) END,
  CASE WHEN random() < 0.6 THEN '{}'::text[]
       ELSE ARRAY[(ARRAY['retail', 'transport', 'pilot', 'calibrated', 'outdoor'])[1 + floor(random() * 5)::int]] END,
  pg_temp.demo_time((r + ((r * 7919) % 1000) / 1000.0) / 100000, (1 + (r::bigint * 104729) % 999999)::int)
FROM generate_series(0, 299999) AS g,
     LATERAL (SELECT g / 3 AS r, g % 3 AS k) AS report;

ANALYZE public.counting_results;

-- @part table camera_events
TRUNCATE public.camera_events RESTART IDENTITY;
SELECT setseed(0.43);

-- 200,000 rows, routed to the monthly partitions.
INSERT INTO public.camera_events (
  camera_id, event_type, severity, payload, snapshot_sha256, source_ip, processing_ms, processed, created_at
)
SELECT
  1 + floor(random() * 400)::int,
  e.event_type,
  CASE e.event_type WHEN 'tamper' THEN 5 WHEN 'intrusion' THEN 4 WHEN 'offline' THEN 3 ELSE floor(random() * 3)::int END,
  jsonb_build_object(
    'frame', g,
    'objects', floor(random() * 12)::int,
    'score', round(random()::numeric, 3),
    'meta', jsonb_build_object('fw', '2.' || g % 9, 'temp_c', round((random() * 40 - 5)::numeric, 1))
  ),
  CASE WHEN e.event_type IN ('intrusion', 'tamper', 'line_crossing') THEN sha256(int8send(g)) END,
  CASE WHEN g % 10 = 0 THEN ('2001:db8::' || to_hex(g / 65536) || ':' || to_hex(g % 65536))::inet
       ELSE ('10.' || g % 250 || '.' || (g / 250) % 250 || '.' || 1 + g % 199)::inet END,
  CASE WHEN random() < 0.05 THEN NULL ELSE random() * 250 END,
  random() < 0.9,
  pg_temp.demo_time((g + random()) / 200000, 1 + floor(random() * 999999)::int)
FROM generate_series(0, 199999) AS g,
     LATERAL (SELECT (ARRAY['motion', 'line_crossing', 'intrusion', 'tamper', 'offline', 'online', 'motion', 'motion'])
                     [1 + floor(random() * 8 + 0 * g)::int] AS event_type) AS e;

-- Not payload: sorting 200,000 distinct jsonb values costs more than the rest of the seed's statistics together,
-- and no query of the demo filters on it.
ANALYZE public.camera_events (id, camera_id, event_type, severity, snapshot_sha256, source_ip, processing_ms,
  processed, created_at);

-- @part table audit_logs
TRUNCATE public.audit_logs RESTART IDENTITY;
SELECT setseed(0.44);

-- 100,000 rows.
INSERT INTO public.audit_logs (
  user_id, actor_email, action, entity_type, entity_id, old_values, new_values, ip_address, user_agent,
  request_id, created_at
)
SELECT
  u.user_id,
  CASE WHEN u.user_id IS NULL THEN NULL ELSE 'user' || u.user_id || '@example.com' END,
  a.action,
  (ARRAY['camera', 'site', 'user', 'report', 'alert_rule'])[1 + floor(random() * 5)::int],
  CASE WHEN a.action IN ('login', 'logout') THEN NULL ELSE 1 + floor(random() * 100000)::bigint END,
  CASE WHEN a.action IN ('update', 'delete', 'permission_change')
       THEN jsonb_build_object('status', 'active', 'threshold', floor(random() * 100)::int) END,
  CASE WHEN a.action IN ('create', 'update', 'permission_change')
       THEN jsonb_build_object('status', (ARRAY['active', 'paused', 'archived'])[1 + g % 3],
                               'threshold', floor(random() * 100)::int, 'note', 'changed via dashboard') END,
  ('192.168.' || g % 256 || '.' || 1 + (g / 256) % 254)::inet,
  (ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0', 'Mozilla/5.0 (Macintosh) Safari/17.1',
         'camera-agent/3.2', 'pg-lifecycle-cli/0.1'])[1 + g % 4],
  md5('audit:' || g)::uuid,
  pg_temp.demo_time((g + random()) / 100000, 1 + floor(random() * 999999)::int)
FROM generate_series(0, 99999) AS g,
     -- `0 * g` correlates each subquery with its row: uncorrelated, PostgreSQL evaluates it once for all rows.
     LATERAL (SELECT CASE WHEN random() < 0.05 + 0 * g THEN NULL ELSE 1 + floor(random() * 5000)::bigint END AS user_id) AS u,
     LATERAL (SELECT (ARRAY['login', 'logout', 'create', 'update', 'delete', 'export', 'permission_change'])
                     [1 + floor(random() * 7 + 0 * g)::int] AS action) AS a;

ANALYZE public.audit_logs;

-- @part table performance_metrics
TRUNCATE public.performance_metrics RESTART IDENTITY;
SELECT setseed(0.45);

-- 150,000 rows: 50 devices x 6 metrics; timestamps strictly increase (at least ~10 minutes apart), so the
-- composite primary key holds.
INSERT INTO public.performance_metrics (
  device_id, metric_name, created_at, value, p95, sample_count, unit, host, labels
)
SELECT
  1 + g % 50,
  m.name,
  pg_temp.demo_time((g + random() * 0.5) / 150000, 1 + floor(random() * 999999)::int),
  m.value,
  CASE WHEN random() < 0.1 THEN NULL ELSE round((m.value * (1 + random() * 0.3))::numeric, 4) END,
  1 + floor(random() * 600)::int,
  m.unit,
  CASE WHEN g % 17 = 0 THEN NULL ELSE 'edge-' || lpad((1 + g % 50)::text, 3, '0') END,
  CASE WHEN random() < 0.5 THEN NULL ELSE jsonb_build_object('region', (ARRAY['eu-west-1', 'us-east-1'])[1 + g % 2]) END
FROM generate_series(0, 149999) AS g,
     LATERAL (
       SELECT (ARRAY['cpu_percent', 'memory_mb', 'temperature_c', 'fps', 'inference_ms', 'disk_free_gb'])[1 + (g / 50) % 6] AS name,
              (ARRAY['%', 'MB', 'C', 'fps', 'ms', 'GB'])[1 + (g / 50) % 6] AS unit,
              CASE (g / 50) % 6
                WHEN 0 THEN random() * 100
                WHEN 1 THEN 256 + random() * 3840
                WHEN 2 THEN random() * 90 - 20
                WHEN 3 THEN 5 + random() * 25
                WHEN 4 THEN 8 + random() ^ 3 * 400
                ELSE random() * 500
              END AS value
     ) AS m;

ANALYZE public.performance_metrics;

-- @part table user_sessions
TRUNCATE public.user_sessions RESTART IDENTITY;
SELECT setseed(0.46);

-- 60,000 rows; about 2 % never ended (abandoned, or still open near now).
INSERT INTO public.user_sessions (
  id, user_id, started_at, ended_at, ip_address, user_agent, device_type, is_mobile, pages_viewed, metadata, created_at
)
SELECT
  md5('session:' || g)::uuid,
  1 + floor(random() * 5000)::bigint,
  s.started_at,
  CASE WHEN s.ended_at > now() OR random() < 0.02 THEN NULL ELSE s.ended_at END,
  CASE WHEN g % 7 = 0 THEN NULL ELSE ('172.16.' || g % 256 || '.' || 1 + (g / 256) % 254)::inet END,
  (ARRAY['Mozilla/5.0 (iPhone; CPU iPhone OS 17_1) Mobile/15E148', 'Mozilla/5.0 (Windows NT 10.0) Chrome/120.0',
         'Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0', 'Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile'])[1 + d.kind],
  (ARRAY['mobile', 'desktop', 'desktop', 'mobile'])[1 + d.kind],
  d.kind IN (0, 3),
  floor(random() ^ 2 * 80)::int,
  CASE WHEN random() < 0.3 THEN NULL
       ELSE jsonb_build_object('locale', (ARRAY['en-US', 'de-DE', 'fr-FR', 'ja-JP'])[1 + g % 4], 'sso', random() < 0.4) END,
  s.started_at
FROM generate_series(0, 59999) AS g,
     LATERAL (SELECT pg_temp.demo_time((g + random()) / 60000, 1 + floor(random() * 999999)::int) AS started_at) AS t,
     LATERAL (SELECT t.started_at,
                     pg_temp.demo_between(t.started_at + interval '3 seconds', t.started_at + interval '4 hours', random() ^ 2) AS ended_at) AS s,
     LATERAL (SELECT floor(random() * 4 + 0 * g)::int AS kind) AS d;

ANALYZE public.user_sessions;

-- @part table system_logs
TRUNCATE public.system_logs RESTART IDENTITY;
SELECT setseed(0.47);

-- 100,000 rows from 99,900 generated lines: every 999th line is logged twice (identical rows, which only a
-- table without a primary key allows).
INSERT INTO public.system_logs (created_at, level, service, host_name, pid, message, duration_ms, trace_id, context)
SELECT l.*
FROM (
  SELECT
    g,
    pg_temp.demo_time((g + random()) / 99900, 1 + floor(random() * 999999)::int) AS created_at,
    (ARRAY['DEBUG', 'INFO', 'INFO', 'INFO', 'INFO', 'WARN', 'ERROR'])[1 + floor(random() * 7)::int] AS level,
    (ARRAY['ingest', 'inference', 'api', 'scheduler', 'exporter'])[1 + g % 5] AS service,
    'node-' || lpad((1 + g % 12)::text, 2, '0') AS host_name,
    1000 + g % 3000 AS pid,
    format('%s request %s handled in %s ms', (ARRAY['GET', 'POST', 'PUT'])[1 + g % 3], g, g % 997) AS message,
    CASE WHEN random() < 0.3 THEN NULL ELSE random() * 1500 END AS duration_ms,
    CASE WHEN g % 4 = 0 THEN NULL ELSE md5('trace:' || g) END AS trace_id,
    CASE WHEN random() < 0.7 THEN NULL ELSE jsonb_build_object('attempt', 1 + g % 3, 'cache_hit', g % 2 = 0) END AS context
  FROM generate_series(0, 99899) AS g
) AS line,
LATERAL (SELECT line.created_at, line.level, line.service, line.host_name, line.pid, line.message, line.duration_ms,
                line.trace_id, line.context
         FROM generate_series(1, CASE WHEN line.g % 999 = 998 THEN 2 ELSE 1 END)) AS l;

ANALYZE public.system_logs;

-- @part table error_logs
TRUNCATE public.error_logs RESTART IDENTITY;
SELECT setseed(0.48);

-- 30,000 rows; about 70 % resolved, never after now().
INSERT INTO public.error_logs (
  error_code, severity, message, stack_trace, camera_id, client_ip, occurrences, is_resolved, tags, context,
  created_at, resolved_at
)
SELECT
  x.code,
  (1 + floor(random() * 5))::smallint,
  x.code || ': ' || (ARRAY['stream stalled for 30 s', 'model failed to load', 'no space left on device',
                           'token expired', 'connection reset by peer', 'corrupt frame'])[1 + g % 6],
  CASE WHEN random() < 0.4 THEN NULL
       ELSE E'Error: ' || x.code || E'\n    at processFrame (pipeline.ts:' || 10 + g % 400 || E')\n    at run (worker.ts:88)' END,
  CASE WHEN random() < 0.2 THEN NULL ELSE 1 + floor(random() * 400)::int END,
  CASE WHEN g % 5 = 0 THEN ('2001:db8:1::' || to_hex(g / 65536) || ':' || to_hex(g % 65536))::inet ELSE ('10.20.' || g % 256 || '.' || 1 + g % 250)::inet END,
  1 + floor(random() ^ 4 * 1000)::int,
  r.resolved_at IS NOT NULL,
  CASE WHEN random() < 0.5 THEN NULL ELSE ARRAY['edge', (ARRAY['p1', 'p2', 'p3'])[1 + g % 3]] END,
  jsonb_build_object('firmware', '2.' || g % 9, 'retryable', g % 2 = 0),
  t.created_at,
  r.resolved_at
FROM generate_series(0, 29999) AS g,
     LATERAL (SELECT (ARRAY['E_STREAM_TIMEOUT', 'E_MODEL_LOAD', 'E_DISK_FULL', 'E_AUTH', 'E_NETWORK', 'E_DECODE'])
                     [1 + g % 6] AS code) AS x,
     LATERAL (SELECT pg_temp.demo_time((g + random()) / 30000, 1 + floor(random() * 999999)::int) AS created_at) AS t,
     LATERAL (SELECT pg_temp.demo_between(t.created_at + interval '1 minute', t.created_at + interval '480 hours', random() ^ 2) AS at,
                     random() < 0.7 AS fixed) AS f,
     LATERAL (SELECT CASE WHEN f.fixed AND f.at < now() THEN f.at END AS resolved_at) AS r;

ANALYZE public.error_logs;

-- @part table user_profiles
TRUNCATE public.user_profiles RESTART IDENTITY;
SELECT setseed(0.49);

-- 5,000 rows of personal data (names with non-ASCII letters and quotes); about 5 % soft-deleted.
INSERT INTO public.user_profiles (
  email, full_name, phone, birth_date, country_code, marketing_opt_in, preferences, avatar_thumbnail,
  created_at, updated_at, deleted_at
)
SELECT
  n.mailbox || '.' || g || '@example.com',
  n.first_name || ' ' || n.last_name,
  CASE WHEN random() < 0.15 THEN NULL ELSE '+1-555-' || lpad((g % 10000)::text, 4, '0') END,
  CASE WHEN random() < 0.1 THEN NULL ELSE date '1950-01-01' + floor(random() * 20000)::int END,
  (ARRAY['US', 'DE', 'FR', 'JP', 'BR', 'VN', 'PL', 'DK'])[1 + g % 8],
  random() < 0.35,
  jsonb_build_object('theme', (ARRAY['light', 'dark'])[1 + g % 2], 'digest', (ARRAY['daily', 'weekly', 'never'])[1 + g % 3]),
  CASE WHEN random() < 0.6 THEN NULL ELSE decode(md5('avatar:' || g), 'hex') END,
  t.created_at,
  t.updated_at,
  CASE WHEN random() < 0.05 THEN pg_temp.demo_between(t.updated_at, now(), random()) END
FROM generate_series(1, 5000) AS g,
     LATERAL (
       SELECT (ARRAY['Anna', 'José', 'Zoë', 'Łukasz', 'Søren', 'Ngọc', 'Liam', 'Mia', 'Noah', 'Aiko'])[1 + g % 10] AS first_name,
              (ARRAY['anna', 'jose', 'zoe', 'lukasz', 'soren', 'ngoc', 'liam', 'mia', 'noah', 'aiko'])[1 + g % 10] AS mailbox,
              (ARRAY['Smith', 'Müller', 'O''Brien', 'García', 'Nguyễn', 'Kowalski', 'Tanaka', 'Dubois', 'Silva'])[1 + g % 9] AS last_name
     ) AS n,
     LATERAL (SELECT pg_temp.demo_time((g - random()) / 5000, 1 + floor(random() * 999999)::int) AS created_at) AS c,
     LATERAL (SELECT c.created_at, pg_temp.demo_between(c.created_at, now(), random()) AS updated_at) AS t;

ANALYZE public.user_profiles;
