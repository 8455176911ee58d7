/**
 * Purge's partition strategy: a partition holding no row at or after the cutoff (checked attached, then
 * again detached under the drop's lock) is detached and dropped. Its rows are recorded for the ledger as the
 * planner's estimate, flagged `rows_estimated` (`partitions.count: "estimate"`, the default: no row is read),
 * or counted exactly within `partitions.countTimeoutMs` (`count: "exact"`; past it, the estimate, flagged).
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { PurgePolicy } from '../../../lib/contracts/policy.ts';
import { purgeRowCounting } from '../../../lib/contracts/policy-base.ts';
import { Ledger, type PartitionUnit } from '../../adapters/ledger/index.ts';
import { PartitionOperations } from '../../adapters/partitions.ts';
import { cutoffPredicate } from '../../core/chunk-sql.ts';
import { NOTHING, PartitionRetentionError, type PartitionStrategy } from '../../run/partitions/strategy.ts';

export const purgePartitions: PartitionStrategy = {
  // A soft delete keeps its rows: nothing to retire as a unit.
  optionsOf: (policy) => {
    const purge = policy as PurgePolicy;
    return purge.softDelete ? { ...purge.partitions, enabled: false } : purge.partitions;
  },

  async start(ctx, p, bounds) {
    const { state, prepared } = ctx;
    const ops = new PartitionOperations(ctx.tx, prepared.table);
    // Its bound already rules such rows out; PostgreSQL proves that from the bound without a scan.
    if (
      await ops.holdsIneligibleRows(
        p,
        prepared.target.timeColumn.name,
        (cutoff) => cutoffPredicate(prepared.target, cutoff),
        state.cutoff,
      )
    ) {
      ctx.deps.log.warn('partition holds rows newer than the cutoff; left to the chunk loop', {
        runId: state.runId,
        partition: quoteQualified(p.schema, p.name),
      });
      return { stop: NOTHING };
    }
    const identity = ctx.identity(p, bounds);
    await ctx.units.insertUnit({ ...identity, action: 'purge', state: 'detaching' });
    const unit: PartitionUnit = { ...identity, action: 'purge', state: 'detaching', rows: undefined };
    return { detach: unit, outcome: NOTHING };
  },

  async checkBeforeDrop(ctx, ops, unit, table, startedAt) {
    const { state, prepared } = ctx;
    const { partitions } = state.policy as PurgePolicy;
    const timeColumn = prepared.target.timeColumn.name;
    // Detached, it no longer has its bound: check again, under the lock, before dropping anything. After a
    // DETACH … CONCURRENTLY the table carries its old bound as a CHECK constraint, which answers this
    // without a scan; after a locked DETACH an index on the time column does (see holdsIneligibleRows).
    const eligible = (cutoff: string) => cutoffPredicate(prepared.target, cutoff);
    if (await ops.holdsIneligibleRows(table, timeColumn, eligible, state.cutoff)) {
      throw new PartitionRetentionError(
        `${unit.partitionName} holds rows at or after the cutoff ${state.cutoff}; it was not dropped`,
      );
    }
    // The count is for the ledger only: by default the planner's estimate (flagged), which reads no row,
    // so a unit costs the same whatever the partition holds; `count: "exact"` reads them all, within
    // countTimeoutMs (past it, the estimate).
    const counting = purgeRowCounting(partitions);
    const { rows, estimated } =
      counting.count === 'exact'
        ? await ops.countRowsWithin(
            table,
            timeColumn,
            counting.countTimeoutMs,
            state.chunking.statementTimeoutMs,
          )
        : await ops.estimateRows(table, timeColumn);
    let seq: number | undefined;
    if (rows > 0) {
      seq = await new Ledger(ctx.tx).recordChunk({
        runId: state.runId,
        minKey: null,
        maxKey: null,
        cursor: undefined,
        rows,
        bytes: 0,
        objects: 0,
        minTime: null,
        maxTime: null,
        durationMs: Math.round(performance.now() - startedAt),
      });
    }
    return {
      rows,
      estimated,
      recorded: { rows, rowsEstimated: estimated, ...(seq !== undefined ? { chunkSeq: seq } : {}) },
      outcome: { rows, objects: 0, bytes: 0, chunks: seq ? 1 : 0 },
    };
  },
};
