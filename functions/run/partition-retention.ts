import type pg from 'pg';
import type { ArchivePolicy, Policy } from '../../lib/contracts/config.ts';
import { parseQualifiedName, quoteIdent, quoteQualified } from '../../lib/contracts/identifiers.ts';
import { leaseTtlSeconds } from '../../lib/contracts/lease.ts';
import type { RunState } from '../../lib/contracts/payloads.ts';
import { ArchiveObjectWriter } from '../actions/archive/object-writer.ts';
import { listReferencingForeignKeys, type Queryable } from '../adapters/catalog.ts';
import { type ArchivedObject, Ledger } from '../adapters/ledger.ts';
import {
  FENCE_CONSTRAINT,
  listPartitions,
  PartitionLedger,
  PartitionOperations,
  type PartitionUnit,
  readPartitioning,
  relationStatus,
  resolveSchemaName,
} from '../adapters/partitions.ts';
import { capByBytes, rowTextSize } from '../core/batch-size.ts';
import { cutoffPredicate, orderTerms } from '../core/chunk-sql.ts';
import { CatalogError, StorageConfigurationError } from '../core/errors.ts';
import { partitionOf } from '../core/object-keys.ts';
import { planParquetColumns } from '../core/parquet/column-plan.ts';
import { DEFAULT_ROW_GROUP_SIZE } from '../core/parquet/encode.ts';
import { decidePartitions, describeBoundValue, type PartitionInfo } from '../core/partitions.ts';
import { beginBoundedTransaction } from './bounded-transaction.ts';
import type { StepDependencies } from './dependencies.ts';
import type { PreparedTarget } from './prepare-target.ts';

/** Rows per archive object at most (one row group); objects also end at each Hive partition boundary. */
const OBJECT_MAX_ROWS = DEFAULT_ROW_GROUP_SIZE;
/** An archive unit still reading with less time than this left rolls back and leaves the partition to the chunk loop. */
const ABORT_BELOW_MS = 1_000;

export class PartitionRetentionError extends Error {
  override readonly name = 'PartitionRetentionError';
}

/** The unit ran out of the step's time: rolled back, the partition goes to the chunk loop. */
class OutOfTimeSignal extends Error {}

export interface PartitionRetentionResult {
  /** False when the step ran out of time with partitions left to retire (the step returns, not done). */
  readonly complete: boolean;
  /** What this step added to the run (for the step's totals). */
  readonly rows: number;
  readonly objects: number;
  readonly bytes: number;
  readonly chunks: number;
}

export interface PartitionRetentionContext {
  readonly deps: StepDependencies;
  readonly state: RunState;
  readonly prepared: PreparedTarget;
  /** Autocommit connection: pending announcements and unit records that must survive a rollback. */
  readonly side: pg.Client;
  /** The unit transactions (and DETACH CONCURRENTLY, outside any transaction). */
  readonly tx: pg.Client;
}

/**
 * Whether the policy's table qualifies for whole-partition retention: RANGE-partitioned on exactly the
 * time column, partitions enabled, no filter (a partition may hold rows the filter keeps) and no foreign
 * key pointing at it (DROP would skip ON DELETE actions). Returns why not, or undefined when it does.
 */
export async function partitionRetentionBlocker(
  db: Queryable,
  policy: Policy,
  prepared: PreparedTarget,
): Promise<string | undefined> {
  if (!policy.partitions.enabled) return 'partition retention is disabled for this policy';
  if (prepared.table.kind !== 'p') return 'the table is not partitioned';
  const partitioning = await readPartitioning(db, prepared.table.oid);
  if (
    partitioning?.strategy !== 'r' ||
    partitioning.keyColumnCount !== 1 ||
    partitioning.keyColumn !== prepared.target.timeColumn.name
  ) {
    return 'the table is not RANGE-partitioned on the time column alone';
  }
  if (policy.filter) return 'the policy has a filter';
  if ((await listReferencingForeignKeys(db, prepared.table.oid)).length > 0) {
    return 'the table is referenced by foreign keys';
  }
  return undefined;
}

/** The partitions a run started now would retire (none when partition retention does not apply). */
export async function retiringPartitions(
  db: Queryable,
  policy: Policy,
  prepared: PreparedTarget,
  cutoff: string,
): Promise<Array<Extract<ReturnType<typeof decidePartitions>[number], { action: 'retire' }>>> {
  if (await partitionRetentionBlocker(db, policy, prepared)) return [];
  return decidePartitions(
    await listPartitions(db, prepared.table.oid),
    cutoff,
    prepared.target.timeColumn.kind,
  ).flatMap((d) => (d.action === 'retire' ? [d] : []));
}

/** The partitions a run started now would retire as units (for the plan); empty when none qualify. */
export async function partitionsToRetire(
  db: Queryable,
  policy: Policy,
  prepared: PreparedTarget,
  cutoff: string,
): Promise<Array<{ name: string; from: string; to: string }>> {
  const decisions = await retiringPartitions(db, policy, prepared, cutoff);
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

/** Retires the partitions that lie wholly before the cutoff; a no-op for any other table or policy. */
export async function retirePartitions(ctx: PartitionRetentionContext): Promise<PartitionRetentionResult> {
  const { deps, state, prepared } = ctx;
  const { policy } = state;
  const totals = { complete: true, rows: 0, objects: 0, bytes: 0, chunks: 0 };
  const retention = new PartitionRetention(ctx, await resolveDetachedSchema(ctx.side, policy));
  const units = new PartitionLedger(ctx.side);

  // Units an interrupted step (or run) started: finish them first, whatever the policy says now. An
  // archived unit's rows are already in the archive; left in place, the chunk loop would archive them twice.
  for (const unit of await units.openUnits(policy.name)) {
    const added = await retention.finishOpenUnit(unit);
    totals.rows += added.rows;
    totals.chunks += added.chunks;
  }

  const blocker = await partitionRetentionBlocker(ctx.side, policy, prepared);
  if (blocker) {
    if (prepared.table.kind === 'p') {
      deps.log.info('partitions not retired as units', {
        runId: state.runId,
        policy: policy.name,
        reason: blocker,
      });
    }
    return totals;
  }
  if (policy.action === 'archive' && !deps.store) {
    throw new StorageConfigurationError('archive policies need a bucket (ARCHIVE_BUCKET or --bucket)');
  }

  const partitions = await listPartitions(ctx.side, prepared.table.oid);
  const hasDefault = partitions.some((p) => p.boundText.trim() === 'DEFAULT');
  const leftToChunks = await units.chunkedPartitions(state.runId);
  const decisions = decidePartitions(partitions, state.cutoff, prepared.target.timeColumn.kind);
  let lastUnitMs = 0;
  let started = 0;
  for (const decision of decisions) {
    if (decision.action !== 'retire' || leftToChunks.has(decision.partition.oid)) continue;
    if (started > 0 && deps.remainingMs() < 2 * lastUnitMs + 1_000) return { ...totals, complete: false };
    started++;
    const unitStarted = performance.now();
    await new Ledger(ctx.side).renewLease(policy.name, state.runId, leaseTtlSeconds());
    const bound = decision.bound.kind === 'range' ? decision.bound : undefined;
    const bounds = {
      from: bound ? describeBoundValue(bound.from) : '',
      to: bound ? describeBoundValue(bound.to) : '',
    };
    const outcome =
      policy.action === 'archive'
        ? await retention.archiveUnit(decision.partition, bounds, hasDefault)
        : await retention.purgeUnit(decision.partition, bounds, hasDefault);
    lastUnitMs = performance.now() - unitStarted;
    totals.rows += outcome.rows;
    totals.objects += outcome.objects;
    totals.bytes += outcome.bytes;
    totals.chunks += outcome.chunks;
    if (outcome.outOfTime) return { ...totals, complete: false };
  }
  return totals;
}

/** Adds what the partition units of this step did to the step's totals. */
export function addPartitionTotals(
  totals: { rows: number; objects: number; bytes: number; chunks: number },
  retired: PartitionRetentionResult,
): void {
  totals.rows += retired.rows;
  totals.objects += retired.objects;
  totals.bytes += retired.bytes;
  totals.chunks += retired.chunks;
}

async function resolveDetachedSchema(db: pg.Client, policy: Policy): Promise<string | undefined> {
  const configured = policy.partitions.detachedSchema;
  if (!policy.partitions.keepDetached || configured === undefined) return undefined;
  const [part] = parseQualifiedName(configured);
  const schema = part ? await resolveSchemaName(db, part.name, part.quoted) : undefined;
  if (!schema) {
    throw new CatalogError(`partitions.detachedSchema ${configured} does not exist; create it first`);
  }
  return schema;
}

interface UnitOutcome {
  readonly rows: number;
  readonly objects: number;
  readonly bytes: number;
  readonly chunks: number;
  readonly outOfTime?: boolean;
}

const NOTHING: UnitOutcome = { rows: 0, objects: 0, bytes: 0, chunks: 0 };

class PartitionRetention {
  private readonly policy: Policy;
  private readonly parentName: string;
  private readonly units: PartitionLedger;

  constructor(
    private readonly ctx: PartitionRetentionContext,
    private readonly detachedSchema: string | undefined,
  ) {
    this.policy = ctx.state.policy;
    this.parentName = ctx.prepared.qualifiedName;
    this.units = new PartitionLedger(ctx.side);
  }

  private get log() {
    return this.ctx.deps.log;
  }

  private async begin(): Promise<void> {
    await beginBoundedTransaction(this.ctx.tx, this.ctx.state.chunking);
  }

  private async inTransaction<T>(work: () => Promise<T>): Promise<T> {
    await this.begin();
    try {
      const result = await work();
      await this.ctx.deps.hooks?.beforeCommit?.();
      await this.ctx.tx.query('COMMIT');
      return result;
    } catch (error) {
      await this.ctx.tx.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  async purgeUnit(
    p: PartitionInfo,
    bounds: { from: string; to: string },
    hasDefault: boolean,
  ): Promise<UnitOutcome> {
    const { state, prepared } = this.ctx;
    const ops = new PartitionOperations(this.ctx.tx, prepared.table);
    // Cheap (index) check on the attached partition; its bound already rules such rows out.
    if (
      await ops.holdsIneligibleRows(
        p,
        prepared.target.timeColumn.name,
        cutoffPredicate(prepared.target),
        state.cutoff,
      )
    ) {
      this.log.warn('partition holds rows newer than the cutoff; left to the chunk loop', {
        runId: state.runId,
        partition: quoteQualified(p.schema, p.name),
      });
      return NOTHING;
    }
    const unit = await this.startUnit(p, bounds, 'purge', 'detaching');
    return this.detachAndDrop(
      unit,
      { schema: p.schema, name: p.name },
      hasDefault ? 'locked' : 'concurrently',
    );
  }

  async archiveUnit(
    p: PartitionInfo,
    bounds: { from: string; to: string },
    hasDefault: boolean,
  ): Promise<UnitOutcome> {
    const { state, prepared, deps } = this.ctx;
    const policy = this.policy as ArchivePolicy;
    const store = deps.store;
    if (!store) throw new StorageConfigurationError('archive policies need a bucket');
    const sideLedger = new Ledger(this.ctx.side);
    const ops = new PartitionOperations(this.ctx.tx, prepared.table);
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

    const writer = new ArchiveObjectWriter(store, sideLedger, { afterUpload: deps.hooks?.afterUpload });
    const upload = async (hive: string, rows: Array<Array<string | null>>) => {
      objects.push(
        await writer.write({
          policy,
          table: prepared.table,
          runId: state.runId,
          partition: hive,
          plan,
          rows,
          columnOffset: 0,
          timeAt,
          keyAt,
        }),
      );
    };

    let archived: { rows: number; bytes: number; seq: number | undefined };
    try {
      archived = await this.inTransaction(async () => {
        // SHARE: reads go on, no INSERT/UPDATE/DELETE reaches the partition until COMMIT.
        await ops.lock(p, 'SHARE');
        await this.ctx.tx.query(
          `DECLARE pg_lifecycle_partition NO SCROLL CURSOR FOR SELECT ${columns.map(quoteIdent).join(', ')} FROM ${partitionName} ORDER BY ${order}`,
        );
        let buffer: { hive: string; rows: Array<Array<string | null>>; bytes: number } | undefined;
        // Memory stays bounded by chunking.maxChunkBytes for wide rows: in each fetch and in each object.
        let bytesPerRow: number | undefined;
        const { maxChunkBytes } = state.chunking;
        for (;;) {
          if (deps.remainingMs() < ABORT_BELOW_MS) throw new OutOfTimeSignal();
          const fetchRows = capByBytes(Math.max(1, state.chunking.maxRows), bytesPerRow, state.chunking);
          const batch = await this.ctx.tx.query<Array<string | null>>({
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
        await this.ctx.tx.query('CLOSE pg_lifecycle_partition');
        const rows = objects.reduce((sum, o) => sum + o.rows, 0);
        const bytes = objects.reduce((sum, o) => sum + o.bytes, 0);
        const counted = await ops.countRows(p);
        if (counted !== rows) {
          throw new PartitionRetentionError(
            `${partitionName}: count(*) is ${counted} under SHARE lock but the objects hold ${rows} rows; nothing was dropped`,
          );
        }
        await deps.hooks?.beforeLedger?.();
        const units = new PartitionLedger(this.ctx.tx);
        let seq: number | undefined;
        if (rows > 0) {
          seq = await new Ledger(this.ctx.tx).recordChunk({
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
          await new Ledger(this.ctx.tx).insertArchivedObjects(state.runId, seq, objects);
        }
        await units.insertUnit({
          ...this.unitIdentity(p, bounds),
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
      await this.units.insertUnit({ ...this.unitIdentity(p, bounds), action: 'archive', state: 'chunked' });
      this.log.warn('partition too large for one step; its rows go to the chunk loop', {
        runId: state.runId,
        partition: partitionName,
      });
      return { ...NOTHING, outOfTime: true };
    }
    await deps.hooks?.afterPartitionArchived?.(partitionName);
    this.log.info('partition archived', {
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
    await this.detachAndDrop(
      unit,
      { schema: p.schema, name: p.name },
      hasDefault ? 'locked' : 'concurrently',
    );
    return {
      rows: archived.rows,
      objects: objects.length,
      bytes: archived.bytes,
      chunks: archived.seq ? 1 : 0,
    };
  }

  /** Finishes a unit an earlier step started (its partition may be attached, mid-detach, detached or gone). */
  async finishOpenUnit(unit: PartitionUnit): Promise<UnitOutcome> {
    const status = await relationStatus(this.ctx.side, unit.partitionOid, this.ctx.prepared.table.oid);
    if (status.state === 'gone') {
      // Dropped by someone else: an archive unit's rows are in its listed objects, a purge unit's were to go.
      await this.units.finishUnit(unit, {
        state: 'dropped',
        finishedBy: this.ctx.state.runId,
        detachMode: undefined,
        keptAs: undefined,
      });
      return NOTHING;
    }
    this.log.info('finishing a partition unit started earlier', {
      runId: this.ctx.state.runId,
      partition: unit.partitionName,
      state: unit.state,
    });
    const partitions = await listPartitions(this.ctx.side, this.ctx.prepared.table.oid);
    const hasDefault = partitions.some((p) => p.boundText.trim() === 'DEFAULT');
    const mode =
      status.state === 'attached' && hasDefault && !status.detachPending ? 'locked' : 'concurrently';
    return this.detachAndDrop(unit, { schema: status.schema, name: status.name }, mode);
  }

  /** DETACH (if still attached), then lock, check, count, record and DROP / move in one transaction. */
  private async detachAndDrop(
    unit: PartitionUnit,
    table: { schema: string; name: string },
    mode: 'concurrently' | 'locked',
  ): Promise<UnitOutcome> {
    const { state, prepared, tx } = this.ctx;
    const ops = new PartitionOperations(tx, prepared.table);
    const status = await relationStatus(this.ctx.side, unit.partitionOid, prepared.table.oid);
    // Checked before the DETACH too, so such a partition stays attached (checked again under the lock).
    if (await this.lostFence(ops, unit, table)) throw this.lostFenceError(unit);
    if (status.state === 'attached' && mode === 'concurrently') {
      await this.units.setDetachMode(unit, 'concurrently');
      // Outside any transaction; lock_timeout bounds its wait for the parent's lock.
      await tx.query(`SELECT set_config('lock_timeout', $1, false)`, [`${state.chunking.lockTimeoutMs}ms`]);
      try {
        await ops.detachConcurrently(table, status.detachPending);
      } finally {
        await tx.query(`RESET lock_timeout`).catch(() => undefined);
      }
    }
    if (status.state === 'attached' && mode === 'locked') {
      // A DEFAULT partition rules out CONCURRENTLY. Its own short transaction: the parent's ACCESS EXCLUSIVE
      // lock ends with the DETACH, not after the count, the checks and the DROP below.
      await this.units.setDetachMode(unit, 'locked');
      await this.begin();
      try {
        await ops.detachLocked(table);
        await tx.query('COMMIT');
      } catch (error) {
        await tx.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
    const startedAt = performance.now();
    return this.inTransaction(async () => {
      await ops.lock(table, 'ACCESS EXCLUSIVE');
      // Archive: the exact count is the check against the archived objects. Purge: the count is for the
      // ledger only, so a partition too large to count in time records the planner's estimate instead.
      const { rows, estimated } =
        unit.action === 'purge'
          ? await ops.countRowsWithin(
              table,
              this.policy.partitions.countTimeoutMs,
              state.chunking.statementTimeoutMs,
            )
          : { rows: await ops.countRows(table), estimated: false };
      let seq: number | undefined;
      if (unit.action === 'purge') {
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
        if (rows > 0) {
          seq = await new Ledger(tx).recordChunk({
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
      } else if (await this.lostFence(ops, unit, table)) {
        throw this.lostFenceError(unit);
      } else if (rows > (unit.rows ?? 0)) {
        // Impossible while the fence holds; never drop a row that is not in the archive.
        throw new PartitionRetentionError(
          `${unit.partitionName} holds ${rows} rows but ${unit.rows ?? 0} were archived; it was not dropped`,
        );
      }
      let keptAs: string | undefined;
      if (this.policy.partitions.keepDetached) {
        if (unit.action === 'archive') await ops.removeFence(table);
        if (this.detachedSchema && this.detachedSchema !== table.schema) {
          await ops.moveToSchema(table, this.detachedSchema);
        }
        keptAs = quoteQualified(this.detachedSchema ?? table.schema, table.name);
      } else {
        await ops.drop(table);
      }
      await new PartitionLedger(tx).finishUnit(unit, {
        state: keptAs ? 'kept' : 'dropped',
        finishedBy: state.runId,
        detachMode: undefined,
        keptAs,
        ...(unit.action === 'purge' ? { rows, rowsEstimated: estimated, chunkSeq: seq } : {}),
      });
      this.log.info(keptAs ? 'partition detached and kept' : 'partition dropped', {
        runId: state.runId,
        partition: unit.partitionName,
        rows,
        ...(estimated ? { rowsEstimated: true } : {}),
        from: unit.boundFrom,
        to: unit.boundTo,
        ...(keptAs ? { keptAs } : {}),
      });
      return unit.action === 'purge' ? { rows, objects: 0, bytes: 0, chunks: seq ? 1 : 0 } : NOTHING;
    });
  }

  private async startUnit(
    p: PartitionInfo,
    bounds: { from: string; to: string },
    action: 'archive' | 'purge',
    stateName: 'detaching',
  ): Promise<PartitionUnit> {
    const identity = this.unitIdentity(p, bounds);
    await this.units.insertUnit({ ...identity, action, state: stateName });
    return { ...identity, action, state: stateName, rows: undefined };
  }

  /**
   * An archived partition must still carry its write fence when it is dropped: without it, rows may have
   * come and gone since the archive, and a count no longer proves that every row is archived.
   */
  private async lostFence(
    ops: PartitionOperations,
    unit: PartitionUnit,
    table: { schema: string; name: string },
  ): Promise<boolean> {
    return unit.action === 'archive' && !(await ops.hasFence(table));
  }

  private lostFenceError(unit: PartitionUnit): PartitionRetentionError {
    return new PartitionRetentionError(
      `${unit.partitionName} lost its write fence (${FENCE_CONSTRAINT}) after it was archived; rows may have ` +
        'been written that the archive does not hold, so it was not dropped. Archive or move those rows, then ' +
        'drop it yourself or add the fence back',
    );
  }

  /** What names a unit in lifecycle.dropped_partitions: this run, the policy, the partition and its bounds. */
  private unitIdentity(p: PartitionInfo, bounds: { from: string; to: string }) {
    return {
      runId: this.ctx.state.runId,
      policy: this.policy.name,
      partitionOid: p.oid,
      partitionName: quoteQualified(p.schema, p.name),
      parentName: this.parentName,
      boundFrom: bounds.from,
      boundTo: bounds.to,
    };
  }
}
