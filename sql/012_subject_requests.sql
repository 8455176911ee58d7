-- GDPR subject requests (erasure and export) and what was done for each. The subject's key is kept only while
-- the request is pending (processing needs it); once completed it is cleared and only its keyed hash
-- (HMAC-SHA-256 under the anonymize hash key, hex) remains: enough to recognize the subject's rows again (a
-- restored backup, an archive rewrite) without storing who it was. The proof holds counts, tables and object
-- keys, never row values.
CREATE TABLE lifecycle.subject_requests (
  request_id    uuid        PRIMARY KEY,
  policy        text        NOT NULL,                  -- the subjects policy whose mapping applies
  kind          text        NOT NULL CHECK (kind IN ('erase', 'export')),
  subject_hash  text        NOT NULL CHECK (subject_hash ~ '^[0-9a-f]{64}$'),
  subject_key   text,                                  -- NULL once the request is completed
  requested_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  due_at        timestamptz NOT NULL,
  status        text        NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'completed', 'failed')),
  completed_at  timestamptz,
  run_id        uuid,                                  -- the run that completed (or failed) it
  proof         jsonb,
  error         text,
  CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
  -- A failed request keeps the key, so that it can be retried once the cause is fixed (`subject retry`).
  CHECK (status <> 'completed' OR subject_key IS NULL)
);
CREATE INDEX subject_requests_pending_idx ON lifecycle.subject_requests (policy, requested_at)
  WHERE status = 'pending';

-- Runs of a subjects policy (erasure and export requests) are ledger runs like the others.
ALTER TABLE lifecycle.runs
  DROP CONSTRAINT IF EXISTS runs_action_check,
  ADD CONSTRAINT runs_action_check CHECK (action IN ('archive', 'purge', 'backup', 'anonymize', 'subjects')) NOT VALID;
