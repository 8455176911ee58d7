/**
 * The RDS calls the snapshot stage makes, for a DB instance (DBSnapshot) or an Aurora cluster (DBClusterSnapshot)
 * alike, over a client of one region. The client is injected (`send` of the SDK's RDSClient, or a stub that
 * behaves like RDS in the tests): nothing here opens a connection of its own.
 */
import {
  CopyDBClusterSnapshotCommand,
  CopyDBSnapshotCommand,
  CreateDBClusterSnapshotCommand,
  CreateDBSnapshotCommand,
  type DBClusterSnapshot,
  type DBSnapshot,
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  type Tag,
} from '@aws-sdk/client-rds';
import { AWS_CLIENT_TIMEOUTS } from '../../../commons/aws-clients.ts';
import { mapServiceError } from '../../../commons/aws-service-errors.ts';
import { TransientServiceError } from '../../../core/errors.ts';

/** Every RDS command the stage sends. */
export type RdsCommand =
  | CreateDBSnapshotCommand
  | CreateDBClusterSnapshotCommand
  | DescribeDBSnapshotsCommand
  | DescribeDBClusterSnapshotsCommand
  | CopyDBSnapshotCommand
  | CopyDBClusterSnapshotCommand
  | DeleteDBSnapshotCommand
  | DeleteDBClusterSnapshotCommand;

/** The part of an RDSClient the stage uses. */
export interface RdsClientLike {
  send(command: RdsCommand): Promise<unknown>;
}

/** A client for a region (the source region, and copyToRegion for copies). */
export type RdsClientFactory = (region: string) => RdsClientLike;

/** One client per region for the process, with the handlers' timeouts. */
export function sdkRdsClients(): RdsClientFactory {
  const clients = new Map<string, RDSClient>();
  return (region) => {
    let client = clients.get(region);
    if (!client) {
      client = new RDSClient({ region, ...AWS_CLIENT_TIMEOUTS });
      clients.set(region, client);
    }
    const sdk = client;
    return { send: (command) => sdk.send(command as never) };
  };
}

/** A snapshot as the stage reads it, instance or cluster. */
export interface SnapshotRecord {
  readonly identifier: string;
  readonly arn: string;
  readonly region: string;
  readonly status: string;
  readonly percentProgress: number | undefined;
  readonly encrypted: boolean;
  readonly snapshotType: string | undefined;
  /** The DB instance or cluster it was taken of. */
  readonly source: string | undefined;
  readonly tags: Readonly<Record<string, string>>;
}

export type SnapshotKind = 'instance' | 'cluster';

/** Names RDS gives throttling; the SDK retries them itself, and what is left is worth a Step Functions retry. */
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

/** An RDS error by name (`DBSnapshotAlreadyExistsFault`), or undefined for anything else. */
export function rdsErrorName(error: unknown): string | undefined {
  const name = (error as { name?: unknown })?.name;
  return typeof name === 'string' && (error as { $metadata?: unknown }).$metadata !== undefined
    ? name
    : undefined;
}

/**
 * An error of a client call: throttling, 5xx and network errors (no HTTP status) become TransientServiceError;
 * RDS's answers (`DBSnapshotNotFoundFault`, `InvalidDBInstanceStateFault`…) pass through for the steps to read.
 */
export function mapRdsError(error: unknown, what: string): unknown {
  const name = (error as { name?: unknown })?.name;
  if (typeof name === 'string' && THROTTLING.has(name))
    return new TransientServiceError(`${what}: ${(error as Error).message}`, { cause: error });
  return mapServiceError(error, what);
}

function tagMap(tags: readonly Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).flatMap((tag) => (tag.Key ? [[tag.Key, tag.Value ?? '']] : [])));
}

function tagList(tags: Readonly<Record<string, string>>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/** RDS snapshots of one kind in one region. */
export class RdsSnapshotApi {
  public constructor(
    private readonly client: RdsClientLike,
    public readonly kind: SnapshotKind,
    public readonly region: string,
  ) {}

  private record(snapshot: DBSnapshot | DBClusterSnapshot | undefined, what: string): SnapshotRecord {
    if (!snapshot) throw new TransientServiceError(`${what}: RDS returned no snapshot`);
    const instance = snapshot as DBSnapshot;
    const cluster = snapshot as DBClusterSnapshot;
    const identifier =
      this.kind === 'instance' ? instance.DBSnapshotIdentifier : cluster.DBClusterSnapshotIdentifier;
    const arn = this.kind === 'instance' ? instance.DBSnapshotArn : cluster.DBClusterSnapshotArn;
    return {
      identifier: identifier ?? '',
      arn: arn ?? '',
      region: this.region,
      status: snapshot.Status ?? 'unknown',
      percentProgress: snapshot.PercentProgress,
      encrypted: (this.kind === 'instance' ? instance.Encrypted : cluster.StorageEncrypted) ?? false,
      snapshotType: snapshot.SnapshotType,
      source: this.kind === 'instance' ? instance.DBInstanceIdentifier : cluster.DBClusterIdentifier,
      tags: tagMap(snapshot.TagList),
    };
  }

  private async send<T>(command: RdsCommand, what: string): Promise<T> {
    try {
      return (await this.client.send(command)) as T;
    } catch (error) {
      throw mapRdsError(error, what);
    }
  }

  /** CreateDBSnapshot / CreateDBClusterSnapshot, tagged. */
  public async create(
    identifier: string,
    source: string,
    tags: Readonly<Record<string, string>>,
  ): Promise<SnapshotRecord> {
    const what = `snapshot ${identifier} of ${source} (${this.region})`;
    if (this.kind === 'instance') {
      const out = await this.send<{ DBSnapshot?: DBSnapshot }>(
        new CreateDBSnapshotCommand({
          DBSnapshotIdentifier: identifier,
          DBInstanceIdentifier: source,
          Tags: tagList(tags),
        }),
        what,
      );
      return this.record(out.DBSnapshot, what);
    }
    const out = await this.send<{ DBClusterSnapshot?: DBClusterSnapshot }>(
      new CreateDBClusterSnapshotCommand({
        DBClusterSnapshotIdentifier: identifier,
        DBClusterIdentifier: source,
        Tags: tagList(tags),
      }),
      what,
    );
    return this.record(out.DBClusterSnapshot, what);
  }

  /** The snapshot named `identifier`, or undefined when there is none. */
  public async describe(identifier: string): Promise<SnapshotRecord | undefined> {
    const what = `describe snapshot ${identifier} (${this.region})`;
    try {
      if (this.kind === 'instance') {
        const out = await this.send<{ DBSnapshots?: DBSnapshot[] }>(
          new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: identifier }),
          what,
        );
        return out.DBSnapshots?.[0] ? this.record(out.DBSnapshots[0], what) : undefined;
      }
      const out = await this.send<{ DBClusterSnapshots?: DBClusterSnapshot[] }>(
        new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: identifier }),
        what,
      );
      return out.DBClusterSnapshots?.[0] ? this.record(out.DBClusterSnapshots[0], what) : undefined;
    } catch (error) {
      const name = rdsErrorName(error);
      if (name === 'DBSnapshotNotFoundFault' || name === 'DBClusterSnapshotNotFoundFault') return undefined;
      throw error;
    }
  }

  /** Every manual snapshot of `source` in this region (copies keep their source's identifier). */
  public async listManual(source: string): Promise<SnapshotRecord[]> {
    const what = `list manual snapshots of ${source} (${this.region})`;
    const found: SnapshotRecord[] = [];
    let marker: string | undefined;
    do {
      if (this.kind === 'instance') {
        const out = await this.send<{ DBSnapshots?: DBSnapshot[]; Marker?: string }>(
          new DescribeDBSnapshotsCommand({
            DBInstanceIdentifier: source,
            SnapshotType: 'manual',
            MaxRecords: 100,
            Marker: marker,
          }),
          what,
        );
        found.push(...(out.DBSnapshots ?? []).map((s) => this.record(s, what)));
        marker = out.Marker;
      } else {
        const out = await this.send<{ DBClusterSnapshots?: DBClusterSnapshot[]; Marker?: string }>(
          new DescribeDBClusterSnapshotsCommand({
            DBClusterIdentifier: source,
            SnapshotType: 'manual',
            MaxRecords: 100,
            Marker: marker,
          }),
          what,
        );
        found.push(...(out.DBClusterSnapshots ?? []).map((s) => this.record(s, what)));
        marker = out.Marker;
      }
    } while (marker);
    return found;
  }

  /**
   * CopyDBSnapshot / CopyDBClusterSnapshot into this region. The source is named by its ARN: the SDK's RDS
   * middleware reads the source region from it and signs the PreSignedUrl a cross-region copy needs.
   */
  public async copy(props: {
    readonly sourceArn: string;
    readonly identifier: string;
    readonly kmsKeyId: string | undefined;
    readonly tags: Readonly<Record<string, string>>;
  }): Promise<SnapshotRecord> {
    const what = `copy of ${props.sourceArn} to ${props.identifier} (${this.region})`;
    const kms = props.kmsKeyId !== undefined ? { KmsKeyId: props.kmsKeyId } : {};
    if (this.kind === 'instance') {
      const out = await this.send<{ DBSnapshot?: DBSnapshot }>(
        new CopyDBSnapshotCommand({
          SourceDBSnapshotIdentifier: props.sourceArn,
          TargetDBSnapshotIdentifier: props.identifier,
          Tags: tagList(props.tags),
          ...kms,
        }),
        what,
      );
      return this.record(out.DBSnapshot, what);
    }
    const out = await this.send<{ DBClusterSnapshot?: DBClusterSnapshot }>(
      new CopyDBClusterSnapshotCommand({
        SourceDBClusterSnapshotIdentifier: props.sourceArn,
        TargetDBClusterSnapshotIdentifier: props.identifier,
        Tags: tagList(props.tags),
        ...kms,
      }),
      what,
    );
    return this.record(out.DBClusterSnapshot, what);
  }

  /** DeleteDBSnapshot / DeleteDBClusterSnapshot. */
  public async delete(identifier: string): Promise<void> {
    const what = `delete snapshot ${identifier} (${this.region})`;
    if (this.kind === 'instance') {
      await this.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: identifier }), what);
    } else {
      await this.send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: identifier }), what);
    }
  }
}
