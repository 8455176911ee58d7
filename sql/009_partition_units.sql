-- lifecycle.dropped_partitions holds every whole-partition unit a run started, whatever became of it (archived,
-- detaching, dropped, kept as a table, left to the chunk loop): named for what it holds.
ALTER TABLE lifecycle.dropped_partitions RENAME TO partition_units;
