-- What `pg-lifecycle restore-archive` brought back: one row per archive object restored into a table, written
-- in the same transaction as the rows it inserted. A later restore of the same object (same bytes: key and
-- SHA-256) into the same table (by oid: one dropped and made again is another) skips it when this restore covered every row the later one asks for (no
-- predicate, or the same predicate); ON CONFLICT DO NOTHING on the target's keys covers partial overlaps.
-- Counts only, never row values.
CREATE TABLE lifecycle.restored_objects (
  restore_id     uuid        NOT NULL,            -- one invocation of restore-archive
  policy         text        NOT NULL,
  bucket         text        NOT NULL,
  key            text        NOT NULL,
  sha256         text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  version_id     text,                            -- S3 VersionId read (versioned buckets)
  etag           text,
  source_run_id  uuid        NOT NULL,            -- the archive run that listed the object
  target_table   text        NOT NULL,            -- quoted "schema"."table" as resolved from the catalog
  target_oid     oid         NOT NULL,            -- which table of that name: a table dropped and made again is a new one
  predicate      text,                            -- --where as given; NULL: every row of the object
  rows_in_object integer     NOT NULL,
  rows_staged    integer     NOT NULL,
  rows_selected  integer     NOT NULL,            -- staged rows the predicate kept
  rows_inserted  integer     NOT NULL,            -- rows_selected - rows_inserted: skipped by a conflict
  restored_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (restore_id, bucket, key)
);
CREATE INDEX restored_objects_object_idx ON lifecycle.restored_objects (bucket, key, target_oid);
