/**
 * A backup policy's RDS snapshot through the synthesized state machine, run locally with the real handlers, a
 * real PostgreSQL and S3 for the backup, and a stub of RDS (RDS cannot run here) that behaves like it:
 * snapshots `creating` for a few describes, then `available`; copies that need a KMS key for an encrypted
 * source; RDS's errors. What an operator relies on: after the backup, a manual snapshot of the named database
 * (and its copy) exists, polled by Wait states; this policy's expired snapshots go, nobody else's do; any
 * snapshot failure fails the execution (the alarm) while the backup run stays succeeded with its objects.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { RDS_SNAPSHOT_TAGS, rdsSnapshotName } from '../../functions/actions/backup/rds-snapshot/contract.ts';
import { type AslDefinition, synthesizeDefinition } from '../../functions/local-runner/synthesize.ts';
import type { LifecycleConfig } from '../../lib/contracts/config.ts';
import { RdsSnapshotStateNames } from '../../lib/contracts/rds-snapshot-payloads.ts';
import { testConfig } from '../support/archive.ts';
import { FakeRds, type Kind } from '../support/fake-rds.ts';
import { beforeAll, describe, expect, it, NOW } from '../support/fixture.ts';

const REGION = 'eu-west-1';
const COPY_REGION = 'eu-central-1';
const COPY_KEY = `arn:aws:kms:${COPY_REGION}:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0`;
const DAY = 86_400_000;

function snapshotConfig(rdsSnapshot: Record<string, unknown>): LifecycleConfig {
  return testConfig([
    {
      name: 'nightly',
      action: 'backup',
      schedule: 'cron(0 1 * * ? *)',
      backup: { tables: ['shop.*'], level: 1, rdsSnapshot: { retentionDays: 30, ...rdsSnapshot } },
    },
  ]);
}

const instanceConfig = snapshotConfig({ dbInstanceIdentifier: 'orders-db' });
const clusterCopyConfig = snapshotConfig({
  dbClusterIdentifier: 'orders-aurora',
  copyToRegion: COPY_REGION,
  copyKmsKeyArn: COPY_KEY,
});

const policyTags = (runId = 'b8f1f0a2-5c55-4c3e-9a43-8d51a0c1f0aa', stack = 'PgLifecycle') => ({
  [RDS_SNAPSHOT_TAGS.policy]: 'nightly',
  [RDS_SNAPSHOT_TAGS.stack]: stack,
  [RDS_SNAPSHOT_TAGS.runId]: runId,
});

/** Snapshots a retention must keep or delete, in `region`, of `source`. */
function seedNeighbours(rds: FakeRds, kind: Kind, source: string, region: string): void {
  const named = (daysAgo: number) =>
    rdsSnapshotName('pg-lifecycle-nightly-', new Date(NOW.getTime() - daysAgo * DAY));
  rds
    // This policy's, past retention: deleted.
    .addSnapshot({ identifier: named(40), kind, region, source, tags: policyTags() })
    .addSnapshot({ identifier: named(31), kind, region, source, tags: policyTags() })
    // This policy's, within retention: kept.
    .addSnapshot({ identifier: named(5), kind, region, source, tags: policyTags() })
    // Policy "nightly-eu": its name starts with this policy's prefix, and it is old: kept.
    .addSnapshot({
      identifier: rdsSnapshotName('pg-lifecycle-nightly-eu-', new Date(NOW.getTime() - 90 * DAY)),
      kind,
      region,
      source,
      tags: { ...policyTags(), [RDS_SNAPSHOT_TAGS.policy]: 'nightly-eu' },
    })
    // Taken by hand with a look-alike name, untagged: kept.
    .addSnapshot({ identifier: named(60).replace(/\d{2}$/, 'xx'), kind, region, source })
    .addSnapshot({ identifier: named(61), kind, region, source })
    // The same policy name in another stack: kept.
    .addSnapshot({ identifier: named(62), kind, region, source, tags: policyTags(undefined, 'OtherStack') })
    // RDS's automated snapshot: kept.
    .addSnapshot({ identifier: `rds:${source}-2026-09-01-01-00`, kind, region, source, type: 'automated' });
}

let instanceDefinition: AslDefinition;
let copyDefinition: AslDefinition;

beforeAll(async ({ database }) => {
  await database.pool.query(`
    CREATE SCHEMA shop;
    CREATE TABLE shop.orders (id bigint PRIMARY KEY, note text);
    INSERT INTO shop.orders SELECT g, 'order ' || g FROM generate_series(1, 500) g;`);
  [instanceDefinition, copyDefinition] = await Promise.all([
    synthesizeDefinition(instanceConfig, 'nightly'),
    synthesizeDefinition(clusterCopyConfig, 'nightly'),
  ]);
});

describe('backup with rdsSnapshot', () => {
  it('has the snapshot stage after Finish, polling with Wait states', () => {
    expect(instanceDefinition.States.Finish?.Next).toBe(RdsSnapshotStateNames.wanted);
    expect(instanceDefinition.States[RdsSnapshotStateNames.wait]).toMatchObject({
      Type: 'Wait',
      SecondsPath: '$.rdsSnapshot.waitSeconds',
    });
    expect(instanceDefinition.States[RdsSnapshotStateNames.copy]).toBeUndefined();
    expect(copyDefinition.States[RdsSnapshotStateNames.copyWait]).toMatchObject({ Type: 'Wait' });
  });

  it('takes a tagged snapshot of the DB instance after the backup, waits for it, and deletes only this policy’s expired ones', async ({
    runPolicy,
    s3,
    bucket,
  }) => {
    // Prepare
    const rds = new FakeRds({ pollsToAvailable: 3 }).addDatabase({
      kind: 'instance',
      id: 'orders-db',
      region: REGION,
      encrypted: true,
    });
    seedNeighbours(rds, 'instance', 'orders-db', REGION);
    const before = rds.identifiers(REGION);

    // Act
    const result = await runPolicy(instanceConfig, 'nightly', {
      definition: instanceDefinition,
      rdsSnapshot: { clients: rds.clients, region: REGION },
    });

    // Assess: the backup ran first and succeeded, then the snapshot was taken and became available.
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');
    expect(result.summary?.status).toBe('succeeded');
    expect(result.summary?.backup?.tables).toBe(1);
    const taken = rdsSnapshotName('pg-lifecycle-nightly-', NOW);
    const snapshot = rds.find(REGION, taken);
    expect(snapshot).toMatchObject({
      kind: 'instance',
      source: 'orders-db',
      status: 'available',
      type: 'manual',
      encrypted: true,
    });
    expect(snapshot?.tags).toEqual({
      [RDS_SNAPSHOT_TAGS.policy]: 'nightly',
      [RDS_SNAPSHOT_TAGS.stack]: 'PgLifecycle',
      [RDS_SNAPSHOT_TAGS.runId]: result.summary?.runId,
    });
    expect(result.summary?.rdsSnapshot).toMatchObject({
      runId: result.summary?.runId,
      kind: 'instance',
      source: 'orders-db',
      snapshot: { identifier: taken, status: 'available', region: REGION, encrypted: true },
    });
    // Polled: one describe per Wait → Check round, three while creating.
    const checks = rds.calls.filter(
      (c) => c.command === 'DescribeDBSnapshotsCommand' && c.input.DBSnapshotIdentifier === taken,
    );
    expect(checks).toHaveLength(3);
    expect(rds.calls.filter((c) => c.command === 'CreateDBSnapshotCommand')).toHaveLength(1);
    // Retention: the two expired snapshots of this policy and stack went; nothing else did.
    const deleted = before.filter((id) => !rds.identifiers(REGION).includes(id));
    expect(deleted.sort()).toEqual(
      [40, 31].map((d) => rdsSnapshotName('pg-lifecycle-nightly-', new Date(NOW.getTime() - d * DAY))).sort(),
    );
    expect(result.summary?.rdsSnapshot?.pruned?.map((p) => p.identifier).sort()).toEqual(deleted.sort());
    const manifests = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'backup/nightly/' }));
    expect(manifests.Contents?.some((o) => o.Key === result.summary?.backup?.manifestKey)).toBe(true);
  });

  it('snapshots an Aurora cluster, copies it encrypted to copyToRegion, waits for the copy and prunes both regions', async ({
    runPolicy,
  }) => {
    // Prepare
    const rds = new FakeRds({ pollsToAvailable: 2 }).addDatabase({
      kind: 'cluster',
      id: 'orders-aurora',
      region: REGION,
      encrypted: true,
    });
    seedNeighbours(rds, 'cluster', 'orders-aurora', REGION);
    seedNeighbours(rds, 'cluster', 'orders-aurora', COPY_REGION);

    // Act
    const result = await runPolicy(clusterCopyConfig, 'nightly', {
      definition: copyDefinition,
      rdsSnapshot: { clients: rds.clients, region: REGION },
    });

    // Assess
    expect(result.failure).toBeUndefined();
    const taken = rdsSnapshotName('pg-lifecycle-nightly-', NOW);
    const source = rds.find(REGION, taken);
    const copy = rds.find(COPY_REGION, taken);
    expect(source).toMatchObject({ kind: 'cluster', status: 'available' });
    expect(copy).toMatchObject({
      kind: 'cluster',
      status: 'available',
      encrypted: true,
      kmsKeyId: COPY_KEY,
      copiedFrom: `arn:aws:rds:${REGION}:123456789012:cluster-snapshot:${taken}`,
    });
    expect(copy?.tags[RDS_SNAPSHOT_TAGS.runId]).toBe(result.summary?.runId);
    const copyCall = rds.calls.find((c) => c.command === 'CopyDBClusterSnapshotCommand');
    expect(copyCall?.region).toBe(COPY_REGION);
    // The copy was polled in its region until available: one look before copying, two while creating.
    expect(
      rds.calls.filter((c) => c.region === COPY_REGION && c.input.DBClusterSnapshotIdentifier === taken),
    ).toHaveLength(3);
    for (const region of [REGION, COPY_REGION]) {
      const pruned = result.summary?.rdsSnapshot?.pruned
        ?.filter((p) => p.region === region)
        .map((p) => p.identifier);
      expect(pruned?.sort(), region).toEqual(
        [40, 31]
          .map((d) => rdsSnapshotName('pg-lifecycle-nightly-', new Date(NOW.getTime() - d * DAY)))
          .sort(),
      );
      expect(rds.identifiers(region)).toContain(taken);
      expect(rds.identifiers(region).filter((id) => id.startsWith('pg-lifecycle-nightly-eu-'))).toHaveLength(
        1,
      );
    }
  });

  it('fails the execution when RDS reports the snapshot failed, keeping the succeeded backup and every older snapshot', async ({
    runPolicy,
    s3,
    bucket,
    database,
  }) => {
    // Prepare
    const rds = new FakeRds({ pollsToAvailable: 2 }).addDatabase({
      kind: 'instance',
      id: 'orders-db',
      region: REGION,
      encrypted: false,
    });
    seedNeighbours(rds, 'instance', 'orders-db', REGION);
    rds.faults.finalStatus = { status: 'failed' };
    const before = rds.identifiers(REGION);

    // Act
    const result = await runPolicy(instanceConfig, 'nightly', {
      definition: instanceDefinition,
      rdsSnapshot: { clients: rds.clients, region: REGION },
    });

    // Assess: the execution failed through RecordFailure (RunFailed: the alarm fires) with the snapshot's error…
    expect(result.status).toBe('failed');
    expect(result.failure?.error).toBe('RdsSnapshotFailedError');
    expect(result.failure?.cause).toMatch(
      /RDS reports snapshot pg-lifecycle-nightly-\d{14} of orders-db \(eu-west-1\) failed/,
    );
    // …while the backup itself stays succeeded, with its manifest (a failed backup's objects would be removed).
    expect(result.ledgerRun?.status).toBe('succeeded');
    const { rows } = await database.pool.query<{ detail: { manifestKey?: string; removedAt?: string } }>(
      'SELECT detail FROM lifecycle.runs WHERE run_id = $1',
      [result.ledgerRun?.runId],
    );
    expect(rows[0]?.detail.removedAt).toBeUndefined();
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `backup/nightly/` }));
    expect(listed.Contents?.filter((o) => o.Key?.endsWith('/manifest.json')).length).toBeGreaterThan(0);
    // Nothing was pruned: retention runs only after a new snapshot is available.
    expect(rds.identifiers(REGION)).toEqual(
      [...before, rdsSnapshotName('pg-lifecycle-nightly-', NOW)].sort(),
    );
  });

  it('fails the copy of an encrypted snapshot without copyKmsKeyArn with a clear error, after the snapshot', async ({
    runPolicy,
  }) => {
    const config = snapshotConfig({ dbClusterIdentifier: 'orders-aurora', copyToRegion: COPY_REGION });
    const definition = await synthesizeDefinition(config, 'nightly');
    const rds = new FakeRds({ pollsToAvailable: 1 }).addDatabase({
      kind: 'cluster',
      id: 'orders-aurora',
      region: REGION,
      encrypted: true,
    });

    const result = await runPolicy(config, 'nightly', {
      definition,
      rdsSnapshot: { clients: rds.clients, region: REGION },
    });

    expect(result.failure?.error).toBe('RdsSnapshotConfigError');
    expect(result.failure?.cause).toContain(
      'is encrypted: its copy in eu-central-1 needs backup.rdsSnapshot.copyKmsKeyArn',
    );
    expect(rds.identifiers(COPY_REGION)).toEqual([]);
    expect(rds.find(REGION, rdsSnapshotName('pg-lifecycle-nightly-', NOW))?.status).toBe('available');
  });

  it('retries while the instance is busy, and after a lost answer adopts the snapshot it took instead of taking two', async ({
    runPolicy,
  }) => {
    const rds = new FakeRds({ pollsToAvailable: 1 }).addDatabase({
      kind: 'instance',
      id: 'orders-db',
      region: REGION,
      encrypted: false,
    });
    rds.faults.busyCreates = 2;
    rds.faults.loseFirstCreateResponse = true;
    rds.faults.throttle = 1;

    const result = await runPolicy(instanceConfig, 'nightly', {
      definition: instanceDefinition,
      rdsSnapshot: { clients: rds.clients, region: REGION },
    });

    expect(result.failure).toBeUndefined();
    expect(rds.calls.filter((c) => c.command === 'CreateDBSnapshotCommand')).toHaveLength(3);
    expect(rds.identifiers(REGION)).toEqual([rdsSnapshotName('pg-lifecycle-nightly-', NOW)]);
    expect(rds.find(REGION, rdsSnapshotName('pg-lifecycle-nightly-', NOW))?.status).toBe('available');
  });

  it('fails the run when the named instance does not exist, and takes no snapshot in a dry run', async ({
    runPolicy,
  }) => {
    const rds = new FakeRds();
    const missing = await runPolicy(instanceConfig, 'nightly', {
      definition: instanceDefinition,
      rdsSnapshot: { clients: rds.clients, region: REGION },
    });
    expect(missing.failure?.error).toBe('RdsSnapshotConfigError');
    expect(missing.failure?.cause).toContain('no DB instance orders-db in eu-west-1');

    const dry = await runPolicy(instanceConfig, 'nightly', {
      definition: instanceDefinition,
      dryRun: true,
      rdsSnapshot: { clients: rds.clients, region: REGION },
    });
    expect(dry.status).toBe('dry_run');
    expect(dry.summary?.rdsSnapshot).toBeUndefined();
    // The failed run listed and tried to create; the dry run called nothing.
    expect(rds.calls.map((c) => c.command)).toEqual([
      'DescribeDBSnapshotsCommand',
      'CreateDBSnapshotCommand',
    ]);
  });
});
