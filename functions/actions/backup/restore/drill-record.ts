/**
 * `lifecycle.restore_drills` (sql/010): a drill is recorded as running before it restores anything, so that one
 * that never finishes (a killed process) still shows, and finished with its result. Every write is its own
 * statement outside the drill's transactions. Names, counts and checksums only, never row values.
 */
import type { Queryable } from '../../../adapters/transactions.ts';

/** One table of a drill: what the manifest expects and what the restored copy held (absent: not reached). */
export interface DrillTable {
  readonly table: string;
  readonly expected: { readonly rows: number; readonly contentChecksum: string };
  readonly found: { readonly rows: number; readonly contentChecksum: string } | null;
  readonly ok: boolean;
}

export interface DrillFinish {
  readonly drillId: string;
  readonly status: 'passed' | 'failed';
  readonly durationMs: number;
  readonly tables: readonly DrillTable[];
  readonly error: string | undefined;
}

/** Where drills are recorded. */
export interface DrillLedger {
  startDrill(drill: { drillId: string; policy: string; backupId: string }): Promise<void>;
  finishDrill(drill: DrillFinish): Promise<void>;
  /** Drills still `running` that started before `olderThanMs` ago: killed ones (their scratch copy is left). */
  abandonedDrills?(olderThanMs: number): Promise<string[]>;
  /** Marks a killed drill failed, saying what became of its scratch schema. */
  markAbandoned?(drillId: string, note: string): Promise<void>;
}

/** The ledger's restore_drills table on `db`. */
export function restoreDrillsLedger(db: Queryable): DrillLedger {
  return {
    async startDrill(drill) {
      await db.query(
        'INSERT INTO lifecycle.restore_drills (drill_id, policy, backup_id) VALUES ($1, $2, $3)',
        [drill.drillId, drill.policy, drill.backupId],
      );
    },
    async abandonedDrills(olderThanMs) {
      const { rows } = await db.query<{ drill_id: string }>(
        `SELECT drill_id::text FROM lifecycle.restore_drills
          WHERE status = 'running' AND started_at < clock_timestamp() - make_interval(secs => $1)`,
        [olderThanMs / 1000],
      );
      return rows.map((r) => r.drill_id);
    },
    async markAbandoned(drillId, note) {
      await db.query(
        `UPDATE lifecycle.restore_drills SET status = 'failed', finished_at = clock_timestamp(), error = $2
          WHERE drill_id = $1 AND status = 'running'`,
        [drillId, note],
      );
    },
    async finishDrill(drill) {
      await db.query(
        `UPDATE lifecycle.restore_drills
            SET finished_at = clock_timestamp(), status = $2, duration_ms = $3, tables = $4::jsonb, error = $5
          WHERE drill_id = $1`,
        [drill.drillId, drill.status, drill.durationMs, JSON.stringify(drill.tables), drill.error ?? null],
      );
    },
  };
}
