/**
 * Import: legacy rows moved from a source table, or a CSV / Parquet object in S3, into a target table in
 * chunks (see contract.ts). Start resolves both ends and checks keys, privileges and the column expressions
 * (import-target.ts; an object's columns from its header, object-source.ts); a dry run validates rows in a
 * rolled-back transaction (plan.ts); each chunk inserts the next batch of source keys, refused rows set aside
 * in lifecycle.import_rejects (chunk.ts, row-validation.ts). The source is never changed; a re-run skips what
 * is already imported (the target key). An object is staged in a table of the run by the first Chunk step and
 * dropped by Finish or RecordFailure.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { Ledger } from '../../adapters/ledger/index.ts';
import { createS3Client } from '../../commons/s3.ts';
import { InvalidPayloadError } from '../../core/errors.ts';
import type { StepDependencies } from '../../run/dependencies.ts';
import { wholeTableSource } from '../../sources/whole-table.ts';
import type { ActionModule } from '../action-module.ts';
import { ImportChunkAction } from './chunk.ts';
import { type ImportPolicy, type ObjectSource, sourceName } from './contract.ts';
import { checkImportExpressions, checkImportPrivileges, resolveImportShape } from './import-target.ts';
import {
  createStagingSql,
  loadObject,
  type ObjectFacts,
  readObjectFacts,
  stagingTable,
  tempTableName,
} from './object-source.ts';
import { importPlan } from './plan.ts';
import type { ImportShape } from './statements.ts';

/** Left of a step after loading an object: the first chunks and the step's own end. */
const LOAD_MARGIN_MS = 15_000;
/** How long a dry run may spend validating rows (a Start invocation must still answer). */
const DRY_RUN_TIMEOUT_MS = 30_000;

function objectSourceOf(policy: ImportPolicy): ObjectSource | undefined {
  return typeof policy.import.source === 'string' ? undefined : policy.import.source;
}

/** The S3 client of the step: the stack bucket's (the same endpoint locally), else one from the environment. */
function s3Of(deps: StepDependencies): S3Client {
  return deps.store?.s3Client ?? createS3Client();
}

/** Runs `work` with the object's stand-in (an empty temporary table of its columns), then rolls it all back. */
async function withStandIn<T>(
  db: pg.ClientBase,
  columns: readonly string[],
  work: (qualified: string) => Promise<T>,
): Promise<T> {
  await db.query('BEGIN');
  try {
    const name = `import_check_${process.pid}`;
    await db.query(createStagingSql({ schema: 'pg_temp', table: name }, columns, 'temporary'));
    return await work(await tempTableName(db, name));
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
  }
}

/** The facts Start fixed for an object source (runs.detail.object). */
function objectFactsOf(detail: Readonly<Record<string, unknown>> | undefined): ObjectFacts {
  const facts = detail?.object as ObjectFacts | undefined;
  if (!facts || !Array.isArray(facts.columns) || typeof facts.etag !== 'string')
    throw new InvalidPayloadError('import run without the object facts its Start fixed (runs.detail.object)');
  return facts;
}

export const importModule: ActionModule<ImportPolicy> = {
  action: 'import',
  // Every row of the source, walked by its key; the bound is the run's start (no cutoff).
  source: wholeTableSource<ImportPolicy>(),

  async prepareStart({ db, deps, input, policy }) {
    const object = objectSourceOf(policy);
    const facts = object ? await readObjectFacts(s3Of(deps), object) : undefined;
    const check = async (shape: ImportShape, inTransaction?: <T>(work: () => Promise<T>) => Promise<T>) => {
      await checkImportPrivileges(db, shape);
      await checkImportExpressions(db, shape, policy.import.functions ?? [], inTransaction);
      return shape;
    };
    const shape = facts
      ? await withStandIn(db, facts.columns, async (standIn) =>
          check(await resolveImportShape(db, policy, standIn), (work) => work()),
        )
      : await check(await resolveImportShape(db, policy));
    const cutoff = this.source.bound(deps.now(), policy);
    const target = quoteQualified(shape.target.schema, shape.target.table);
    const timeoutMs = Math.min(DRY_RUN_TIMEOUT_MS, input.chunking.statementTimeoutMs * 10);
    return {
      record: { tableName: target },
      cutoff,
      plan: () =>
        importPlan(
          db,
          async (tx) => {
            if (!object || !facts) return resolveImportShape(tx, policy);
            // The object staged in a temporary table of the plan's transaction (dropped by its rollback).
            const name = { schema: 'pg_temp', table: `import_plan_${process.pid}` };
            await tx.query(createStagingSql(name, facts.columns, 'temporary'));
            const qualified = await tempTableName(tx, name.table);
            await loadObject(tx, s3Of(deps), object, facts, qualified);
            return resolveImportShape(tx, policy, qualified);
          },
          {
            dryRunRows: policy.import.dryRunRows,
            cutoff,
            timeoutMs,
            source: sourceName(policy.import.source),
          },
        ),
      initialBatchRows: async () => input.chunking.initialRows,
      beforeLease: async () => ({}),
      detail: {
        source: sourceName(policy.import.source),
        target,
        ...(facts ? { object: facts } : {}),
      },
    };
  },

  // Each step resolves the tables again on its first take: a dropped or renamed table fails there.
  recheckContinuation: async ({ db, policy }) => {
    if (!objectSourceOf(policy)) await checkImportPrivileges(db, await resolveImportShape(db, policy));
  },

  // Each chunk locks the run's figures row first (prepareImportTransaction): an overlapped next chunk would only
  // wait there with its transaction open. One after another on one connection.
  overlapsChunks: false,

  chunkAction({ deps, policy, run, side }) {
    const object = objectSourceOf(policy);
    if (!object) return new ImportChunkAction(policy, (db) => resolveImportShape(db, policy));
    const staging = stagingTable(run.runId);
    const qualified = quoteQualified(staging.schema, staging.table);
    // The object is loaded by the first step that finds no staging table, before its first chunk, in one
    // transaction of its own: a step that dies while loading leaves nothing, and the next loads again.
    return new ImportChunkAction(
      policy,
      (db) => resolveImportShape(db, policy, qualified),
      () =>
        ensureStaged(side, s3Of(deps), object, objectFactsOf(run.detail), {
          staging,
          policy: policy.name,
          runId: run.runId,
          // The load is one COPY: bounded by what is left of the step, not by the chunks' statement timeout.
          timeoutMs: Math.max(1000, deps.remainingMs() - LOAD_MARGIN_MS),
        }),
    );
  },

  async finish({ db, state }) {
    if (objectSourceOf(state.policy)) await dropStaging(db, state.runId);
    return {};
  },

  async afterFailure({ deps, db, runId }) {
    try {
      const run = await new Ledger(db).getRun(runId);
      if (run?.action === 'import') await dropStaging(db, runId);
    } catch (error) {
      deps.log.warn('import staging table not dropped (drop it by hand)', {
        runId,
        table: quoteQualified(stagingTable(runId).schema, stagingTable(runId).table),
        error: (error as Error).message,
      });
    }
  },
};

async function ensureStaged(
  client: pg.ClientBase,
  s3: S3Client,
  object: ObjectSource,
  facts: ObjectFacts,
  target: {
    readonly staging: { readonly schema: string; readonly table: string };
    readonly policy: string;
    readonly runId: string;
    readonly timeoutMs: number;
  },
): Promise<void> {
  const qualified = quoteQualified(target.staging.schema, target.staging.table);
  const { rows } = await client.query<{ found: string | null }>(`SELECT to_regclass($1)::text AS found`, [
    qualified,
  ]);
  if (rows[0]?.found) return;
  await dropStaleStaging(client, target.policy, target.runId);
  await client.query('BEGIN');
  try {
    await client.query(`SELECT set_config('statement_timeout', $1, true)`, [`${target.timeoutMs}ms`]);
    await client.query(createStagingSql(target.staging, facts.columns, 'logged'));
    await loadObject(client, s3, object, facts, qualified);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Staging tables of this policy's earlier runs that ended without Finish or RecordFailure (an execution stopped
 * or timed out, a lease released by unlock): each holds a whole copy of its object. This run holds the lease, so
 * no other run of the policy is using one.
 */
async function dropStaleStaging(client: pg.ClientBase, policy: string, runId: string): Promise<void> {
  const { rows } = await client.query<{ run_id: string }>(
    `SELECT r.run_id::text
       FROM lifecycle.runs r
       JOIN pg_class c ON c.relname = 'import_staging_' || replace(r.run_id::text, '-', '')
       JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'lifecycle'
      WHERE r.policy = $1 AND r.action = 'import' AND r.run_id <> $2::uuid AND r.status <> 'running'`,
    [policy, runId],
  );
  for (const row of rows) await dropStaging(client, row.run_id);
}

async function dropStaging(db: { query(sql: string): Promise<unknown> }, runId: string): Promise<void> {
  const staging = stagingTable(runId);
  await db.query(`DROP TABLE IF EXISTS ${quoteQualified(staging.schema, staging.table)}`);
}
