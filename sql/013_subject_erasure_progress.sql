-- Erasure reaches the archives (functions/actions/subjects/archive-erasure.ts): once the live rows are gone, the
-- request walks the Parquet objects the ledger lists for its tables and rewrites each one that holds the subject.
-- That walk spans chunks and runs, so where it stands is kept with the request: the live tables' outcome, the last
-- object searched, the objects rewritten (old/new keys, rows), old keys still being deleted and objects waiting
-- for a Glacier restore. Counts and keys only, never row values. A request whose remaining objects are all
-- restoring is 'waiting'; it is still open (due_at applies) and is picked up again by the next run.
ALTER TABLE lifecycle.subject_requests ADD COLUMN IF NOT EXISTS progress jsonb;
ALTER TABLE lifecycle.subject_requests
  DROP CONSTRAINT IF EXISTS subject_requests_status_check,
  ADD CONSTRAINT subject_requests_status_check CHECK (status IN ('pending', 'waiting', 'completed', 'failed'));
