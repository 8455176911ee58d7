-- Erasure reaches the archives (functions/actions/subjects/archive-erasure.ts): once the live rows are gone, the
-- request walks the Parquet objects the ledger lists for its tables and rewrites each one that holds the subject.
-- That walk spans chunks and runs, so where it stands is kept with the request (`progress`): the live tables'
-- outcome, the last object searched, and objects waiting for a Glacier restore or an Object Lock retention to end;
-- the objects it changed are rows of lifecycle.subject_rewrites. Counts and keys only, never row values. A request
-- whose remaining objects all wait is 'waiting'; it is still open (due_at applies) and the next run looks again.
ALTER TABLE lifecycle.subject_requests ADD COLUMN IF NOT EXISTS progress jsonb;
ALTER TABLE lifecycle.subject_requests
  DROP CONSTRAINT IF EXISTS subject_requests_status_check,
  ADD CONSTRAINT subject_requests_status_check CHECK (status IN ('pending', 'waiting', 'completed', 'failed'));

-- Each archive object an erasure changed: written in the transaction that swaps the ledger row, marked deleted once
-- every version of the old key is gone (until then a later step finishes the deletion). The proof lists them. A row
-- per object, not an array in `progress`: a request over thousands of objects then writes each once.
CREATE TABLE IF NOT EXISTS lifecycle.subject_rewrites (
  request_id    uuid        NOT NULL REFERENCES lifecycle.subject_requests (request_id),
  bucket        text        NOT NULL,
  old_key       text        NOT NULL,
  new_key       text,                                  -- NULL: no row left (emptied) or nothing to read (gone)
  outcome       text        NOT NULL CHECK (outcome IN ('rewritten', 'emptied', 'gone')),
  table_name    text        NOT NULL,
  rows_removed  integer     NOT NULL,
  rows_masked   integer     NOT NULL,
  rows_left     integer     NOT NULL,
  storage_class text,
  deleted       boolean     NOT NULL DEFAULT false,  -- every version of old_key deleted
  rewritten_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (request_id, bucket, old_key)
);
