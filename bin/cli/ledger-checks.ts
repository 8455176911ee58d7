/**
 * Argument checks against the ledger, before a command reads or reports anything: a database without a
 * ledger, a policy the ledger has never seen, a run id of another policy. Each is a usage error (exit 2)
 * that says what is wrong, instead of an empty "OK" or a raw relation-does-not-exist error.
 */
import { pgBool } from '../../functions/adapters/catalog.ts';
import { Ledger } from '../../functions/adapters/ledger/index.ts';
import { listMigrations } from '../../functions/adapters/migrations.ts';
import type { Queryable } from '../../functions/adapters/transactions.ts';
import { UsageError } from './errors.ts';

export function noLedgerMessage(database: string): string {
  return `no ledger in database ${database}: nothing has run here yet; \`pg-lifecycle migrate\` creates it`;
}

/** The database's name and whether it holds the ledger (`lifecycle.runs`). */
export async function ledgerPresence(db: Queryable): Promise<{ database: string; present: boolean }> {
  const { rows } = await db.query<{ database: string; present: boolean | string }>(
    `SELECT current_database() AS database, to_regclass('lifecycle.runs') IS NOT NULL AS present`,
  );
  const row = rows[0];
  // The CLI's connection parses nothing: booleans arrive as 't'/'f'.
  return { database: row?.database ?? '?', present: row?.present === true || row?.present === 't' };
}

/** Throws a UsageError naming the database when it holds no ledger; returns the database's name. */
export async function requireLedger(db: Queryable): Promise<string> {
  const { database, present } = await ledgerPresence(db);
  if (!present) throw new UsageError(noLedgerMessage(database));
  return database;
}

/** Up to 20 policy names the ledger has runs of, for "unknown policy" messages. */
async function knownPolicies(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ policy: string }>(
    'SELECT DISTINCT policy FROM lifecycle.runs ORDER BY policy LIMIT 20',
  );
  return rows.length > 0 ? rows.map((r) => r.policy).join(', ') : 'none';
}

/**
 * `verify --policy P [--run ID]`: the policy has archive runs in the ledger, and the run (when given) is one
 * of them. Verifying nothing must not read as "0 objects … OK".
 */
export async function checkVerifyTarget(
  db: Queryable,
  target: { policy: string; runId: string | undefined },
): Promise<void> {
  const database = await requireLedger(db);
  if (target.runId !== undefined) {
    const run = await new Ledger(db).getRun(target.runId);
    if (!run) throw new UsageError(`no run ${target.runId} in the ledger of database ${database}`);
    if (run.policy !== target.policy) {
      throw new UsageError(
        `run ${target.runId} belongs to policy "${run.policy}", not "${target.policy}": nothing of it to verify under archive/${target.policy}/`,
      );
    }
  }
  const { rows } = await db.query<{ action: string }>(
    'SELECT DISTINCT action FROM lifecycle.runs WHERE policy = $1 AND NOT dry_run',
    [target.policy],
  );
  if (rows.length === 0) {
    throw new UsageError(
      `no runs of policy "${target.policy}" in the ledger of database ${database}: nothing to verify ` +
        `(policies with runs: ${await knownPolicies(db)})`,
    );
  }
  if (!rows.some((r) => r.action === 'archive')) {
    const backup = rows.some((r) => r.action === 'backup') ? ' (a backup: verify --backup ID|latest)' : '';
    throw new UsageError(
      `policy "${target.policy}" ${rows.map((r) => r.action).join('/')}s rows: it has no archive to verify${backup}`,
    );
  }
}

/** `unlock --policy P` when P holds no lease: known (nothing to do) or unknown to the ledger (exit 2). */
export async function checkKnownPolicy(db: Queryable, policy: string, database: string): Promise<void> {
  const runs = await new Ledger(db).listRuns({ policy, limit: 1 });
  if (runs.length === 0) {
    throw new UsageError(
      `no policy "${policy}" in the ledger of database ${database} (policies with runs: ${await knownPolicies(db)})`,
    );
  }
}

/**
 * Throws a UsageError when the ledger lacks a migration of this pg-lifecycle. A command that must not change
 * the schema (`unlock`, an emergency step: a pending ALTER of lifecycle.leases would take an exclusive lock
 * that a live run's heartbeat then waits behind) asks for `pg-lifecycle migrate` instead.
 */
export async function requireMigratedLedger(db: Queryable, database: string, command: string): Promise<void> {
  const { rows: tracked } = await db.query<{ present: boolean | string }>(
    `SELECT to_regclass('lifecycle.schema_migrations') IS NOT NULL AS present`,
  );
  const done = new Set(
    pgBool(tracked[0]?.present)
      ? (await db.query<{ version: string }>('SELECT version FROM lifecycle.schema_migrations')).rows.map(
          (r) => r.version,
        )
      : [],
  );
  const pending = listMigrations()
    .map((m) => m.version)
    .filter((version) => !done.has(version));
  if (pending.length > 0) {
    throw new UsageError(
      `the ledger of database ${database} lacks migration${pending.length === 1 ? '' : 's'} ${pending.join(', ')}: ` +
        `run \`pg-lifecycle migrate\` first (${command} changes no schema)`,
    );
  }
}
