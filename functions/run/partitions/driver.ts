/**
 * Whole-partition retention, before the chunk loop of each Chunk step: each leaf partition wholly before
 * the cutoff is one unit (see eligibility.ts for when a run retires any). The action's strategy starts the
 * unit on the attached partition; this driver detaches it (CONCURRENTLY, or locked when a DEFAULT partition
 * exists), then in one transaction locks, checks, records and drops (or keeps) it. A unit an interrupted
 * step started is finished first, by the strategy of the action that started it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { parseQualifiedName, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { leaseTtlSeconds } from '../../../lib/contracts/lease.ts';
import type { RunState, Totals } from '../../../lib/contracts/payloads.ts';
import type { Policy } from '../../../lib/contracts/policy.ts';
import { Ledger, PartitionLedger, type PartitionUnit } from '../../adapters/ledger/index.ts';
import {
  listPartitions,
  PartitionOperations,
  relationStatus,
  resolveSchemaName,
} from '../../adapters/partitions.ts';
import { beginBoundedTransaction } from '../../adapters/transactions.ts';
import { CatalogError } from '../../core/errors.ts';
import { decidePartitions, describeBoundValue, type PartitionInfo } from '../../core/partitions.ts';
import type { StepDependencies } from '../dependencies.ts';
import { restAfter, restSecondsForPause, restsInStep } from '../pacing.ts';
import type { PreparedTarget } from '../prepare-target.ts';
import { partitionRetentionBlocker } from './eligibility.ts';
import {
  NOTHING,
  type PartitionStrategy,
  type UnitBounds,
  type UnitContext,
  type UnitIdentity,
  type UnitOutcome,
} from './strategy.ts';

export interface PartitionRetentionResult extends Totals {
  /** False when the step ran out of time with partitions left to retire (the step returns, not done). */
  readonly complete: boolean;
  /** Not complete: pacing's rest before the next unit, left to the Pause state (s). */
  readonly restSeconds?: number;
  /** Complete: pacing's rest owed after the step's last unit, before its first chunk (ms; 0 when none ran). */
  readonly restMs?: number;
}

export interface PartitionRetentionContext {
  readonly deps: StepDependencies;
  readonly state: RunState;
  readonly prepared: PreparedTarget;
  /** Autocommit connection: pending announcements and unit records that must survive a rollback. */
  readonly side: pg.Client;
  /** The unit transactions (and DETACH CONCURRENTLY, outside any transaction). */
  readonly tx: pg.Client;
  /** The strategy of an action (the policy's, or the one that started an open unit); none: no units. */
  readonly strategyOf: (action: string) => PartitionStrategy | undefined;
}

/** Retires the partitions that lie wholly before the cutoff; a no-op for any other table or action. */
export async function retirePartitions(ctx: PartitionRetentionContext): Promise<PartitionRetentionResult> {
  const { deps, state, prepared } = ctx;
  const { policy } = state;
  const totals = { rows: 0, objects: 0, bytes: 0, chunks: 0 };
  const strategy = ctx.strategyOf(policy.action);
  const driver = new PartitionDriver(
    ctx,
    strategy ? await resolveDetachedSchema(ctx.side, policy, strategy) : undefined,
  );

  // Units an interrupted step (or run) started: finish them first, whatever the policy says now. An
  // archived unit's rows are already in the archive; left in place, the chunk loop would archive them twice.
  for (const unit of await driver.units.openUnits(policy.name))
    addTotals(totals, await driver.finishOpenUnit(unit));

  const blocker = await partitionRetentionBlocker(ctx.side, policy, prepared, strategy);
  if (blocker || !strategy) {
    if (prepared.table.kind === 'p') {
      deps.log.info('partitions not retired as units', {
        runId: state.runId,
        policy: policy.name,
        reason: blocker,
      });
    }
    return { ...totals, complete: true };
  }

  const partitions = await listPartitions(ctx.side, prepared.table.oid);
  const hasDefault = partitions.some((p) => p.boundText.trim() === 'DEFAULT');
  const leftToChunks = await driver.units.chunkedPartitions(state.runId);
  let lastUnitMs = 0;
  let started = 0;
  const owedRest = () => restAfter(state.chunking.sleepCoefficient, lastUnitMs);
  for (const decision of decidePartitions(partitions, state.cutoff, prepared.target.timeColumn.kind)) {
    if (decision.action !== 'retire' || leftToChunks.has(decision.partition.oid)) continue;
    if (started > 0) {
      // Pacing rests between units as between chunks: an archive unit reads its whole partition at once.
      const restMs = owedRest();
      if (!restsInStep(restMs, deps.remainingMs(), lastUnitMs))
        return { ...totals, complete: false, restSeconds: restSecondsForPause(restMs) };
      if (restMs > 0) await sleep(restMs);
    }
    started++;
    const unitStarted = performance.now();
    await new Ledger(ctx.side).renewLease(policy.name, state.runId, leaseTtlSeconds());
    const bound = decision.bound.kind === 'range' ? decision.bound : undefined;
    const bounds = {
      from: bound ? describeBoundValue(bound.from) : '',
      to: bound ? describeBoundValue(bound.to) : '',
    };
    const begun = await strategy.start(driver, decision.partition, bounds);
    let outcome: UnitOutcome;
    if ('stop' in begun) outcome = begun.stop;
    else {
      const dropped = await driver.detachAndDrop(
        begun.detach,
        { schema: decision.partition.schema, name: decision.partition.name },
        hasDefault ? 'locked' : 'concurrently',
      );
      outcome = sumOutcomes(begun.outcome, dropped);
    }
    lastUnitMs = performance.now() - unitStarted;
    addTotals(totals, outcome);
    if (outcome.outOfTime)
      return { ...totals, complete: false, restSeconds: restSecondsForPause(owedRest()) };
  }
  return { ...totals, complete: true, restMs: owedRest() };
}

/** Adds what a unit (or the partition units of a step) did to running totals. */
export function addTotals(totals: Totals, added: Totals): void {
  totals.rows += added.rows;
  totals.objects += added.objects;
  totals.bytes += added.bytes;
  totals.chunks += added.chunks;
}

function sumOutcomes(a: UnitOutcome, b: UnitOutcome): UnitOutcome {
  return {
    rows: a.rows + b.rows,
    objects: a.objects + b.objects,
    bytes: a.bytes + b.bytes,
    chunks: a.chunks + b.chunks,
  };
}

async function resolveDetachedSchema(
  db: pg.Client,
  policy: Policy,
  strategy: PartitionStrategy,
): Promise<string | undefined> {
  const options = strategy.optionsOf(policy);
  const configured = options.detachedSchema;
  if (!options.keepDetached || configured === undefined) return undefined;
  const [part] = parseQualifiedName(configured);
  const schema = part ? await resolveSchemaName(db, part.name, part.quoted) : undefined;
  if (!schema) {
    throw new CatalogError(`partitions.detachedSchema ${configured} does not exist; create it first`);
  }
  return schema;
}

class PartitionDriver implements UnitContext {
  readonly units: PartitionLedger;

  constructor(
    private readonly ctx: PartitionRetentionContext,
    private readonly detachedSchema: string | undefined,
  ) {
    this.units = new PartitionLedger(ctx.side);
  }

  get deps() {
    return this.ctx.deps;
  }
  get state() {
    return this.ctx.state;
  }
  get prepared() {
    return this.ctx.prepared;
  }
  get side() {
    return this.ctx.side;
  }
  get tx() {
    return this.ctx.tx;
  }

  async inTransaction<T>(work: () => Promise<T>): Promise<T> {
    await beginBoundedTransaction(this.tx, this.state.chunking);
    try {
      const result = await work();
      await this.deps.hooks?.beforeCommit?.();
      await this.tx.query('COMMIT');
      return result;
    } catch (error) {
      await this.tx.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /** What names a unit in lifecycle.partition_units: this run, the policy, the partition and its bounds. */
  identity(p: PartitionInfo, bounds: UnitBounds): UnitIdentity {
    return {
      runId: this.state.runId,
      policy: this.state.policy.name,
      partitionOid: p.oid,
      partitionName: quoteQualified(p.schema, p.name),
      parentName: this.prepared.qualifiedName,
      boundFrom: bounds.from,
      boundTo: bounds.to,
    };
  }

  private strategyFor(unit: PartitionUnit): PartitionStrategy {
    const strategy = this.ctx.strategyOf(unit.action);
    if (!strategy)
      throw new CatalogError(
        `${unit.partitionName}: a ${unit.action} unit is open but ${unit.action} retires no partitions`,
      );
    return strategy;
  }

  /** Finishes a unit an earlier step started (its partition may be attached, mid-detach, detached or gone). */
  async finishOpenUnit(unit: PartitionUnit): Promise<UnitOutcome> {
    const status = await relationStatus(this.side, unit.partitionOid, this.prepared.table.oid);
    if (status.state === 'gone') {
      // Dropped by someone else: an archive unit's rows are in its listed objects, a purge unit's were to go.
      await this.units.finishUnit(unit, {
        state: 'dropped',
        finishedBy: this.state.runId,
        detachMode: undefined,
        keptAs: undefined,
      });
      return NOTHING;
    }
    this.deps.log.info('finishing a partition unit started earlier', {
      runId: this.state.runId,
      partition: unit.partitionName,
      state: unit.state,
    });
    const partitions = await listPartitions(this.side, this.prepared.table.oid);
    const hasDefault = partitions.some((p) => p.boundText.trim() === 'DEFAULT');
    const mode =
      status.state === 'attached' && hasDefault && !status.detachPending ? 'locked' : 'concurrently';
    return this.detachAndDrop(unit, { schema: status.schema, name: status.name }, mode);
  }

  /** DETACH (if still attached), then lock, check, count, record and DROP / move in one transaction. */
  async detachAndDrop(
    unit: PartitionUnit,
    table: { schema: string; name: string },
    mode: 'concurrently' | 'locked',
  ): Promise<UnitOutcome> {
    const { state, prepared, tx } = this;
    const strategy = this.strategyFor(unit);
    const options = strategy.optionsOf(state.policy);
    const ops = new PartitionOperations(tx, prepared.table);
    const status = await relationStatus(this.side, unit.partitionOid, prepared.table.oid);
    // Checked before the DETACH too, so such a partition stays attached (checked again under the lock).
    const refusal = await strategy.refuseDrop?.(ops, unit, table);
    if (refusal) throw refusal;
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
      await beginBoundedTransaction(tx, state.chunking);
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
      const check = await strategy.checkBeforeDrop(this, ops, unit, table, startedAt);
      let keptAs: string | undefined;
      if (options.keepDetached) {
        await strategy.beforeKeep?.(ops, table);
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
        ...check.recorded,
      });
      this.deps.log.info(keptAs ? 'partition detached and kept' : 'partition dropped', {
        runId: state.runId,
        partition: unit.partitionName,
        rows: check.rows,
        ...(check.estimated ? { rowsEstimated: true } : {}),
        from: unit.boundFrom,
        to: unit.boundTo,
        ...(keptAs ? { keptAs } : {}),
      });
      return check.outcome;
    });
  }
}
