import { Duration } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import {
  Choice,
  Condition,
  type IChainable,
  JsonPath,
  Pass,
  type RetryProps,
  Succeed,
  TaskInput,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import {
  RdsSnapshotStateNames as Names,
  RDS_SNAPSHOT_AVAILABLE,
  RDS_SOURCE_BUSY_ERROR,
  RDS_SOURCE_BUSY_RETRY,
  type RdsSnapshotOperation,
} from '../contracts/rds-snapshot-payloads.ts';

/** Properties of an {@link RdsSnapshotStage}. */
export interface RdsSnapshotStageProps {
  /** The policy's snapshot function (functions/rds-snapshot.ts). */
  readonly snapshotFunction: IFunction;
  /** Copy each snapshot to `copyToRegion` and wait for the copy. */
  readonly copies: boolean;
  /** Where a snapshot failure goes (the chunk loop's RecordFailure, then RunFailed). */
  readonly recordFailure: IChainable;
  /** Retry of every task on the transient error names. */
  readonly retry: RetryProps;
}

/**
 * The RDS snapshot of a backup policy, after a successful Finish (the run is closed and its lease released):
 *
 * `RdsSnapshotWanted` → `RdsSnapshotCreate` → `RdsSnapshotWait` → `RdsSnapshotCheck` → `RdsSnapshotAvailable`
 * (→ `RdsSnapshotWait` …) → [`RdsSnapshotCopy` → `RdsSnapshotCopyWait` → `RdsSnapshotCopyCheck` →
 * `RdsSnapshotCopyAvailable` (→ `RdsSnapshotCopyWait` …)] → `RdsSnapshotPrune`.
 *
 * Wait states do the waiting (`waitSeconds`: 30 s doubling to 5 minutes); each task is one short call of the
 * snapshot function, its result under `$.rdsSnapshot` of the run summary. A dry run or a run that did not
 * succeed goes to `RdsSnapshotSkipped`. Any error a task does not retry goes through `RdsSnapshotFailed` to
 * RecordFailure and RunFailed, so the execution fails and the policy's alarm fires; RecordFailure gets the
 * policy without the run id, since the backup run itself succeeded and must stay so (and keep its objects).
 */
export class RdsSnapshotStage extends Construct {
  /** The first state: the Choice that lets only a succeeded run take a snapshot. */
  public readonly startState: Choice;

  public constructor(scope: Construct, id: string, props: RdsSnapshotStageProps) {
    super(scope, id);
    const failed = new Pass(this, Names.failed, {
      comment:
        'The backup run succeeded; only the snapshot failed: RecordFailure records no run, the execution fails.',
      parameters: {
        policy: JsonPath.objectAt('$$.Execution.Input.policy'),
        dryRun: false,
        error: JsonPath.objectAt('$.error'),
        backupRunId: JsonPath.stringAt('$.runId'),
      },
    });
    failed.next(props.recordFailure);

    const task = (name: string, operation: RdsSnapshotOperation, comment: string) => {
      const step = new LambdaInvoke(this, name, {
        lambdaFunction: props.snapshotFunction,
        payload: TaskInput.fromObject(
          operation === 'create'
            ? { operation, runId: JsonPath.stringAt('$.runId') }
            : { operation, progress: JsonPath.objectAt('$.rdsSnapshot') },
        ),
        payloadResponseOnly: true,
        retryOnServiceExceptions: false,
        resultPath: '$.rdsSnapshot',
        comment,
      });
      if (operation === 'create' || operation === 'copy') {
        step.addRetry({
          errors: [RDS_SOURCE_BUSY_ERROR],
          interval: Duration.seconds(RDS_SOURCE_BUSY_RETRY.intervalSeconds),
          maxAttempts: RDS_SOURCE_BUSY_RETRY.maxAttempts,
          backoffRate: 1,
        });
      }
      step.addRetry(props.retry);
      step.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.error' });
      return step;
    };
    const waitFor = (name: string, what: string) =>
      new Wait(this, name, {
        time: WaitTime.secondsPath('$.rdsSnapshot.waitSeconds'),
        comment: `Polls the ${what} by waiting here, never in a Lambda.`,
      });

    const prune = task(
      Names.prune,
      'prune',
      "Deletes this policy's manual snapshots (its prefix, its tags) past retentionDays, in both regions.",
    );
    let afterSnapshot: IChainable = prune;
    if (props.copies) {
      const copy = task(
        Names.copy,
        'copy',
        'CopyDBSnapshot / CopyDBClusterSnapshot into copyToRegion (KmsKeyId).',
      );
      const copyWait = waitFor(Names.copyWait, 'copy');
      const copyCheck = task(
        Names.copyCheck,
        'check-copy',
        'Describes the copy; a failed copy fails the run.',
      );
      const copyAvailable = new Choice(this, Names.copyAvailable)
        .when(Condition.stringEquals('$.rdsSnapshot.copy.status', RDS_SNAPSHOT_AVAILABLE), prune)
        .otherwise(copyWait);
      copy.next(copyWait);
      copyWait.next(copyCheck);
      copyCheck.next(copyAvailable);
      afterSnapshot = copy;
    }

    const create = task(
      Names.create,
      'create',
      'CreateDBSnapshot / CreateDBClusterSnapshot pg-lifecycle-<policy>-<yyyymmddhhmmss>, tagged with the run.',
    );
    const wait = waitFor(Names.wait, 'snapshot');
    const check = task(Names.check, 'check', 'Describes the snapshot; a failed snapshot fails the run.');
    const available = new Choice(this, Names.available)
      .when(Condition.stringEquals('$.rdsSnapshot.snapshot.status', RDS_SNAPSHOT_AVAILABLE), afterSnapshot)
      .otherwise(wait);
    create.next(wait);
    wait.next(check);
    check.next(available);

    this.startState = new Choice(this, Names.wanted, {
      comment: 'A dry run takes no snapshot.',
    })
      .when(Condition.stringEquals('$.status', 'succeeded'), create)
      .otherwise(new Succeed(this, Names.skipped));
  }
}
