/**
 * A maintain dry run (`plan`, `run --dry-run`): per table and index, the figures and what a run started now
 * would do, with the reason. Read only (a READ ONLY transaction, always rolled back): nothing is analyzed,
 * vacuumed, rebuilt or recorded. The decisions are the run's (decide.ts) on today's figures; a run decides
 * again on each table's figures when it gets to it.
 */
import type pg from 'pg';
import type { RunPlan } from '../../../lib/contracts/payloads.ts';
import { readOnly } from '../../adapters/transactions.ts';
import type { MaintainOptions } from './contract.ts';
import { decideIndex, decideTable, reportsFreeSpace } from './decide.ts';
import { findExactReader, readIndexFacts, readTableFacts } from './figures.ts';
import type { MaintenancePlanItem } from './plan-schema.ts';
import type { MaintainedTable } from './tables.ts';

export async function maintainPlan(
  db: pg.ClientBase,
  tables: readonly MaintainedTable[],
  options: MaintainOptions,
  request: { readonly cutoff: string; readonly timeoutMs: number; readonly refusals: RunPlan['refusals'] },
): Promise<RunPlan> {
  const items = await readOnly(db, request.timeoutMs, async () => {
    const exact = await findExactReader(db, options.exactBelowBytes);
    const items: MaintenancePlanItem[] = [];
    for (const target of tables) {
      const facts = await readTableFacts(db, target.oid, exact, true);
      if (!facts) continue;
      const decision = decideTable(facts, options);
      items.push({
        table: facts.table,
        statement: decision.statement,
        reason: decision.reason,
        ...(facts.bloat
          ? { method: facts.bloat.method, bloatPercent: facts.bloat.percent, bloatBytes: facts.bloat.bytes }
          : {}),
        sizeBytes: facts.sizeBytes,
        deadTuples: facts.deadTuples,
        lastAnalyzed: facts.lastAnalyzed,
      });
      if (decision.statement === 'skip') continue;
      for (const index of await readIndexFacts(db, facts, exact, true)) {
        const verdict = decideIndex(index, options);
        items.push({
          table: facts.table,
          index: index.index,
          statement: verdict.statement,
          reason: verdict.reason,
          ...(index.bloat
            ? { method: index.bloat.method, bloatPercent: index.bloat.percent, bloatBytes: index.bloat.bytes }
            : {}),
          sizeBytes: index.sizeBytes,
        });
      }
    }
    return items;
  });
  const due = items.filter((i) => i.statement !== 'none' && i.statement !== 'skip');
  return {
    cutoff: request.cutoff,
    eligibleRows: due.length,
    estimatedBytes: due
      .filter((i) => i.statement !== 'analyze')
      .reduce((sum, i) => sum + (i.bloatBytes ?? 0), 0),
    oldest: null,
    foreignKeys: [],
    explain: [],
    fullTableScan: false,
    partitions: [],
    warnings: [
      ...items
        .filter((i) => i.statement === 'skip')
        .map((i) => `${i.table}${i.index ? ` index ${i.index}` : ''} skipped: ${i.reason}`),
      // Free space VACUUM cannot give back: a finding for the operator, never a statement of ours.
      ...items.filter((i) => !i.index && reportsFreeSpace(i.reason)).map((i) => `${i.table}: ${i.reason}`),
    ],
    refusals: request.refusals,
    maintenance: items,
  };
}
