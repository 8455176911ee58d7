/**
 * `pg-lifecycle unlock --policy P [--force] [--reason TEXT]`: releases a policy's lease whose holder is
 * provably gone, so that a killed run does not block its policy until the lease expires.
 *
 * Proof of a holder's end:
 * - a local run: the lease names the backend of a connection the runner kept open for its whole life
 *   (pid + backend_start); that backend no longer exists (no such pid, or the pid belongs to a later one);
 * - a run in Step Functions: its execution (runs.execution_id, followed through ContinueAsNew, whose
 *   executions are named `<runId>-g<n>`) is no longer running (DescribeExecution);
 * - or the lease has expired, or its run already ended in the ledger.
 * Anything else is refused (exit 1, saying who holds the lease and why it looks alive) unless `--force`.
 *
 * A release deletes the lease, marks the run failed (LeaseReleased, naming the operator and the reason) and
 * records itself in lifecycle.lease_releases, in one transaction. A run released while still alive stops
 * at its next ledger write (LeaseLostError); the next run's Finish removes objects it left unlisted.
 */
import { DescribeExecutionCommand, type DescribeExecutionCommandOutput } from '@aws-sdk/client-sfn';
import type pg from 'pg';
import { type LeaseState, readLease, releaseByOperator } from '../../functions/adapters/ledger/leases.ts';
import { checkKnownPolicy, requireLedger, requireMigratedLedger } from './ledger-checks.ts';

/** The one Step Functions call unlock makes (an SFNClient; a fake in tests). */
export interface ExecutionDescriber {
  send(command: DescribeExecutionCommand): Promise<DescribeExecutionCommandOutput>;
}

export interface UnlockOptions {
  readonly policy: string;
  readonly force: boolean;
  readonly reason: string | undefined;
  /** The operator's OS user, recorded next to the database role. */
  readonly osUser: string;
  /** A Step Functions client for an execution's region; only called for runs in AWS. */
  readonly sfnFor: (region: string) => ExecutionDescriber;
}

export type HolderState = 'gone' | 'alive' | 'unknown';

export interface UnlockResult {
  readonly policy: string;
  /**
   * `released`; `no-lease` (nothing to do); `refused`: the holder looks alive or cannot be proven gone and
   * --force was not given; `changed`: another run or unlock changed the lease meanwhile.
   */
  readonly outcome: 'released' | 'no-lease' | 'refused' | 'changed';
  readonly released: boolean;
  readonly runId?: string | undefined;
  readonly holder?: string | undefined;
  readonly holderState?: HolderState | undefined;
  readonly evidence?: string | undefined;
  readonly forced?: boolean | undefined;
  readonly reason?: string | undefined;
  readonly releasedBy?: { readonly role: string; readonly osUser: string } | undefined;
  readonly leaseExpiresAt?: string | undefined;
  /** One line for people. */
  readonly message: string;
}

interface Verdict {
  readonly state: HolderState;
  readonly holder: string;
  readonly evidence: string;
}

/** Fake ARN of the local runner's executions (functions/local-runner/local-runner.ts). */
const LOCAL_EXECUTION = /:execution:pg-lifecycle-local:/;
/** ContinueAsNew chains are bounded by the execution timeout; this only stops a corrupt chain. */
const MAX_CONTINUATIONS = 1000;

export async function unlockCommand(db: pg.Client, options: UnlockOptions): Promise<UnlockResult> {
  const { policy } = options;
  const database = await requireLedger(db);
  // The lease's holder columns and the audit table come with sql/007. No DDL here: a pending ALTER of
  // lifecycle.leases would queue an exclusive lock behind a live run, and that run's heartbeat behind it.
  await requireMigratedLedger(db, database, 'unlock');
  const lease = await readLease(db, policy);
  if (!lease) {
    await checkKnownPolicy(db, policy, database);
    return {
      policy,
      outcome: 'no-lease',
      released: false,
      message: `policy ${policy} holds no lease: nothing to unlock`,
    };
  }
  // The Step Functions calls happen before the lease row is locked: a live run's heartbeat never waits on them.
  const executions = new Map<string, Verdict>();
  const verdict = await judgeHolder(lease, (arn) =>
    describeChain(options.sfnFor, arn, lease.runId, executions),
  );
  if (verdict.state !== 'gone' && !options.force) return refusal(lease, verdict);

  await db.query('BEGIN');
  try {
    await db.query(`SET LOCAL lock_timeout = '10s'`);
    await db.query(`SET LOCAL statement_timeout = '30s'`);
    const locked = await readLease(db, policy, { forUpdate: true });
    if (!locked || locked.runId !== lease.runId || locked.acquiredAt !== lease.acquiredAt) {
      await db.query('ROLLBACK');
      return {
        policy,
        outcome: 'changed',
        released: false,
        message: `the lease of policy ${policy} changed while unlock checked it (now: ${locked ? `run ${locked.runId}` : 'none'}); run unlock again`,
      };
    }
    // Re-judged under the lock: a backend check is one cheap query; an execution's end is final (cached).
    const final = await judgeHolder(locked, (arn) =>
      describeChain(options.sfnFor, arn, locked.runId, executions),
    );
    if (final.state !== 'gone' && !options.force) {
      await db.query('ROLLBACK');
      return refusal(locked, final);
    }
    const forced = final.state !== 'gone';
    const { role } = await releaseByOperator(db, {
      policy,
      runId: locked.runId,
      forced,
      reason: options.reason,
      osUser: options.osUser,
      holder: final.holder,
      evidence: final.evidence,
    });
    await db.query('COMMIT');
    return {
      policy,
      outcome: 'released',
      released: true,
      runId: locked.runId,
      holder: final.holder,
      holderState: final.state,
      evidence: final.evidence,
      forced,
      reason: options.reason,
      releasedBy: { role, osUser: options.osUser },
      leaseExpiresAt: locked.expiresAt,
      message:
        `released the lease of policy ${policy}${forced ? ' by force' : ''}: run ${locked.runId} (${final.holder}) ` +
        `${final.evidence}. The run is marked failed (LeaseReleased)` +
        `${forced ? ' and stops at its next ledger write if it is still working' : ''}; ` +
        'the next run removes objects it left unlisted.',
    };
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

function refusal(lease: LeaseState, verdict: Verdict): UnlockResult {
  const why =
    verdict.state === 'alive' ? 'which looks alive' : 'and pg-lifecycle cannot prove that it is gone';
  return {
    policy: lease.policy,
    outcome: 'refused',
    released: false,
    runId: lease.runId,
    holder: verdict.holder,
    holderState: verdict.state,
    evidence: verdict.evidence,
    leaseExpiresAt: lease.expiresAt,
    message:
      `policy ${lease.policy} is held by run ${lease.runId} (${verdict.holder}), ${why}: ${verdict.evidence}. ` +
      `Its lease runs until ${lease.expiresAt} unless renewed. Stop that run, or release it anyway with ` +
      '--force (it then stops at its next ledger write).',
  };
}

/** Who holds the lease, and whether it is provably gone. */
async function judgeHolder(
  lease: LeaseState,
  describe: (executionArn: string) => Promise<Verdict>,
): Promise<Verdict> {
  const execution = lease.executionId;
  const holder = lease.holder
    ? `local run, database backend pid ${lease.holder.pid} started ${lease.holder.backendStart}`
    : execution
      ? `execution ${execution}`
      : 'no recorded holder';
  if (lease.runStatus !== 'running') {
    return {
      state: 'gone',
      holder,
      evidence: `has already ended in the ledger (${lease.runStatus ?? 'no run row'})`,
    };
  }
  if (lease.expired) {
    return {
      state: 'gone',
      holder,
      evidence: `stopped renewing its lease, which expired at ${lease.expiresAt} (the next run would take it over)`,
    };
  }
  if (lease.holder && lease.backend) {
    const b = lease.backend;
    const seen = [
      b.applicationName && `"${b.applicationName}"`,
      b.user && `user ${b.user}`,
      b.clientAddr && `from ${b.clientAddr}`,
    ]
      .filter(Boolean)
      .join(', ');
    switch (b.state) {
      case 'gone':
        return {
          state: 'gone',
          holder,
          evidence: `is gone: no database backend has pid ${lease.holder.pid} any more`,
        };
      case 'pid-reused':
        return {
          state: 'gone',
          holder,
          evidence: `is gone: pid ${lease.holder.pid} now belongs to a later backend (another start time)`,
        };
      case 'alive':
        return {
          state: 'alive',
          holder,
          evidence: `its backend is still connected${seen ? ` (${seen})` : ''}`,
        };
      case 'unreadable':
        return {
          state: 'unknown',
          holder,
          evidence:
            `a backend with pid ${lease.holder.pid} exists${seen ? ` (${seen})` : ''} but this role may not read its ` +
            'start time, so it may be the holder (grant pg_read_all_stats, or unlock as the role that ran it)',
        };
    }
  }
  if (execution && LOCAL_EXECUTION.test(execution)) {
    return {
      state: 'unknown',
      holder,
      evidence:
        'this local run recorded no database backend (an older pg-lifecycle), so its process cannot be checked',
    };
  }
  if (execution) return describe(execution);
  return {
    state: 'unknown',
    holder,
    evidence: 'the run recorded neither an execution nor a database backend',
  };
}

/** The execution serving a run next: ContinueAsNew names it `<runId>-g<generation>`. */
export function continuationArn(executionArn: string, runId: string): string | undefined {
  const parts = executionArn.split(':');
  if (parts.length !== 8 || parts[5] !== 'execution') return undefined;
  const generation = new RegExp(`^${runId}-g(\\d+)$`).exec(parts[7] ?? '');
  return [...parts.slice(0, 7), `${runId}-g${generation ? Number(generation[1]) + 1 : 2}`].join(':');
}

/**
 * Follows the run's executions: RUNNING (or PENDING_REDRIVE) is alive; FAILED, TIMED_OUT or ABORTED is gone;
 * SUCCEEDED either finished the run (which would have released the lease) or continued in a new execution,
 * which is then checked in turn.
 */
async function describeChain(
  sfnFor: (region: string) => ExecutionDescriber,
  first: string,
  runId: string,
  cache: Map<string, Verdict>,
): Promise<Verdict> {
  const cached = cache.get(first);
  if (cached) return cached;
  const holder = `execution ${first}`;
  let arn: string | undefined = first;
  let verdict: Verdict | undefined;
  for (let hop = 0; arn && hop < MAX_CONTINUATIONS && !verdict; hop++) {
    const described = await describeExecution(sfnFor, arn);
    if (!described) {
      verdict =
        hop === 0
          ? {
              state: 'unknown',
              holder,
              evidence: `Step Functions does not know execution ${arn} (another account or region, or its history expired)`,
            }
          : {
              state: 'gone',
              holder,
              evidence: `is gone: its last execution succeeded without continuing (${arn} does not exist)`,
            };
      break;
    }
    const status = described.status ?? 'UNKNOWN';
    if (status === 'RUNNING' || status === 'PENDING_REDRIVE') {
      verdict = {
        state: 'alive',
        holder,
        evidence: `execution ${arn} is ${status} (started ${described.startDate?.toISOString() ?? '?'})`,
      };
    } else if (status === 'SUCCEEDED') {
      arn = continuationArn(arn, runId);
    } else {
      verdict = {
        state: 'gone',
        holder,
        evidence: `is gone: execution ${arn} is ${status} since ${described.stopDate?.toISOString() ?? '?'}`,
      };
    }
  }
  verdict ??= { state: 'unknown', holder, evidence: `could not follow the executions of run ${runId}` };
  cache.set(first, verdict);
  return verdict;
}

/** Undefined when the execution does not exist; other API errors say how to go on without the check. */
async function describeExecution(
  sfnFor: (region: string) => ExecutionDescriber,
  executionArn: string,
): Promise<DescribeExecutionCommandOutput | undefined> {
  const region = executionArn.split(':')[3] ?? '';
  try {
    return await sfnFor(region).send(new DescribeExecutionCommand({ executionArn }));
  } catch (error) {
    if ((error as Error).name === 'ExecutionDoesNotExist') return undefined;
    throw new HolderCheckError(
      `cannot check execution ${executionArn}: ${(error as Error).name}: ${(error as Error).message} ` +
        '(unlock --force releases the lease without this check)',
      { cause: error },
    );
  }
}

/** Step Functions could not be asked whether the holder's execution runs (credentials, network, access). */
export class HolderCheckError extends Error {
  override readonly name = 'HolderCheckError';
}
