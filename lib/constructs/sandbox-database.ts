import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InstanceClass,
  InstanceSize,
  InstanceType,
  InterfaceVpcEndpointAwsService,
  Port,
  SecurityGroup,
  type SubnetSelection,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  Credentials,
  DatabaseInstance,
  DatabaseInstanceEngine,
  ParameterGroup,
  PostgresEngineVersion,
} from 'aws-cdk-lib/aws-rds';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/** Properties of a {@link SandboxDatabase}. */
export interface SandboxDatabaseProps {
  /** Name of the database created in the instance. @default 'app' */
  readonly databaseName?: string;

  /** Retention of the VPC flow logs. @default RetentionDays.ONE_MONTH */
  readonly flowLogRetention?: RetentionDays;

  /** Add a CloudWatch (monitoring) interface endpoint, for a throttle reading replica lag there. @default false */
  readonly cloudWatchEndpoint?: boolean;
}

/**
 * A throw-away PostgreSQL to try pg-lifecycle against, with the fewest moving parts that still pass
 * cdk-nag: a two-zone VPC with isolated subnets only (no NAT, no internet gateway; flow logs on), a free S3
 * gateway endpoint and interface endpoints for Secrets Manager and Glue (the only services the handlers
 * call; CloudWatch too when a throttle reads replica lag there), and an RDS PostgreSQL 16 `db.t4g.micro` (encrypted storage, `rds.force_ssl=1`, generated secret,
 * single-AZ, one day of backups, no deletion protection, destroyed with the stack) that accepts 5432 only
 * from the functions' security group.
 */
export class SandboxDatabase extends Construct {
  /** The sandbox VPC. */
  public readonly vpc: Vpc;

  /** Where the functions run: the isolated subnets. */
  public readonly functionSubnets: SubnetSelection;

  /** Security group of the functions; the only source the database accepts. */
  public readonly functionSecurityGroup: SecurityGroup;

  /** The database instance. */
  public readonly instance: DatabaseInstance;

  /** Generated credentials (RDS JSON shape: host, port, username, password, dbname). */
  public readonly secret: ISecret;

  public constructor(scope: Construct, id: string, props: SandboxDatabaseProps = {}) {
    super(scope, id);

    const flowLogs = new LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      createInternetGateway: false,
      subnetConfiguration: [{ name: 'isolated', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      gatewayEndpoints: { S3: { service: GatewayVpcEndpointAwsService.S3 } },
      flowLogs: {
        all: {
          destination: FlowLogDestination.toCloudWatchLogs(flowLogs),
          trafficType: FlowLogTrafficType.ALL,
        },
      },
    });
    this.functionSubnets = { subnetType: SubnetType.PRIVATE_ISOLATED };

    this.functionSecurityGroup = new SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description:
        'pg-lifecycle functions (isolated subnets: egress only reaches the VPC endpoints and the database)',
      allowAllOutbound: true,
    });
    // Endpoints admit HTTPS from the functions only (not the whole VPC CIDR).
    const endpointSecurityGroup = new SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'pg-lifecycle VPC interface endpoints: HTTPS from the functions only',
      allowAllOutbound: false,
    });
    endpointSecurityGroup.addIngressRule(
      this.functionSecurityGroup,
      Port.tcp(443),
      'HTTPS from the functions',
    );
    const endpoints: Array<readonly [string, InterfaceVpcEndpointAwsService]> = [
      ['SecretsManager', InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
      ['Glue', InterfaceVpcEndpointAwsService.GLUE],
    ];
    if (props.cloudWatchEndpoint)
      endpoints.push(['CloudWatch', InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING]);
    for (const [id, service] of endpoints) {
      this.vpc.addInterfaceEndpoint(id, { service, securityGroups: [endpointSecurityGroup], open: false });
    }
    const databaseSecurityGroup = new SecurityGroup(this, 'DatabaseSecurityGroup', {
      vpc: this.vpc,
      description: 'pg-lifecycle sandbox database: PostgreSQL from the functions only',
      allowAllOutbound: false,
    });
    databaseSecurityGroup.addIngressRule(
      this.functionSecurityGroup,
      Port.tcp(5432),
      'PostgreSQL from the functions',
    );

    const engine = DatabaseInstanceEngine.postgres({ version: PostgresEngineVersion.VER_16 });
    this.instance = new DatabaseInstance(this, 'Instance', {
      engine,
      instanceType: InstanceType.of(InstanceClass.T4G, InstanceSize.MICRO),
      vpc: this.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
      securityGroups: [databaseSecurityGroup],
      credentials: Credentials.fromGeneratedSecret('lifecycle_admin'),
      databaseName: props.databaseName ?? 'app',
      parameterGroup: new ParameterGroup(this, 'Parameters', {
        engine,
        description: 'pg-lifecycle sandbox: TLS required',
        parameters: { 'rds.force_ssl': '1' },
      }),
      storageEncrypted: true,
      allocatedStorage: 20,
      multiAz: false,
      iamAuthentication: false,
      publiclyAccessible: false,
      backupRetention: Duration.days(1),
      deletionProtection: false,
      removalPolicy: RemovalPolicy.DESTROY,
      // No log exports: retention on the RDS-created log group would need a LogRetention custom resource.
    });
    if (!this.instance.secret) throw new Error('the sandbox database must have a generated secret');
    this.secret = this.instance.secret;

    const sandbox = 'Sandbox database for trying pg-lifecycle, destroyed with the stack';
    Validations.of(this.instance).acknowledge(
      {
        id: 'AwsSolutions-RDS3',
        reason: `${sandbox}: a standby doubles the cost and is not needed to try runs.`,
      },
      {
        id: 'AwsSolutions-RDS10',
        reason: `${sandbox}: deletion protection would block \`cdk destroy\`; it holds only test data.`,
      },
      {
        id: 'AwsSolutions-RDS11',
        reason:
          'A non-default port adds no protection here: the instance is in isolated subnets and its security ' +
          'group admits only the functions; the handlers read the port from the secret anyway.',
      },
    );
    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-RDS6',
      reason:
        'The handlers authenticate with the Secrets Manager password (verify-full TLS); IAM database ' +
        'authentication tokens would add a second credential path for a sandbox.',
    });
    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: `${sandbox}: rotation would need a rotation Lambda and more VPC endpoints for a short-lived instance.`,
    });
  }
}
