-- Partition-aware retention: one row per partition handled as a unit (archived and/or detached, then
-- dropped or kept). The row is written before anything irreversible happens, so a retried step finishes
-- what an interrupted one started (functions/run/partition-retention.ts).
CREATE TABLE lifecycle.dropped_partitions (
  run_id          uuid        NOT NULL REFERENCES lifecycle.runs (run_id),  -- the run that started the unit
  policy          text        NOT NULL,
  partition_oid   oid         NOT NULL,
  partition_name  text        NOT NULL,          -- quoted "schema"."table" when the unit started
  parent_name     text        NOT NULL,
  bound_from      text        NOT NULL,          -- literal text, MINVALUE
  bound_to        text        NOT NULL,
  action          text        NOT NULL CHECK (action IN ('archive', 'purge')),
  -- archived: objects listed, partition fenced against writes (CHECK (false) NOT VALID), still attached;
  -- detaching: DETACH … CONCURRENTLY may have run; dropped / kept: done; chunked: left to the chunk loop.
  state           text        NOT NULL CHECK (state IN ('archived', 'detaching', 'dropped', 'kept', 'chunked')),
  detach_mode     text        CHECK (detach_mode IN ('concurrently', 'locked')),
  rows            bigint,                        -- rows in the partition when it was archived / dropped
  objects         integer     NOT NULL DEFAULT 0,
  bytes           bigint      NOT NULL DEFAULT 0,
  chunk_seq       integer,                       -- lifecycle.chunks row that counted the rows into the run
  kept_as         text,                          -- keepDetached: the detached table's quoted name
  started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at     timestamptz,
  finished_by     uuid,                          -- the run that completed it (a later run may resume a unit)
  PRIMARY KEY (run_id, partition_oid)
);
CREATE INDEX dropped_partitions_open_idx ON lifecycle.dropped_partitions (policy, partition_oid)
  WHERE state IN ('archived', 'detaching');
