/**
 * Start for the actions over the time-cutoff source (archive, purge): resolve the table, fix the cutoff,
 * then every check before anything is written — privileges, the filter's calls, EXPLAIN of the chunk
 * query, the full-scan refusal, the action's own checks — and, for a dry run, the plan. What differs per
 * action comes from its hooks (TimeCutoffHooks).
 */
import type {
  PreparedStart,
  StartContext,
  StartRequestContext,
  TimeCutoffHooks,
  TimeCutoffModule,
} from '../actions/action-module.ts';
import { MissingIndexError } from '../core/errors.ts';
import { checkPrivileges } from '../run/check-privileges.ts';
import { buildRunPlan } from '../run/plan-run.ts';
import { checkFilterCalls, checkFullTableScan, explainChunkQuery } from '../run/prepare-target.ts';
import { type TimeCutoffPolicy, timeCutoffSource } from './time-cutoff.ts';
import type { TableWorkSource } from './work-source.ts';

export async function startTimeCutoffRun<P extends TimeCutoffPolicy>(
  ctx: StartRequestContext<P>,
  hooks: TimeCutoffHooks<P>,
  source: TableWorkSource<P>,
): Promise<PreparedStart> {
  const { db, deps, input, policy } = ctx;
  const prepared = await source.prepare(db, policy);
  const cutoff = source.bound(deps.now(), policy);
  // First: reading the table (EXPLAIN, the filter check) needs SELECT, and nothing below may be written
  // (migrations, lease, run row) unless the run can go through with it.
  const privileges = await checkPrivileges(
    db,
    { policy, action: hooks, prepared, cutoff, throttle: input.chunking.throttle, dryRun: input.dryRun },
    deps.log,
  );
  await checkFilterCalls(db, prepared, policy.filterFunctions);
  const explain = await explainChunkQuery(db, prepared, cutoff, hooks.explainStatement(prepared.target));
  const scan = await checkFullTableScan(db, prepared, explain, {
    allowSeqScan: policy.allowSeqScan ?? false,
    force: input.force ?? false,
  });
  // A dry run reports refusals in its plan instead of failing on the first one.
  if (!input.dryRun && scan.refusal) throw new MissingIndexError(scan.refusal, { policy: policy.name });
  if (!input.dryRun && scan.warning)
    deps.log.warn('chunk query scans the whole table', { warning: scan.warning });
  const context: StartContext<P> = { ...ctx, prepared, cutoff };
  await hooks.checkStart(context);
  return {
    record: { tableName: prepared.qualifiedName, timeColumn: prepared.target.timeColumn.name },
    cutoff,
    plan: () => buildRunPlan(db, { input, action: hooks, prepared, cutoff, explain, scan, privileges }),
    initialBatchRows: () => hooks.initialBatchRows(context),
    beforeLease: async () => (await hooks.beforeLease?.(context)) ?? {},
  };
}

/** A continuing run: the catalog may have changed since it started (a function replaced by a volatile one). */
export async function recheckTimeCutoffContinuation<P extends TimeCutoffPolicy>(
  ctx: StartRequestContext<P>,
  source: TableWorkSource<P>,
): Promise<void> {
  const prepared = await source.prepare(ctx.db, ctx.policy);
  await checkFilterCalls(ctx.db, prepared, ctx.policy.filterFunctions);
}

/**
 * The source and the Start of a module over the time-cutoff source, spread into it: `prepareStart` reads
 * the module's own hooks through `this`, so a copy with a hook replaced (the contract tests remove the
 * partition strategy) starts with the replacement.
 */
export function timeCutoffStart<P extends TimeCutoffPolicy>(): Pick<
  TimeCutoffModule<P>,
  'source' | 'prepareStart' | 'recheckContinuation'
> {
  return {
    source: timeCutoffSource as unknown as TableWorkSource<P>,
    prepareStart(this: TimeCutoffModule<P>, ctx) {
      return startTimeCutoffRun(ctx, this, this.source);
    },
    recheckContinuation(this: TimeCutoffModule<P>, ctx) {
      return recheckTimeCutoffContinuation(ctx, this.source);
    },
  };
}
