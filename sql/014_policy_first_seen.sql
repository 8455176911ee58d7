-- When the hourly compliance check (functions/compliance.ts) first saw each deployed, scheduled policy. A policy
-- that has never succeeded is overdue only two schedule periods after this (or after its first real run started,
-- when that is earlier; functions/reports/compliance.ts), not from the moment it is deployed: right after a first
-- deploy no policy has run yet, and a weekly one would otherwise hold the overdue alarm for two weeks.
-- Written by the check alone (INSERT … ON CONFLICT DO NOTHING on every invocation, so the first time stays);
-- `pg-lifecycle report` only reads it. A row outlives its policy: re-adding a name later keeps its first sighting.
CREATE TABLE lifecycle.policy_first_seen (
  policy     text        PRIMARY KEY,
  first_seen timestamptz NOT NULL DEFAULT clock_timestamp()
);
