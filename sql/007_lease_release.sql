-- Lease holders and operator releases (`pg-lifecycle unlock`, functions/adapters/leases.ts).

-- A local run keeps one connection open for its whole life and records that connection's backend here:
-- once no backend has this pid, or the pid belongs to a backend with another backend_start (a reused pid),
-- the run is provably gone. A run in Step Functions records no backend: its holder is runs.execution_id.
ALTER TABLE lifecycle.leases
  ADD COLUMN holder_pid integer,
  ADD COLUMN holder_backend_start timestamptz,
  ADD CONSTRAINT leases_holder_backend_check CHECK ((holder_pid IS NULL) = (holder_backend_start IS NULL));

-- Every lease an operator released: who, why, and what showed that its holder was gone (or that it was
-- released by force although it looked alive). The released run is marked failed (error_name LeaseReleased).
CREATE TABLE lifecycle.lease_releases (
  release_id          bigserial   PRIMARY KEY,
  policy              text        NOT NULL,
  run_id              uuid        NOT NULL,
  released_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  released_by_role    text        NOT NULL DEFAULT current_user,
  released_by_os_user text,
  client_addr         inet        DEFAULT inet_client_addr(),
  forced              boolean     NOT NULL,
  reason              text,
  holder              text        NOT NULL,   -- the holder as unlock saw it: backend pid and start, or execution
  evidence            text        NOT NULL,   -- why it was judged gone, or why it looked alive (forced)
  lease_acquired_at   timestamptz NOT NULL,
  lease_expires_at    timestamptz NOT NULL
);
CREATE INDEX lease_releases_policy_idx ON lifecycle.lease_releases (policy, released_at DESC);
