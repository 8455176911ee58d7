/**
 * Start's privilege check: before the ledger is migrated, a lease taken or a run row written, the role must
 * hold every privilege the run will use (core/privileges.ts says which), so a run either has what it needs
 * or is refused with nothing changed, naming the privilege and the object. `plan` reports the same as
 * refusals and warnings, read only.
 */
import type { Policy } from '../../lib/contracts/config.ts';
import { parseQualifiedName } from '../../lib/contracts/identifiers.ts';
import type { RunPlan } from '../../lib/contracts/payloads.ts';
import { protectedSchemaReason } from '../../lib/contracts/protected-schemas.ts';
import type { Queryable } from '../adapters/catalog.ts';
import { listMigrations } from '../adapters/migrations.ts';
import { listPartitions, resolveSchemaName } from '../adapters/partitions.ts';
import {
  canCreateIn,
  listNotOwned,
  readLedgerPrivileges,
  readTablePrivileges,
} from '../adapters/privileges.ts';
import { CatalogError, InsufficientPrivilegeError, type MissingPrivilege } from '../core/errors.ts';
import { decidePartitions } from '../core/partitions.ts';
import {
  missingLedgerPrivileges,
  missingPartitionPrivileges,
  missingTablePrivileges,
  type TablePrivileges,
  tablePrivilegeWarnings,
} from '../core/privileges.ts';
import type { StepDependencies } from './dependencies.ts';
import { partitionRetentionBlocker } from './partition-retention.ts';
import type { PreparedTarget } from './prepare-target.ts';

export interface PrivilegeRequest {
  readonly policy: Policy;
  readonly prepared: PreparedTarget;
  readonly cutoff: string;
}

export interface PrivilegeFindings {
  readonly role: string;
  /** Privileges a real run needs and the role lacks: the run is refused. */
  readonly missing: readonly MissingPrivilege[];
  /** Privileges the run can do without, doing less (a skipped VACUUM). */
  readonly warnings: readonly string[];
}

/**
 * The table the catalog resolved (an unqualified name goes through the search_path) must not be the
 * ledger or a system table; the config check sees only what the file spells.
 */
export function refuseProtectedTable(prepared: PreparedTarget): void {
  const reason = protectedSchemaReason(prepared.table.schema);
  if (reason) throw new CatalogError(`table ${prepared.qualifiedName}: no policy may touch it (${reason})`);
}

/** Everything a real run started now would need and the role lacks, read only. */
export async function findPrivilegeProblems(
  db: Queryable,
  request: PrivilegeRequest,
): Promise<PrivilegeFindings> {
  const { policy, prepared } = request;
  const table = await readTablePrivileges(db, prepared.table.oid);
  const missing = [
    ...missingTablePrivileges(table, policy.action),
    ...(await partitionPrivileges(db, request, table)),
    ...missingLedgerPrivileges(await readLedgerPrivileges(db), listMigrations()),
  ];
  const warnings = tablePrivilegeWarnings(table, {
    vacuum: policy.action === 'purge' && policy.vacuum.enabled,
    lagFromStatistics: policy.throttle?.maxReplicaLagSeconds !== undefined && !policy.throttle.cloudWatch,
  });
  return { role: table.role, missing, warnings };
}

/** Partition retention retires partitions this run: the parent's and each retired partition's ownership. */
async function partitionPrivileges(
  db: Queryable,
  request: PrivilegeRequest,
  parent: TablePrivileges,
): Promise<MissingPrivilege[]> {
  const { policy, prepared, cutoff } = request;
  if (await partitionRetentionBlocker(db, policy, prepared)) return [];
  const retired = decidePartitions(
    await listPartitions(db, prepared.table.oid),
    cutoff,
    prepared.target.timeColumn.kind,
  ).flatMap((d) => (d.action === 'retire' ? [d.partition.oid] : []));
  if (retired.length === 0) return [];
  const configured = policy.partitions.keepDetached ? policy.partitions.detachedSchema : undefined;
  const [part] = configured ? parseQualifiedName(configured) : [];
  // A missing schema is refused by the run itself (CatalogError), with its own message.
  const schema = part ? await resolveSchemaName(db, part.name, part.quoted) : undefined;
  return missingPartitionPrivileges({
    parent: parent.table,
    ownsParent: parent.owner,
    notOwned: await listNotOwned(db, retired),
    detachedSchema: schema ? { name: schema, create: await canCreateIn(db, schema) } : undefined,
  });
}

/**
 * Start: refuses a protected table, and a real run whose role lacks a privilege it needs
 * (InsufficientPrivilegeError, nothing written); logs what it will do without. A dry run only needs to
 * read the table; the plan lists the rest ({@link privilegePlanEntries}).
 */
export async function checkPrivileges(
  db: Queryable,
  request: PrivilegeRequest & { readonly dryRun: boolean },
  log: StepDependencies['log'],
): Promise<void> {
  refuseProtectedTable(request.prepared);
  const findings = await findPrivilegeProblems(db, request);
  const refused = request.dryRun
    ? findings.missing.filter((m) => m.privilege === 'SELECT')
    : findings.missing;
  if (refused.length > 0) throw new InsufficientPrivilegeError(findings.role, refused);
  if (!request.dryRun) {
    for (const warning of findings.warnings)
      log.warn('privilege missing', { policy: request.policy.name, warning });
  }
}

/** The plan's view: each missing privilege a refusal, each reduced step a warning. */
export async function privilegePlanEntries(
  db: Queryable,
  request: PrivilegeRequest,
): Promise<Pick<RunPlan, 'refusals' | 'warnings'>> {
  const findings = await findPrivilegeProblems(db, request);
  return {
    refusals:
      findings.missing.length > 0
        ? [
            {
              error: 'InsufficientPrivilegeError',
              message: new InsufficientPrivilegeError(findings.role, findings.missing).message,
            },
          ]
        : [],
    warnings: [...findings.warnings],
  };
}
