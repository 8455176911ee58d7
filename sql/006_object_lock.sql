-- S3 Object Lock of committed archive objects (archive.objectLock). An object is locked only once the ledger
-- lists it (an orphan of a rolled-back chunk must stay deletable), so the lock is a separate call after the
-- chunk's COMMIT, and a crash can fall between the two: retained_until records the date an object was
-- locked until. NULL = not locked (yet); the Finish step of a policy with objectLock locks its listed
-- objects still NULL. A lock whose period had already ended when it was due is recorded without a call.
ALTER TABLE lifecycle.archived_objects ADD COLUMN retained_until timestamptz;
CREATE INDEX archived_objects_unlocked_idx ON lifecycle.archived_objects (run_id) WHERE retained_until IS NULL;
