/**
 * Import: legacy rows moved from a source table into a target table in chunks (see contract.ts). Start
 * resolves both tables and checks keys, privileges and the column expressions (import-target.ts); a dry
 * run validates rows in a rolled-back transaction (plan.ts); each chunk inserts the next batch of source
 * keys, refused rows set aside in lifecycle.import_rejects (chunk.ts, row-validation.ts). The source is
 * never changed; a re-run skips what is already imported (the target key).
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import { wholeTableSource } from '../../sources/whole-table.ts';
import type { ActionModule } from '../action-module.ts';
import { ImportChunkAction } from './chunk.ts';
import type { ImportPolicy } from './contract.ts';
import { checkImportExpressions, checkImportPrivileges, resolveImportShape } from './import-target.ts';
import { importPlan } from './plan.ts';

/** How long a dry run may spend validating rows (a Start invocation must still answer). */
const DRY_RUN_TIMEOUT_MS = 30_000;

export const importModule: ActionModule<ImportPolicy> = {
  action: 'import',
  // Every row of the source, walked by its key; the bound is the run's start (no cutoff).
  source: wholeTableSource<ImportPolicy>(),

  async prepareStart({ db, deps, input, policy }) {
    const shape = await resolveImportShape(db, policy);
    await checkImportPrivileges(db, shape);
    await checkImportExpressions(db, shape, policy.import.functions ?? []);
    const cutoff = this.source.bound(deps.now(), policy);
    return {
      record: { tableName: quoteQualified(shape.target.schema, shape.target.table) },
      cutoff,
      plan: () =>
        importPlan(db, shape, {
          dryRunRows: policy.import.dryRunRows,
          cutoff,
          timeoutMs: Math.min(DRY_RUN_TIMEOUT_MS, input.chunking.statementTimeoutMs * 10),
        }),
      initialBatchRows: async () => input.chunking.initialRows,
      beforeLease: async () => ({}),
      detail: {
        source: quoteQualified(shape.source.schema, shape.source.table),
        target: quoteQualified(shape.target.schema, shape.target.table),
      },
    };
  },

  // Each step resolves the tables again (chunkAction): a dropped or renamed table fails there.
  recheckContinuation: async ({ db, policy }) => {
    const shape = await resolveImportShape(db, policy);
    await checkImportPrivileges(db, shape);
  },

  chunkAction({ policy }) {
    return new ImportChunkAction(policy, (db) => resolveImportShape(db, policy));
  },
};
