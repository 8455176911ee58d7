-- The lifecycle ledger: every run, every chunk, every archived object.
-- Applied by functions/adapters/migrations.ts (tracked in lifecycle.schema_migrations).

-- The schema itself is created by the migration runner (it keeps lifecycle.schema_migrations there).

CREATE TABLE lifecycle.runs (
  run_id        uuid PRIMARY KEY,
  policy        text        NOT NULL,
  action        text        NOT NULL CHECK (action IN ('archive', 'purge', 'backup', 'anonymize')),
  table_name    text        NOT NULL,          -- quoted "schema"."table" as resolved from the catalog
  time_column   text        NOT NULL,
  cutoff        timestamptz NOT NULL,          -- fixed once per run
  filter        text,
  dry_run       boolean     NOT NULL DEFAULT false,
  status        text        NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'failed', 'dry_run')),
  trigger       text        NOT NULL,
  execution_id  text,                          -- latest Step Functions execution serving this run
  started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at   timestamptz,
  rows          bigint      NOT NULL DEFAULT 0,
  objects       integer     NOT NULL DEFAULT 0,
  bytes         bigint      NOT NULL DEFAULT 0,
  chunks        integer     NOT NULL DEFAULT 0,
  orphans_removed integer   NOT NULL DEFAULT 0,
  eligible_rows bigint,                        -- dry runs: what would have been processed
  cursor        jsonb,                         -- keyset position after the last committed chunk
  error_name    text,
  error_cause   text
);
CREATE INDEX runs_policy_started_idx ON lifecycle.runs (policy, started_at DESC);

-- One committed chunk transaction.
CREATE TABLE lifecycle.chunks (
  run_id       uuid        NOT NULL REFERENCES lifecycle.runs (run_id),
  seq          integer     NOT NULL,
  rows         integer     NOT NULL,
  bytes        bigint      NOT NULL DEFAULT 0,
  min_time     text,
  max_time     text,
  min_key      jsonb,
  max_key      jsonb,
  duration_ms  integer     NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (run_id, seq)
);

-- Objects whose rows were deleted in the same transaction that inserted the row here.
-- A key listed here is the only copy of its rows: never delete it as an orphan.
CREATE TABLE lifecycle.archived_objects (
  object_id    bigserial PRIMARY KEY,
  run_id       uuid        NOT NULL REFERENCES lifecycle.runs (run_id),
  chunk_seq    integer     NOT NULL,
  bucket       text        NOT NULL,
  key          text        NOT NULL,
  rows         integer     NOT NULL CHECK (rows > 0),
  bytes        bigint      NOT NULL CHECK (bytes > 0),
  sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  partition    text        NOT NULL,           -- e.g. year=2023/month=04
  min_time     text        NOT NULL,
  max_time     text        NOT NULL,
  min_key      jsonb,
  max_key      jsonb,
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (bucket, key)
);
CREATE INDEX archived_objects_run_idx ON lifecycle.archived_objects (run_id);

-- Written (and committed on a separate connection) before an upload starts. A pending key with no
-- archived_objects row is an orphan: its chunk rolled back, so the finish step deletes the object.
CREATE TABLE lifecycle.pending_objects (
  bucket     text        NOT NULL,
  key        text        NOT NULL,
  run_id     uuid        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (bucket, key)
);

-- One run per policy at a time.
CREATE TABLE lifecycle.leases (
  policy      text PRIMARY KEY,
  run_id      uuid        NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at  timestamptz NOT NULL
);
