/**
 * The runtime half of an action: everything a run does differently per action. The generic steps
 * (functions/run: Start, Chunk, Finish, RecordFailure) call these hooks in a fixed order and never name an
 * action; the registry (`registry.ts`) maps each policy's `action` to its module. The pure half (config
 * schema, what the stack grants) is the action's contract (`<action>/contract.ts`).
 *
 * Order of a run: Start [`prepareStart` (every check, the plan of a dry run) → `initialBatchRows` →
 * migrations → `beforeLease` → lease + run row] → Chunk steps [partition units through `partitions`, then
 * `chunkAction` prepare?/take/complete per chunk] → Finish [`finish`] or RecordFailure [`afterFailure`].
 * Actions over the time-cutoff source (archive, purge) share their Start: sources/time-cutoff-start.ts.
 */
import type pg from 'pg';
import type { Chunking } from '../../lib/contracts/chunking.ts';
import type {
  BackupRunSummary,
  ExecutionInput,
  Maintenance,
  PlanForeignKey,
  RunPlan,
  RunState,
} from '../../lib/contracts/payloads.ts';
import type { Policy } from '../../lib/contracts/policy.ts';
import type { Ledger, RunRow } from '../adapters/ledger/index.ts';
import type { Queryable } from '../adapters/transactions.ts';
import type { ChunkTarget } from '../core/chunk-sql.ts';
import type { MissingPrivilege } from '../core/errors.ts';
import type { ForeignKeyDecision } from '../core/foreign-keys.ts';
import type { TablePrivileges } from '../core/privileges.ts';
import type { StepDependencies } from '../run/dependencies.ts';
import type { PartitionStrategy } from '../run/partitions/strategy.ts';
import type { PreparedTarget } from '../run/prepare-target.ts';
import type { TableWorkSource, WorkSource } from '../sources/work-source.ts';
import type { ChunkAction } from './chunk-action.ts';

/** What Start hands the action: its connection, the validated input. */
export interface StartRequestContext<P extends Policy> {
  readonly db: pg.Client;
  readonly deps: StepDependencies;
  readonly input: ExecutionInput;
  readonly policy: P;
}

/**
 * What the action found at Start, every check done and nothing written: what the run row records, and the
 * work left for Start (the plan of a dry run; for a real run the first chunk size, then work before the lease).
 */
export interface PreparedStart {
  /** The run row's `table_name` and, for the time-cutoff source, its time column. */
  readonly record: { readonly tableName: string; readonly timeColumn?: string | undefined };
  /** The run's bound, fixed once (the time cutoff). */
  readonly cutoff: string;
  /** A dry run's plan, read only. */
  plan(): Promise<RunPlan>;
  /** First chunk size: the chunking's initialRows, or fewer when rows are wide and held in memory. */
  initialBatchRows(): Promise<number>;
  /**
   * Idempotent work before the lease is taken (a failure leaves nothing to clean up): the Glue table.
   * Returns what the run row records at start.
   */
  beforeLease(): Promise<{ readonly tableRowsBefore?: number }>;
  /**
   * What the run fixes at its start for its steps to read back (`runs.detail`, `RunRow.detail`): a backup's
   * id and tables. JSON; never row values.
   */
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** Start's context for the time-cutoff hooks: also the resolved table and the run's cutoff. */
export interface StartContext<P extends Policy> extends StartRequestContext<P> {
  readonly prepared: PreparedTarget;
  readonly cutoff: string;
}

/** What a Chunk step gives the action to build its chunk work with. */
export interface ChunkContext<P extends Policy> {
  readonly deps: StepDependencies;
  readonly policy: P;
  /** The step's autocommit connection (announcements that must survive a chunk's rollback). */
  readonly side: pg.Client;
  readonly sideLedger: Ledger;
  /** The run as the ledger holds it at the step's start (its cursor, what Start fixed in `detail`). */
  readonly run: RunRow;
  /** The run's resolved chunking (timeouts of the connections the action opens). */
  readonly chunking: Chunking;
}

export interface FinishContext<P extends Policy> {
  readonly deps: StepDependencies;
  readonly db: Queryable;
  readonly state: RunState & { readonly policy: P };
}

export interface FailureContext {
  readonly deps: StepDependencies;
  readonly db: Queryable;
  readonly runId: string;
  /** The failed run's policy as it arrived (loosely parsed: the failure may be that it did not parse). */
  readonly policy: unknown;
}

/** How the action reads foreign keys pointing at its table. */
export interface ForeignKeyRule {
  /** The refusal a real run would stop with (ForeignKeyError), for the plan; undefined when none. */
  planRefusal(prepared: PreparedTarget, decision: ForeignKeyDecision): string | undefined;
  /** Whether rows still referenced through NO ACTION / RESTRICT make chunks fail (a plan warning). */
  warnsOfReferencedRows(foreignKey: PlanForeignKey): boolean;
}

export interface ActionModule<P extends Policy = Policy> {
  readonly action: P['action'];
  /** Where the run's work comes from (the rows it walks) and how its cursor reads. */
  readonly source: WorkSource<P>;
  /**
   * Start's reading of the database: every check a real run must pass before anything is written (in a dry
   * run the plan lists the refusals instead); refusals are named errors.
   */
  prepareStart(ctx: StartRequestContext<P>): Promise<PreparedStart>;
  /**
   * A run continuing in a new execution: what may have changed since it started, checked again (the table
   * still there, the filter's functions still safe). Required: a module with nothing to recheck says so.
   */
  recheckContinuation(ctx: StartRequestContext<P>): Promise<void>;
  /** The chunk work of one Chunk step. */
  chunkAction(ctx: ChunkContext<P>): ChunkAction;
  /**
   * Each Chunk step claims the run and only its chunks commit: an older invocation that outlived its step (a
   * Lambda timed out, frozen and thawed) can no longer commit. Needed where such a commit would list work twice
   * (a backup's parts: its rows are read, not taken); archive and purge take their rows with the commit, so an
   * older invocation's chunk is work done, and fencing it would only stall a run whose steps keep timing out.
   */
  readonly fencesStaleSteps?: boolean;
  /**
   * False: the chunks of a step run one after another on one connection. By default the loop takes the next
   * chunk on a second connection while this one completes outside the database (an archive encodes and
   * uploads); an action that completes nothing there gains only the overlap of a COMMIT, and pays for a
   * second backend per worker (its connection, and on a server without huge pages the page faults of a fresh
   * process touching shared buffers: measured 2× the DELETE time per row in the purge benchmark).
   */
  readonly overlapsChunks?: boolean;
  /**
   * Whole-partition retirement, for actions that take every row of a partition before the cutoff. Without
   * it no partition is ever detached or dropped, whatever the table or the policy's `partitions` say.
   */
  readonly partitions?: PartitionStrategy;
  /** Seconds Finish's lease must outlast beyond the usual TTL (work in `finish` that sends no heartbeat). */
  finishLeaseSeconds?(policy: P, remainingMs: number): number;
  /** Finish, before the run closes (under the lease): VACUUM, object locks. */
  finish?(
    ctx: FinishContext<P>,
  ): Promise<{ readonly maintenance?: Maintenance; readonly backup?: BackupRunSummary }>;
  /** RecordFailure, after the run is marked failed; must not throw (the failure record matters more). */
  afterFailure?(ctx: FailureContext): Promise<void>;
}

/**
 * The hooks of an action over the time-cutoff source: what sources/time-cutoff-start.ts asks while it runs
 * the shared Start (privileges, filter, EXPLAIN, full-scan check, plan).
 */
export interface TimeCutoffHooks<P extends Policy = Policy> {
  /** Table privileges a real run needs and lacks (SELECT, UPDATE for row locks, DELETE...), with reasons. */
  missingTablePrivileges(facts: TablePrivileges): MissingPrivilege[];
  /** Whether Finish may VACUUM the table (a role that cannot is warned of, not refused). */
  vacuumsAfterRun?(policy: P): boolean;
  /** The statement Start EXPLAINs ($1 cutoff, $2 limit): what each chunk's search looks like. */
  explainStatement(target: ChunkTarget): string;
  readonly foreignKeys: ForeignKeyRule;
  /**
   * The action's own checks, after the shared ones and before anything is written: foreign keys, the
   * bucket. Runs in a dry run too; it decides what a dry run checks (a preflight).
   */
  checkStart(ctx: StartContext<P>): Promise<void>;
  initialBatchRows(ctx: StartContext<P>): Promise<number>;
  beforeLease?(ctx: StartContext<P>): Promise<{ readonly tableRowsBefore?: number }>;
  readonly partitions?: PartitionStrategy;
}

/**
 * A module over the time-cutoff source: its hooks are on the module itself, and its prepareStart reads them
 * through `this` (so a copy with a hook replaced, as the contract tests make, runs with the replacement).
 * Call it as a method, never detached.
 */
export type TimeCutoffModule<P extends Policy = Policy> = ActionModule<P> &
  TimeCutoffHooks<P> & { readonly source: TableWorkSource<P> };
