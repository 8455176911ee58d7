import { Duration, RemovalPolicy, type Size } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import { Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type ILogGroup, LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { STEP_TIMEOUT_SECONDS } from '../contracts/lease.ts';
import { DEFAULT_LOG_RETENTION_DAYS } from '../contracts/observability.ts';
import {
  type StarOnlyGrant,
  type StarOnlyManagedPolicy,
  WildcardConfinedRole,
} from './wildcard-confined-role.ts';

/** Metrics namespace shared by every handler (Powertools `POWERTOOLS_METRICS_NAMESPACE`). */
export const METRICS_NAMESPACE = 'PgLifecycle';

/**
 * `pg` bundled as ESM calls `require('events')` through esbuild's shim, which throws in an ES module
 * ("Dynamic require of ... is not supported"). A real `require` in scope fixes that for every CJS
 * dependency. The import alias avoids clashing with bundled identifiers.
 */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __pgLifecycleCreateRequire } from 'node:module'; const require = __pgLifecycleCreateRequire(import.meta.url);";

/** What Lambda needs to attach a function to VPC subnets; EC2 authorizes these only on `*`. */
const VPC_NETWORK_INTERFACE_ACTIONS = [
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeSubnets',
  'ec2:DeleteNetworkInterface',
  'ec2:AssignPrivateIpAddresses',
  'ec2:UnassignPrivateIpAddresses',
] as const;

/** The `*`-only actions every lifecycle function needs: VPC network interfaces and X-Ray. */
export const LAMBDA_STAR_ONLY_GRANTS: readonly StarOnlyGrant[] = [
  {
    actions: VPC_NETWORK_INTERFACE_ACTIONS,
    reason: 'EC2 network-interface actions Lambda needs to attach a function to the VPC',
  },
  {
    actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
    reason: 'X-Ray trace upload, added by active tracing',
  },
];

/** The `*`-only grants of a function outside any VPC: X-Ray alone. */
const NO_VPC_STAR_ONLY_GRANTS = LAMBDA_STAR_ONLY_GRANTS.filter((grant) =>
  grant.actions.every((action) => action.startsWith('xray:')),
);

/** Properties of a {@link LifecycleFunction}. */
export interface LifecycleFunctionProps {
  /** Absolute path of the handler entry file; it exports `handler`. */
  readonly entry: string;

  /** What the function does, shown in the console. @default - no description */
  readonly description?: string;

  /**
   * VPC to attach to (the database is only reachable inside it). A function that never reaches the database
   * (the RDS snapshot steps: the RDS API only, in two regions) runs outside any VPC and gets no ENI actions.
   * @default - not in a VPC
   */
  readonly vpc?: IVpc;

  /** Subnets for the function's network interfaces. @default - the VPC's private (or isolated) subnets */
  readonly vpcSubnets?: SubnetSelection;

  /** Security groups of the function (with `vpc`); the database must accept 5432 from one of them. @default - none */
  readonly securityGroups?: readonly ISecurityGroup[];

  /** /tmp size (a restore drill downloads one part at a time there). @default 512 MiB */
  readonly ephemeralStorageSize?: Size;

  /** Environment variables, merged over the defaults listed on {@link LifecycleFunction}. @default - defaults only */
  readonly environment?: Readonly<Record<string, string>>;

  /** Memory in MB; CPU scales with it, and Parquet encoding is CPU bound. @default 1024 */
  readonly memorySize?: number;

  /**
   * Hard timeout. Handlers keep their own time budget below it and return a cursor early; the lease TTL
   * (lib/contracts/lease.ts) is reckoned from the default.
   * @default Duration.seconds(STEP_TIMEOUT_SECONDS), 5 minutes
   */
  readonly timeout?: Duration;

  /**
   * Log group to write to (several functions may share one). The function may write only to it.
   * @default - a log group of its own (`<id>LogGroup`) with `logRetention`, `logEncryptionKey`, `logRemovalPolicy`
   */
  readonly logGroup?: ILogGroup;

  /** Retention of the function's own log group. @default 731 days (DEFAULT_LOG_RETENTION_DAYS) */
  readonly logRetention?: RetentionDays;

  /** Customer-managed key the log group is encrypted with. @default - CloudWatch Logs' own encryption */
  readonly logEncryptionKey?: IKey;

  /**
   * What happens to the log group when the stack is deleted. The logs are part of the audit trail of what
   * runs deleted, so they outlive the stack by default (they still expire after `logRetention`).
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;

  /**
   * A managed policy holding {@link LAMBDA_STAR_ONLY_GRANTS}, shared by many functions' roles.
   * @default - the role gets those grants in a policy of its own
   */
  readonly sharedStarOnly?: StarOnlyManagedPolicy;

  /**
   * Further actions this function may be granted on `Resource: "*"` (each without resource-level
   * permissions). Any other `*` grant on its role fails cdk-nag (see WildcardConfinedRole).
   * @default - only the VPC network-interface and X-Ray actions every function needs
   */
  readonly starOnlyGrants?: readonly StarOnlyGrant[];

  /** Powertools service name (`POWERTOOLS_SERVICE_NAME`). @default 'pg-lifecycle' */
  readonly serviceName?: string;
}

/**
 * A Node.js Lambda with the project's defaults fixed in one place:
 *
 * - runtime `nodejs24.x` (`Runtime.NODEJS_24_X`), architecture `arm64`;
 * - the given log group, or its own (`<id>LogGroup`, retention two years, optionally KMS-encrypted, kept when
 *   the stack is deleted), and its own role (`<id>Role`, a WildcardConfinedRole) that may write only to that
 *   log group, send X-Ray traces and manage its VPC network interfaces; callers grant everything else;
 * - X-Ray tracing `Active`; memory 1024 MB; timeout 5 minutes;
 * - esbuild bundling to minified ESM (`index.mjs`) with a `createRequire` banner (so CJS dependencies
 *   such as `pg` work), `keepNames` (error names drive Step Functions retries), external source maps
 *   without sources content, AWS SDK bundled (the versions tested are the versions deployed), `pg-native`
 *   left out (optional native addon, never used); the ledger migrations `sql/NNN_*.sql` copied to `sql/`;
 * - environment `NODE_OPTIONS=--enable-source-maps`, `NODE_EXTRA_CA_CERTS=/var/runtime/ca-cert.pem`
 *   (the runtime's bundle with the RDS CAs, for `verify-full` TLS), `POWERTOOLS_SERVICE_NAME`,
 *   `POWERTOOLS_METRICS_NAMESPACE=PgLifecycle`;
 * - placed in the given VPC subnets with the given security groups (or outside any VPC, without ENI actions).
 */
export class LifecycleFunction extends NodejsFunction {
  public constructor(scope: Construct, id: string, props: LifecycleFunctionProps) {
    // Created beside the function (not inside it) because they must exist before `super()`.
    const logGroup =
      props.logGroup ??
      new LogGroup(scope, `${id}LogGroup`, {
        retention: props.logRetention ?? (DEFAULT_LOG_RETENTION_DAYS as RetentionDays),
        encryptionKey: props.logEncryptionKey,
        removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
      });
    const inVpc = props.vpc !== undefined;
    // The shared policy holds the ENI actions too: a function outside the VPC gets X-Ray alone, of its own.
    const shared = inVpc ? props.sharedStarOnly : undefined;
    const role = new WildcardConfinedRole(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${id}`,
      shared,
      starOnly: [
        ...(shared ? [] : inVpc ? LAMBDA_STAR_ONLY_GRANTS : NO_VPC_STAR_ONLY_GRANTS),
        ...(props.starOnlyGrants ?? []),
      ],
    });
    logGroup.grantWrite(role);
    if (inVpc) {
      role.addToPolicy(
        new PolicyStatement({
          sid: 'VpcNetworkInterfaces',
          effect: Effect.ALLOW,
          actions: [...VPC_NETWORK_INTERFACE_ACTIONS],
          resources: ['*'],
        }),
      );
    }

    super(scope, id, {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 1024,
      timeout: props.timeout ?? Duration.seconds(STEP_TIMEOUT_SECONDS),
      tracing: Tracing.ACTIVE,
      logGroup,
      role,
      vpc: props.vpc,
      vpcSubnets: inVpc ? props.vpcSubnets : undefined,
      securityGroups: inVpc ? [...(props.securityGroups ?? [])] : undefined,
      ephemeralStorageSize: props.ephemeralStorageSize,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
        POWERTOOLS_SERVICE_NAME: props.serviceName ?? 'pg-lifecycle',
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        minify: true,
        keepNames: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        sourcesContent: false,
        bundleAwsSDK: true,
        externalModules: ['pg-native'],
        // The start step applies the ledger migrations (sql/NNN_*.sql); they ship beside the bundle.
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => [
            `mkdir -p "${outputDir}/sql"`,
            `cp "${inputDir}"/sql/[0-9][0-9][0-9]_*.sql "${outputDir}/sql/"`,
          ],
        },
      },
    });
  }
}
