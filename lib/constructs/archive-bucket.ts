import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type CfnBucket,
  type IBucket,
  type LifecycleRule,
  ObjectOwnership,
  StorageClass,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { PolicyStorage, StorageTransition } from '../contracts/action-contract.ts';

/** A policy that keeps objects in the bucket, and where and how (from its action's contract). */
export interface StoringPolicy {
  readonly name: string;
  readonly action: string;
  readonly storage: PolicyStorage;
}

/** Properties of an {@link ArchiveBucket}. */
export interface ArchiveBucketProps {
  /** Policies that keep objects; each gets a lifecycle rule on its own prefix (storage-class transitions, expiry). */
  readonly policies: readonly StoringPolicy[];

  /**
   * Use this existing bucket instead of creating one. Nothing is changed on it: its lifecycle rules,
   * versioning, encryption, logging and Object Lock stay the owner's business (a policy with `objectLock`
   * needs Object Lock enabled on it with no default retention; its Start step checks that before touching a
   * row).
   * @default - a new bucket (and its access-log bucket) is created
   */
  readonly existingBucketName?: string;

  /**
   * Days before server access logs are deleted from the log bucket.
   * @default Duration.days(365)
   */
  readonly accessLogExpiration?: Duration;
}

/**
 * The S3 bucket that receives archived rows as Parquet. When created here it is versioned, SSE-S3
 * encrypted, blocks all public access, refuses non-TLS requests, enforces bucket-owner object ownership,
 * writes server access logs to a separate log bucket, and is retained when the stack is deleted
 * (archives are often the only copy of the deleted rows). Lifecycle rules:
 *
 * - abort incomplete multipart uploads after 7 days;
 * - expire noncurrent versions after 30 days (and remove expired delete markers);
 * - per archive policy, on `archive/<policy-name>/`: STANDARD_IA, GLACIER_IR and DEEP_ARCHIVE transitions
 *   and optional expiry from `policy.archive.storage`.
 *
 * When some policy sets `archive.objectLock`, the bucket has S3 Object Lock enabled (its
 * `ObjectLockConfiguration`, updated in place on a deployed bucket), with no default retention: an object gets
 * its retain-until date only once the ledger lists it (a rolled-back chunk's upload must stay deletable).
 */
export class ArchiveBucket extends Construct {
  /** The archive bucket (imported when `existingBucketName` is set). */
  public readonly bucket: IBucket;

  /** The server access log bucket; undefined for an existing bucket. */
  public readonly accessLogBucket?: Bucket;

  public constructor(scope: Construct, id: string, props: ArchiveBucketProps) {
    super(scope, id);

    if (props.existingBucketName !== undefined) {
      this.bucket = Bucket.fromBucketName(this, 'Bucket', props.existingBucketName);
      return;
    }

    const accessLogBucket = new Bucket(this, 'AccessLogs', {
      // Server access log delivery only supports SSE-S3 on the target bucket.
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: props.accessLogExpiration ?? Duration.days(365) },
        { id: 'abort-incomplete-multipart', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });
    Validations.of(accessLogBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This is the server access log bucket of the archive bucket; logging its own access would need a ' +
        'third bucket (or log into itself, which loops). Only the S3 log delivery service writes here.',
    });

    this.accessLogBucket = accessLogBucket;
    this.bucket = new Bucket(this, 'Bucket', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: accessLogBucket,
      serverAccessLogsPrefix: 'archive-bucket/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'abort-incomplete-multipart', abortIncompleteMultipartUploadAfter: Duration.days(7) },
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(30),
          expiredObjectDeleteMarker: true,
        },
        ...props.policies.map(policyLifecycleRule),
      ],
    });
    if (props.policies.some((policy) => policy.storage.objectLock)) {
      // Through ObjectLockConfiguration (no Rule: no default retention), never the top-level ObjectLockEnabled:
      // CloudFormation updates this property in place ("No interruption"; S3 enables Object Lock on an
      // existing versioned bucket), so adding objectLock to a deployed stack keeps the bucket its ledger lists.
      (this.bucket.node.defaultChild as CfnBucket).objectLockConfiguration = { objectLockEnabled: 'Enabled' };
    }
  }
}

const STORAGE_CLASSES: Readonly<Record<StorageTransition['storageClass'], StorageClass>> = {
  STANDARD_IA: StorageClass.INFREQUENT_ACCESS,
  GLACIER_IR: StorageClass.GLACIER_INSTANT_RETRIEVAL,
  DEEP_ARCHIVE: StorageClass.DEEP_ARCHIVE,
};

/** The storage-class schedule of one policy's prefix. */
function policyLifecycleRule(policy: StoringPolicy): LifecycleRule {
  const storage = policy.storage.tiers;
  return {
    // `<action>-<policy>`: archive policies' rules of deployed stacks keep their id (`archive-<policy>`).
    id: `${policy.action}-${policy.name}`,
    prefix: policy.storage.prefix,
    transitions: storage.transitions.map((t) => ({
      storageClass: STORAGE_CLASSES[t.storageClass],
      transitionAfter: Duration.days(t.afterDays),
    })),
    expiration: storage.expireAfterDays === undefined ? undefined : Duration.days(storage.expireAfterDays),
  };
}
