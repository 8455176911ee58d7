-- Parallel workers (a policy's `parallelism` > 1): Start splits the run's eligible rows into disjoint time
-- ranges and a Distributed Map runs one chunk loop per range. Each range keeps its own cursor here (the run's
-- `cursor` stays NULL); the run's totals and chunks count every range's commits. `lower_bound` is inclusive (NULL:
-- from the table's oldest row), `upper_bound` exclusive (the last range's is the run's cutoff); both ISO-8601 UTC
-- text as the cutoff is. A range is done when its loop found no eligible row left in it. Never row contents:
-- bounds are quantiles of the time column rounded to whole seconds, cursors hold what runs.cursor would.
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
  finished_at timestamptz,
  PRIMARY KEY (run_id, range_no)
);
