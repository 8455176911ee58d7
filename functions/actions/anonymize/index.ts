/**
 * Anonymize: rows older than the retention have their personal columns masked in place, in short
 * transactions on the chunk loop (SKIP LOCKED, adaptive size, pauses, replica-lag throttle). The work source is
 * `unprocessed`: the time-cutoff rows that still have a column not in its masked form (or, with a marker
 * column, whose marker is unset), so a re-run updates nothing. Values are computed in SQL (strategies.ts); the
 * hash key's pads travel as bind parameters; no row value reaches Node, logs, the ledger or errors.
 */
import type { AnonymizePolicy } from '../../../lib/contracts/policy.ts';
import type { MissingPrivilege } from '../../core/errors.ts';
import { CatalogError, HashKeyError } from '../../core/errors.ts';
import { recheckTimeCutoffContinuation, startTimeCutoffRun } from '../../sources/time-cutoff-start.ts';
import { unprocessedSource } from '../../sources/unprocessed.ts';
import type { TimeCutoffModule } from '../action-module.ts';
import { AnonymizeAction } from './chunk.ts';
import { hashKeyFrom, PLACEHOLDER_KEY } from './hash-key.ts';
import { maskProblems, needsHashKey, pendingPredicate, resolveMasks } from './masks.ts';
import { anonymizePlan } from './plan.ts';
import { pickStatement } from './update-statement.ts';

const source = unprocessedSource<AnonymizePolicy>(async (db, policy, prepared) =>
  pendingPredicate(prepared.target, await resolveMasks(db, prepared.table, policy), PLACEHOLDER_KEY),
);

function keyMissingMessage(policy: AnonymizePolicy): string {
  return (
    `policy ${policy.name} hashes values (hash or email strategy) but no hash key is configured: ` +
    'set PG_LIFECYCLE_HASH_KEY locally, or anonymization.hashKeySecretArn in the config for AWS'
  );
}

export const anonymizeModule: TimeCutoffModule<AnonymizePolicy> = {
  action: 'anonymize',
  source,

  async prepareStart(ctx) {
    const start = await startTimeCutoffRun(ctx, this, this.source);
    const { db, deps, policy } = ctx;
    return {
      ...start,
      plan: async () => {
        const prepared = await this.source.prepare(db, policy);
        const masks = await resolveMasks(db, prepared.table, policy);
        const secret = await deps.hashKey?.();
        const key = secret ? hashKeyFrom(secret) : PLACEHOLDER_KEY;
        const keyMissing = needsHashKey(masks) && !secret ? keyMissingMessage(policy) : undefined;
        const base = await start.plan();
        // What a real run's checkStart would refuse, listed instead of thrown.
        const problems = await maskProblems(db, prepared.table.oid, masks, key);
        const refusals = problems.map((message) => ({ error: 'CatalogError', message }));
        return anonymizePlan(
          db,
          { ...base, refusals: [...base.refusals, ...refusals] },
          prepared,
          masks,
          key,
          keyMissing,
        );
      },
    };
  },

  recheckContinuation(ctx) {
    return recheckTimeCutoffContinuation(ctx, this.source);
  },

  missingTablePrivileges(facts) {
    const missing: MissingPrivilege[] = [];
    if (!facts.select)
      missing.push({ privilege: 'SELECT', object: facts.table, reason: 'anonymize reads the rows due' });
    if (!facts.update)
      missing.push({
        privilege: 'UPDATE',
        object: facts.table,
        reason: 'anonymize updates the masked columns',
      });
    return missing;
  },

  explainStatement: (target) => pickStatement(target, false),

  // Masking changes no key: references to the table are not affected.
  foreignKeys: { planRefusal: () => undefined, warnsOfReferencedRows: () => false },

  async checkStart({ db, deps, input, policy, prepared }) {
    // An unknown or unmaskable column stops a dry run too; the rest a dry run's plan lists among its refusals
    // (prepareStart's plan computes them once).
    const masks = await resolveMasks(db, prepared.table, policy);
    if (input.dryRun) return;
    const secret = await deps.hashKey?.();
    if (needsHashKey(masks) && !secret)
      throw new HashKeyError(keyMissingMessage(policy), { policy: policy.name });
    const problems = await maskProblems(
      db,
      prepared.table.oid,
      masks,
      secret ? hashKeyFrom(secret) : PLACEHOLDER_KEY,
    );
    if (problems.length > 0)
      throw new CatalogError(`${prepared.qualifiedName}: ${problems.join('; ')}`, {
        policy: policy.name,
        table: `${prepared.table.schema}.${prepared.table.table}`,
      });
  },

  initialBatchRows: async ({ input }) => input.chunking.initialRows,

  chunkAction: ({ deps }) => new AnonymizeAction(deps),
  // An anonymize chunk is done at its COMMIT: nothing to overlap with the next one.
  overlapsChunks: false,
};
