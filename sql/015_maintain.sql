-- Scheduled maintenance (functions/actions/maintain): ANALYZE, VACUUM and REINDEX CONCURRENTLY runs.
-- 'import' is listed too (sql/016 lists 'maintain'): whichever of the two a ledger applies last, both stay allowed.
ALTER TABLE lifecycle.runs
  DROP CONSTRAINT IF EXISTS runs_action_check,
  ADD CONSTRAINT runs_action_check
    CHECK (action IN ('archive', 'purge', 'backup', 'anonymize', 'subjects', 'maintain', 'import')) NOT VALID;

-- One row per statement a maintain run ran, or per table or index it would not touch ('skip': not owned, an
-- invalid or leftover _ccnew/_ccold index), with the figures it decided on and what they were after. Written in
-- the chunk transaction that moves the run's cursor past the work. Sizes are bytes on disk (heap main fork, or
-- the index); bloat is pgstattuple's exact reading or the statistics-based estimate (estimate_method); dead
-- tuples are pg_stat_user_tables.n_dead_tup. Never row contents.
CREATE TABLE lifecycle.maintenance_actions (
  id                   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id               uuid        NOT NULL REFERENCES lifecycle.runs (run_id),
  policy               text        NOT NULL,
  table_name           text        NOT NULL,
  index_name           text,
  statement            text        NOT NULL CHECK (statement IN ('analyze', 'vacuum', 'reindex', 'skip')),
  outcome              text        NOT NULL
                         CHECK (outcome IN ('done', 'timed-out', 'lock-timeout', 'failed', 'skipped')),
  reason               text        NOT NULL,
  estimate_method      text        CHECK (estimate_method IN ('pgstattuple', 'statistics')),
  size_bytes_before    bigint      NOT NULL,
  size_bytes_after     bigint,
  bloat_percent_before numeric(5, 2),
  bloat_percent_after  numeric(5, 2),
  bloat_bytes_before   bigint,
  bloat_bytes_after    bigint,
  dead_tuples_before   bigint,
  dead_tuples_after    bigint,
  duration_ms          integer     NOT NULL DEFAULT 0,
  error                text,
  recorded_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK ((statement = 'skip') = (outcome = 'skipped'))
);
CREATE INDEX maintenance_actions_run ON lifecycle.maintenance_actions (run_id);
-- "When was this table last vacuumed or reindexed by a policy, and what did it gain?"
CREATE INDEX maintenance_actions_table ON lifecycle.maintenance_actions (table_name, recorded_at);
