-- Parallel workers (a policy's `parallelism` > 1): Start splits the run's eligible rows into disjoint time
-- ranges and a Distributed Map runs one chunk loop per range. Each range keeps its own cursor here (the run's
-- `cursor` stays NULL); the run's totals and chunks count every range's commits. `lower_bound` is inclusive (NULL:
-- from the table's oldest row), `upper_bound` exclusive (the last range's is the run's cutoff); both ISO-8601 UTC
-- text as the cutoff is. A range is done when its loop found no eligible row left in it; `steps` counts its
-- workers' Chunk steps (a gather that sees none move knows no worker ran). Never row contents: bounds are
-- quantiles of the time column truncated to whole seconds, cursors hold what runs.cursor would. Rows of retired
-- partitions are counted in partition_units and the run's totals, not in range 0's `rows`.
CREATE TABLE lifecycle.run_ranges (
  run_id      uuid        NOT NULL REFERENCES lifecycle.runs (run_id),
  range_no    int         NOT NULL CHECK (range_no >= 0),
  lower_bound text,
  upper_bound text        NOT NULL,
  cursor      jsonb,
  done        boolean     NOT NULL DEFAULT false,
  rows        bigint      NOT NULL DEFAULT 0,
  chunks      int         NOT NULL DEFAULT 0,
  steps       int         NOT NULL DEFAULT 0,
  -- Range 0 of a run that retires whole partitions: true until its worker has retired them (the other workers
  -- start chunks only then: a DETACH waits for every open chunk transaction on the table).
  units_pending boolean   NOT NULL DEFAULT false,
  finished_at timestamptz,
  PRIMARY KEY (run_id, range_no)
);
