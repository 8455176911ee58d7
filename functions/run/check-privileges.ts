/**
 * Start's privilege check: before the ledger is migrated, a lease taken or a run row written, the role must
 * hold every privilege the run will use (core/privileges.ts says which), so a run either has what it needs
 * or is refused with nothing changed, naming the privilege and the object. `plan` reports the same as
 * refusals and warnings, read only.
 */
import type { Policy, Throttle } from '../../lib/contracts/config.ts';
import { parseQualifiedName } from '../../lib/contracts/identifiers.ts';
import type { RunPlan } from '../../lib/contracts/payloads.ts';
import { protectedSchemaReason } from '../../lib/contracts/protected-schemas.ts';
import type { TimeCutoffHooks } from '../actions/action-module.ts';
import { listMigrations } from '../adapters/migrations.ts';
import { resolveSchemaName } from '../adapters/partitions.ts';
import {
  canCreateIn,
  listNotOwned,
  readLedgerPrivileges,
  readTablePrivileges,
} from '../adapters/privileges.ts';
import type { Queryable } from '../adapters/transactions.ts';
import { CatalogError, InsufficientPrivilegeError, type MissingPrivilege } from '../core/errors.ts';
import {
  missingLagPrivileges,
  missingLedgerPrivileges,
  missingPartitionPrivileges,
  type TablePrivileges,
  tablePrivilegeWarnings,
} from '../core/privileges.ts';
import type { StepDependencies } from './dependencies.ts';
import { retiringPartitions } from './partitions/eligibility.ts';
import type { PreparedTarget } from './prepare-target.ts';

export interface PrivilegeRequest {
  readonly policy: Policy;
  /** The policy's action module: what its chunks do to the table, whether it retires partitions or vacuums. */
  readonly action: TimeCutoffHooks;
  readonly prepared: PreparedTarget;
  readonly cutoff: string;
  /** The replica-lag guard the run applies (policy over defaults), if any. */
  readonly throttle: Throttle | undefined;
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
  if (reason)
    throw new CatalogError(`table ${prepared.qualifiedName}: no policy may touch it (${reason})`, {
      table: `${prepared.table.schema}.${prepared.table.table}`,
    });
}

/** Everything a real run started now would need and the role lacks, read only. */
export async function findPrivilegeProblems(
  db: Queryable,
  request: PrivilegeRequest,
): Promise<PrivilegeFindings> {
  const { policy, action, prepared } = request;
  const table = await readTablePrivileges(db, prepared.table.oid);
  const missing = [
    ...action.missingTablePrivileges(table),
    ...missingLagPrivileges(table, {
      lagFromStatistics: request.throttle !== undefined && !request.throttle.cloudWatch,
    }),
    ...(await partitionPrivileges(db, request, table)),
    ...missingLedgerPrivileges(await readLedgerPrivileges(db), listMigrations()),
  ];
  const warnings = tablePrivilegeWarnings(table, {
    vacuum: action.vacuumsAfterRun?.(policy) ?? false,
  });
  return { role: table.role, missing, warnings };
}

/** Partition retention retires partitions this run: the parent's and each retired partition's ownership. */
async function partitionPrivileges(
  db: Queryable,
  request: PrivilegeRequest,
  parent: TablePrivileges,
): Promise<MissingPrivilege[]> {
  const { policy, action, prepared, cutoff } = request;
  const strategy = action.partitions;
  const retired = (await retiringPartitions(db, policy, prepared, strategy, cutoff)).map(
    (d) => d.partition.oid,
  );
  if (!strategy || retired.length === 0) return [];
  const options = strategy.optionsOf(policy);
  const configured = options.keepDetached ? options.detachedSchema : undefined;
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
 * read the table; the plan lists the rest ({@link privilegePlanEntries}). Returns what it found.
 */
export async function checkPrivileges(
  db: Queryable,
  request: PrivilegeRequest & { readonly dryRun: boolean },
  log: StepDependencies['log'],
): Promise<PrivilegeFindings> {
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
  return findings;
}

/** The plan's view of Start's findings: each missing privilege a refusal, each reduced step a warning. */
export function privilegePlanEntries(findings: PrivilegeFindings): Pick<RunPlan, 'refusals' | 'warnings'> {
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
