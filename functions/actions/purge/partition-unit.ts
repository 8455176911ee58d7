/**
 * Purge's partition strategy: a partition holding no row at or after the cutoff (checked attached, then
 * again detached under the drop's lock) is detached and dropped; its rows are counted for the ledger within
 * `partitions.countTimeoutMs`, or estimated from pg_class.reltuples (flagged `rows_estimated`) when the
 * partition is too large to count in time.
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { PurgePolicy } from '../../../lib/contracts/policy.ts';
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
    // Cheap (index) check on the attached partition; its bound already rules such rows out.
    if (
      await ops.holdsIneligibleRows(
        p,
        prepared.target.timeColumn.name,
        cutoffPredicate(prepared.target),
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
    const policy = state.policy as PurgePolicy;
    // The count is for the ledger only, so a partition too large to count in time records the planner's
    // estimate instead.
    const { rows, estimated } = await ops.countRowsWithin(
      table,
      policy.partitions.countTimeoutMs,
      state.chunking.statementTimeoutMs,
    );
    // Detached, it no longer has its bound: check again, under the lock, before dropping anything.
    if (
      await ops.holdsIneligibleRows(
        table,
        prepared.target.timeColumn.name,
        cutoffPredicate(prepared.target),
        state.cutoff,
      )
    ) {
      throw new PartitionRetentionError(
        `${unit.partitionName} holds rows at or after the cutoff ${state.cutoff}; it was not dropped`,
      );
    }
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
