/**
 * Maintain's chunk: the statements run in `prepare`, before the chunk loop's transaction opens, on a
 * connection of the action's own in autocommit (VACUUM and REINDEX CONCURRENTLY cannot run in a transaction
 * block), one statement at a time; `take` records what they did in the chunk's transaction together with the
 * cursor, like the archive phase of a subject erasure. A chunk looks at units of the run's work list in order —
 * a table (ANALYZE, VACUUM), then each of its indexes (REINDEX) — until it has run one statement: a chunk holds
 * at most one maintenance statement, so the loop's time budget sees each one, and no two run at once.
 *
 * The cursor is the whole-table source's `table-parts`: `table` indexes the list fixed at Start
 * (`runs.detail.tables`); `part` 1 is the table itself, `part` k + 2 its k-th rebuildable index by name. A step
 * with too little time left for a statement ends without a chunk and the next step goes on from the cursor; so
 * does one whose statement the step's deadline cut short, the first time (the next step retries it once). A
 * database-wide advisory lock keeps two maintain runs from running statements at once.
 */
import type pg from 'pg';
import type { Chunking } from '../../../lib/contracts/chunking.ts';
import type { TablePartsCursor } from '../../../lib/contracts/work-cursor.ts';
import { pgBool } from '../../adapters/catalog.ts';
import type { RunRow } from '../../adapters/ledger/index.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { InvalidPayloadError } from '../../core/errors.ts';
import type { StepDependencies } from '../../run/dependencies.ts';
import type { ChunkAction, ChunkInput, CompletedChunk, PreparedChunk, TakenChunk } from '../chunk-action.ts';
import type { MaintainPolicy } from './contract.ts';
import { type ExactReader, findExactReader } from './figures.ts';
import { type MaintenanceEntry, recordMaintenanceEntries } from './ledger.ts';
import { CLEANUP_TIMEOUT_MS } from './statements.ts';
import type { MaintainedTable } from './tables.ts';
import { type Fit, maintainIndex, maintainTable, type UnitResult, type WorkContext } from './work.ts';

/** Kept back from the step's deadline for the chunk's commit and the step's end. */
const STEP_MARGIN_MS = 15_000;
/** Below this no statement is started but in a step's first chunk: it would likely be cancelled. */
const MIN_STATEMENT_MS = 5_000;
/** statement_timeout and lock_timeout of the connection that watches a VACUUM or ANALYZE for lock waiters. */
const WATCHER_TIMEOUT_MS = 5_000;

/** statement_timeout 0 would mean no limit. */
const MIN_TIMEOUT_MS = 1_000;
/**
 * A statement starts in a step's later chunk only with this share of what a whole step gives it (or its
 * timeoutMs when that is less); otherwise the step ends and the next one starts it.
 */
const WHOLE_STEP_SHARE = 0.9;
/** A REINDEX CONCURRENTLY is not started with less than this (timeoutMs when lower), its clean-up's reserve aside. */
const MIN_REINDEX_MS = 10_000;
/** Seconds a step waits when another maintain run holds the maintenance lock. */
const BUSY_WAIT_SECONDS = 30;
/**
 * The database-wide advisory lock a maintain step holds while it looks at units and runs a statement: two
 * maintain policies (or a duplicated step) never run statements at once.
 */
export const MAINTAIN_LOCK_SQL = "hashtext('pg-lifecycle maintain')";
/** Units looked at in one chunk when none needs a statement (each costs a few catalog reads). */
const MAX_UNITS_PER_CHUNK = 50;

interface Prepared {
  readonly entries: readonly MaintenanceEntry[];
  readonly next: TablePartsCursor;
  /** Units looked at: 0 only past the end of the list. */
  readonly examined: number;
}

/** What Start fixes in `runs.detail` for the steps: the ordered work list. */
export interface MaintainRunDetail {
  readonly tables: readonly MaintainedTable[];
}

export function readMaintainDetail(run: RunRow): MaintainRunDetail {
  const tables = run.detail?.tables;
  if (
    !Array.isArray(tables) ||
    !tables.every((t) => typeof t?.oid === 'string' && typeof t?.table === 'string')
  )
    throw new InvalidPayloadError(`run ${run.runId} has no maintain work list in its detail`);
  return { tables: tables as MaintainedTable[] };
}

export class MaintainChunkAction implements ChunkAction<TakenChunk, Prepared> {
  private db: pg.Client | undefined;
  private exact: ExactReader | undefined | null = null;
  private readonly tables: readonly MaintainedTable[];

  constructor(
    private readonly deps: StepDependencies,
    private readonly policy: MaintainPolicy,
    run: RunRow,
    private readonly chunking: Chunking,
  ) {
    this.tables = readMaintainDetail(run).tables;
  }

  /** Whether this step has prepared a chunk already (its first always gets to run a statement). */
  private startedStep = false;
  /** This prepare is the step's first: a statement it needs starts now whatever time the step has. */
  private firstChunk = false;
  /** What the step had for statements at its first prepare: what a whole step gives a statement. */
  private stepAvailableMs: number | undefined;

  /** Milliseconds the step has left for a statement: its deadline less the margin (timeoutMs aside). */
  private availableMs(): number {
    return this.deps.remainingMs() - STEP_MARGIN_MS;
  }

  /** What a statement started now may take: timeoutMs, within the step's deadline (1 s at the least). */
  private budgetMs(): number {
    return Math.max(MIN_TIMEOUT_MS, Math.min(this.policy.maintain.timeoutMs, this.availableMs()));
  }

  /**
   * Whether a statement gets the time it would need if started now: its timeoutMs, or nearly what a whole step
   * gives (a step in AWS is shorter than timeoutMs may be). If not, the step ends and the next one starts it
   * with a whole budget; a step's first chunk always starts it. A REINDEX needs its clean-up's reserve on top,
   * and never starts when a whole step cannot give it MIN_REINDEX_MS.
   */
  private fits(statement: 'vacuum' | 'analyze' | 'reindex'): Fit {
    const timeoutMs = this.policy.maintain.timeoutMs;
    const available = this.availableMs();
    const whole = this.stepAvailableMs ?? available;
    if (statement === 'reindex') {
      if (whole - CLEANUP_TIMEOUT_MS < Math.min(timeoutMs, MIN_REINDEX_MS)) return 'never';
      if (this.firstChunk) return 'now';
      const needed = Math.min(timeoutMs, WHOLE_STEP_SHARE * (whole - CLEANUP_TIMEOUT_MS));
      return available - CLEANUP_TIMEOUT_MS >= needed ? 'now' : 'later';
    }
    if (this.firstChunk) return 'now';
    return available >= Math.min(timeoutMs, WHOLE_STEP_SHARE * whole) ? 'now' : 'later';
  }

  async prepare(input: ChunkInput): Promise<PreparedChunk<Prepared>> {
    const cursor = input.cursor;
    if (cursor !== null && cursor.kind !== 'table-parts')
      throw new InvalidPayloadError(`a maintain run cannot resume from a ${cursor.kind} cursor`);
    let at: TablePartsCursor = cursor ?? { kind: 'table-parts', table: 0, part: 1 };
    if (at.table >= this.tables.length) return { ready: { entries: [], next: at, examined: 0 } };
    // Not enough time for a statement: end the step; the next one starts with a whole budget. Never in a
    // step's first chunk, or a step shorter than the margin would never get anything done.
    if (this.startedStep && this.budgetMs() < MIN_STATEMENT_MS) return { waitSeconds: 0 };
    this.firstChunk = !this.startedStep;
    this.startedStep = true;
    this.stepAvailableMs ??= this.availableMs();
    const ctx = await this.context(input.runId);
    // Another maintain run (another policy, or a duplicated step) is at work: wait, the cursor where it is.
    if (!(await this.lock(ctx.db))) return { waitSeconds: BUSY_WAIT_SECONDS };
    try {
      const entries: MaintenanceEntry[] = [];
      let examined = 0;
      while (at.table < this.tables.length && examined < MAX_UNITS_PER_CHUNK) {
        const target = this.tables[at.table] as MaintainedTable;
        const nextTable: TablePartsCursor = { kind: 'table-parts', table: at.table + 1, part: 1 };
        let result: UnitResult;
        if (at.part === 1) {
          result = await maintainTable(ctx, target);
          if (!result.stay)
            at = result.skipIndexes ? nextTable : { kind: 'table-parts', table: at.table, part: 2 };
        } else {
          result = await maintainIndex(ctx, target, at.part - 2);
          if (result.missing) {
            at = nextTable;
            continue;
          }
          if (!result.stay) at = { kind: 'table-parts', table: at.table, part: at.part + 1 };
        }
        if (result.stay && result.entries.length === 0) {
          // Too little of the step left for the statement the unit needs: the next step starts it.
          if (examined === 0) return { waitSeconds: 0 };
          break;
        }
        examined += 1;
        entries.push(...result.entries);
        if (result.ran || result.stay || this.budgetMs() < MIN_STATEMENT_MS) break;
      }
      return { ready: { entries, next: at, examined } };
    } finally {
      await this.unlock(ctx.db);
    }
  }

  /** Takes the maintenance lock without waiting; false when another session holds it. */
  private async lock(db: pg.Client): Promise<boolean> {
    const { rows } = await db.query<{ locked: boolean | string }>(
      `SELECT pg_try_advisory_lock(${MAINTAIN_LOCK_SQL}) AS locked`,
    );
    return rows[0] !== undefined && pgBool(rows[0].locked);
  }

  private async unlock(db: pg.Client): Promise<void> {
    await db.query(`SELECT pg_advisory_unlock(${MAINTAIN_LOCK_SQL})`).catch(() => undefined);
  }

  async take(
    tx: Queryable,
    input: ChunkInput,
    prepared: Prepared | undefined,
  ): Promise<TakenChunk | undefined> {
    if (!prepared || prepared.examined === 0) return undefined;
    await recordMaintenanceEntries(tx, input.runId, this.policy.name, prepared.entries);
    const statements = prepared.entries.filter((e) => e.statement !== 'skip');
    for (const entry of prepared.entries) {
      const fields = { runId: input.runId, policy: this.policy.name, ...entry };
      if (entry.outcome === 'done' || entry.outcome === 'skipped') this.deps.log.info('maintenance', fields);
      else this.deps.log.warn('maintenance incomplete', fields);
    }
    return {
      rows: statements.length,
      cursor: prepared.next,
      minTime: null,
      maxTime: null,
      minKey: null,
      maxKey: null,
    };
  }

  async complete(): Promise<CompletedChunk> {
    return { bytes: 0, objects: [] };
  }

  async close(): Promise<void> {
    await this.db?.end().catch(() => undefined);
    this.db = undefined;
  }

  private async context(runId: string): Promise<WorkContext> {
    this.db ??= await this.deps.connect(this.chunking);
    if (this.exact === null)
      this.exact = await findExactReader(this.db, this.policy.maintain.exactBelowBytes);
    return {
      db: this.db,
      runId,
      options: this.policy.maintain,
      lockTimeoutMs: this.chunking.lockTimeoutMs,
      availableMs: () => this.availableMs(),
      stepMs: () => this.stepAvailableMs ?? this.availableMs(),
      fits: (statement) => this.fits(statement),
      openWatcher: () =>
        this.deps.connect({ lockTimeoutMs: WATCHER_TIMEOUT_MS, statementTimeoutMs: WATCHER_TIMEOUT_MS }),
      exact: this.exact,
    };
  }
}
