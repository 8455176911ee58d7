-- Post-purge maintenance: the table's estimated live rows when the run started (the VACUUM threshold
-- compares the run's deleted rows with it) and what the finish step did about it.
ALTER TABLE lifecycle.runs
  ADD COLUMN table_rows_before bigint,
  -- {vacuumed, reason, rowsDeleted, rowsBefore, afterFraction, timeoutMs, durationMs,
  --  deadTuplesBefore, deadTuplesAfter, error?} (see MaintenanceSchema in lib/contracts/payloads.ts)
  ADD COLUMN maintenance jsonb;
