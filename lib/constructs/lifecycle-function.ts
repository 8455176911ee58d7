import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** Metrics namespace shared by every handler (Powertools `POWERTOOLS_METRICS_NAMESPACE`). */
export const METRICS_NAMESPACE = 'PgLifecycle';

/**
 * `pg` bundled as ESM calls `require('events')` through esbuild's shim, which throws in an ES module
 * ("Dynamic require of ... is not supported"). A real `require` in scope fixes that for every CJS
 * dependency. The import alias avoids clashing with bundled identifiers.
 */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __pgLifecycleCreateRequire } from 'node:module'; const require = __pgLifecycleCreateRequire(import.meta.url);";

/** Properties of a {@link LifecycleFunction}. */
export interface LifecycleFunctionProps {
  /** Absolute path of the handler entry file; it exports `handler`. */
  readonly entry: string;

  /** What the function does, shown in the console. @default - no description */
  readonly description?: string;

  /** VPC to attach to (the database is only reachable inside it). */
  readonly vpc: IVpc;

  /** Subnets for the function's network interfaces. @default - the VPC's private (or isolated) subnets */
  readonly vpcSubnets?: SubnetSelection;

  /** Security groups of the function; the database must accept 5432 from one of them. */
  readonly securityGroups: readonly ISecurityGroup[];

  /** Environment variables, merged over the defaults listed on {@link LifecycleFunction}. @default - defaults only */
  readonly environment?: Readonly<Record<string, string>>;

  /** Memory in MB; CPU scales with it, and Parquet encoding is CPU bound. @default 1024 */
  readonly memorySize?: number;

  /**
   * Hard timeout. Handlers keep their own time budget below it and return a cursor early.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;

  /** Retention of the function's log group. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;

  /**
   * What happens to the log group when the stack is deleted. Logs are operational (the run ledger in the
   * database is the record), so they go with the stack by default.
   * @default RemovalPolicy.DESTROY
   */
  readonly logRemovalPolicy?: RemovalPolicy;

  /** Powertools service name (`POWERTOOLS_SERVICE_NAME`). @default 'pg-lifecycle' */
  readonly serviceName?: string;
}

/**
 * A Node.js Lambda with the project's defaults fixed in one place:
 *
 * - runtime `nodejs24.x` (`Runtime.NODEJS_24_X`), architecture `arm64`;
 * - its own log group (`<id>LogGroup`, retention one month, removed with the stack) and its own role
 *   (`<id>Role`) that may write only to that log group, send X-Ray traces and manage its VPC network
 *   interfaces; callers grant everything else;
 * - X-Ray tracing `Active`; memory 1024 MB; timeout 5 minutes;
 * - esbuild bundling to minified ESM (`index.mjs`) with a `createRequire` banner (so CJS dependencies
 *   such as `pg` work), `keepNames` (error names drive Step Functions retries), external source maps
 *   without sources content, AWS SDK bundled (the versions tested are the versions deployed), `pg-native`
 *   left out (optional native addon, never used); the ledger migrations `sql/NNN_*.sql` copied to `sql/`;
 * - environment `NODE_OPTIONS=--enable-source-maps`, `NODE_EXTRA_CA_CERTS=/var/runtime/ca-cert.pem`
 *   (the runtime's bundle with the RDS CAs, for `verify-full` TLS), `POWERTOOLS_SERVICE_NAME`,
 *   `POWERTOOLS_METRICS_NAMESPACE=PgLifecycle`;
 * - placed in the given VPC subnets with the given security groups.
 */
export class LifecycleFunction extends NodejsFunction {
  public constructor(scope: Construct, id: string, props: LifecycleFunctionProps) {
    // Created beside the function (not inside it) because they must exist before `super()`.
    const logGroup = new LogGroup(scope, `${id}LogGroup`, {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${id}`,
    });
    logGroup.grantWrite(role);
    role.addToPolicy(
      new PolicyStatement({
        sid: 'VpcNetworkInterfaces',
        effect: Effect.ALLOW,
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: ['*'],
      }),
    );
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only for actions without resource-level permissions: the EC2 network-interface actions Lambda needs to ' +
        'attach to the VPC, and X-Ray PutTraceSegments/PutTelemetryRecords (added by tracing). Everything else ' +
        'in this role is scoped to one log group, bucket prefix, secret or Glue database.',
    });

    super(scope, id, {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 1024,
      timeout: props.timeout ?? Duration.minutes(5),
      tracing: Tracing.ACTIVE,
      logGroup,
      role,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: [...props.securityGroups],
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
