/**
 * An import's dry run (`plan`, `run --dry-run`): the source's rows, then up to `dryRunRows` of them inserted
 * exactly as a run would (the same statement, the same per-row validation) inside one transaction that is
 * always rolled back: counts of rows that would be imported, skipped (already there) and refused, with the
 * refusal reasons and a few source keys of each. Nothing stays written; what a rollback cannot undo is said
 * in the warnings (sequences advanced by the target's defaults).
 */
import type pg from 'pg';
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { RunPlan } from '../../../lib/contracts/payloads.ts';
import { nextKeys, prepareImportTransaction } from './chunk.ts';
import { insertBatch } from './row-validation.ts';
import { alreadyImportedSql, countSourceSql, type ImportShape, insertRangeSql } from './statements.ts';

const BATCH = 1000;
/** Keys shown per reason. */
const SAMPLE_KEYS = 5;

export async function importPlan(
  db: pg.ClientBase,
  /** The source as a table, inside the plan's transaction (an object source is staged there, then dropped). */
  prepareSource: (db: pg.ClientBase) => Promise<ImportShape>,
  options: {
    readonly dryRunRows: number;
    readonly cutoff: string;
    readonly timeoutMs: number;
    /** The source as the config names it (a table, or an object's URI). */
    readonly source: string;
  },
): Promise<RunPlan> {
  let shape: ImportShape | undefined;
  const totals = { examined: 0, inserted: 0, skipped: 0, rejected: 0 };
  const reasons = new Map<string, { rows: number; sampleKeys: string[][] }>();
  let sourceRows = 0;
  let timedOut = false;
  const deadline = Date.now() + options.timeoutMs;
  await db.query('BEGIN');
  try {
    // statement_timeout bounds each statement; the deadline bounds the whole validation.
    await db.query(`SELECT set_config('statement_timeout', $1, true)`, [`${options.timeoutMs}ms`]);
    shape = await prepareSource(db);
    await prepareImportTransaction(db, undefined);
    const statements = { insertSql: insertRangeSql(shape), alreadyImportedSql: alreadyImportedSql(shape) };
    const { rows } = await db.query<{ n: string }>(countSourceSql(shape));
    sourceRows = Number(rows[0]?.n ?? 0);
    let after: string[] = [];
    while (totals.examined < options.dryRunRows) {
      if (Date.now() > deadline) {
        timedOut = true;
        break;
      }
      const keys = await nextKeys(db, shape, after, Math.min(BATCH, options.dryRunRows - totals.examined));
      if (keys.length === 0) break;
      const outcome = await insertBatch(db, statements, keys);
      totals.examined += outcome.examined;
      totals.inserted += outcome.inserted;
      totals.skipped += outcome.skipped;
      totals.rejected += outcome.rejected.length;
      for (const reject of outcome.rejected) {
        const entry = reasons.get(reject.reason) ?? { rows: 0, sampleKeys: [] };
        entry.rows += 1;
        if (entry.sampleKeys.length < SAMPLE_KEYS) entry.sampleKeys.push([...reject.key]);
        reasons.set(reject.reason, entry);
      }
      after = keys[keys.length - 1] as string[];
    }
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
  }
  if (!shape) throw new Error('import plan: no source');
  const warnings: string[] = [];
  if (totals.examined < sourceRows) {
    warnings.push(
      `validated ${totals.examined} of ${sourceRows} source rows (${timedOut ? 'the dry run ran out of time' : `import.dryRunRows is ${options.dryRunRows}`}): the rest are counted by a real run`,
    );
  }
  warnings.push(
    `the dry run inserted rows into ${quoteQualified(shape.target.schema, shape.target.table)} and rolled them back: sequences its defaults call (serial, identity) advanced and are not rolled back`,
  );
  return {
    cutoff: options.cutoff,
    eligibleRows: sourceRows,
    estimatedBytes: 0,
    oldest: null,
    foreignKeys: [],
    explain: [],
    fullTableScan: false,
    partitions: [],
    warnings,
    refusals: [],
    import: {
      source: options.source,
      target: quoteQualified(shape.target.schema, shape.target.table),
      sourceRows,
      validatedRows: totals.examined,
      valid: totals.inserted,
      alreadyImported: totals.skipped,
      invalid: totals.rejected,
      reasons: [...reasons.entries()]
        .map(([reason, entry]) => ({ reason, rows: entry.rows, sampleKeys: entry.sampleKeys }))
        .sort((a, b) => b.rows - a.rows),
    },
  };
}
