-- Orphan removal marks a pending key before deleting its object and forgets it only afterwards. A stale
-- chunk (a frozen Lambda thawed late) that finishes its upload checks its key is still pending and not
-- being removed; otherwise it deletes its own object, so no upload outlives the clean-up unlisted.
ALTER TABLE lifecycle.pending_objects ADD COLUMN removing boolean NOT NULL DEFAULT false;
