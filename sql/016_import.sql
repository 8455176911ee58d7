-- Legacy import (functions/actions/import): rows the target refused, and what each run examined.
ALTER TABLE lifecycle.runs
  DROP CONSTRAINT IF EXISTS runs_action_check,
  ADD CONSTRAINT runs_action_check
    CHECK (action IN ('archive', 'purge', 'backup', 'anonymize', 'subjects', 'maintain', 'import')) NOT VALID;

-- One row per source row the target refused, by the source key's values (text, in key order). The reason is the
-- server's error with every data value removed (functions/core/redact-database-error.ts): SQLSTATE, message,
-- constraint and column names. A later run that imports the row (the source or the target was fixed) deletes it;
-- one that refuses it again updates it. Only key values are kept, never the rest of the row.
CREATE TABLE lifecycle.import_rejects (
  policy      text        NOT NULL,
  source_key  jsonb       NOT NULL,
  run_id      uuid        NOT NULL REFERENCES lifecycle.runs (run_id),
  sqlstate    text        NOT NULL,
  reason      text        NOT NULL,
  column_name text,
  constraint_name text,
  first_rejected_at timestamptz NOT NULL DEFAULT now(),
  rejected_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (policy, source_key)
);
CREATE INDEX import_rejects_run ON lifecycle.import_rejects (run_id);

-- Per run: source rows examined, inserted, skipped (already in the target by its key) and rejected. Added to by
-- each chunk in its own transaction, so the figures are exactly those of committed chunks.
CREATE TABLE lifecycle.import_runs (
  run_id    uuid   PRIMARY KEY REFERENCES lifecycle.runs (run_id),
  examined  bigint NOT NULL DEFAULT 0,
  inserted  bigint NOT NULL DEFAULT 0,
  skipped   bigint NOT NULL DEFAULT 0,
  rejected  bigint NOT NULL DEFAULT 0
);
