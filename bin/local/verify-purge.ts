/**
 * Independent verification of a purge run, as the demo reports it: the table lost exactly the rows the
 * run reports (before = after + purged) and no row eligible at the run's cutoff remains.
 */
import type pg from 'pg';
import { buildCountEligibleStatement } from '../../functions/core/chunk-sql.ts';
import { prepareTarget } from '../../functions/run/prepare-target.ts';
import type { PurgePolicy } from '../../lib/contracts/config.ts';

export interface PurgeVerification {
  readonly ok: boolean;
  readonly problems: string[];
  readonly eligibleLeft: number;
}

export async function verifyPurgeRun(
  db: pg.Client,
  policy: PurgePolicy,
  run: { cutoff: string; rowsBefore: number; rowsAfter: number; rowsPurged: number },
): Promise<PurgeVerification> {
  const problems: string[] = [];
  if (run.rowsBefore !== run.rowsAfter + run.rowsPurged) {
    problems.push(
      `rows before (${run.rowsBefore}) ≠ rows after (${run.rowsAfter}) + purged (${run.rowsPurged})`,
    );
  }
  const prepared = await prepareTarget(db, policy);
  const { rows } = await db.query<{ rows: string }>(buildCountEligibleStatement(prepared.target), [
    run.cutoff,
  ]);
  const eligibleLeft = Number(rows[0]?.rows ?? 0);
  if (eligibleLeft > 0) problems.push(`${eligibleLeft} rows eligible at the cutoff remain`);
  return { ok: problems.length === 0, problems, eligibleLeft };
}
