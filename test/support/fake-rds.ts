/**
 * An in-memory RDS for the snapshot stage's tests, answering the SDK's own command objects the way RDS does:
 * identifiers checked by RDS's rules, a snapshot `creating` for a few describes and then `available` (or
 * `failed` when a test says so), copies across regions that need a KMS key for an encrypted source, manual
 * snapshots listed by instance/cluster with pagination, tags, the manual snapshot quota, and RDS's own error
 * classes (DBSnapshotAlreadyExistsFault, InvalidDBInstanceStateFault…) with their HTTP status.
 */
import {
  CopyDBClusterSnapshotCommand,
  CopyDBSnapshotCommand,
  CreateDBClusterSnapshotCommand,
  CreateDBSnapshotCommand,
  DBClusterNotFoundFault,
  type DBClusterSnapshot,
  DBClusterSnapshotAlreadyExistsFault,
  DBClusterSnapshotNotFoundFault,
  DBInstanceNotFoundFault,
  type DBSnapshot,
  DBSnapshotAlreadyExistsFault,
  DBSnapshotNotFoundFault,
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  InvalidDBClusterSnapshotStateFault,
  InvalidDBClusterStateFault,
  InvalidDBInstanceStateFault,
  InvalidDBSnapshotStateFault,
  RDSServiceException,
  SnapshotQuotaExceededFault,
  type Tag,
} from '@aws-sdk/client-rds';
import type { RdsClientFactory, RdsCommand } from '../../functions/actions/backup/rds-snapshot/rds-api.ts';

const ACCOUNT = '123456789012';

export type Kind = 'instance' | 'cluster';

export interface FakeSnapshot {
  identifier: string;
  kind: Kind;
  region: string;
  source: string;
  status: string;
  type: 'manual' | 'automated';
  encrypted: boolean;
  kmsKeyId: string | undefined;
  tags: Record<string, string>;
  createdAt: Date;
  /** Describes left before a `creating` snapshot reaches `finalStatus`. */
  pollsLeft: number;
  finalStatus: string;
  /** For copies: the source snapshot ARN. */
  copiedFrom?: string;
}

export interface FakeDatabase {
  readonly kind: Kind;
  readonly id: string;
  readonly region: string;
  encrypted: boolean;
  /** `available`, or `backing-up` / `modifying`: RDS refuses a snapshot then. */
  status: string;
}

export interface FakeRdsOptions {
  /** Describes a new snapshot or copy stays `creating`. @default 3 */
  readonly pollsToAvailable?: number;
  /** Manual snapshots per region. @default 100 */
  readonly quota?: number;
}

/** What a test may make happen. */
export interface FakeRdsFaults {
  /** The next snapshot created (or copied, with `copy`) ends in this status instead of `available`. */
  finalStatus?: { readonly status: string; readonly copy?: boolean };
  /** The first create succeeds in RDS but its answer is lost (a 503 to the caller). */
  loseFirstCreateResponse?: boolean;
  /** The next n creates find the database busy (InvalidDBInstanceStateFault / InvalidDBClusterStateFault). */
  busyCreates?: number;
  /** The next n calls are throttled. */
  throttle?: number;
}

export interface FakeRdsCall {
  readonly region: string;
  readonly command: string;
  readonly input: Record<string, unknown>;
}

function isRdsIdentifier(value: string, max: number): boolean {
  return (
    value.length >= 1 &&
    value.length <= max &&
    /^[a-zA-Z][a-zA-Z0-9-]*$/.test(value) &&
    !value.includes('--') &&
    !value.endsWith('-')
  );
}

const meta = (httpStatusCode: number) => ({
  httpStatusCode,
  requestId: 'fake',
  attempts: 1,
  totalRetryDelay: 0,
});

function fault<T>(Fault: new (opts: never) => T, message: string, status = 400): T {
  return new Fault({ message, $metadata: meta(status) } as never);
}

function serviceError(name: string, message: string, status: number): RDSServiceException {
  return new RDSServiceException({
    name,
    message,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: meta(status),
  });
}

function parseArn(arn: string): { region: string; type: string; id: string } | undefined {
  const match = /^arn:aws:rds:([a-z0-9-]+):\d{12}:(snapshot|cluster-snapshot):(.+)$/.exec(arn);
  return match ? { region: match[1] as string, type: match[2] as string, id: match[3] as string } : undefined;
}

function tagsOf(list: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((list ?? []).map((tag) => [tag.Key ?? '', tag.Value ?? '']));
}

export class FakeRds {
  public readonly snapshots: FakeSnapshot[] = [];
  public readonly databases: FakeDatabase[] = [];
  public readonly calls: FakeRdsCall[] = [];
  public readonly faults: FakeRdsFaults = {};
  private readonly pollsToAvailable: number;
  private readonly quota: number;

  public constructor(options: FakeRdsOptions = {}) {
    this.pollsToAvailable = options.pollsToAvailable ?? 3;
    this.quota = options.quota ?? 100;
  }

  /** A DB instance or Aurora cluster the stub knows. */
  public addDatabase(database: Omit<FakeDatabase, 'status'> & { status?: string }): this {
    this.databases.push({ status: 'available', ...database });
    return this;
  }

  /** A snapshot that exists already (available unless said otherwise). */
  public addSnapshot(
    snapshot: Partial<FakeSnapshot> & Pick<FakeSnapshot, 'identifier' | 'kind' | 'region' | 'source'>,
  ): this {
    this.snapshots.push({
      status: 'available',
      type: 'manual',
      encrypted: false,
      kmsKeyId: undefined,
      tags: {},
      createdAt: new Date(0),
      pollsLeft: 0,
      finalStatus: 'available',
      ...snapshot,
    });
    return this;
  }

  public find(region: string, identifier: string): FakeSnapshot | undefined {
    return this.snapshots.find((s) => s.region === region && s.identifier === identifier);
  }

  public identifiers(region: string): string[] {
    return this.snapshots
      .filter((s) => s.region === region)
      .map((s) => s.identifier)
      .sort();
  }

  /** The clients the stage is given: one per region over this one store. */
  public readonly clients: RdsClientFactory = (region) => ({
    send: async (command: RdsCommand) => this.handle(region, command),
  });

  public arn(snapshot: Pick<FakeSnapshot, 'region' | 'kind' | 'identifier'>): string {
    return `arn:aws:rds:${snapshot.region}:${ACCOUNT}:${snapshot.kind === 'instance' ? 'snapshot' : 'cluster-snapshot'}:${snapshot.identifier}`;
  }

  private shape(snapshot: FakeSnapshot): DBSnapshot & DBClusterSnapshot {
    const common = {
      Status: snapshot.status,
      SnapshotType: snapshot.type,
      PercentProgress: snapshot.status === 'available' ? 100 : 0,
      SnapshotCreateTime: snapshot.createdAt,
      KmsKeyId: snapshot.kmsKeyId,
      TagList: Object.entries(snapshot.tags).map(([Key, Value]) => ({ Key, Value })),
    };
    return snapshot.kind === 'instance'
      ? {
          ...common,
          DBSnapshotIdentifier: snapshot.identifier,
          DBSnapshotArn: this.arn(snapshot),
          DBInstanceIdentifier: snapshot.source,
          Encrypted: snapshot.encrypted,
        }
      : {
          ...common,
          DBClusterSnapshotIdentifier: snapshot.identifier,
          DBClusterSnapshotArn: this.arn(snapshot),
          DBClusterIdentifier: snapshot.source,
          StorageEncrypted: snapshot.encrypted,
        };
  }

  /** A describe moves a `creating` snapshot one step towards its final status. */
  private observe(snapshot: FakeSnapshot): FakeSnapshot {
    if (snapshot.status === 'creating') {
      if (snapshot.pollsLeft > 0) snapshot.pollsLeft--;
      if (snapshot.pollsLeft === 0) snapshot.status = snapshot.finalStatus;
    }
    return snapshot;
  }

  private handle(region: string, command: RdsCommand): unknown {
    const input = command.input as Record<string, unknown>;
    this.calls.push({ region, command: command.constructor.name, input });
    if (this.faults.throttle && this.faults.throttle > 0) {
      this.faults.throttle--;
      throw serviceError('Throttling', 'Rate exceeded', 400);
    }
    if (command instanceof CreateDBSnapshotCommand || command instanceof CreateDBClusterSnapshotCommand)
      return this.create(region, command);
    if (command instanceof DescribeDBSnapshotsCommand)
      return this.describe(region, 'instance', command.input);
    if (command instanceof DescribeDBClusterSnapshotsCommand)
      return this.describe(region, 'cluster', command.input);
    if (command instanceof CopyDBSnapshotCommand || command instanceof CopyDBClusterSnapshotCommand)
      return this.copy(region, command);
    if (command instanceof DeleteDBSnapshotCommand || command instanceof DeleteDBClusterSnapshotCommand)
      return this.delete(region, command);
    throw serviceError(
      'InvalidAction',
      `the fake RDS does not know ${(command as object).constructor.name}`,
      400,
    );
  }

  private newSnapshot(
    region: string,
    kind: Kind,
    identifier: string,
    source: string,
    encrypted: boolean,
    tags: Tag[] | undefined,
    copy: boolean,
  ): FakeSnapshot {
    if (!isRdsIdentifier(identifier, 255))
      throw serviceError('InvalidParameterValue', `${identifier} is not a valid identifier`, 400);
    if (this.find(region, identifier)) {
      throw kind === 'instance'
        ? fault(
            DBSnapshotAlreadyExistsFault,
            `Cannot create the snapshot because a snapshot with the identifier ${identifier} already exists.`,
          )
        : fault(DBClusterSnapshotAlreadyExistsFault, `DB Cluster Snapshot ${identifier} already exists`);
    }
    if (this.snapshots.filter((s) => s.region === region && s.type === 'manual').length >= this.quota)
      throw fault(SnapshotQuotaExceededFault, 'Cannot create more than 100 manual snapshots');
    const final =
      this.faults.finalStatus && Boolean(this.faults.finalStatus.copy) === copy
        ? this.faults.finalStatus
        : undefined;
    if (final) this.faults.finalStatus = undefined;
    const snapshot: FakeSnapshot = {
      identifier,
      kind,
      region,
      source,
      status: 'creating',
      type: 'manual',
      encrypted,
      kmsKeyId: undefined,
      tags: tagsOf(tags),
      createdAt: new Date(),
      pollsLeft: this.pollsToAvailable,
      finalStatus: final?.status ?? 'available',
    };
    this.snapshots.push(snapshot);
    return snapshot;
  }

  private create(region: string, command: CreateDBSnapshotCommand | CreateDBClusterSnapshotCommand): unknown {
    const kind: Kind = command instanceof CreateDBSnapshotCommand ? 'instance' : 'cluster';
    const input = command.input as {
      DBSnapshotIdentifier?: string;
      DBInstanceIdentifier?: string;
      DBClusterSnapshotIdentifier?: string;
      DBClusterIdentifier?: string;
      Tags?: Tag[];
    };
    const identifier =
      (kind === 'instance' ? input.DBSnapshotIdentifier : input.DBClusterSnapshotIdentifier) ?? '';
    const source = (kind === 'instance' ? input.DBInstanceIdentifier : input.DBClusterIdentifier) ?? '';
    const database = this.databases.find((d) => d.kind === kind && d.id === source && d.region === region);
    if (!database) {
      throw kind === 'instance'
        ? fault(DBInstanceNotFoundFault, `DBInstance ${source} not found.`, 404)
        : fault(DBClusterNotFoundFault, `DBCluster ${source} not found.`, 404);
    }
    if (this.faults.busyCreates && this.faults.busyCreates > 0) {
      this.faults.busyCreates--;
      throw kind === 'instance'
        ? fault(
            InvalidDBInstanceStateFault,
            `Cannot create a snapshot because the database instance ${source} is not currently in the available state.`,
          )
        : fault(InvalidDBClusterStateFault, `DBCluster ${source} is not currently in the available state.`);
    }
    const snapshot = this.newSnapshot(
      region,
      kind,
      identifier,
      source,
      database.encrypted,
      input.Tags,
      false,
    );
    if (this.faults.loseFirstCreateResponse) {
      this.faults.loseFirstCreateResponse = false;
      throw serviceError('ServiceUnavailable', 'Service Unavailable', 503);
    }
    return kind === 'instance'
      ? { DBSnapshot: this.shape(snapshot) }
      : { DBClusterSnapshot: this.shape(snapshot) };
  }

  private describe(
    region: string,
    kind: Kind,
    input: {
      DBSnapshotIdentifier?: string;
      DBInstanceIdentifier?: string;
      DBClusterSnapshotIdentifier?: string;
      DBClusterIdentifier?: string;
      SnapshotType?: string;
      MaxRecords?: number;
      Marker?: string;
    },
  ): unknown {
    const identifier = kind === 'instance' ? input.DBSnapshotIdentifier : input.DBClusterSnapshotIdentifier;
    const source = kind === 'instance' ? input.DBInstanceIdentifier : input.DBClusterIdentifier;
    const list = (items: FakeSnapshot[], marker?: string) =>
      kind === 'instance'
        ? { DBSnapshots: items.map((s) => this.shape(s)), Marker: marker }
        : { DBClusterSnapshots: items.map((s) => this.shape(s)), Marker: marker };
    if (identifier !== undefined) {
      const found = this.snapshots.find(
        (s) => s.region === region && s.kind === kind && s.identifier === identifier,
      );
      if (!found) {
        throw kind === 'instance'
          ? fault(DBSnapshotNotFoundFault, `DBSnapshot ${identifier} not found.`, 404)
          : fault(DBClusterSnapshotNotFoundFault, `DBClusterSnapshot ${identifier} not found.`, 404);
      }
      return list([this.observe(found)]);
    }
    const matching = this.snapshots.filter(
      (s) =>
        s.region === region &&
        s.kind === kind &&
        (source === undefined || s.source === source) &&
        (input.SnapshotType === undefined || s.type === input.SnapshotType),
    );
    // Pages of at most MaxRecords (20–100, as RDS takes), the marker an offset.
    const size = Math.max(20, Math.min(100, input.MaxRecords ?? 100));
    const offset = input.Marker ? Number(input.Marker) : 0;
    const page = matching.slice(offset, offset + size).map((s) => this.observe(s));
    return list(page, offset + size < matching.length ? String(offset + size) : undefined);
  }

  private copy(region: string, command: CopyDBSnapshotCommand | CopyDBClusterSnapshotCommand): unknown {
    const kind: Kind = command instanceof CopyDBSnapshotCommand ? 'instance' : 'cluster';
    const input = command.input as {
      SourceDBSnapshotIdentifier?: string;
      TargetDBSnapshotIdentifier?: string;
      SourceDBClusterSnapshotIdentifier?: string;
      TargetDBClusterSnapshotIdentifier?: string;
      KmsKeyId?: string;
      Tags?: Tag[];
    };
    const sourceArn =
      (kind === 'instance' ? input.SourceDBSnapshotIdentifier : input.SourceDBClusterSnapshotIdentifier) ??
      '';
    const target =
      (kind === 'instance' ? input.TargetDBSnapshotIdentifier : input.TargetDBClusterSnapshotIdentifier) ??
      '';
    const parsed = parseArn(sourceArn);
    // Cross-region copies name their source by ARN (the SDK signs the PreSignedUrl from it).
    if (!parsed) throw serviceError('InvalidParameterValue', `${sourceArn} is not a snapshot ARN`, 400);
    const source = this.find(parsed.region, parsed.id);
    if (!source || source.kind !== kind) {
      throw kind === 'instance'
        ? fault(DBSnapshotNotFoundFault, `DBSnapshot ${sourceArn} not found.`, 404)
        : fault(DBClusterSnapshotNotFoundFault, `DBClusterSnapshot ${sourceArn} not found.`, 404);
    }
    if (source.status !== 'available') {
      throw kind === 'instance'
        ? fault(InvalidDBSnapshotStateFault, `Snapshot ${parsed.id} is not in available state.`)
        : fault(InvalidDBClusterSnapshotStateFault, `Snapshot ${parsed.id} is not in available state.`);
    }
    const crossRegion = parsed.region !== region;
    if (source.encrypted && crossRegion && input.KmsKeyId === undefined) {
      throw serviceError(
        'InvalidParameterValue',
        'KmsKeyId is required when copying an encrypted snapshot to another region',
        400,
      );
    }
    if (input.KmsKeyId !== undefined && !input.KmsKeyId.startsWith(`arn:aws:kms:${region}:`)) {
      throw serviceError('KMSKeyNotAccessibleFault', `KMS key ${input.KmsKeyId} is not in ${region}`, 400);
    }
    if (kind === 'cluster' && !source.encrypted && input.KmsKeyId !== undefined) {
      throw serviceError(
        'InvalidParameterValue',
        'Cannot encrypt a copy of an unencrypted DB cluster snapshot',
        400,
      );
    }
    const copy = this.newSnapshot(
      region,
      kind,
      target,
      source.source,
      source.encrypted || input.KmsKeyId !== undefined,
      input.Tags,
      true,
    );
    copy.kmsKeyId = input.KmsKeyId;
    copy.copiedFrom = sourceArn;
    return kind === 'instance' ? { DBSnapshot: this.shape(copy) } : { DBClusterSnapshot: this.shape(copy) };
  }

  private delete(region: string, command: DeleteDBSnapshotCommand | DeleteDBClusterSnapshotCommand): unknown {
    const kind: Kind = command instanceof DeleteDBSnapshotCommand ? 'instance' : 'cluster';
    const input = command.input as { DBSnapshotIdentifier?: string; DBClusterSnapshotIdentifier?: string };
    const identifier =
      (kind === 'instance' ? input.DBSnapshotIdentifier : input.DBClusterSnapshotIdentifier) ?? '';
    const index = this.snapshots.findIndex(
      (s) => s.region === region && s.kind === kind && s.identifier === identifier,
    );
    const found = this.snapshots[index];
    if (!found) {
      throw kind === 'instance'
        ? fault(DBSnapshotNotFoundFault, `DBSnapshot ${identifier} not found.`, 404)
        : fault(DBClusterSnapshotNotFoundFault, `DBClusterSnapshot ${identifier} not found.`, 404);
    }
    if (found.type !== 'manual')
      throw serviceError('InvalidParameterValue', 'automated snapshots cannot be deleted', 400);
    if (found.status !== 'available' && found.status !== 'failed') {
      throw kind === 'instance'
        ? fault(InvalidDBSnapshotStateFault, `Snapshot ${identifier} is ${found.status}`)
        : fault(InvalidDBClusterSnapshotStateFault, `Snapshot ${identifier} is ${found.status}`);
    }
    this.snapshots.splice(index, 1);
    found.status = 'deleted';
    return kind === 'instance' ? { DBSnapshot: this.shape(found) } : { DBClusterSnapshot: this.shape(found) };
  }
}
