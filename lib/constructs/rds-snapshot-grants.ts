/**
 * IAM of a backup policy's RDS snapshot function: the named DB instance (or Aurora cluster) and the snapshots
 * named with the policy's prefix, in the stack's region and copyToRegion, and nothing else.
 */
import { ArnFormat, Stack } from 'aws-cdk-lib';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import {
  RDS_SNAPSHOT_TAGS,
  type RdsSnapshotSettings,
} from '../../functions/actions/backup/rds-snapshot/contract.ts';
import { acknowledgeWildcardResource } from '../nag.ts';

/** The RDS actions and ARN resource types of each kind of source. */
const KINDS = {
  instance: {
    source: 'db',
    snapshot: 'snapshot',
    create: 'rds:CreateDBSnapshot',
    describe: 'rds:DescribeDBSnapshots',
    copy: 'rds:CopyDBSnapshot',
    delete: 'rds:DeleteDBSnapshot',
  },
  cluster: {
    source: 'cluster',
    snapshot: 'cluster-snapshot',
    create: 'rds:CreateDBClusterSnapshot',
    describe: 'rds:DescribeDBClusterSnapshots',
    copy: 'rds:CopyDBClusterSnapshot',
    delete: 'rds:DeleteDBClusterSnapshot',
  },
} as const;

/**
 * Grants the snapshot function of one policy:
 *
 * - `TakeSnapshot`: Create(DB|DBCluster)Snapshot on the named instance/cluster and `<prefix>*` snapshots;
 * - `TagOwnSnapshots`: AddTagsToResource on `<prefix>*` snapshots (create and copy tag them), both regions;
 * - `ReadOwnSnapshots`: Describe(DB|DBCluster)Snapshots of the instance/cluster and `<prefix>*` snapshots;
 * - `CopyOwnSnapshots` (copyToRegion): Copy(DB|DBCluster)Snapshot from `<prefix>*` to `<prefix>*`;
 * - `DeleteOwnExpiredSnapshots`: Delete(DB|DBCluster)Snapshot on `<prefix>*` snapshots tagged with this policy
 *   and stack (`aws:ResourceTag`): a policy `a` cannot delete policy `a-b`'s `pg-lifecycle-a-b-…`, which its
 *   prefix `pg-lifecycle-a-` matches;
 * - `EncryptCopy` (copyKmsKeyArn): kms:CreateGrant and kms:DescribeKey on that key, only through RDS in
 *   copyToRegion (kms:ViaService);
 * - `DecryptSourceForCopy` (copyToRegion): kms:CreateGrant and kms:DescribeKey on the source region's keys, only
 *   through RDS there: an encrypted cross-region copy reads the source snapshot under the database's key, which
 *   the config does not name.
 */
export function grantRdsSnapshots(fn: IFunction, settings: RdsSnapshotSettings): void {
  const stack = Stack.of(fn);
  const kind = KINDS[settings.kind];
  const rdsArn = (region: string | undefined, resource: string, resourceName: string) =>
    stack.formatArn({
      service: 'rds',
      region,
      resource,
      resourceName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  const copyRegion = settings.copyToRegion;
  const regions: Array<string | undefined> = [undefined, ...(copyRegion ? [copyRegion] : [])];
  const sourceArn = rdsArn(undefined, kind.source, settings.source);
  const snapshots = regions.map((region) => rdsArn(region, kind.snapshot, `${settings.prefix}*`));
  const [ownSnapshots] = snapshots as [string, ...string[]];
  const statements = [
    new PolicyStatement({
      sid: 'TakeSnapshot',
      effect: Effect.ALLOW,
      actions: [kind.create],
      resources: [sourceArn, ownSnapshots],
    }),
    new PolicyStatement({
      sid: 'TagOwnSnapshots',
      effect: Effect.ALLOW,
      actions: ['rds:AddTagsToResource'],
      resources: snapshots,
    }),
    new PolicyStatement({
      sid: 'ReadOwnSnapshots',
      effect: Effect.ALLOW,
      actions: [kind.describe],
      // Listing by instance/cluster identifier is authorized on it; copies keep their source's identifier.
      resources: [...regions.map((region) => rdsArn(region, kind.source, settings.source)), ...snapshots],
    }),
    new PolicyStatement({
      sid: 'DeleteOwnExpiredSnapshots',
      effect: Effect.ALLOW,
      actions: [kind.delete],
      resources: snapshots,
      conditions: {
        StringEquals: {
          [`aws:ResourceTag/${RDS_SNAPSHOT_TAGS.policy}`]: settings.policy,
          [`aws:ResourceTag/${RDS_SNAPSHOT_TAGS.stack}`]: settings.stack,
        },
      },
    }),
  ];
  if (copyRegion) {
    statements.push(
      new PolicyStatement({
        sid: 'CopyOwnSnapshots',
        effect: Effect.ALLOW,
        actions: [kind.copy],
        resources: snapshots,
      }),
      new PolicyStatement({
        sid: 'DecryptSourceForCopy',
        effect: Effect.ALLOW,
        actions: ['kms:CreateGrant', 'kms:DescribeKey'],
        resources: [stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
        conditions: { StringEquals: { 'kms:ViaService': `rds.${stack.region}.amazonaws.com` } },
      }),
    );
  }
  if (copyRegion && settings.copyKmsKeyArn) {
    statements.push(
      new PolicyStatement({
        sid: 'EncryptCopy',
        effect: Effect.ALLOW,
        actions: ['kms:CreateGrant', 'kms:DescribeKey'],
        resources: [settings.copyKmsKeyArn],
        conditions: { StringEquals: { 'kms:ViaService': `rds.${copyRegion}.amazonaws.com` } },
      }),
    );
  }
  for (const statement of statements) fn.addToRolePolicy(statement);

  const role = fn.role ?? fn;
  snapshots.forEach((resource, index) => {
    acknowledgeWildcardResource(
      role,
      resource,
      `Snapshot names carry the time they are taken (${settings.prefix}<yyyymmddhhmmss>); policy ` +
        `${settings.policy} may create, describe, tag${copyRegion ? ', copy' : ''} and delete (only when tagged ` +
        `with its policy and stack) only snapshots with its own prefix, in ${index === 0 ? 'the stack region' : copyRegion}.`,
    );
  });
  if (copyRegion) {
    acknowledgeWildcardResource(
      role,
      stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' }),
      'An encrypted cross-region snapshot copy has RDS read the source snapshot under the database’s own key, ' +
        'which the config does not name; granted only through RDS in the stack region (kms:ViaService).',
    );
  }
}
