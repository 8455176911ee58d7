-- S3 Object Lock of committed archive objects (archive.objectLock). An object is locked only once the ledger
-- lists it (an orphan of a rolled-back chunk must stay deletable), so the lock is a separate call after the
-- chunk's COMMIT, and a crash can fall between the two.
--
-- lock_until: the retain-until date the object must get, its listing time (to the millisecond) + days, given
--   once by the first lock call of a policy with objectLock and never changed, so that every later call asks
--   for the same date (COMPLIANCE refuses a shorter one). NULL: not given yet; forever for a policy without
--   objectLock (if objectLock is turned on later, its next Finish gives dates to the objects listed before).
-- retained_until: the date the object was locked until (= lock_until); NULL = not locked (yet). A lock whose
--   period had already ended when it was due is recorded without a call.
-- lock_error: why the object could not be locked (S3 holds other bytes, or none): reported by the call that
--   found it, skipped by later ones (`pg-lifecycle verify` reports it). Clear it to have the next Finish retry.
ALTER TABLE lifecycle.archived_objects
  ADD COLUMN lock_until     timestamptz,
  ADD COLUMN retained_until timestamptz,
  ADD COLUMN lock_error     text;
-- Objects still to lock: what a crash between COMMIT and lock left, small whatever the ledger's size.
CREATE INDEX archived_objects_lock_due_idx ON lifecycle.archived_objects (object_id)
  WHERE lock_until IS NOT NULL AND retained_until IS NULL AND lock_error IS NULL;

-- lock_dated: the run ended and every object it listed has its lock_until. A Finish with objectLock dates the
-- objects of its policy's runs not marked yet (usually its own), so it never reads the objects of runs dated
-- before, nor those of other policies.
ALTER TABLE lifecycle.runs ADD COLUMN lock_dated boolean NOT NULL DEFAULT false;
CREATE INDEX runs_lock_undated_idx ON lifecycle.runs (policy) WHERE NOT lock_dated;
