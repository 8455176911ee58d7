-- A maintain statement that gave way to a lock waiter (functions/adapters/lock-yield.ts: cancelled when a session
-- waited for a lock the VACUUM or ANALYZE held, as autovacuum is) is recorded as 'yielded'; each VACUUM and
-- ANALYZE records the cost-based delay it ran with (vacuum_cost_delay in ms, vacuum_cost_limit), NULL for
-- REINDEX and skips.
ALTER TABLE lifecycle.maintenance_actions
  DROP CONSTRAINT IF EXISTS maintenance_actions_outcome_check,
  ADD CONSTRAINT maintenance_actions_outcome_check
    CHECK (outcome IN ('done', 'timed-out', 'lock-timeout', 'failed', 'skipped', 'yielded')) NOT VALID,
  ADD COLUMN IF NOT EXISTS cost_delay_ms double precision,
  ADD COLUMN IF NOT EXISTS cost_limit    integer;
