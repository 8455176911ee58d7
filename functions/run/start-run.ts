/**
 * Start step: validate, fix the cutoff, take the lease, open the run in the ledger. Everything that can
 * be refused is checked before anything is written.
 */
import { randomUUID } from 'node:crypto';
import { leaseTtlSeconds } from '../../lib/contracts/lease.ts';
import { type ExecutionInput, ExecutionInputSchema, type RunState } from '../../lib/contracts/payloads.ts';
import { policyDigest } from '../../lib/contracts/policy-digest.ts';
import { Ledger } from '../adapters/ledger.ts';
import { applyMigrations } from '../adapters/migrations.ts';
import { readLiveRows } from '../adapters/table-stats.ts';
import { capByBytes } from '../core/batch-size.ts';
import { computeCutoff } from '../core/cutoff.ts';
import { InvalidPayloadError, MissingIndexError, StorageConfigurationError } from '../core/errors.ts';
import { buildGlueTableInput } from '../core/glue-table.ts';
import { policyPrefix, tablePrefix } from '../core/object-keys.ts';
import { planParquetColumns } from '../core/parquet/column-plan.ts';
import { describeParquetSchema } from '../core/parquet/encode.ts';
import { checkArchiveForeignKeys, checkPurgeForeignKeys } from './check-foreign-keys.ts';
import { checkPrivileges } from './check-privileges.ts';
import type { StepDependencies } from './dependencies.ts';
import { buildRunPlan } from './plan-run.ts';
import {
  checkFilterCalls,
  checkFullTableScan,
  explainChunkQuery,
  prepareTarget,
  sampleRowTextBytes,
} from './prepare-target.ts';

export interface StartRequest {
  readonly input: unknown;
  readonly executionId?: string | undefined;
}

export function parseExecutionInput(input: unknown): ExecutionInput {
  const parsed = ExecutionInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new InvalidPayloadError(
      `invalid execution input: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
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
  const db = await deps.connect(chunking);
  try {
    const prepared = await prepareTarget(db, policy);
    const ledger = new Ledger(db);

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
      // The catalog may have changed since the run started (a function replaced by a volatile one).
      await checkFilterCalls(db, prepared, policy.filterFunctions);
      await ledger.renewLease(policy.name, runId, leaseTtlSeconds());
      if (request.executionId) await ledger.setExecutionId(runId, request.executionId);
      deps.log.info('run continued', { runId, policy: policy.name, generation });
      return baseState({
        now: deps.now(),
        runId,
        input,
        cutoff,
        cursor,
        batchRows,
        generation,
        done: false,
      });
    }

    const cutoff = computeCutoff(deps.now(), policy.retention);
    // First: reading the table (EXPLAIN, the filter check) needs SELECT, and nothing below may be written
    // (migrations, lease, run row) unless the run can go through with it.
    const privileges = await checkPrivileges(
      db,
      { policy, prepared, cutoff, throttle: chunking.throttle, dryRun: input.dryRun },
      deps.log,
    );
    await checkFilterCalls(db, prepared, policy.filterFunctions);
    const explain = await explainChunkQuery(db, prepared, cutoff, policy.action);
    const scan = await checkFullTableScan(db, prepared, explain, {
      allowSeqScan: policy.allowSeqScan ?? false,
      force: input.force ?? false,
    });
    // A dry run reports refusals in its plan instead of failing on the first one.
    if (!input.dryRun && scan.refusal) throw new MissingIndexError(scan.refusal);
    if (!input.dryRun && scan.warning)
      deps.log.warn('chunk query scans the whole table', { warning: scan.warning });
    if (policy.action === 'purge' && !input.dryRun)
      await checkPurgeForeignKeys(db, prepared, input.children ?? [], deps.log);
    if (policy.action === 'archive' && !input.dryRun) await checkArchiveForeignKeys(db, prepared);
    if (policy.action === 'archive' && !input.dryRun && !deps.store) {
      throw new StorageConfigurationError('archive policies need a bucket (ARCHIVE_BUCKET or --bucket)');
    }
    // Checked before anything is written; a dry run with a bucket checks it too, as a preflight.
    if (policy.action === 'archive' && deps.store) {
      // Listing the policy's own prefix: the grant is bounded to it. A lock the bucket cannot keep is a
      // configuration error now, not after the first chunk deleted rows.
      const objectLock = policy.archive.objectLock !== undefined;
      await deps.store.checkBucket({ prefix: policyPrefix(policy.name), objectLock });
      if (objectLock && !deps.store.retain)
        throw new StorageConfigurationError('objectLock is set but this object store cannot lock objects');
    }
    const runId = randomUUID();

    if (input.dryRun) {
      // A dry run writes nothing: no migration, no lease, no run row, no object (plan queries are READ ONLY).
      const plan = await buildRunPlan(db, { input, prepared, cutoff, explain, scan, privileges });
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
      };
    }

    // Archive chunks hold their rows in memory: rows with large values start with fewer per chunk. Read
    // before anything is written: it is the first statement that evaluates the filter on real rows.
    const batchRows =
      policy.action === 'archive'
        ? capByBytes(chunking.initialRows, await sampleRowTextBytes(db, prepared, cutoff), chunking)
        : chunking.initialRows;
    await applyMigrations(db);
    if (request.executionId) {
      // A retried Start (same execution) after its COMMIT: resume the run it opened instead of
      // colliding with its own lease.
      const opened = await ledger.findRunningRunOfExecution(request.executionId);
      if (opened) {
        await ledger.renewLease(policy.name, opened.runId, leaseTtlSeconds());
        deps.log.info('run resumed by a retried start', { runId: opened.runId, policy: policy.name });
        return baseState({
          now: deps.now(),
          runId: opened.runId,
          input,
          cutoff: opened.cutoff,
          cursor: opened.cursor,
          batchRows: chunking.initialRows,
          generation: 1,
          done: false,
        });
      }
    }
    if (policy.action === 'archive' && deps.tableCatalog && deps.store) {
      // Idempotent, and before the lease: a failure here leaves nothing behind to clean up.
      await deps.tableCatalog.upsertTable(
        buildGlueTableInput({
          policyName: policy.name,
          bucket: deps.store.bucket,
          tablePrefix: tablePrefix(policy.name, prepared.table.schema, prepared.table.table),
          granularity: policy.archive.partitionBy,
          columns: describeParquetSchema(planParquetColumns(prepared.table.columns)),
        }),
      );
    }
    // Purge: the VACUUM threshold compares the run's deleted rows with the table's rows now.
    const tableRowsBefore =
      policy.action === 'purge' ? await readLiveRows(db, prepared.table.oid) : undefined;
    const holder = await deps.leaseHolder?.();
    await db.query('BEGIN');
    try {
      await ledger.acquireLease(policy.name, runId, leaseTtlSeconds(), holder);
      await ledger.insertRun({
        runId,
        policy: policy.name,
        action: policy.action,
        tableName: prepared.qualifiedName,
        timeColumn: prepared.target.timeColumn.name,
        cutoff,
        filter: policy.filter,
        dryRun: false,
        trigger: input.trigger,
        executionId: request.executionId,
      });
      if (tableRowsBefore !== undefined) await ledger.recordTableRowsBefore(runId, tableRowsBefore);
      await db.query('COMMIT');
    } catch (error) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    deps.log.info('run started', {
      runId,
      policy: policy.name,
      action: policy.action,
      table: prepared.qualifiedName,
      cutoff,
      batchRows,
    });
    return baseState({
      now: deps.now(),
      runId,
      input,
      cutoff,
      cursor: null,
      batchRows,
      generation: 1,
      done: false,
    });
  } finally {
    await db.end().catch(() => undefined);
  }
}

function baseState(parts: {
  now: Date;
  runId: string;
  input: ExecutionInput;
  cutoff: string;
  cursor: Array<string | null> | null;
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
