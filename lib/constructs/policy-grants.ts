/**
 * IAM of one policy's step functions: each grant is bounded by the policy (its S3 prefix, its Glue table),
 * so a run of one policy cannot touch another policy's archives, whatever its input or ledger say.
 */
import { Stack } from 'aws-cdk-lib';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { contractOf, type Policy } from '../contracts/config.ts';
import { glueTableName } from '../contracts/glue-table-name.ts';
import { sameTable } from '../contracts/policy-base.ts';
import { acknowledgeWildcardResource } from '../nag.ts';
import type { StoringPolicy } from './archive-bucket.ts';
import type { ChunkLoopFunctions } from './chunk-loop-state-machine.ts';

type StepFunctions = { readonly [K in keyof ChunkLoopFunctions]: IFunction };

/**
 * A secret encrypted with a customer-managed key: the functions may decrypt with that key, and only
 * through Secrets Manager (kms:ViaService). An imported key cannot take a grant on its own policy.
 */
export function grantSecretKey(
  functions: readonly IFunction[],
  keyArn: string | undefined,
  region: string,
): void {
  if (!keyArn) return;
  for (const fn of functions) {
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'DecryptDatabaseSecret',
        effect: Effect.ALLOW,
        actions: ['kms:Decrypt'],
        resources: [keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } },
      }),
    );
  }
}

/**
 * S3 for a policy that keeps objects (archive), all of it under its own prefix (`archive/<policy>/`):
 *
 * - Start checks the bucket by listing the prefix (ListBucket with an `s3:prefix` condition; HeadBucket
 *   would need ListBucket on the whole bucket) and, with objectLock, reads the bucket's Object Lock setting;
 * - Chunk writes, verifies and (a stale upload after its run ended) deletes objects; with objectLock it locks
 *   them once their chunk committed;
 * - Finish and RecordFailure delete orphans (objects never listed in the ledger); with objectLock they lock
 *   listed objects whose lock a crash left out.
 *
 * An orphan, and a stale upload, holds copies of rows that are still live, and a subject's erasure walks only
 * the objects the ledger lists: each is deleted with every version (functions/adapters/object-versions.ts), or
 * its bytes would stay in a noncurrent version of the versioned bucket. So the deleters list the exact key's
 * versions (ListBucketVersions, `s3:prefix` condition on the policy's own prefix), delete each by its VersionId
 * (DeleteObjectVersion; DeleteObject in a bucket without versioning) and prove nothing is left by a HEAD
 * (GetObject) that must find nothing; ListBucket (same condition) makes S3 answer that HEAD 404, not 403.
 *
 * Nobody gets s3:BypassGovernanceRetention or s3:PutObjectLegalHold, and nobody may list or touch another
 * policy's prefix.
 */
export function grantObjectAccess(functions: StepFunctions, bucket: IBucket, policy: StoringPolicy): void {
  const { prefix, objectLock: locked } = policy.storage;
  const objects = bucket.arnForObjects(`${prefix}*`);
  const ownPrefix = { StringLike: { 's3:prefix': [`${prefix}*`] } };
  const { start, chunk, finish, recordFailure } = functions;

  start.addToRolePolicy(
    new PolicyStatement({
      sid: 'CheckArchivePrefix',
      effect: Effect.ALLOW,
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: ownPrefix,
    }),
  );
  if (locked) {
    start.addToRolePolicy(
      new PolicyStatement({
        sid: 'CheckObjectLockEnabled',
        effect: Effect.ALLOW,
        actions: ['s3:GetBucketObjectLockConfiguration'],
        resources: [bucket.bucketArn],
      }),
    );
  }
  const lockActions = locked ? ['s3:PutObjectRetention'] : [];
  chunk.addToRolePolicy(
    new PolicyStatement({
      sid: 'WriteVerifyAndLockArchives',
      effect: Effect.ALLOW,
      // DeleteObject(Version): an upload that finds its run ended (orphans already removed) deletes every
      // version of its own object; GetObject also serves the HEAD proving none is left.
      actions: [
        's3:PutObject',
        's3:GetObject',
        's3:AbortMultipartUpload',
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        ...lockActions,
      ],
      resources: [objects],
    }),
  );
  for (const fn of [finish, recordFailure]) {
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'RemoveOrphansAndLockArchives',
        effect: Effect.ALLOW,
        // Every version of an orphan deleted, then a HEAD (GetObject) proves none is left; with objectLock the
        // HEAD also checks an object against the ledger before locking that exact version.
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObject', ...lockActions],
        resources: [objects],
      }),
    );
  }
  // Chunk, Finish and RecordFailure list the versions of the keys they delete, on their own prefix only (a
  // backup's Finish also lists its parts there).
  for (const fn of [chunk, finish, recordFailure]) {
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'ListOwnObjectVersions',
        effect: Effect.ALLOW,
        actions: ['s3:ListBucket', 's3:ListBucketVersions'],
        resources: [bucket.bucketArn],
        conditions: ownPrefix,
      }),
    );
  }
  if (policy.storage.finishWrites) {
    finish.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteBackupManifest',
        effect: Effect.ALLOW,
        // A backup's Finish reads schema.sql back (drift check) and writes post-data.sql and manifest.json.
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [objects],
      }),
    );
  }
  for (const [fn, what] of [
    [
      chunk,
      'writes one Parquet object per chunk, verifies it and removes every version of it if its run already ended',
    ],
    [finish, 'deletes every version of objects the ledger never listed (orphans) and locks listed ones'],
    [recordFailure, 'deletes every version of the orphaned objects of a failed run and locks listed ones'],
  ] as const) {
    acknowledgeWildcardResource(
      fn.role ?? fn,
      objects,
      `Object keys are generated per run and chunk (${prefix}<schema.table>/<partition>/<run>-<uuid>.parquet); ` +
        `the function of policy ${policy.name} ${what}, only under ${prefix} of the archive bucket.`,
    );
  }
}

/** The objects of one archive policy that a subjects policy reads and rewrites. */
export interface ArchivedTableObjects {
  /** The archive policy. */
  readonly policy: string;
  /** Its table, as the config writes it. */
  readonly table: string;
  /** Its prefix (`archive/<policy>/`). */
  readonly prefix: string;
}

/**
 * The archive policies holding copies of a subjects policy's mapped tables: every archive policy whose table is
 * one of `subjects.tables[].table`, compared as PostgreSQL reads them ({@link sameTable}: unquoted parts folded
 * to lower case, no schema meaning public), so `"public"."users"` and `public.users` are one table. Disabled
 * archive policies count too: the objects their runs listed stay in the bucket, and in the ledger an erasure
 * walks. Archive policies of other tables are not returned.
 */
export function archivedTablesOf(
  mapped: readonly string[],
  policies: readonly Policy[],
): ArchivedTableObjects[] {
  return policies.flatMap((policy) => {
    // The policies whose rows are copied into the bucket before they leave their table (archive).
    if (contractOf(policy).rowFate !== 'copied-then-deleted' || !('table' in policy)) return [];
    if (!mapped.some((table) => sameTable(table, policy.table))) return [];
    const storage = contractOf(policy).storage(policy);
    return storage ? [{ policy: policy.name, table: policy.table, prefix: storage.prefix }] : [];
  });
}

/**
 * S3 for a subjects policy over the archive objects of its mapped tables (`archives`, from
 * {@link archivedTablesOf}), on their prefixes only, never another archive policy's:
 *
 * - Chunk exports a subject's archived rows (HEAD for the storage class, GET of the ledger's object) and, for an
 *   erasure, rewrites each object holding them (functions/actions/subjects/object-rewrite.ts): HEAD and GET of
 *   the old key, PUT of the new key beside it (same storage class and encryption), the exact key's versions
 *   listed (ListObjectVersions, `s3:prefix` condition) and each deleted by its VersionId (DeleteObjectVersion;
 *   DeleteObject without versions), RestoreObject for objects in Glacier Flexible Retrieval / Deep Archive.
 *   ListBucket (same condition) makes S3 answer a HEAD or GET of a missing key 404 instead of 403: the rewrite
 *   proves every version of an old key gone by a HEAD that must find nothing, and a missing object must fail
 *   with the ledger's words, not as a storage configuration error. No GetObjectVersion: no read names a version.
 * - Finish and RecordFailure delete the subjects run's orphans (functions/run/orphans.ts), which include a
 *   rewrite's new key whose swap never committed and an old key swapped out of the ledger before its deletion:
 *   every version of each, as the rewrite deletes an old key (ListBucketVersions and ListBucket with the same
 *   `s3:prefix` condition, DeleteObjectVersion, and GetObject for the HEAD that must find nothing left).
 *
 * With a bucket encrypted by a customer-managed key the stack knows, Chunk may also decrypt and generate data
 * keys with it, through S3 only. Nothing at all when no archive policy maps a table of the policy.
 */
export function grantArchiveErasure(
  functions: StepFunctions,
  bucket: IBucket,
  subjectsPolicy: string,
  archives: readonly ArchivedTableObjects[],
): void {
  if (archives.length === 0) return;
  const { chunk, finish, recordFailure } = functions;
  const prefixes = archives.map((archive) => `${archive.prefix}*`);
  const objects = prefixes.map((prefix) => bucket.arnForObjects(prefix));
  chunk.addToRolePolicy(
    new PolicyStatement({
      sid: 'ListArchivedObjectVersions',
      effect: Effect.ALLOW,
      actions: ['s3:ListBucket', 's3:ListBucketVersions'],
      resources: [bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': prefixes } },
    }),
  );
  chunk.addToRolePolicy(
    new PolicyStatement({
      sid: 'ReadAndRewriteArchivedObjects',
      effect: Effect.ALLOW,
      // GetObjectRetention / GetObjectLegalHold: without them HEAD hides an object's Object Lock, and the rewrite
      // would swap an object whose old versions it can then never delete.
      actions: [
        's3:GetObject',
        's3:GetObjectRetention',
        's3:GetObjectLegalHold',
        's3:PutObject',
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:RestoreObject',
      ],
      resources: objects,
    }),
  );
  for (const fn of [finish, recordFailure]) {
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'ListArchiveRewriteOrphanVersions',
        effect: Effect.ALLOW,
        actions: ['s3:ListBucket', 's3:ListBucketVersions'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': prefixes } },
      }),
    );
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'RemoveArchiveRewriteOrphans',
        effect: Effect.ALLOW,
        actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:GetObject'],
        resources: objects,
      }),
    );
  }
  const key = bucket.encryptionKey;
  if (key) {
    chunk.addToRolePolicy(
      new PolicyStatement({
        sid: 'RewriteArchivedObjectsEncryption',
        effect: Effect.ALLOW,
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(chunk).region}.amazonaws.com` } },
      }),
    );
  }
  for (const [index, archive] of archives.entries()) {
    const resource = objects[index] as string;
    for (const [fn, what] of [
      [
        chunk,
        'reads the objects holding a subject (export, erasure), writes each rewritten object beside the old one ' +
          'and deletes every version of the old one, or requests its restore from Glacier',
      ],
      [finish, 'deletes every version of the objects a crashed rewrite left unlisted (orphans)'],
      [
        recordFailure,
        'deletes every version of the objects a crashed rewrite of a failed run left unlisted (orphans)',
      ],
    ] as const) {
      acknowledgeWildcardResource(
        fn.role ?? fn,
        resource,
        `Object keys are generated per run and chunk (${archive.prefix}<schema.table>/<partition>/<run>-<uuid>.parquet); ` +
          `the function of subjects policy ${subjectsPolicy} ${what}, only under ${archive.prefix} of the ` +
          `archive bucket (archive policy ${archive.policy} of ${archive.table}, a table the subjects policy maps).`,
      );
    }
  }
}

/** The start step creates/updates the policy's one Glue table (columns from the live catalog). */
export function grantGlueTable(start: IFunction, glueDatabaseName: string, policyName: string): void {
  const stack = Stack.of(start);
  const glueArn = (resource: string) => stack.formatArn({ service: 'glue', resource });
  start.addToRolePolicy(
    new PolicyStatement({
      sid: 'RegisterArchiveTable',
      effect: Effect.ALLOW,
      actions: ['glue:GetTable', 'glue:CreateTable', 'glue:UpdateTable'],
      resources: [
        glueArn('catalog'),
        glueArn(`database/${glueDatabaseName}`),
        glueArn(`table/${glueDatabaseName}/${glueTableName(policyName)}`),
      ],
    }),
  );
}

/** A throttle reading replica lag from CloudWatch: GetMetricData (authorized on `*` only) for Chunk. */
export function grantCloudWatchLag(
  chunk: IFunction & { addEnvironment(key: string, value: string): unknown },
): void {
  chunk.addEnvironment('LIFECYCLE_CLOUDWATCH_LAG', '1');
  chunk.addToRolePolicy(
    new PolicyStatement({
      sid: 'ReadReplicaLagMetrics',
      effect: Effect.ALLOW,
      actions: ['cloudwatch:GetMetricData'],
      resources: ['*'],
    }),
  );
}

/**
 * S3 for a policy that reads objects outside the stack's bucket (an import's CSV or Parquet source): Start
 * reads the object's header (HEAD, ranged GET), Chunk loads it; GetObject on exactly those keys and ListBucket
 * of their own bucket only under the key itself (so that a missing object answers 404, not 403). Nothing else
 * of those buckets; an object encrypted with a customer-managed KMS key also needs kms:Decrypt on that key,
 * which the stack cannot know (add it to the Start and Chunk roles).
 */
export function grantObjectReads(
  functions: StepFunctions,
  objects: ReadonlyArray<{ readonly bucket: string; readonly key: string }>,
): void {
  if (objects.length === 0) return;
  const partition = Stack.of(functions.start).partition;
  for (const fn of [functions.start, functions.chunk]) {
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadImportSourceObjects',
        effect: Effect.ALLOW,
        actions: ['s3:GetObject'],
        resources: objects.map((o) => `arn:${partition}:s3:::${o.bucket}/${o.key}`),
      }),
    );
    for (const [index, object] of objects.entries()) {
      fn.addToRolePolicy(
        new PolicyStatement({
          sid: `ListImportSourceObject${index}`,
          effect: Effect.ALLOW,
          actions: ['s3:ListBucket'],
          resources: [`arn:${partition}:s3:::${object.bucket}`],
          conditions: { StringEquals: { 's3:prefix': [object.key] } },
        }),
      );
    }
  }
}
