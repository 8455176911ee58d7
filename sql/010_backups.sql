-- Backups (functions/actions/backup): parts listed like archive objects, facts fixed at a run's start, drills.

-- A backup part is listed in archived_objects with kind 'backup-part': it has no time range and no Hive
-- partition, and a part of an empty key range holds no rows. Archive copies keep every guarantee they had.
-- NOT VALID: rows already there are archive copies that hold them; checking would scan under ACCESS EXCLUSIVE.
ALTER TABLE lifecycle.archived_objects
  ALTER COLUMN partition DROP NOT NULL,
  ALTER COLUMN min_time DROP NOT NULL,
  ALTER COLUMN max_time DROP NOT NULL,
  DROP CONSTRAINT IF EXISTS archived_objects_rows_check,
  ADD CONSTRAINT archived_objects_rows_check CHECK (rows > 0 OR (rows = 0 AND kind <> 'archive-copy')) NOT VALID,
  ADD CONSTRAINT archived_objects_archive_copy_check
    CHECK (kind <> 'archive-copy' OR (partition IS NOT NULL AND min_time IS NOT NULL AND max_time IS NOT NULL)) NOT VALID,
  -- Per object facts of its kind (a backup part: its table, part number, content checksum, snapshot). Never row values.
  ADD COLUMN detail jsonb;

-- What a run fixed when it started and its steps read back (a backup: its id, the tables and their columns,
-- part sizes); and what happened to its output later (a backup: expired).
ALTER TABLE lifecycle.runs ADD COLUMN detail jsonb;

-- The Chunk step that owns the run now, for actions that fence stale steps (backup): each step claims it with a
-- new token before it reads the cursor, and
-- every chunk it commits must still hold it. An older invocation of the same run that outlived its step (a
-- Lambda timed out, frozen and thawed after Step Functions retried it) can then no longer commit a chunk the
-- newer step also takes: it rolls back instead of listing the same rows twice.
ALTER TABLE lifecycle.runs ADD COLUMN step_token uuid;

-- Restore drills: the latest backup restored into a scratch schema and compared with its manifest.
CREATE TABLE lifecycle.restore_drills (
  drill_id     uuid        PRIMARY KEY,
  policy       text        NOT NULL,
  backup_id    text        NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at  timestamptz,
  status       text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'passed', 'failed')),
  -- Measured recovery time: from the first download to the last table checked.
  duration_ms  bigint,
  -- Per table: rows and checksum expected (manifest) and found (restored copy). Never row values.
  tables       jsonb,
  error        text
);
CREATE INDEX restore_drills_policy_idx ON lifecycle.restore_drills (policy, started_at DESC);
