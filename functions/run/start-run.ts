/**
 * Start step: validate, let the action check everything and fix its bound (prepareStart), take the lease,
 * open the run in the ledger. Everything that can be refused is checked before anything is written.
 */
import { randomUUID } from 'node:crypto';
import { leaseTtlSeconds } from '../../lib/contracts/lease.ts';
import type { ExecutionInput, RunState } from '../../lib/contracts/payloads.ts';
import { parallelismOf } from '../../lib/contracts/policy.ts';
import { policyDigest } from '../../lib/contracts/policy-digest.ts';
import type { WorkCursor } from '../../lib/contracts/work-cursor.ts';
import type { WorkRange } from '../../lib/contracts/work-range.ts';
import { moduleFor } from '../actions/registry.ts';
import { insertRanges, Ledger, listRanges } from '../adapters/ledger/index.ts';
import { applyMigrations } from '../adapters/migrations.ts';
import { InvalidPayloadError } from '../core/errors.ts';
import type { StepDependencies } from './dependencies.ts';
import { parseExecutionInput } from './payloads.ts';
import { planWorkRanges } from './work-ranges.ts';

export interface StartRequest {
  readonly input: unknown;
  readonly executionId?: string | undefined;
}

/** Refuses a policy that is not deployed as it is (a hand-made or tampered execution input). */
export function checkDeployedPolicy(
  input: ExecutionInput,
  deployed: Readonly<Record<string, string>> | undefined,
): void {
  if (!deployed) return;
  const expected = deployed[input.policy.name];
  if (expected === undefined) {
    throw new InvalidPayloadError(
      `policy "${input.policy.name}" is not deployed (known: ${Object.keys(deployed).join(', ')})`,
    );
  }
  if (policyDigest(input.policy, input.chunking) !== expected) {
    throw new InvalidPayloadError(
      `policy "${input.policy.name}" differs from the deployed configuration; deploy the config first (cdk deploy)`,
    );
  }
}

export async function startRun(deps: StepDependencies, request: StartRequest): Promise<RunState> {
  const input = parseExecutionInput(request.input);
  checkDeployedPolicy(input, deps.deployedPolicies);
  const { policy, chunking } = input;
  const action = moduleFor(policy, deps.actions);
  const db = await deps.connect(chunking);
  try {
    const ledger = new Ledger(db);
    const startRequest = { db, deps, input, policy };

    if (input.continuation) {
      // A continuation keeps the run, its cutoff and its lease; it only needs a new execution id.
      const { runId, cutoff, cursor, batchRows, generation } = input.continuation;
      // The continuation arrives in an execution input anyone with StartExecution can write: it must name a
      // running run of this policy, with that run's own cutoff (the ledger's, not a later one).
      const run = await ledger.getRun(runId);
      if (run?.status !== 'running' || run.policy !== policy.name || run.cutoff !== cutoff) {
        throw new InvalidPayloadError(
          `continuation of run ${runId} does not match a running run of policy "${policy.name}" with cutoff ${cutoff}`,
        );
      }
      await action.recheckContinuation(startRequest);
      await ledger.renewLease(policy.name, runId, leaseTtlSeconds());
      if (request.executionId) await ledger.setExecutionId(runId, request.executionId);
      deps.log.info('run continued', { runId, policy: policy.name, generation });
      return withRanges(
        baseState({
          now: deps.now(),
          runId,
          input,
          cutoff,
          cursor,
          batchRows,
          generation,
          done: false,
        }),
        await listRanges(db, runId),
      );
    }

    // Every check before anything is written (migrations, lease, run row); the plan of a dry run.
    const started = await action.prepareStart(startRequest);
    const { cutoff } = started;
    const runId = randomUUID();

    if (input.dryRun) {
      // A dry run writes nothing: no migration, no lease, no run row, no object (plan queries are READ ONLY).
      const plan = await started.plan();
      const eligibleRows = plan.eligibleRows;
      deps.log.info('dry run planned', { runId, policy: policy.name, cutoff, eligibleRows, plan });
      return {
        ...baseState({
          now: deps.now(),
          runId,
          input,
          cutoff,
          cursor: null,
          batchRows: chunking.initialRows,
          generation: 1,
          done: true,
        }),
        eligibleRows,
        plan,
        // A parallel policy's machine maps Start's ranges: none in a dry run (the plan lists them).
        ...(parallelismOf(policy) > 1 ? { ranges: [] } : {}),
      };
    }

    const batchRows = await started.initialBatchRows();
    await applyMigrations(db);
    if (request.executionId) {
      // A retried Start (same execution) after its COMMIT: resume the run it opened instead of
      // colliding with its own lease.
      const opened = await ledger.findRunningRunOfExecution(request.executionId);
      if (opened) {
        await ledger.renewLease(policy.name, opened.runId, leaseTtlSeconds());
        deps.log.info('run resumed by a retried start', { runId: opened.runId, policy: policy.name });
        return withRanges(
          baseState({
            now: deps.now(),
            runId: opened.runId,
            input,
            cutoff: opened.cutoff,
            cursor: opened.cursor,
            batchRows: chunking.initialRows,
            generation: 1,
            done: false,
          }),
          await listRanges(db, opened.runId),
        );
      }
    }
    // Idempotent, and before the lease: a failure here leaves nothing behind to clean up.
    const facts = await started.beforeLease();
    // A parallel run's ranges: read-only (a sample), fixed before the run row exists and stored with it.
    const parallelism = parallelismOf(policy);
    const prepared = parallelism > 1 ? await action.source.prepare?.(db, policy) : undefined;
    const planned = prepared
      ? await planWorkRanges(db, { policy, prepared, strategy: action.partitions, cutoff })
      : undefined;
    const holder = await deps.leaseHolder?.();
    await db.query('BEGIN');
    try {
      await ledger.acquireLease(policy.name, runId, leaseTtlSeconds(), holder);
      await ledger.insertRun({
        runId,
        policy: policy.name,
        action: policy.action,
        tableName: started.record.tableName,
        source: action.source.kind,
        timeColumn: started.record.timeColumn,
        cutoff,
        filter: 'filter' in policy ? policy.filter : undefined,
        dryRun: false,
        trigger: input.trigger,
        executionId: request.executionId,
        detail: started.detail,
      });
      if (facts.tableRowsBefore !== undefined)
        await ledger.recordTableRowsBefore(runId, facts.tableRowsBefore);
      if (planned) await insertRanges(db, runId, planned.ranges, planned.unitsPending);
      await db.query('COMMIT');
    } catch (error) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    deps.log.info('run started', {
      runId,
      policy: policy.name,
      action: policy.action,
      table: started.record.tableName,
      cutoff,
      batchRows,
      ...(planned ? { ranges: planned.ranges.length } : {}),
    });
    return withRanges(
      baseState({
        now: deps.now(),
        runId,
        input,
        cutoff,
        cursor: null,
        batchRows,
        generation: 1,
        done: false,
      }),
      planned?.ranges ?? [],
    );
  } finally {
    await db.end().catch(() => undefined);
  }
}

/** A parallel run's state carries its ranges (bounds only: each range's cursor lives in the ledger). */
function withRanges(state: RunState, ranges: readonly WorkRange[]): RunState {
  if (ranges.length === 0) return state;
  return { ...state, ranges: ranges.map(({ index, from, to }) => ({ index, from, to })) };
}

function baseState(parts: {
  now: Date;
  runId: string;
  input: ExecutionInput;
  cutoff: string;
  cursor: WorkCursor | null;
  batchRows: number;
  generation: number;
  done: boolean;
}): RunState {
  return {
    runId: parts.runId,
    trigger: parts.input.trigger,
    executionStartedAt: parts.now.toISOString(),
    continueNow: false,
    policy: parts.input.policy,
    chunking: parts.input.chunking,
    dryRun: parts.input.dryRun,
    cutoff: parts.cutoff,
    cursor: parts.cursor,
    batchRows: parts.batchRows,
    done: parts.done,
    iterations: 0,
    generation: parts.generation,
    totals: { rows: 0, objects: 0, bytes: 0, chunks: 0 },
  };
}
