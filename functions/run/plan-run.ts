/**
 * The plan of a dry run (`pg-lifecycle plan`, `run --dry-run`): what a real run started now would do, read
 * only. Every query runs in a READ ONLY transaction; nothing is created (not even the ledger schema).
 */
import type { ExecutionInput, PlanForeignKey, RunPlan } from '../../lib/contracts/payloads.ts';
import { parallelismOf } from '../../lib/contracts/policy.ts';
import type { TimeCutoffHooks } from '../actions/action-module.ts';
import { listReferencingForeignKeys, resolveTable } from '../adapters/catalog.ts';
import { countReferencingRows, summarizeEligible } from '../adapters/plan-queries.ts';
import type { Queryable } from '../adapters/transactions.ts';
import { decideForeignKeys, type ResolvedChildPolicy } from '../core/foreign-keys.ts';
import type { FullScanDecision } from '../core/full-scan.ts';
import { type PrivilegeFindings, privilegePlanEntries } from './check-privileges.ts';
import { partitionsToRetire } from './partitions/eligibility.ts';
import type { PreparedTarget } from './prepare-target.ts';
import { planWorkRanges } from './work-ranges.ts';

/** Bound of each count of referencing rows; a slower count is reported as unknown, not as a failure. */
const REFERENCING_COUNT_TIMEOUT_MS = 10_000;

export interface PlanRequest {
  readonly input: ExecutionInput;
  readonly action: TimeCutoffHooks;
  readonly prepared: PreparedTarget;
  readonly cutoff: string;
  readonly explain: string[];
  readonly scan: FullScanDecision;
  /** What Start's privilege check found (read once, reported here). */
  readonly privileges: PrivilegeFindings;
}

export async function buildRunPlan(db: Queryable, request: PlanRequest): Promise<RunPlan> {
  const { input, action, prepared, cutoff, scan } = request;
  const { policy, chunking } = input;
  const parallelism = parallelismOf(policy);
  const eligible = await summarizeEligible(db, prepared.target, cutoff, chunking.statementTimeoutMs * 10);

  const references = await listReferencingForeignKeys(db, prepared.table.oid);
  const children: ResolvedChildPolicy[] = [];
  for (const child of input.children ?? []) {
    children.push({ name: child.name, tableOid: (await resolveTable(db, child.table)).oid });
  }
  const decision = decideForeignKeys(prepared.table.oid, references, children);
  const foreignKeys: PlanForeignKey[] = [];
  for (const reference of references) {
    const referencingRows = await countReferencingRows(
      db,
      prepared.target,
      reference,
      prepared.table.oid,
      cutoff,
      REFERENCING_COUNT_TIMEOUT_MS,
    );
    const childPolicy = decision.covered.find((c) => c.constraint === reference.constraint)?.childPolicy;
    foreignKeys.push({
      table: reference.referencingTable,
      constraint: reference.constraint,
      onDelete: reference.onDelete,
      ...(referencingRows === undefined ? {} : { referencingRows }),
      ...(childPolicy ? { childPolicy } : {}),
    });
  }

  const warnings: string[] = [];
  const refusals: RunPlan['refusals'] = [];
  if (scan.warning) warnings.push(scan.warning);
  if (scan.refusal) refusals.push({ error: 'MissingIndexError', message: scan.refusal });
  const privileges = privilegePlanEntries(request.privileges);
  refusals.push(...privileges.refusals);
  warnings.push(...privileges.warnings);
  const foreignKeyRefusal = action.foreignKeys.planRefusal(prepared, decision);
  if (foreignKeyRefusal) refusals.push({ error: 'ForeignKeyError', message: foreignKeyRefusal });
  for (const fk of foreignKeys) {
    if (fk.onDelete === 'cascade' && fk.referencingRows !== 0) {
      warnings.push(
        `ON DELETE CASCADE: ${fk.referencingRows ?? 'an unknown number of'} rows of ${fk.table} go with the eligible rows (${fk.constraint})`,
      );
    }
    const restricting = fk.onDelete === 'no action' || fk.onDelete === 'restrict';
    if (restricting && (fk.referencingRows ?? 1) > 0 && action.foreignKeys.warnsOfReferencedRows(fk)) {
      warnings.push(
        `${fk.referencingRows ?? 'an unknown number of'} rows of ${fk.table} still reference eligible rows (${fk.constraint}); ` +
          `chunks that reach them fail with ForeignKeyError until ${fk.childPolicy ? `${fk.childPolicy} has run` : 'they are gone'}`,
      );
    }
  }
  return {
    cutoff,
    eligibleRows: eligible.rows,
    estimatedBytes: Math.round(eligible.rows * eligible.averageRowBytes),
    oldest: eligible.oldest,
    foreignKeys,
    explain: request.explain,
    fullTableScan: scan.fullTableScan,
    partitions: await partitionsToRetire(db, policy, prepared, action.partitions, cutoff),
    warnings,
    refusals,
    ...(parallelism > 1
      ? {
          ranges: (await planWorkRanges(db, { policy, prepared, strategy: action.partitions, cutoff }))
            .ranges,
        }
      : {}),
  };
}
