/**
 * Archive's partition strategy: one transaction holds `LOCK … IN SHARE MODE` while the partition is read in
 * ordered batches, encoded, announced, uploaded and verified; `count(*)` must equal the objects' rows; the
 * objects and the unit are recorded and the partition is fenced (`CHECK (false) NOT VALID`) before COMMIT.
 * Before the DETACH and under the drop's lock the fence must still be there, and the detached table may hold
 * no more rows than were archived.
 */
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { ArchivePolicy } from '../../../lib/contracts/policy.ts';
import {
  type ArchivedObject,
  Ledger,
  PartitionLedger,
  type PartitionUnit,
} from '../../adapters/ledger/index.ts';
import { FENCE_CONSTRAINT, PartitionOperations } from '../../adapters/partitions.ts';
import { capByBytes, rowTextSize } from '../../core/batch-size.ts';
import { orderTerms } from '../../core/chunk-sql.ts';
import { StorageConfigurationError } from '../../core/errors.ts';
import { partitionOf } from '../../core/object-keys.ts';
import { planParquetColumns } from '../../core/parquet/column-plan.ts';
import { DEFAULT_ROW_GROUP_SIZE } from '../../core/parquet/encode.ts';
import type { PartitionInfo } from '../../core/partitions.ts';
import {
  NOTHING,
  PartitionRetentionError,
  type PartitionStrategy,
  type UnitBounds,
  type UnitContext,
  type UnitStart,
} from '../../run/partitions/strategy.ts';
import { ArchiveObjectWriter, rowsContent } from './object-writer.ts';

/** Rows per archive object at most (one row group); objects also end at each Hive partition boundary. */
const OBJECT_MAX_ROWS = DEFAULT_ROW_GROUP_SIZE;
/** An archive unit still reading with less time than this left rolls back and leaves the partition to the chunk loop. */
const ABORT_BELOW_MS = 1_000;

/** The unit ran out of the step's time: rolled back, the partition goes to the chunk loop. */
class OutOfTimeSignal extends Error {}

export const archivePartitions: PartitionStrategy = {
  optionsOf: (policy) => (policy as ArchivePolicy).partitions,

  async start(ctx: UnitContext, p: PartitionInfo, bounds: UnitBounds): Promise<UnitStart> {
    const { state, prepared, deps } = ctx;
    const policy = state.policy as ArchivePolicy;
    const store = deps.store;
    if (!store)
      throw new StorageConfigurationError('archive policies need a bucket (ARCHIVE_BUCKET or --bucket)');
    const ops = new PartitionOperations(ctx.tx, prepared.table);
    const partitionName = quoteQualified(p.schema, p.name);
    const startedAt = performance.now();
    const columns = prepared.target.columnNames;
    const timeAt = columns.indexOf(prepared.target.timeColumn.name);
    const keyAt = prepared.target.keyColumns.map((k) => columns.indexOf(k.name));
    const plan = planParquetColumns(prepared.table.columns);
    const objects: ArchivedObject[] = [];
    const order = orderTerms({ ...prepared.target, schema: p.schema, table: p.name, partitioned: false })
      .map((t) => t.expression)
      .join(', ');

    const writer = new ArchiveObjectWriter(store, new Ledger(ctx.side), {
      afterUpload: deps.hooks?.afterUpload,
    });
    const upload = async (hive: string, rows: Array<Array<string | null>>) => {
      objects.push(
        await writer.write({
          policy,
          table: prepared.table,
          runId: state.runId,
          partition: hive,
          content: rowsContent(plan, rows, timeAt, keyAt),
        }),
      );
    };

    let archived: { rows: number; bytes: number; seq: number | undefined };
    try {
      archived = await ctx.inTransaction(async () => {
        // SHARE: reads go on, no INSERT/UPDATE/DELETE reaches the partition until COMMIT.
        await ops.lock(p, 'SHARE');
        await ctx.tx.query(
          `DECLARE pg_lifecycle_partition NO SCROLL CURSOR FOR SELECT ${columns.map(quoteIdent).join(', ')} FROM ${partitionName} ORDER BY ${order}`,
        );
        let buffer: { hive: string; rows: Array<Array<string | null>>; bytes: number } | undefined;
        // Memory stays bounded by chunking.maxChunkBytes for wide rows: in each fetch and in each object.
        let bytesPerRow: number | undefined;
        const { maxChunkBytes } = state.chunking;
        for (;;) {
          if (deps.remainingMs() < ABORT_BELOW_MS) throw new OutOfTimeSignal();
          const fetchRows = capByBytes(Math.max(1, state.chunking.maxRows), bytesPerRow, state.chunking);
          const batch = await ctx.tx.query<Array<string | null>>({
            text: `FETCH FORWARD ${fetchRows} FROM pg_lifecycle_partition`,
            rowMode: 'array',
          });
          let batchBytes = 0;
          for (const row of batch.rows) {
            const size = rowTextSize(row);
            batchBytes += size;
            const hive = partitionOf(row[timeAt] ?? '', policy.archive.partitionBy);
            if (
              buffer &&
              (buffer.hive !== hive ||
                buffer.rows.length >= OBJECT_MAX_ROWS ||
                buffer.bytes + size > maxChunkBytes)
            ) {
              await upload(buffer.hive, buffer.rows);
              buffer = undefined;
            }
            buffer ??= { hive, rows: [], bytes: 0 };
            buffer.rows.push(row);
            buffer.bytes += size;
          }
          if (batch.rows.length === 0) break;
          bytesPerRow = batchBytes / batch.rows.length;
        }
        if (buffer) await upload(buffer.hive, buffer.rows);
        await ctx.tx.query('CLOSE pg_lifecycle_partition');
        const rows = objects.reduce((sum, o) => sum + o.rows, 0);
        const bytes = objects.reduce((sum, o) => sum + o.bytes, 0);
        const counted = await ops.countRows(p);
        if (counted !== rows) {
          throw new PartitionRetentionError(
            `${partitionName}: count(*) is ${counted} under SHARE lock but the objects hold ${rows} rows; nothing was dropped`,
          );
        }
        await deps.hooks?.beforeLedger?.();
        let seq: number | undefined;
        if (rows > 0) {
          const ledger = new Ledger(ctx.tx);
          seq = await ledger.recordChunk({
            runId: state.runId,
            minKey: null,
            maxKey: null,
            cursor: undefined,
            rows,
            bytes,
            objects: objects.length,
            minTime: objects[0]?.minTime ?? null,
            maxTime: objects[objects.length - 1]?.maxTime ?? null,
            durationMs: Math.round(performance.now() - startedAt),
          });
          await ledger.insertObjects(state.runId, seq, 'archive-copy', objects);
        }
        await new PartitionLedger(ctx.tx).insertUnit({
          ...ctx.identity(p, bounds),
          action: 'archive',
          state: 'archived',
          rows,
          objects: objects.length,
          bytes,
          chunkSeq: seq,
        });
        // Until it is dropped, no INSERT or UPDATE may add a row the archive does not hold.
        await ops.fenceWrites(p);
        return { rows, bytes, seq };
      });
    } catch (error) {
      if (!(error instanceof OutOfTimeSignal)) throw error;
      await ctx.units.insertUnit({ ...ctx.identity(p, bounds), action: 'archive', state: 'chunked' });
      deps.log.warn('partition too large for one step; its rows go to the chunk loop', {
        runId: state.runId,
        partition: partitionName,
      });
      return { stop: { ...NOTHING, outOfTime: true } };
    }
    await deps.hooks?.afterPartitionArchived?.(partitionName);
    deps.log.info('partition archived', {
      runId: state.runId,
      partition: partitionName,
      rows: archived.rows,
      objects: objects.length,
      bytes: archived.bytes,
    });
    const unit: PartitionUnit = {
      runId: state.runId,
      partitionOid: p.oid,
      partitionName,
      boundFrom: bounds.from,
      boundTo: bounds.to,
      action: 'archive',
      state: 'archived',
      rows: archived.rows,
    };
    // The rows count where they were archived; the drop adds nothing.
    return {
      detach: unit,
      outcome: {
        rows: archived.rows,
        objects: objects.length,
        bytes: archived.bytes,
        chunks: archived.seq ? 1 : 0,
      },
    };
  },

  /**
   * An archived partition must still carry its write fence when it is dropped: without it, rows may have
   * come and gone since the archive, and a count no longer proves that every row is archived.
   */
  async refuseDrop(ops, unit, table) {
    if (await ops.hasFence(table)) return undefined;
    return new PartitionRetentionError(
      `${unit.partitionName} lost its write fence (${FENCE_CONSTRAINT}) after it was archived; rows may have ` +
        'been written that the archive does not hold, so it was not dropped. Archive or move those rows, then ' +
        'drop it yourself or add the fence back',
    );
  },

  async checkBeforeDrop(_ctx, ops, unit, table) {
    // The exact count is the check against the archived objects.
    const rows = await ops.countRows(table);
    const refusal = await this.refuseDrop?.(ops, unit, table);
    if (refusal) throw refusal;
    if (rows > (unit.rows ?? 0)) {
      // Impossible while the fence holds; never drop a row that is not in the archive.
      throw new PartitionRetentionError(
        `${unit.partitionName} holds ${rows} rows but ${unit.rows ?? 0} were archived; it was not dropped`,
      );
    }
    return { rows, estimated: false, recorded: {}, outcome: NOTHING };
  },

  beforeKeep: (ops, table) => ops.removeFence(table),
};
