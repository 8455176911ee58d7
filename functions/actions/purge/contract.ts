/**
 * Purge's configuration (pure: imported by the CDK app and `validate` too). Rows older than the retention
 * are deleted in short transactions; whole partitions are dropped when the table allows it.
 */
import { z } from 'zod';
import type { ActionContract } from '../../../lib/contracts/action-contract.ts';
import {
  ColumnNameSchema,
  PartitionedTimeCutoffSchema,
  PolicyCommonSchema,
  PolicyNameSchema,
  PurgePartitionOptionsSchema,
  VacuumCostDelaySchema,
} from '../../../lib/contracts/policy-base.ts';

/** VACUUM (ANALYZE) after a purge that removed a large part of the table. */
export const VacuumOptionsSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Vacuum when the run deleted at least this fraction of the table's rows (estimated at start). */
    afterFraction: z.number().gt(0, 'must be greater than 0').max(1, 'must be at most 1').default(0.2),
    /** statement_timeout of the VACUUM; also capped by the Finish step's remaining time. A timeout is recorded, not fatal. */
    timeoutMs: z.int().min(1_000).max(3_600_000).default(600_000),
    /** Throttle of the VACUUM (ANALYZE): paced like autovacuum by default. */
    costDelay: VacuumCostDelaySchema,
  })
  .strict();

export const PurgePolicySchema = PolicyCommonSchema.extend({
  ...PartitionedTimeCutoffSchema.shape,
  // Purge's own: the common partition options and how the rows of a dropped partition are counted.
  partitions: PurgePartitionOptionsSchema.prefault({}),
  action: z.literal('purge'),
  vacuum: VacuumOptionsSchema.prefault({}),
  /**
   * Purge policies on tables that reference this one (ON DELETE NO ACTION / RESTRICT) and run first.
   * Without them the run refuses before deleting anything.
   */
  children: z.array(PolicyNameSchema).min(1, 'omit children or name at least one policy').optional(),
  /**
   * Soft delete: set `column` (a nullable timestamptz, timestamp or date you add, e.g. `deleted_at`) to the time
   * of the run instead of deleting; rows already soft-deleted are left alone. A second, hard purge policy with
   * `timeColumn` set to that column then deletes them past their own retention.
   */
  softDelete: z.object({ column: ColumnNameSchema }).strict().optional(),
}).strict();

export type PurgePolicy = z.output<typeof PurgePolicySchema>;
export type VacuumOptions = z.output<typeof VacuumOptionsSchema>;

export const purgeContract: ActionContract<PurgePolicy> = {
  action: 'purge',
  rowFate: 'deleted',
  // A purge keeps nothing: its functions get no bucket and no Glue database.
  storage: () => undefined,
  workOnRows: (policy) => (policy.softDelete ? 'soft-delete' : 'purge'),
  configProblems(policy, policies) {
    const softDelete =
      policy.softDelete && policy.softDelete.column === policy.timeColumn
        ? [{ path: ['softDelete', 'column'], message: 'the soft-delete column cannot be the time column' }]
        : [];
    return [
      ...softDelete,
      ...(policy.children ?? []).flatMap((child, index) => {
        const target = policies.find((candidate) => candidate.name === child);
        const message =
          child === policy.name
            ? 'a policy cannot be its own child'
            : !target
              ? `no policy named "${child}"`
              : target.action !== 'purge'
                ? `"${child}" is not a purge policy`
                : undefined;
        return message ? [{ path: ['children', index], message }] : [];
      }),
    ];
  },
  executionExtras(policy, policyNamed) {
    // Resolved here because the start step sees only its own policy.
    const children = policy.children?.map((name) => {
      const child = policyNamed(name);
      // configProblems refused a child that is not a purge policy (which always has a table).
      return { name: child.name, table: child.table ?? '' };
    });
    return children ? { children } : {};
  },
};
