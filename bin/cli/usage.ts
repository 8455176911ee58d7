export const USAGE = `pg-lifecycle — data-lifecycle management for PostgreSQL

Usage: pg-lifecycle <command> [options]

Commands
  validate                 Check the config file; print every problem with its location
  schema [--out FILE]      Write the config JSON Schema (default lifecycle.schema.json)
  run --policy NAME        Run a policy locally through the synthesized state machine
      [--bucket B] [--dry-run] [--force] [--json] [--verbose]
  plan [--policy NAME]     Dry run: cutoff, eligible rows, estimated bytes, oldest row, referencing tables,
      [--force] [--json]   chunk query plan and warnings (read only: changes nothing, creates nothing)
  start --policy NAME      Start a run in AWS (Step Functions StartExecution; same input as the schedule)
      [--state-machine-arn ARN] [--dry-run] [--force] [--json]
  status                   Recent executions (AWS) and runs (ledger, when a database is configured)
      [--policy NAME] [--state-machine-arn ARN] [--limit N] [--json]
  verify --policy NAME     Check every ledger-listed object of the policy (or of --run ID) in S3: length,
      [--bucket B] [--run ID]  SHA-256 and Parquet row count; and that no unlisted object lies under its prefix
  verify --backup ID|latest --policy NAME --bucket B [--json]
                           Check a backup: every part's length, SHA-256, format and row count, the schema
                           files, objects under its prefix the manifest does not list, and (with a database)
                           the ledger's record of its run; exit 1 on any problem
  backups list [--policy NAME] --bucket B [--json]
                           Backups with time, tables, rows, bytes, consistency, expiry; incomplete ones (no or
                           unreadable manifest.json) marked as such and never restorable
  restore --backup ID|latest --policy NAME --bucket B [--json]
      [--mode full|data-only|schema-only] [--table T …] [--into-schema S] [--if-exists fail|truncate|append]
                           Restore into DATABASE_URL: every part verified before anything is loaded, one
                           transaction per table, rows and content checksum checked against the manifest.
                           full (default): schema, data, then constraints/indexes/sequences. --table: data-only
                           only. --into-schema: next to the original. A non-empty target table is refused
                           unless --if-exists truncate|append (data-only)
  drill --policy NAME --bucket B [--json]
                           Restore the latest backup into a scratch schema, compare every table with the
                           manifest, record it in lifecycle.restore_drills, drop the schema; exit 1 if it failed
  restore-archive --policy NAME --bucket B --from TIME --to TIME [--where SQL] [--into TABLE]
      [--allow-no-key] [--tier Standard|Bulk|Expedited] [--json]
                           Archived rows back from the policy's Parquet objects whose time range overlaps
                           [from, to) (whole objects; --where keeps rows by a safe predicate, checked like a
                           filter): each object's length and SHA-256 checked, staged, counted, then INSERT …
                           ON CONFLICT DO NOTHING into the policy's table (or --into), one transaction per
                           object, recorded in lifecycle.restored_objects: a rerun restores nothing twice.
                           A table without a primary key needs --allow-no-key. Objects in Glacier Flexible
                           Retrieval / Deep Archive: prints their bytes, tier and estimated cost and time,
                           requests their restore and exits 3 (pending) without loading; run it again later
  subject request --erase KEY | --export KEY [--policy NAME] [--json]
                           Record a GDPR request of the subjects policy (asked twice: the same pending one);
                           needs the hash key (PG_LIFECYCLE_HASH_KEY): the ledger keeps the key's HMAC
  subject status [--policy NAME] [--presign SECONDS] [--json]
                           Every request: state, due date, OVERDUE, rows per table, export key (with
                           --presign, a presigned GET URL of each export valid that long, at most 7 days),
                           an erasure's archive walk; exit 1 if any is overdue
  subject process [--policy NAME] --bucket B [--json]
                           Run the subjects policy locally (like run): each pending request erased (children
                           first) or exported to s3://B/subjects/<policy>/<request>/export.json
  subject retry REQUEST_ID A failed request back to pending
  report [--policy NAME] [--json]
                           Compliance report of the enabled policies: schedule, last successful run (ledger),
                           OVERDUE when no run succeeded within two schedule periods (cron periods read in the
                           policy's timezone); rows past retention still present (anonymize: still unmasked;
                           "not counted" past the policy's statementTimeoutMs); subject requests pending,
                           overdue, failed, completed in 30 days. Exit 1 if anything is overdue or a request
                           failed
  unlock --policy NAME     Release the policy's lease when its holder is provably gone (a local run's
      [--force] [--reason TEXT] [--json]
                           database backend no longer exists; an AWS run's execution is not running);
                           refuse a live or unprovable holder (exit 1) unless --force. The ledger records
                           who released it and why (lifecycle.lease_releases); the run is marked failed
  migrate                  Create or update the ledger schema (lifecycle.*)

Common options
  --config FILE            Config file (default lifecycle.config.json)
  --force                  Run although the chunk query scans the whole table (no btree index leads with
                           timeColumn); without it such a run refuses (MissingIndexError), like
                           a policy without "allowSeqScan": true. With unlock: release the lease
                           even though its holder looks alive (it stops at its next ledger write)
  --help                   This text

Environment
  DATABASE_URL or PG*      Database for run/plan/status/report/verify/unlock/migrate/restore/drill (sslmode in the URL is honoured)
  AWS_*                    S3 and Step Functions (AWS_ENDPOINT_URL_S3 for a local S3 server)
  PG_LIFECYCLE_BUCKET      Bucket for local runs when --bucket is not given
  PG_LIFECYCLE_STATE_MACHINE_PREFIX  State machines for start/status: stack output StateMachineArnPrefix
                                   (arn:…:stateMachine:<stack>-; each policy has its own <stack>-<policy>),
                                   or --state-machine-arn with one policy's ARN

Exit codes: 0 success, 1 a run failed (or a plan shows a real run would refuse, unlock refused, verify found a
problem, a restore or a drill failed, report found something overdue),
2 invalid usage, config or input (also: an unknown policy, run or backup, a database without a ledger, a missing
bucket, a restore target that is not as the mode needs), 3 restore-archive is waiting for S3 to restore objects from
Glacier Flexible Retrieval / Deep Archive (run it again later).
`;
