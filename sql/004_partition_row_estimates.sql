-- A purge unit counts a dropped partition's rows exactly within partitions.countTimeoutMs; a partition too
-- large for that records the planner's estimate (pg_class.reltuples) instead, flagged here.
ALTER TABLE lifecycle.dropped_partitions ADD COLUMN rows_estimated boolean NOT NULL DEFAULT false;
