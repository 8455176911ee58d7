-- lifecycle.dropped_partitions holds every whole-partition unit a run started, whatever became of it (archived,
-- detaching, dropped, kept as a table, left to the chunk loop): named for what it holds.
ALTER TABLE lifecycle.dropped_partitions RENAME TO partition_units;

-- Invocations of the previous release still running while this one deploys read and write the old name: a
-- plain view on the table takes their INSERT and UPDATE too. Drop it once no such run is left.
CREATE VIEW lifecycle.dropped_partitions AS SELECT * FROM lifecycle.partition_units;

-- Which actions exist is the action registry's business (functions/actions/registry.ts): a new action needs
-- no migration to record its runs and partition units.
ALTER TABLE lifecycle.runs DROP CONSTRAINT IF EXISTS runs_action_check;
ALTER TABLE lifecycle.partition_units DROP CONSTRAINT IF EXISTS dropped_partitions_action_check;
