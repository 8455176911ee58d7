/**
 * Whether a run retires whole partitions, and which: only for an action with a partition strategy, on a
 * table RANGE-partitioned on exactly the time column, with partitions enabled, no filter (a partition may
 * hold rows the filter keeps) and no foreign key pointing at it (DROP would skip ON DELETE actions).
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { Policy } from '../../../lib/contracts/policy.ts';
import { listReferencingForeignKeys } from '../../adapters/catalog.ts';
import { listPartitions, readPartitioning } from '../../adapters/partitions.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { decidePartitions, describeBoundValue } from '../../core/partitions.ts';
import type { PreparedTarget } from '../prepare-target.ts';
import type { PartitionStrategy } from './strategy.ts';

/** Why the run retires no partition as a unit, or undefined when it may. */
export async function partitionRetentionBlocker(
  db: Queryable,
  policy: Policy,
  prepared: PreparedTarget,
  strategy: PartitionStrategy | undefined,
): Promise<string | undefined> {
  if (!strategy) return `${policy.action} retires no partitions`;
  if (!strategy.optionsOf(policy).enabled) return 'partition retention is disabled for this policy';
  if (prepared.table.kind !== 'p') return 'the table is not partitioned';
  const partitioning = await readPartitioning(db, prepared.table.oid);
  if (
    partitioning?.strategy !== 'r' ||
    partitioning.keyColumnCount !== 1 ||
    partitioning.keyColumn !== prepared.target.timeColumn.name
  ) {
    return 'the table is not RANGE-partitioned on the time column alone';
  }
  if ('filter' in policy && policy.filter) return 'the policy has a filter';
  if ((await listReferencingForeignKeys(db, prepared.table.oid)).length > 0) {
    return 'the table is referenced by foreign keys';
  }
  return undefined;
}

export type RetiringPartition = Extract<ReturnType<typeof decidePartitions>[number], { action: 'retire' }>;

/** The partitions a run started now would retire (none when partition retention does not apply). */
export async function retiringPartitions(
  db: Queryable,
  policy: Policy,
  prepared: PreparedTarget,
  strategy: PartitionStrategy | undefined,
  cutoff: string,
): Promise<RetiringPartition[]> {
  if (await partitionRetentionBlocker(db, policy, prepared, strategy)) return [];
  return decidePartitions(
    await listPartitions(db, prepared.table.oid),
    cutoff,
    prepared.target.timeColumn.kind,
  ).flatMap((d) => (d.action === 'retire' ? [d] : []));
}

/** The same, described for the plan: quoted name and bounds. */
export async function partitionsToRetire(
  db: Queryable,
  policy: Policy,
  prepared: PreparedTarget,
  strategy: PartitionStrategy | undefined,
  cutoff: string,
): Promise<Array<{ name: string; from: string; to: string }>> {
  const decisions = await retiringPartitions(db, policy, prepared, strategy, cutoff);
  return decisions.flatMap((d) =>
    d.bound.kind === 'range'
      ? [
          {
            name: quoteQualified(d.partition.schema, d.partition.name),
            from: describeBoundValue(d.bound.from),
            to: describeBoundValue(d.bound.to),
          },
        ]
      : [],
  );
}
