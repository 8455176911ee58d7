/**
 * Which privileges a run needs and which of them the role lacks, from catalog facts (pure: the facts come
 * in, the missing privileges and warnings go out). A run is refused before anything is written rather than
 * failing half way: a role without DELETE used to create the ledger schema and a failed run row first.
 */
import type { MissingPrivilege } from './errors.ts';

/** What the role may do on the policy's table. */
export interface TablePrivileges {
  readonly role: string;
  /** The table as PostgreSQL quotes it. */
  readonly table: string;
  /** SELECT on the table, or on each of its columns. */
  readonly select: boolean;
  /** UPDATE on at least one column: what `SELECT … FOR UPDATE` needs. */
  readonly update: boolean;
  readonly delete: boolean;
  /** Owner, or member of the owning role: ALTER, DETACH, DROP. */
  readonly owner: boolean;
  /** VACUUM runs (owner, database owner, superuser, or PostgreSQL 17's MAINTAIN); others are skipped with a warning. */
  readonly vacuum: boolean;
  /** Member of pg_monitor or pg_read_all_stats: sees other sessions' replication lag. */
  readonly readAllStats: boolean;
}

/** One relation of the ledger schema and what the role may do on it. */
export interface LedgerRelation {
  readonly name: string;
  /** 'S' sequence, else a table. */
  readonly kind: string;
  readonly select: boolean;
  readonly insert: boolean;
  readonly update: boolean;
  readonly delete: boolean;
  /** Sequences: USAGE (nextval of a bigserial default). */
  readonly usage: boolean;
  readonly owner: boolean;
}

/** The ledger schema as the role sees it. */
export interface LedgerPrivileges {
  readonly database: string;
  readonly createOnDatabase: boolean;
  readonly schemaExists: boolean;
  readonly schemaUsage: boolean;
  readonly schemaCreate: boolean;
  readonly relations: readonly LedgerRelation[];
  /** Versions recorded in lifecycle.schema_migrations; undefined when the role cannot read them. */
  readonly appliedMigrations: readonly string[] | undefined;
}

/** SELECT, UPDATE (for FOR UPDATE) and DELETE on the policy's table: what every chunk of both actions does. */
export function missingTablePrivileges(facts: TablePrivileges, action: string): MissingPrivilege[] {
  const missing: MissingPrivilege[] = [];
  if (!facts.select)
    missing.push({ privilege: 'SELECT', object: facts.table, reason: `${action} reads the eligible rows` });
  if (!facts.update) {
    missing.push({
      privilege: 'UPDATE',
      object: facts.table,
      reason:
        'chunks lock their rows with SELECT … FOR UPDATE SKIP LOCKED, which needs UPDATE on at least one column',
    });
  }
  if (!facts.delete)
    missing.push({ privilege: 'DELETE', object: facts.table, reason: `${action} deletes the eligible rows` });
  return missing;
}

/** What partition retention does to the parent, each partition it retires, and the schema it may move them to. */
export function missingPartitionPrivileges(facts: {
  readonly parent: string;
  readonly ownsParent: boolean;
  /** Retired partitions the role does not own. */
  readonly notOwned: readonly string[];
  /** keepDetached with detachedSchema: that schema and whether the role may create in it. */
  readonly detachedSchema?: { readonly name: string; readonly create: boolean } | undefined;
}): MissingPrivilege[] {
  const hint = 'or set partitions.enabled: false to take the rows in chunks';
  const missing: MissingPrivilege[] = [];
  if (!facts.ownsParent) {
    missing.push({
      privilege: 'ownership',
      object: facts.parent,
      reason: `partition retention detaches retired partitions from it; ${hint}`,
    });
  }
  for (const partition of facts.notOwned) {
    missing.push({
      privilege: 'ownership',
      object: partition,
      reason: `partition retention fences, detaches and drops (or moves) this partition; ${hint}`,
    });
  }
  if (facts.detachedSchema && !facts.detachedSchema.create) {
    missing.push({
      privilege: 'CREATE',
      object: `schema ${facts.detachedSchema.name}`,
      reason: 'partitions.detachedSchema: detached partitions are moved there',
    });
  }
  return missing;
}

/** Ledger tables a migration alters, indexes or drops (it must own them): `lifecycle.<name>` after those verbs. */
export function tablesAlteredBy(sql: string): string[] {
  const touched =
    /\b(?:ALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|ON)\s+lifecycle\.([a-z_][a-z0-9_]*)/gi;
  return [...new Set([...sql.matchAll(touched)].map((m) => `lifecycle.${(m[1] as string).toLowerCase()}`))];
}

/**
 * The ledger: CREATE on the database while the `lifecycle` schema does not exist (the first run creates
 * it); once it exists, USAGE on it, SELECT/INSERT/UPDATE/DELETE on its tables, USAGE on its sequences,
 * and, while migrations are pending, CREATE on it and ownership of the tables they alter.
 */
export function missingLedgerPrivileges(
  facts: LedgerPrivileges,
  migrations: ReadonlyArray<{ readonly version: string; readonly sql: string }>,
): MissingPrivilege[] {
  if (!facts.schemaExists) {
    return facts.createOnDatabase
      ? []
      : [
          {
            privilege: 'CREATE',
            object: `database ${facts.database}`,
            reason:
              'the first run creates the lifecycle schema (the ledger); or create it with `pg-lifecycle migrate` as a role that may, and grant this role its privileges',
          },
        ];
  }
  const missing: MissingPrivilege[] = [];
  if (!facts.schemaUsage) {
    missing.push({
      privilege: 'USAGE',
      object: 'schema lifecycle',
      reason: 'every run records itself in the ledger',
    });
  }
  for (const relation of facts.relations) {
    if (relation.kind === 'S') {
      if (!relation.usage)
        missing.push({
          privilege: 'USAGE',
          object: relation.name,
          reason: 'the ledger numbers its rows with it',
        });
      continue;
    }
    const lacking = (['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const).filter(
      (privilege) => !relation[privilege.toLowerCase() as 'select' | 'insert' | 'update' | 'delete'],
    );
    if (lacking.length > 0) {
      missing.push({
        privilege: lacking.join(', '),
        object: relation.name,
        reason: 'runs read and write the ledger',
      });
    }
  }
  if (facts.appliedMigrations === undefined) return missing;
  const applied = new Set(facts.appliedMigrations);
  const pending = migrations.filter((m) => !applied.has(m.version));
  if (pending.length === 0) return missing;
  const versions = pending.map((m) => m.version).join(', ');
  if (!facts.schemaCreate) {
    missing.push({
      privilege: 'CREATE',
      object: 'schema lifecycle',
      reason: `the pending ledger migrations (${versions}) create objects there`,
    });
  }
  const owned = new Map(facts.relations.map((r) => [r.name, r.owner]));
  const altered = new Set(pending.flatMap((m) => tablesAlteredBy(m.sql)));
  for (const table of altered) {
    // Tables a pending migration creates itself are not there yet, and will be the role's own.
    if (owned.get(table) === false) {
      missing.push({
        privilege: 'ownership',
        object: table,
        reason: `the pending ledger migrations (${versions}) alter it`,
      });
    }
  }
  return missing;
}

/** What a run does differently without a privilege it can do without: said in the plan and the log. */
export function tablePrivilegeWarnings(facts: TablePrivileges, uses: { readonly vacuum: boolean }): string[] {
  const warnings: string[] = [];
  if (uses.vacuum && !facts.vacuum) {
    warnings.push(
      `role ${facts.role} cannot VACUUM ${facts.table} (only its owner, the database owner or a superuser can): ` +
        'the VACUUM after a large purge is skipped and recorded as failed; autovacuum still runs. Own the table or set vacuum.enabled: false',
    );
  }
  return warnings;
}

/**
 * A replica-lag guard reading pg_stat_replication needs pg_monitor (or pg_read_all_stats): without it the
 * view hides the replicas' lag, the guard reads 0 and never holds a chunk back — a guard configured to
 * protect the replicas that silently does nothing. Refused, like a missing DELETE.
 */
export function missingLagPrivileges(
  facts: TablePrivileges,
  uses: { readonly lagFromStatistics: boolean },
): MissingPrivilege[] {
  if (!uses.lagFromStatistics || facts.readAllStats) return [];
  return [
    {
      privilege: 'membership',
      object: 'role pg_monitor',
      reason:
        "the replica-lag guard reads pg_stat_replication, which hides the replicas' lag from other roles: it " +
        'would read 0 and never hold a chunk back (grant pg_monitor, or read the lag from CloudWatch)',
    },
  ];
}
