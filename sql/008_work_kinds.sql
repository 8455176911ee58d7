-- Room for actions that are not "delete old rows by time" (backup, anonymize, erasure, restore).

-- What an object listed in archived_objects is. Only an 'archive-copy' is the only copy of rows deleted in
-- its chunk's transaction; a backup part, an export document or a rewritten archive object is not: what
-- relies on that guarantee must read the kind. Every object listed before this migration is an archive copy.
-- NOT VALID: the rows already there hold the default; checking them would scan the table under ACCESS
-- EXCLUSIVE inside Start's migration transaction.
ALTER TABLE lifecycle.archived_objects
  ADD COLUMN kind text NOT NULL DEFAULT 'archive-copy',
  ADD CONSTRAINT archived_objects_kind_check
    CHECK (kind IN ('archive-copy', 'backup-part', 'export', 'rewrite')) NOT VALID;

-- The work source a run walks, and the fields only a time-cutoff source has: a whole-table backup has no
-- time column and no cutoff, an erasure is keyed by subject, a restore walks listed objects.
ALTER TABLE lifecycle.runs
  ADD COLUMN source text NOT NULL DEFAULT 'time-cutoff'
    CHECK (source IN ('time-cutoff', 'whole-table', 'unprocessed', 'subject', 'listed-objects')),
  ALTER COLUMN time_column DROP NOT NULL,
  ALTER COLUMN cutoff DROP NOT NULL,
  ADD CONSTRAINT runs_time_cutoff_check CHECK (source <> 'time-cutoff' OR (time_column IS NOT NULL AND cutoff IS NOT NULL));
