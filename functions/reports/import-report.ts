/**
 * The validation report of an import policy (`pg-lifecycle import report`): its recent runs with what each
 * examined, inserted, skipped (already imported) and rejected, and the source rows the target still refuses,
 * grouped by reason with a few of their source keys. Read only (one READ ONLY transaction); prints nothing.
 * Rejects are the rows no run has imported yet: a row imported later (source or target fixed) leaves them.
 */
import { type Queryable, readOnly } from '../adapters/transactions.ts';

const REPORT_TIMEOUT_MS = 30_000;

export interface ImportRunFigures {
  readonly runId: string;
  readonly status: string;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly examined: number;
  readonly inserted: number;
  readonly skipped: number;
  readonly rejected: number;
}

export interface RejectReason {
  readonly sqlstate: string;
  readonly reason: string;
  readonly rows: number;
  /** A few source keys (values as text, in key order), oldest rejects first. */
  readonly sampleKeys: ReadonlyArray<ReadonlyArray<string>>;
}

export interface ImportReport {
  readonly policy: string;
  readonly runs: readonly ImportRunFigures[];
  /** Source rows refused and not imported since. */
  readonly outstandingRejects: number;
  readonly reasons: readonly RejectReason[];
}

export async function importReport(
  db: Queryable,
  policy: string,
  options: { readonly runs?: number; readonly samples?: number } = {},
): Promise<ImportReport> {
  return readOnly(db, REPORT_TIMEOUT_MS, async () => {
    const runs = await db.query<{
      run_id: string;
      status: string;
      started_at: string;
      finished_at: string | null;
      examined: string;
      inserted: string;
      skipped: string;
      rejected: string;
    }>(
      `SELECT r.run_id::text, r.status, to_json(r.started_at) #>> '{}' AS started_at,
              to_json(r.finished_at) #>> '{}' AS finished_at,
              coalesce(i.examined, 0)::text AS examined, coalesce(i.inserted, 0)::text AS inserted,
              coalesce(i.skipped, 0)::text AS skipped, coalesce(i.rejected, 0)::text AS rejected
         FROM lifecycle.runs r LEFT JOIN lifecycle.import_runs i USING (run_id)
        WHERE r.policy = $1 AND r.action = 'import'
        ORDER BY r.started_at DESC LIMIT $2`,
      [policy, options.runs ?? 10],
    );
    const reasons = await db.query<{ sqlstate: string; reason: string; rows: string; keys: string }>(
      `SELECT sqlstate, reason, count(*)::text AS rows,
              to_jsonb((array_agg(source_key ORDER BY first_rejected_at, source_key))[1:$2])::text AS keys
         FROM lifecycle.import_rejects WHERE policy = $1
        GROUP BY sqlstate, reason ORDER BY count(*) DESC, sqlstate, reason`,
      [policy, options.samples ?? 5],
    );
    const parsedReasons = reasons.rows.map((r) => ({
      sqlstate: r.sqlstate,
      reason: r.reason,
      rows: Number(r.rows),
      sampleKeys: JSON.parse(r.keys) as string[][],
    }));
    return {
      policy,
      runs: runs.rows.map((r) => ({
        runId: r.run_id,
        status: r.status,
        startedAt: r.started_at,
        finishedAt: r.finished_at,
        examined: Number(r.examined),
        inserted: Number(r.inserted),
        skipped: Number(r.skipped),
        rejected: Number(r.rejected),
      })),
      outstandingRejects: parsedReasons.reduce((sum, r) => sum + r.rows, 0),
      reasons: parsedReasons,
    };
  });
}
